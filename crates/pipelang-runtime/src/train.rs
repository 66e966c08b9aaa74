//! `pipe run`: the stages of a planned pipeline, in plan order, each step taking its LR,
//! mixture, sequence length and RoPE base from the planner.
//!
//! Optimizer state: a stage that resumes a schedule (`lr = resume`) continues the AdamW moments
//! and step count of the previous stage on that schedule, for the parameters both train; a
//! stage that starts a schedule starts a fresh optimizer.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::build::{self, ModelSlot, load_safetensors, save_safetensors, tensors};
use super::data::{DataLoader, Tokenizer};
use super::model::{AdamW, AdamWConfig, CocaHead, Kernels, init::seeded_var_builder, named_vars};
use super::record::{RunRecord, StageRecord, Status, Version, sha256};
use super::setup::{self, Prepared, RunError};
use super::step;
use pipelang::check::ir::Loss;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub file: PathBuf,
    pub profile: Option<String>,
    pub out: PathBuf,
    pub resume: bool,
    pub cuda: bool,
    /// Which kernels the models use; `None`: the fused ones on CPU, the reference ones on
    /// any other device (the fused ones are CPU code).
    pub kernels: Option<Kernels>,
    pub seed: Option<u64>,
    /// Checkpoint every N steps (and always at the end of a stage).
    pub checkpoint_every: u64,
    pub progress: bool,
}

/// Called at every stage boundary with the running preparation and record; returns a new
/// preparation to continue with (hot reload), or `None` to keep the current plan.
pub type Boundary<'a> = dyn FnMut(&Prepared, &mut RunRecord) -> Option<Prepared> + 'a;

pub struct Runner<'a> {
    pub opts: RunOptions,
    pub dev: Device,
    pub prep: Prepared,
    pub record: RunRecord,
    pub log: Box<dyn FnMut(String) + 'a>,
}

fn device(cuda: bool) -> Result<Device, RunError> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        Device::new_cuda(0).map_err(|e| RunError::Other(format!("no CUDA device: {e}")))
    }
    #[cfg(not(feature = "cuda"))]
    Err(RunError::Other(
        "this `pipe` was built without CUDA: rebuild with `cargo build --release --features cuda`"
            .into(),
    ))
}

impl<'a> Runner<'a> {
    fn kernels(&self) -> Kernels {
        self.opts
            .kernels
            .unwrap_or_else(|| Kernels::for_device(&self.dev))
    }

    /// Checks, plans and opens everything; creates (or, with `resume`, reopens) the run
    /// directory. Nothing is written when the pipeline or its data has problems.
    pub fn new(opts: RunOptions, log: Box<dyn FnMut(String) + 'a>) -> Result<Runner<'a>, RunError> {
        let mut log = log;
        let dev = device(opts.cuda)?;
        if opts.kernels == Some(Kernels::Fused) && !dev.is_cpu() {
            return Err(RunError::Other(
                "the fused kernels run on the CPU only: drop `--kernels fused` to use the \
                 reference kernels on this device"
                    .into(),
            ));
        }
        let run_file = opts.out.join("run.ron");
        let (source, record) = if opts.resume {
            let record = RunRecord::load(&run_file).map_err(|e| {
                RunError::Other(format!(
                    "{e}\n  --resume continues a run directory made by `pipe run`"
                ))
            })?;
            // Continue with the last applied version of the source.
            let last = record
                .versions
                .last()
                .ok_or_else(|| RunError::Other("run.ron records no source version".into()))?;
            let text = std::fs::read_to_string(opts.out.join(&last.source_file))?;
            (text, Some(record))
        } else {
            if run_file.exists() {
                return Err(RunError::Other(format!(
                    "`{}` already holds a run: pass --resume to continue it, or choose another --out",
                    opts.out.display()
                )));
            }
            let text = std::fs::read_to_string(&opts.file).map_err(|e| {
                RunError::Other(format!("cannot read `{}`: {e}", opts.file.display()))
            })?;
            (text, None)
        };
        let prep = setup::prepare(&opts.file, opts.profile.as_deref(), source)?;
        let p = prep.checked.pipeline.as_ref().unwrap();
        let seed = opts.seed.unwrap_or(p.seed.value);
        setup::ensure_sample_data(p, &prep.data_root, seed, &mut *log)?;
        // Every source used anywhere must open before anything is written.
        for d in 0..p.data.len() {
            if prep
                .plan
                .stages
                .iter()
                .any(|s| s.mix_tree.used_sources().contains(&d))
            {
                setup::open_source(&prep, d)?;
            }
        }
        let record = match record {
            Some(r) => {
                if r.plan_hash != prep.plan.hash() {
                    return Err(RunError::Other("the resumed source plans differently from the recorded plan (different profile?)".into()));
                }
                r
            }
            None => {
                std::fs::create_dir_all(opts.out.join("checkpoints"))?;
                let source_file = "pipeline.v1.pipe".to_string();
                super::atomic::write(&opts.out.join(&source_file), prep.source.as_bytes())?;

                RunRecord {
                    pipeline: prep.plan.pipeline.clone(),
                    profile: prep.plan.profile.clone(),
                    seed,
                    source_hash: sha256(prep.source.as_bytes()),
                    plan_hash: prep.plan.hash(),
                    stages: vec![],
                    cursors: BTreeMap::new(),
                    versions: vec![Version {
                        source_hash: sha256(prep.source.as_bytes()),
                        source_file,
                        from_stage: None,
                        global_step: 0,
                        changes: vec![],
                    }],
                }
            }
        };
        let mut runner = Runner {
            opts,
            dev,
            prep,
            record,
            log,
        };
        runner.sync_record();
        runner.record.save(&run_file)?;
        Ok(runner)
    }

    /// Adds a record for every planned stage not yet recorded (new stages after a reload).
    pub fn sync_record(&mut self) {
        for st in &self.prep.plan.stages {
            if self.record.stage(&st.name).is_none() {
                self.record.stages.push(StageRecord {
                    name: st.name.clone(),
                    status: Status::Pending,
                    step: 0,
                    steps: st.steps,
                    tokens: st.tokens,
                    checkpoint: None,
                    loader: None,
                    loss_first_tenth: None,
                    loss_last_tenth: None,
                    evals: BTreeMap::new(),
                    wall_s: 0.0,
                    phases: vec![],
                });
            } else if let Some(r) = self.record.stage_mut(&st.name)
                && r.status != Status::Done
            {
                r.steps = st.steps;
                r.tokens = st.tokens;
            }
        }
        // Stages removed from the plan before they started are dropped.
        let names: Vec<String> = self
            .prep
            .plan
            .stages
            .iter()
            .map(|s| s.name.clone())
            .collect();
        self.record
            .stages
            .retain(|r| r.status != Status::Pending || names.contains(&r.name));
        self.record.plan_hash = self.prep.plan.hash();
    }

    fn run_file(&self) -> PathBuf {
        self.opts.out.join("run.ron")
    }

    /// Runs every stage not yet done, in plan order; `boundary` may swap the plan between stages.
    pub fn run(&mut self, boundary: &mut Boundary) -> Result<(), RunError> {
        loop {
            let next = self.prep.plan.stages.iter().position(|s| {
                self.record
                    .stage(&s.name)
                    .is_none_or(|r| r.status != Status::Done)
            });
            let Some(si) = next else { break };
            self.train_stage(si)?;
            if let Some(new) = boundary(&self.prep, &mut self.record) {
                self.prep = new;
                self.sync_record();
            }
            self.record.save(&self.run_file())?;
        }
        Ok(())
    }

    fn ckpt_path(&self, stage: &str, tag: &str) -> (PathBuf, String) {
        let rel = format!("checkpoints/{stage}/{tag}.safetensors");
        (self.opts.out.join(&rel), rel)
    }

    /// Trained weights of `model` as the final checkpoint of `stage` holds them.
    fn weights_from(&self, stage: &str, model: &str) -> Result<BTreeMap<String, Tensor>, RunError> {
        let (path, _) = self.ckpt_path(stage, "final");
        let all = load_safetensors(&path, &self.dev)?;
        Ok(strip(&all, &format!("model/{model}/")))
    }

    fn train_stage(&mut self, si: usize) -> Result<(), RunError> {
        let started = Instant::now();
        let plan = self.prep.plan.clone();
        let st = &plan.stages[si];
        let p = self.prep.checked.pipeline.clone().unwrap();
        let ir = &p.stages[st.id];
        let seed = self.record.seed;
        let rec = self.record.stage(&st.name).cloned().unwrap();
        let resume_ckpt = rec
            .checkpoint
            .clone()
            .filter(|_| rec.status == Status::Running && rec.step > 0);
        let resumed: Option<BTreeMap<String, Tensor>> = match &resume_ckpt {
            Some(rel) => Some(load_safetensors(&self.opts.out.join(rel), &self.dev)?),
            None => None,
        };

        // ---- models
        let mut slots: Vec<ModelSlot> = vec![];
        let mut trained: Vec<bool> = vec![];
        for wf in &st.weights_from {
            let m = p.model_id(&wf.model).unwrap();
            let frozen = !ir.trains(m);
            let weights = match (&resumed, &wf.from) {
                (Some(ck), _) if !frozen => Some(strip(ck, &format!("model/{}/", wf.model))),
                (_, Some(from)) => Some(self.weights_from(from, &wf.model)?),
                (_, None) => None,
            };
            slots.push(build::build(
                &p,
                m,
                seed,
                weights.as_ref(),
                frozen,
                self.kernels(),
                &self.dev,
            )?);
            trained.push(!frozen);
        }
        let coca_weight = match ir.loss.value {
            Loss::Coca { caption_weight } => Some(caption_weight),
            Loss::NextToken => None,
        };
        let coca_vars = VarMap::new();
        let coca_head = match coca_weight {
            Some(_) => {
                if let Some(ck) = &resumed {
                    let mut data = coca_vars.data().lock().unwrap();
                    for (k, t) in strip(ck, "model/coca/") {
                        data.insert(k, candle_core::Var::from_tensor(&t)?);
                    }
                }
                let vit_dim = slots.iter().find_map(|s| {
                    if let build::Built::Vit(v) = &s.built {
                        Some(v.cfg.d_model)
                    } else {
                        None
                    }
                });
                let dec_dim = slots.iter().find_map(|s| {
                    if let build::Built::Decoder(d) = &s.built {
                        Some(d.cfg.d_model)
                    } else {
                        None
                    }
                });
                let (Some(vd), Some(dd)) = (vit_dim, dec_dim) else {
                    return Err(RunError::Other("coca needs a vit and a decoder".into()));
                };
                Some(CocaHead::new(
                    seeded_var_builder(&coca_vars, seed ^ 0xc0ca, &self.dev),
                    vd,
                    dd,
                    dd,
                )?)
            }
            None => None,
        };

        // ---- optimizer
        let mut params = vec![];
        for (s, &t) in slots.iter().zip(&trained) {
            if t {
                params.extend(named_vars(&s.vars, &s.name));
            }
        }
        if coca_head.is_some() {
            params.extend(named_vars(&coca_vars, "coca"));
        }
        let mut opt = AdamW::new(params, AdamWConfig::default())?;
        let prior_optim: Option<HashMap<String, Tensor>> = match &resumed {
            Some(ck) => Some(strip(ck, "optim/").into_iter().collect()),
            None if st.schedule.resumed => {
                let run = &plan.schedules[st.run];
                let pos = run.stages.iter().position(|n| n == &st.name).unwrap_or(0);
                match pos.checked_sub(1).map(|i| &run.stages[i]) {
                    Some(prev) => {
                        let (path, _) = self.ckpt_path(prev, "final");
                        Some(
                            strip(&load_safetensors(&path, &self.dev)?, "optim/")
                                .into_iter()
                                .collect(),
                        )
                    }
                    None => None,
                }
            }
            None => None,
        };
        if let Some(state) = prior_optim {
            opt.import_state(&carry_over(&opt, &state)?)?;
        }

        // ---- data
        let used = st.mix_tree.used_sources();
        let mut sources = vec![];
        for &d in &used {
            sources.push(setup::open_source(&self.prep, d)?);
        }
        let tokenizer = match used.first() {
            Some(&d) => setup::tokenizer_for(&p, d, &self.prep.data_root)?,
            None => Tokenizer::Bytes,
        };
        let specials = tokenizer.specials();
        let mut loader = DataLoader::new(
            sources,
            seed ^ (st.id as u64 + 1).wrapping_mul(0x51_7cc1_b727_220a),
        );
        match &rec.loader {
            Some(state) if resume_ckpt.is_some() => loader
                .restore(state)
                .map_err(|e| RunError::Other(e.to_string()))?,
            _ => loader
                .restore_cursors(&self.record.cursors)
                .map_err(|e| RunError::Other(e.to_string()))?,
        }

        // ---- loop
        let start = if resume_ckpt.is_some() { rec.step } else { 0 };
        let global0: u64 = plan.stages[..si].iter().map(|s| s.steps).sum();
        // On a resume, drop the lines of steps this stage will run again: those after its last
        // checkpoint, or all of its lines when it was killed before its first checkpoint.
        if self.opts.resume {
            truncate_metrics(&self.opts.out.join("metrics.jsonl"), global0 + start)?;
        }
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.opts.out.join("metrics.jsonl"))?;
        let bar = if self.opts.progress {
            ProgressBar::new(st.steps)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(st.name.clone());
        bar.set_position(start);
        if let Some(r) = self.record.stage_mut(&st.name) {
            r.status = Status::Running;
        }
        let decoder_name = slots
            .iter()
            .find(|s| matches!(s.built, build::Built::Decoder(_)))
            .map(|s| s.name.clone());
        // Held-out evaluations (when the sample data provides held-out pairs).
        let image_cfg = setup::image_config(&p);
        let heldout = super::eval::heldout(&self.prep.data_root, &tokenizer, image_cfg);
        let feeds_images = {
            let m = step::pick(&slots);
            coca_weight.is_none() && m.vit.is_some() && m.projector.is_some() && m.decoder.is_some()
        };
        let rope_of = |ph: &pipelang::plan::PhasePlan| {
            decoder_name
                .as_ref()
                .and_then(|n| ph.rope_base.get(n).copied())
                .unwrap_or(10_000.0)
        };
        let mut evals: BTreeMap<String, f64> = BTreeMap::new();
        if let (Some(pairs), true, 0) = (&heldout, feeds_images, start) {
            let v = super::eval::caption_loss(
                &step::pick(&slots),
                pairs,
                image_cfg.merge,
                &tokenizer,
                rope_of(&st.phases[0]),
                &self.dev,
            )?;
            evals.insert("caption_loss_start".into(), v);
        }
        // A stage that grows the context: the decoder's loss on held-out long stories at the
        // final context, before and after. Unlike the training loss, whose steps at different
        // lengths do not compare, this is one measure taken twice.
        let last = st.phases.last().unwrap();
        let grows = st.phases.first().is_some_and(|f| f.seq_len < last.seq_len);
        let long_heldout = (grows && decoder_name.is_some() && coca_weight.is_none())
            .then(|| {
                super::eval::heldout_long(&self.prep.data_root, &tokenizer, last.seq_len as usize)
            })
            .flatten();
        let dev = self.dev.clone();
        let long_loss = |slots: &[build::ModelSlot]| {
            long_heldout
                .as_ref()
                .map(|seqs| {
                    super::eval::text_loss(
                        &step::pick(slots),
                        seqs,
                        &tokenizer,
                        rope_of(last),
                        &dev,
                    )
                })
                .transpose()
        };
        if start == 0
            && let Some(v) = long_loss(&slots)?
        {
            evals.insert("long_loss_start".into(), v);
        }
        let mut losses: Vec<f64> = vec![];
        for step in start..st.steps {
            let t0 = Instant::now();
            let lr = plan.lr_at(si, step);
            let ph = st.phase_of(step);
            let all = plan.mix_at(si, step);
            let shares: Vec<f64> = used.iter().map(|&d| all[d]).collect();
            let rope = decoder_name
                .as_ref()
                .and_then(|n| ph.rope_base.get(n).copied())
                .unwrap_or(10_000.0);
            let models = step::pick(&slots);
            let t_data;
            let (loss, counts, extra) = match (&coca_head, coca_weight) {
                (Some(head), Some(w)) => {
                    let (pairs, counts) = loader
                        .next_caption_batch(&shares, ph.batch as usize)
                        .map_err(|e| RunError::Other(e.to_string()))?;
                    t_data = t0.elapsed();
                    let (l, c, cap) = step::coca(
                        &models,
                        head,
                        &pairs,
                        w,
                        rope,
                        ph.seq_len as usize,
                        &self.dev,
                    )?;
                    (
                        l,
                        counts,
                        json!({"contrastive": step::scalar(&c)?, "caption": step::scalar(&cap)?}),
                    )
                }
                _ => {
                    let batch = loader
                        .next_batch(&shares, ph.batch as usize, ph.seq_len as usize)
                        .map_err(|e| RunError::Other(e.to_string()))?;
                    t_data = t0.elapsed();
                    let (l, aux) = step::next_token(&models, &batch, rope, specials, &self.dev)?;
                    let total = (&l + &aux)?;
                    let aux_v = step::scalar(&aux)?;
                    (total, batch.counts.clone(), json!({"aux": aux_v}))
                }
            };
            let t_fwd = t0.elapsed();
            let grads = loss.backward()?;
            let t_bwd = t0.elapsed();
            let stats = opt.step(&grads, lr)?;
            let loss_v = step::scalar(&loss)?;
            let t_opt = t0.elapsed();
            if !loss_v.is_finite() {
                return Err(RunError::Other(format!(
                    "stage `{}` step {step}: the loss is {loss_v}; lower the LR or check the data",
                    st.name
                )));
            }
            losses.push(loss_v);
            let secs = t0.elapsed().as_secs_f64();
            let tps = ph.tokens_per_step as f64 / secs.max(1e-9);
            let per_source: serde_json::Map<String, serde_json::Value> = used
                .iter()
                .zip(&counts)
                .map(|(&d, &c)| (plan.sources[d].clone(), json!(c)))
                .collect();
            let line = json!({
                "stage": st.name, "phase": ph.name, "step": step, "global_step": global0 + step,
                "tokens": st.tokens_at(step) + ph.tokens_per_step as f64, "loss": loss_v, "lr": lr,
                "seq_len": ph.seq_len, "batch": ph.batch, "rope_base": ph.rope_base, "sources": per_source,
                "grad_norm": stats.grad_norm, "tokens_per_s": tps, "extra": extra,
                "time_ms": {
                    "data": ms(t_data), "forward": ms(t_fwd - t_data), "backward": ms(t_bwd - t_fwd), "optimizer": ms(t_opt - t_bwd),
                },
            });
            writeln!(metrics, "{line}")?;
            bar.set_position(step + 1);
            bar.set_message(format!(
                "loss {loss_v:.3} lr {} {:.0} tok/s",
                pipelang::check::units::lr(lr),
                tps
            ));
            let done = step + 1 == st.steps;
            let every = ir
                .checkpoint_every
                .map_or(self.opts.checkpoint_every, |c| c.value);
            if done || (step + 1) % every == 0 {
                metrics.flush()?;
                metrics.sync_data()?;
                let tag = if done {
                    "final".to_string()
                } else {
                    format!("step-{:08}", step + 1)
                };
                let mut all: BTreeMap<String, Tensor> = BTreeMap::new();
                for (s, &t) in slots.iter().zip(&trained) {
                    if t {
                        for (k, v) in tensors(&s.vars) {
                            all.insert(format!("model/{}/{k}", s.name), v);
                        }
                    }
                }
                for (k, v) in tensors(&coca_vars) {
                    all.insert(format!("model/coca/{k}"), v);
                }
                for (k, v) in opt.export_state(&self.dev)? {
                    all.insert(format!("optim/{k}"), v);
                }
                let (path, rel) = self.ckpt_path(&st.name, &tag);
                std::fs::create_dir_all(path.parent().unwrap())?;
                save_safetensors(&path, &all)?;
                let previous = self
                    .record
                    .stage(&st.name)
                    .and_then(|r| r.checkpoint.clone());
                let r = self.record.stage_mut(&st.name).unwrap();
                r.step = step + 1;
                r.checkpoint = Some(rel.clone());
                r.loader = Some(loader.state());
                if done {
                    r.status = Status::Done;
                }
                self.record.save(&self.run_file())?;
                // Periodic checkpoints are only needed until the next one is safely recorded.
                if let Some(prev) = previous.filter(|p| p != &rel && p.contains("/step-")) {
                    let _ = std::fs::remove_file(self.opts.out.join(prev));
                }
            }
        }
        bar.finish_and_clear();
        let tenth = (losses.len() / 10).max(1);
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let wall = started.elapsed().as_secs_f64();
        self.record.cursors = loader.cursors();
        if let Some(pairs) = &heldout {
            let rope_end = rope_of(st.phases.last().unwrap());
            let m = step::pick(&slots);
            if let Some(head) = &coca_head {
                evals.insert(
                    "retrieval_top1".into(),
                    super::eval::retrieval(&m, head, pairs, rope_end, &self.dev)?,
                );
                evals.insert("retrieval_chance".into(), 1.0 / pairs.len() as f64);
            }
            if feeds_images {
                let v = super::eval::caption_loss(
                    &m,
                    pairs,
                    image_cfg.merge,
                    &tokenizer,
                    rope_end,
                    &self.dev,
                )?;
                evals.insert("caption_loss_end".into(), v);
            }
        }
        if let Some(v) = long_loss(&slots)? {
            evals.insert("long_loss_end".into(), v);
        }
        let r = self.record.stage_mut(&st.name).unwrap();
        r.evals.extend(evals);
        if start == 0 {
            r.loss_first_tenth = mean(&losses[..tenth.min(losses.len())]);
        }
        r.loss_last_tenth = mean(&losses[losses.len().saturating_sub(tenth)..]);
        r.wall_s += wall;
        if st.phases.len() > 1 {
            r.phases = phase_losses(st, start, &losses, &r.phases);
        }
        let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
        let mut msg = format!(
            "{:>20}  {} steps  loss {} -> {}  {:.1}s",
            st.name,
            st.steps,
            f(r.loss_first_tenth),
            f(r.loss_last_tenth),
            wall
        );
        for ph in &r.phases {
            msg += &format!(
                "\n{:>20}  seq_len {}  loss {} -> {}",
                format!(".{}", ph.name),
                ph.seq_len,
                f(ph.loss_first_tenth),
                f(ph.loss_last_tenth)
            );
        }
        self.record.save(&self.run_file())?;
        (self.log)(msg);
        Ok(())
    }
}

fn strip(all: &BTreeMap<String, Tensor>, prefix: &str) -> BTreeMap<String, Tensor> {
    all.iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// The previous stage's optimizer state for the parameters this stage trains; parameters it
/// did not train start with zero moments (the step count carries over).
fn carry_over(
    opt: &AdamW,
    prior: &HashMap<String, Tensor>,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    let step = prior
        .get("adamw.step")
        .cloned()
        .unwrap_or(Tensor::new(&[0i64], &candle_core::Device::Cpu)?);
    out.insert("adamw.step".to_string(), step);
    for (n, v) in opt.params() {
        for kind in ["m", "v"] {
            let key = format!("adamw.{kind}.{n}");
            let t = match prior.get(&key) {
                Some(t) if t.shape() == v.shape() => t.clone(),
                _ => v.as_tensor().zeros_like()?,
            };
            out.insert(key, t);
        }
    }
    Ok(out)
}

/// On resume, drops metric lines written after the checkpoint the run continues from.
fn truncate_metrics(path: &Path, global_step: u64) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["global_step"].as_u64())
                .is_some_and(|g| g < global_step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    super::atomic::write(path, kept.as_bytes())
}

/// Per-phase first and last tenth from the losses of steps `start..`; a figure whose steps ran
/// before a resume keeps the value recorded then.
fn phase_losses(
    st: &pipelang::plan::StagePlan,
    start: u64,
    losses: &[f64],
    before: &[super::record::PhaseLoss],
) -> Vec<super::record::PhaseLoss> {
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    st.phases
        .iter()
        .enumerate()
        .map(|(i, ph)| {
            let name = ph.name.clone().unwrap_or_else(|| format!("phase{}", i + 1));
            let old = before.iter().find(|p| p.name == name);
            let tenth = (ph.steps / 10).max(1).min(ph.steps);
            let (a, b) = (ph.first_step, ph.first_step + ph.steps);
            // Losses of steps a..b that this process ran, as a slice of `losses`.
            let slice = |from: u64, to: u64| -> Option<&[f64]> {
                (from >= start && to > from)
                    .then(|| losses.get((from - start) as usize..(to - start) as usize))
                    .flatten()
            };
            super::record::PhaseLoss {
                name,
                seq_len: ph.seq_len,
                loss_first_tenth: slice(a, a + tenth)
                    .and_then(mean)
                    .or(old.and_then(|o| o.loss_first_tenth)),
                loss_last_tenth: slice(b - tenth, b)
                    .and_then(mean)
                    .or(old.and_then(|o| o.loss_last_tenth)),
            }
        })
        .collect()
}

/// A duration in milliseconds, rounded to microseconds for the metrics file.
fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
