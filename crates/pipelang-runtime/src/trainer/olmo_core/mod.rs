//! `pipe run --engine olmo-core`: the plan's engine runs (`pipelang_engine::lower`) trained by
//! OLMo-core under `torchrun`, one process group per run, in plan order. pipelang writes the
//! configs and the driver into `OUT/engine/` (the same files as `pipe export`, rerunnable by
//! hand) and the token files into `OUT/engine/data/` (`pipe prepare-data`'s writer and
//! manifest: shards already built are kept on a resume), launches each run, streams the steps the driver logs into
//! `metrics.jsonl` (the candle runtime's schema, so `pipe report` reads either) and records the
//! stages in `run.ron`.
//!
//! Resume: a run that finished leaves `DONE`; a run killed part-way continues from the last
//! checkpoint in its own save folder (the driver loads it with its trainer state: same run,
//! same dataset), and the steps it logged after that checkpoint are dropped and run again.

mod one_run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipelang_engine::olmo_core::{self, run_dir};
use pipelang_engine::runs::{EngineRun, Lowering, Options};

use crate::data::prepared::{self, Format, Manifest};
use crate::lock::RunLock;
use crate::metrics;
use crate::record::{EngineRunRecord, RunRecord, StageRecord, Status, Stopped};
use crate::setup::{Prepared, RunError};
use crate::stop::StopFlag;
use crate::train::{Boundary, take_lock};

pub struct EngineOptions {
    pub out: PathBuf,
    /// Processes per run (`torchrun --nproc-per-node`).
    pub nproc: u32,
    pub ramp_pieces: Option<u64>,
    pub resume: bool,
    /// Set by SIGINT/SIGTERM: the run being trained checkpoints where it is and pipe stops.
    pub stop: StopFlag,
}

/// The Python of the pinned engines (`pipelang_engine::python::find` under the current
/// directory), else `python3`.
pub fn python() -> PathBuf {
    pipelang_engine::python::find(Path::new(".")).unwrap_or_else(|| "python3".into())
}

/// The lowering, or every stage the engine cannot take as located diagnostics.
pub fn lowering(prep: &Prepared, ramp_pieces: Option<u64>) -> Result<Lowering, RunError> {
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    let l = pipelang_engine::lower(
        p,
        &prep.plan,
        &Options {
            ramp_pieces,
            target: pipelang_engine::Target::OlmoCore,
            skip: vec![],
        },
    );
    if l.unmappable.is_empty() {
        return Ok(l);
    }
    Err(RunError::Diagnostics {
        file: prep.file.clone(),
        source: prep.source.clone(),
        diagnostics: l.unmappable.iter().map(|u| u.diagnostic.clone()).collect(),
    })
}

fn new_record(prep: &Prepared, out: &Path) -> Result<RunRecord, RunError> {
    let plan = &prep.plan;
    let mut r = RunRecord {
        pipeline: plan.pipeline.clone(),
        profile: plan.profile.clone(),
        seed: plan.seed,
        source_hash: crate::record::sha256(prep.source.as_bytes()),
        plan_hash: plan.hash(),
        stages: plan.stages.iter().map(StageRecord::pending).collect(),
        cursors: Default::default(),
        versions: vec![],
        stopped: None,
        engine_runs: vec![],
    };
    r.add_version(out, &prep.source, None, 0, vec![])?;
    Ok(r)
}

/// A run directory opened for the engine: the pipeline it goes on with, its record, and the
/// lock held for as long as this value lives.
pub struct Opened {
    pub prep: Arc<Prepared>,
    pub record: RunRecord,
    _lock: RunLock,
}

/// `pipe run FILE --engine olmo-core`: the source (on a resume, the version the run recorded
/// last, then the file's edit if it differs, judged by the hot-reload rules) checked, planned
/// and lowered before anything is written; the run directory locked.
pub fn open(
    file: &Path,
    profile: Option<&str>,
    o: &EngineOptions,
    log: &mut dyn FnMut(String),
) -> Result<Opened, RunError> {
    let record_path = o.out.join("run.ron");
    if !o.resume {
        let source = std::fs::read_to_string(file)
            .map_err(|e| RunError::Other(format!("cannot read `{}`: {e}", file.display())))?;
        let prep = crate::setup::prepare(file, profile, source)?;
        lowering(&prep, o.ramp_pieces)?;
        if record_path.exists() {
            return Err(RunError::Other(format!(
                "`{}` already holds a run: continue it with --resume, or pick another --out",
                o.out.display()
            )));
        }
        let lock = take_lock(&o.out, log)?;
        let record = new_record(&prep, &o.out)?;
        return ready(&o.out, prep, record, lock, log);
    }
    let lock = take_lock(&o.out, log)?;
    let mut record = RunRecord::load(&record_path).map_err(|e| {
        RunError::Other(format!(
            "{e}\n  --resume continues a run directory made by `pipe run`"
        ))
    })?;
    if let Some(s) = record.stopped.take() {
        log(format!("pipe run: resuming the run {s}"));
    }
    let last = record
        .versions
        .last()
        .ok_or_else(|| RunError::Other("run.ron records no source version".into()))?;
    let source = std::fs::read_to_string(o.out.join(&last.source_file))?;
    let mut prep = crate::setup::prepare(file, profile, source)?;
    if record.plan_hash != prep.plan.hash() {
        return Err(RunError::Other(format!(
            "`{}` was run with another plan (another --profile?); resume it with the one it ran",
            o.out.display()
        )));
    }
    let l = lowering(&prep, o.ramp_pieces)?;
    note_part_way(&prep, &l, &o.out.join("engine"), &mut record);
    if let Some(new) = crate::edit::on_resume(file, profile, &o.out, &prep, &mut record, log)? {
        lowering(&new, o.ramp_pieces)?;
        record.sync(&new.plan);
        prep = new;
    }
    ready(&o.out, prep, record, lock, log)
}

fn ready(
    out: &Path,
    prep: Prepared,
    record: RunRecord,
    lock: RunLock,
    log: &mut dyn FnMut(String),
) -> Result<Opened, RunError> {
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    crate::setup::ensure_sample_data(p, &prep.data_root, p.seed.value, log)?;
    record.save(&out.join("run.ron"))?;
    Ok(Opened {
        prep: Arc::new(prep),
        record,
        _lock: lock,
    })
}

/// A stage whose run was killed part-way stands at that run's checkpoint: the hot-reload rules
/// then see it as started and keep an edit off it (its checkpoint holds the old course).
fn note_part_way(prep: &Prepared, l: &Lowering, eng: &Path, record: &mut RunRecord) {
    for (i, r) in l.runs.iter().enumerate() {
        let dir = eng.join(run_dir(i, r));
        if dir.join("DONE").exists() {
            continue;
        }
        let Some(from) = one_run::last_checkpoint(&dir).filter(|&k| k > 0) else {
            continue;
        };
        let st = &prep.plan.stages[r.stage_index];
        if let Some(rec) = record.stage_mut(&st.name) {
            rec.status = Status::Running;
            rec.step = rec.step.max(r.first_step + from.min(r.steps));
        }
    }
}

/// The engine's files for the plan `prep`: lowered, its sources prepared, every run's config
/// (re)written. Runs already done keep their folders; the lowering of stages that ran is the
/// same, since an edit may not change them.
fn export(
    prep: &Prepared,
    o: &EngineOptions,
    eng: &Path,
    log: &mut dyn FnMut(String),
) -> Result<Lowering, RunError> {
    let l = lowering(prep, o.ramp_pieces)?;
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    let manifest = prepare_tokens(prep, &eng.join("data"), log)?;
    let facts = data_facts(&manifest);
    for r in &l.runs {
        olmo_core::run_token_files(r, &facts).map_err(RunError::Other)?;
    }
    olmo_core::write(eng, &olmo_core::files(p, &prep.plan, &l, &facts))?;
    Ok(l)
}

/// Trains every run not done, in plan order; `boundary` may swap the plan between runs (the
/// watcher of `--watch`). Returns the plan it ended with and the record.
pub fn train(
    opened: Opened,
    o: &EngineOptions,
    boundary: &mut Boundary,
    log: &mut dyn FnMut(String),
) -> Result<(Arc<Prepared>, RunRecord), RunError> {
    let Opened {
        mut prep,
        mut record,
        _lock,
    } = opened;
    let record_path = o.out.join("run.ron");
    let eng = o.out.join("engine");
    let python = python();
    let mut l = export(&prep, o, &eng, log)?;
    let done = |i: usize, r: &EngineRun| eng.join(run_dir(i, r)).join("DONE").exists();
    // Losses of each stage so far (on a resume, from the metrics of the runs that finished).
    // The lines kept: those before the first run not done, and its steps up to the checkpoint
    // it continues from.
    let first_todo = l.runs.iter().enumerate().find(|(i, r)| !done(*i, r));
    let resume_from = first_todo.map_or(prep.plan.total_steps, |(i, r)| {
        let from = one_run::last_checkpoint(&eng.join(run_dir(i, r))).unwrap_or(0);
        r.global_first_step + from.min(r.steps)
    });
    metrics::truncate(&o.out, resume_from)?;
    let mut losses: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for m in metrics::read(&o.out).unwrap_or_default() {
        losses.entry(m.stage).or_default().push(m.loss);
    }
    loop {
        let Some((i, r)) = l.runs.iter().enumerate().find(|(i, r)| !done(*i, r)) else {
            break;
        };
        let rel = PathBuf::from(run_dir(i, r));
        let from = one_run::last_checkpoint(&eng.join(&rel))
            .unwrap_or(0)
            .min(r.steps);
        let st = &prep.plan.stages[r.stage_index];
        if o.stop.requested() {
            return Err(stopped(&mut record, &record_path, o, st, r, &rel, from));
        }
        let stage_losses = losses.entry(st.name.clone()).or_default();
        stage_losses.truncate((r.first_step + from) as usize);
        log(format!(
            "{}: {} steps of {} x {} tokens on {} process(es){}",
            r.name,
            r.steps,
            r.batch,
            r.seq_len,
            o.nproc,
            if from > 0 {
                format!(", from its checkpoint at step {from}")
            } else {
                String::new()
            }
        ));
        let dir = rel.display().to_string();
        let ri = record.engine_run(&dir, || EngineRunRecord {
            name: r.name.clone(),
            dir: dir.clone(),
            stage: r.stage.clone(),
            steps: r.steps,
            step: 0,
            status: Status::Pending,
            tries: 0,
            wall_s: 0.0,
        });
        let run = &mut record.engine_runs[ri];
        run.status = Status::Running;
        run.step = from;
        run.tries += 1;
        record.save(&record_path)?;
        let started = std::time::Instant::now();
        let fin = one_run::train(
            &python, &eng, &rel, r, &prep.plan, &o.out, o.nproc, from, &o.stop, log,
        );
        let at = one_run::last_checkpoint(&eng.join(&rel))
            .unwrap_or(0)
            .min(r.steps);
        let run = &mut record.engine_runs[ri];
        run.wall_s += started.elapsed().as_secs_f64();
        run.step = at;
        let fin = match fin {
            Ok(f) => f,
            Err(e) => {
                record.save(&record_path)?;
                return Err(e);
            }
        };
        stage_losses.extend(fin.losses);
        if fin.stopped {
            return Err(stopped(&mut record, &record_path, o, st, r, &rel, at));
        }
        let run = &mut record.engine_runs[ri];
        run.step = r.steps;
        run.status = Status::Done;
        pipelang::atomic::write(&eng.join(&rel).join("DONE"), b"")?;
        let rec = record.stage_mut(&st.name).expect("every stage is recorded");
        rec.step = r.first_step + r.steps;
        rec.status = if rec.step == st.steps {
            Status::Done
        } else {
            Status::Running
        };
        rec.checkpoint = Some(format!("engine/{}/checkpoint", rel.display()));
        rec.wall_s += started.elapsed().as_secs_f64();
        if stage_losses.len() as u64 == rec.step {
            rec.add_losses(st, 0, stage_losses);
        }
        record.save(&record_path)?;
        if let Some(new) = boundary(&prep, &mut record) {
            record.sync(&new.plan);
            prep = new;
            l = export(&prep, o, &eng, log)?;
        }
        record.save(&record_path)?;
    }
    Ok((prep, record))
}

/// The run stops on request with `r` checkpointed at its step `at`: the record says where.
fn stopped(
    record: &mut RunRecord,
    record_path: &Path,
    o: &EngineOptions,
    st: &pipelang::plan::StagePlan,
    r: &EngineRun,
    rel: &Path,
    at: u64,
) -> RunError {
    let step = r.first_step + at;
    let checkpoint = (at > 0).then(|| format!("engine/{}/checkpoint/step{at}", rel.display()));
    if let Some(rec) = record.stage_mut(&st.name)
        && step > 0
    {
        rec.status = Status::Running;
        rec.step = rec.step.max(step);
    }
    let s = Stopped {
        cause: o.stop.cause(),
        stage: st.name.clone(),
        step,
        checkpoint,
    };
    record.stopped = Some(s.clone());
    match record.save(record_path) {
        Ok(()) => RunError::Stopped(s),
        Err(e) => RunError::Other(format!("{s}, but `run.ron` could not be updated: {e}")),
    }
}

/// Every text source tokenised into OLMo-core's files under `dir` (`pipe prepare-data`: a
/// rerun rebuilds only shards whose input or tokenizer changed).
fn prepare_tokens(
    prep: &Prepared,
    dir: &Path,
    log: &mut dyn FnMut(String),
) -> Result<Manifest, RunError> {
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = prepared::prepare(prep, Format::OlmoCore, dir, &bar).map_err(|errors| {
        RunError::Other(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    bar.finish_and_clear();
    for s in &report.manifest.sources {
        log(format!(
            "data: {}: {} tokens in {} documents ({} shard(s), {})",
            s.name,
            s.tokens,
            s.documents,
            s.shards.len(),
            s.dtype.name()
        ));
    }
    if report.built > 0 {
        log(format!(
            "data: {} shard(s) tokenised, {} kept, into {}",
            report.built,
            report.reused,
            dir.display()
        ));
    }
    Ok(report.manifest)
}

/// What the runs' configs must say of each source's token files.
fn data_facts(m: &Manifest) -> olmo_core::DataFacts {
    m.sources
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                olmo_core::TokenFiles {
                    dtype: s.dtype.name().to_string(),
                    eos: s.eos,
                    pad: s.pad,
                },
            )
        })
        .collect()
}
