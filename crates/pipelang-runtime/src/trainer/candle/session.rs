//! One stage's training state on candle: its models (trained ones as variables, frozen ones as
//! plain tensors), the CoCa head, the optimizer with the state it carries over, and the data
//! loader over the stage's sources.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::step::{self, Models};
use crate::build::{self, Built, ModelSlot, tensors};
use crate::checkpoint::{self, COCA, Checkpoint};
use crate::data::{DataLoader, Tokenizer};
use crate::metrics::Extra;
use crate::model::{AdamW, AdamWConfig, CocaHead, Kernels, init::seeded_var_builder, named_vars};
use crate::setup::{self, RunError};
use crate::trainer::StageContext;
use pipelang::check::ir::{DataId, Loss};
use std::collections::BTreeMap;

use pipelang::plan::StepState;
use pipelang::plan::rope::{Rope, RopeScaling};
use pipelang::schema::decoder::DEFAULT_ROPE_BASE;

pub struct Coca {
    pub head: CocaHead,
    vars: VarMap,
    caption_weight: f64,
}

pub struct Session {
    pub slots: Vec<ModelSlot>,
    /// Per slot: whether the stage trains it (frozen models are not checkpointed).
    trained: Vec<bool>,
    pub coca: Option<Coca>,
    pub opt: AdamW,
    pub loader: DataLoader,
    pub tokenizer: Tokenizer,
    /// The plan's indices of the stage's sources, in the loader's order.
    pub used: Vec<DataId>,
    /// The first decoder: the model whose RoPE base the plan's phases give.
    decoder: Option<String>,
    /// Written into every checkpoint of the stage.
    trained_with: checkpoint::TrainedWith,
    /// `average` / `ema`: the running average of the trained weights.
    average: Option<super::average::Averager>,
}

/// What one step's forward pass produced.
pub struct Forward {
    pub loss: Tensor,
    pub extra: Extra,
    /// Sequences (or pairs) drawn per source, in the order of `Session::used`.
    pub counts: Vec<usize>,
    /// Time spent drawing the batch.
    pub data: Duration,
}

impl Session {
    pub fn open(ctx: &StageContext, kernels: Kernels, dev: &Device) -> Result<Session, RunError> {
        let (p, st) = (ctx.pipeline(), ctx.stage());
        let ir = &p.stages[st.id];
        let resumed = match &ctx.start.resume {
            Some(r) => Some(Checkpoint::load(ctx.run_dir, &r.checkpoint, dev)?),
            None => None,
        };
        // The stage's own `seed`, or the run's.
        let seed = st.seed.unwrap_or(ctx.seed);
        let mut slots = vec![];
        let mut trained = vec![];
        for wf in &st.weights_from {
            let m = p
                .model_id(&wf.model)
                .expect("the plan names declared models");
            let frozen = !ir.trains(m);
            let weights = match (&resumed, &wf.from) {
                (Some(ck), _) if !frozen => Some(ck.model(&wf.model)),
                (_, Some(from)) => {
                    // A branch starts from the checkpoint its parent saved at the branch point.
                    let rel = match &st.branch {
                        Some(b) if &b.parent == from => checkpoint::branch_path(from, &st.name),
                        _ => checkpoint::final_path(from),
                    };
                    Some(Checkpoint::load(ctx.run_dir, &rel, dev)?.model(&wf.model))
                }
                (_, None) => match &wf.init {
                    // `init = "PATH"`: checked against the model's parameters before the run
                    // (`setup`), loaded here.
                    Some(init) => {
                        let path = pipelang::check::init_file::path_of(&ctx.prep.file, init);
                        Some(build::load_init(&path, &wf.model, dev)?)
                    }
                    None => None,
                },
            };
            slots.push(build::build(
                p,
                m,
                seed,
                weights.as_ref(),
                frozen,
                kernels,
                dev,
            )?);
            trained.push(!frozen);
        }
        let coca = match ir.loss.value {
            Loss::Coca { caption_weight } => Some(coca_head(
                &slots,
                resumed.as_ref(),
                caption_weight,
                seed,
                dev,
            )?),
            Loss::NextToken => None,
        };

        let mut params = vec![];
        for (s, _) in slots.iter().zip(&trained).filter(|(_, t)| **t) {
            params.extend(named_vars(&s.vars, &s.name));
        }
        if let Some(c) = &coca {
            params.extend(named_vars(&c.vars, COCA));
        }
        let mut opt = AdamW::new(params, AdamWConfig::from_plan(&st.optimizer))?;
        // Parameters are named `MODEL.PARAM`; the CoCa head has no factor of its own.
        opt.set_lr_scale(|name| st.lr_factor(name.split('.').next().unwrap_or(name)));
        let prior = match (&resumed, &ctx.start.schedule_from) {
            (Some(ck), _) => Some(ck.optimizer()),
            (None, Some(prev)) => {
                Some(Checkpoint::load(ctx.run_dir, &checkpoint::final_path(prev), dev)?.optimizer())
            }
            (None, None) => None,
        };
        if let Some(state) = prior {
            opt.continue_from(&state)?;
        }

        let used = st.mix_tree.used_sources();
        let mut sources = vec![];
        for &d in &used {
            sources.push(setup::open_source(ctx.prep, d)?);
        }
        let tokenizer = match used.first() {
            Some(&d) => setup::tokenizer_for(p, d, &ctx.prep.data_root)?,
            None => Tokenizer::Bytes,
        };
        let mut loader = DataLoader::new(
            sources,
            seed ^ (st.id.index() as u64 + 1).wrapping_mul(0x51_7cc1_b727_220a),
        );
        let restored = match ctx.start.resume.as_ref().and_then(|r| r.loader.as_ref()) {
            Some(state) => loader.restore(state),
            None => loader.restore_cursors(ctx.cursors()),
        };
        restored.map_err(|e| RunError::Other(e.to_string()))?;

        let decoder = slots
            .iter()
            .find(|s| matches!(s.built, Built::Decoder(_)))
            .map(|s| s.name.clone());
        let trained_with = checkpoint::TrainedWith {
            stage: st.name.clone(),
            adamw: opt.cfg.clone(),
            lr_scale: st
                .train
                .iter()
                .map(|m| (m.clone(), st.lr_factor(m)))
                .collect(),
            seed,
            rope: BTreeMap::new(),
        };
        let average = st
            .averaging
            .map(|a| super::average::Averager::new(a, resumed.as_ref()));
        Ok(Session {
            slots,
            trained,
            coca,
            opt,
            loader,
            tokenizer,
            used,
            decoder,
            trained_with,
            average,
        })
    }

    pub fn models(&self) -> Models<'_> {
        step::pick(&self.slots)
    }

    pub fn has_decoder(&self) -> bool {
        self.decoder.is_some()
    }

    /// The decoder's RoPE base in phase `ph`.
    /// The stage decoder's RoPE base among `bases` (a step's or a phase's, by model name).
    pub fn rope(
        &self,
        bases: &BTreeMap<String, f64>,
        scaling: &BTreeMap<String, RopeScaling>,
    ) -> Rope {
        let Some(n) = self.decoder.as_ref() else {
            return Rope::plain(DEFAULT_ROPE_BASE);
        };
        Rope {
            base: bases.get(n).copied().unwrap_or(DEFAULT_ROPE_BASE),
            scaling: scaling.get(n).copied().unwrap_or_default(),
        }
    }

    /// Draws the next batch at the step's mixture `shares` (per used source) and runs the
    /// forward pass of the stage's loss.
    pub fn forward(
        &mut self,
        at: &StepState,
        shares: &[f64],
        dev: &Device,
    ) -> Result<Forward, RunError> {
        let t0 = Instant::now();
        let rope = self.rope(&at.rope_base, &at.rope_scaling);
        if let Some(d) = &self.decoder {
            self.trained_with.rope = [(d.clone(), rope)].into();
        }
        let data_err = |e: crate::data::DataError| RunError::Other(e.to_string());
        if let Some(c) = &self.coca {
            let (pairs, counts) = self
                .loader
                .next_caption_batch(shares, at.batch as usize)
                .map_err(data_err)?;
            let data = t0.elapsed();
            let m = step::pick(&self.slots);
            let (loss, contrastive, caption) = step::coca(
                &m,
                &c.head,
                &pairs,
                c.caption_weight,
                rope,
                at.seq_len as usize,
                dev,
            )?;
            let extra = Extra::Coca {
                contrastive: step::scalar(&contrastive)?,
                caption: step::scalar(&caption)?,
            };
            return Ok(Forward {
                loss,
                extra,
                counts,
                data,
            });
        }
        let batch = self
            .loader
            .next_batch(shares, at.batch as usize, at.seq_len as usize)
            .map_err(data_err)?;
        let data = t0.elapsed();
        let m = step::pick(&self.slots);
        let specials = self.tokenizer.specials();
        let (loss, aux) = step::next_token(&m, &batch, rope, specials, dev)?;
        Ok(Forward {
            loss: (&loss + &aux)?,
            extra: Extra::NextToken {
                aux: step::scalar(&aux)?,
            },
            counts: batch.counts,
            data,
        })
    }

    /// The variables the stage trains, by the name their checkpoint keys take: the trained
    /// models, then the CoCa head.
    fn trained_vars(&self) -> impl Iterator<Item = (&str, &VarMap)> {
        let trained = self.slots.iter().zip(&self.trained).filter(|(_, t)| **t);
        let models = trained.map(|(s, _)| (s.name.as_str(), &s.vars));
        models.chain(self.coca.as_ref().map(|c| (COCA, &c.vars)))
    }

    /// The trained weights (models and the CoCa head) by checkpoint key, `model/MODEL/PARAM`.
    fn weights(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (name, vars) in self.trained_vars() {
            for (k, v) in tensors(vars) {
                out.insert(format!("model/{name}/{k}"), v);
            }
        }
        out
    }

    /// After `step`: the stage's average takes the weights it left.
    pub fn average_step(&mut self, step: u64) -> candle_core::Result<()> {
        let weights = match &self.average {
            Some(_) => self.weights(),
            None => return Ok(()),
        };
        match &mut self.average {
            Some(a) => a.step(step, &weights),
            None => Ok(()),
        }
    }

    /// At the end of an averaging stage: the trained models (and the CoCa head) take the
    /// averaged weights, so that the held-out evaluation measures what the stage hands on.
    /// The stage's final checkpoint is saved before this (its `raw/` keeps the last step's).
    pub fn take_average(&mut self, steps: u64) -> candle_core::Result<()> {
        let Some(a) = &self.average else {
            return Ok(());
        };
        let averaged = a.result(steps, &self.weights())?;
        for (name, vars) in self.trained_vars() {
            let data = vars.data().lock().expect("var map lock");
            for (k, var) in data.iter() {
                if let Some(w) = averaged.get(&format!("model/{name}/{k}")) {
                    var.set(w)?;
                }
            }
        }
        Ok(())
    }

    /// The trained models, the CoCa head, the optimizer state and the running average, as a
    /// checkpoint after `done` of the stage's `steps` steps. At the end of an averaging stage
    /// `model/` holds the averaged weights and `raw/` the last step's.
    pub fn checkpoint(
        &self,
        dev: &Device,
        done: u64,
        steps: u64,
    ) -> candle_core::Result<Checkpoint> {
        let mut ck = Checkpoint::default();
        let weights = self.weights();
        match &self.average {
            Some(a) if done == steps => {
                ck.extend(a.result(steps, &weights)?);
                ck.extend(
                    weights
                        .into_iter()
                        .map(|(k, v)| (format!("raw/{}", &k["model/".len()..]), v)),
                );
            }
            _ => ck.extend(weights),
        }
        if let Some(a) = &self.average {
            ck.extend(a.state());
        }
        ck.set_optimizer(self.opt.export_state(dev)?);
        ck.set_trained_with(&self.trained_with);
        Ok(ck)
    }
}

/// The CoCa head between the stage's ViT and decoder: seeded, or as the checkpoint the stage
/// resumes from holds it.
fn coca_head(
    slots: &[ModelSlot],
    resumed: Option<&Checkpoint>,
    caption_weight: f64,
    seed: u64,
    dev: &Device,
) -> Result<Coca, RunError> {
    let vars = VarMap::new();
    if let Some(ck) = resumed {
        let mut data = vars.data().lock().expect("var map lock");
        for (k, t) in ck.model(COCA) {
            data.insert(k, candle_core::Var::from_tensor(&t)?);
        }
    }
    let vit = slots.iter().find_map(|s| match &s.built {
        Built::Vit(v) => Some(v.cfg.d_model),
        _ => None,
    });
    let decoder = slots.iter().find_map(|s| match &s.built {
        Built::Decoder(d) => Some(d.cfg.d_model),
        _ => None,
    });
    let (Some(vd), Some(dd)) = (vit, decoder) else {
        return Err(RunError::Other("coca needs a vit and a decoder".into()));
    };
    let head = CocaHead::new(seeded_var_builder(&vars, seed ^ 0xc0ca, dev), vd, dd, dd)?;
    Ok(Coca {
        head,
        vars,
        caption_weight,
    })
}
