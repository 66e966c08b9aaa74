//! `pipe run`: the `Runner` sequences the stages of a planned pipeline in plan order and hands
//! each to a trainer (`trainer/`). It owns what does not depend on the trainer: the run
//! directory and `run.ron`, where each stage starts from (resume, optimizer carry-over), the
//! metrics file and its truncation on resume, and the boundary between stages where hot reload
//! may swap the plan.
//!
//! Optimizer state: a stage that resumes a schedule (`lr = resume`) continues the AdamW moments
//! and step count of the previous stage on that schedule, for the parameters both train; a
//! stage that starts a schedule starts a fresh optimizer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint;
use super::edit;
use super::lock::{Acquired, LockError, RunLock};
use super::metrics::{self, MetricsWriter};
use super::model::Kernels;
use super::progress::StageBar;
use super::record::{RunRecord, Status, Stopped, sha256};
use super::setup::{self, Prepared, RunError};
use super::stop::StopFlag;
use super::summary;
use super::trainer::candle::CandleTrainer;
use super::trainer::{Resume, StageContext, StageStart, Trainer};

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
    /// Checkpoint also once this much time has passed since the last one.
    pub checkpoint_wall: Option<Duration>,
    /// Checkpoints kept of a running stage: the latest and the ones before it.
    pub keep_checkpoints: usize,
    /// Set by SIGINT/SIGTERM (`StopFlag::on_signals`): stop at the next step boundary.
    pub stop: StopFlag,
    pub progress: bool,
}

/// Called at every stage boundary with the running preparation and record; returns a new
/// preparation to continue with (hot reload), or `None` to keep the current plan.
pub type Boundary<'a> = dyn FnMut(&Arc<Prepared>, &mut RunRecord) -> Option<Arc<Prepared>> + 'a;

pub struct Runner<'a> {
    pub opts: RunOptions,
    /// Shared with the watcher of `--watch`, which compares edits with it.
    pub prep: Arc<Prepared>,
    pub record: RunRecord,
    pub log: Box<dyn FnMut(String) + 'a>,
    trainer: Box<dyn Trainer>,
    /// Held for the life of the run: one process per run directory.
    _lock: RunLock,
}

impl<'a> Runner<'a> {
    /// Checks, plans and opens everything; creates (or, with `resume`, reopens) the run
    /// directory. Nothing is written when the pipeline or its data has problems.
    pub fn new(opts: RunOptions, log: Box<dyn FnMut(String) + 'a>) -> Result<Runner<'a>, RunError> {
        let mut log = log;
        let trainer: Box<dyn Trainer> = Box::new(CandleTrainer::new(opts.cuda, opts.kernels)?);
        let run_file = opts.out.join("run.ron");
        // A resumed directory is locked before its record is read, so that two resumes never
        // both continue it; a new run is locked once its checks pass, so that a failed check
        // writes nothing.
        let mut lock = None;
        if opts.resume && run_file.exists() {
            lock = Some(take_lock(&opts.out, &mut *log)?);
        }
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
        let mut prep = setup::prepare(&opts.file, opts.profile.as_deref(), source)?;
        let p = prep.checked.pipeline.as_ref().unwrap();
        let seed = opts.seed.unwrap_or(p.seed.value);
        setup::ensure_sample_data(p, &prep.data_root, seed, &mut *log)?;
        // Every source used anywhere must open before anything is written.
        for d in p.data.indices() {
            if prep
                .plan
                .stages
                .iter()
                .any(|s| s.mix_tree.used_sources().contains(&d))
            {
                setup::open_source(&prep, d)?;
            }
        }
        check_trainer(&*trainer, &prep)?;
        let lock = match lock {
            Some(l) => l,
            None => {
                let l = take_lock(&opts.out, &mut *log)?;
                // Another run may have started and finished here since the check above.
                if run_file.exists() {
                    return Err(RunError::Other(format!(
                        "`{}` already holds a run: pass --resume to continue it, or choose another --out",
                        opts.out.display()
                    )));
                }
                l
            }
        };
        let record = match record {
            Some(mut r) => {
                if r.plan_hash != prep.plan.hash() {
                    return Err(RunError::Other("the resumed source plans differently from the recorded plan (different profile?)".into()));
                }
                if let Some(s) = r.stopped.take() {
                    log(format!("pipe run: resuming the run {s}"));
                }
                if let Some(new) = edit::on_resume(
                    &opts.file,
                    opts.profile.as_deref(),
                    &opts.out,
                    &prep,
                    &mut r,
                    &mut *log,
                )? {
                    prep = new;
                }
                r
            }
            None => {
                std::fs::create_dir_all(opts.out.join("checkpoints"))?;
                let mut record = RunRecord {
                    pipeline: prep.plan.pipeline.clone(),
                    profile: prep.plan.profile.clone(),
                    seed,
                    source_hash: sha256(prep.source.as_bytes()),
                    plan_hash: prep.plan.hash(),
                    stages: vec![],
                    cursors: BTreeMap::new(),
                    versions: vec![],
                    stopped: None,
                    engine_runs: vec![],
                };
                record.add_version(&opts.out, &prep.source, None, 0, vec![])?;
                record
            }
        };
        let mut runner = Runner {
            opts,
            prep: Arc::new(prep),
            record,
            log,
            trainer,
            _lock: lock,
        };
        runner.sync_record();
        runner.record.save(&run_file)?;
        Ok(runner)
    }

    /// Adds a record for every planned stage not yet recorded (new stages after a reload).
    pub fn sync_record(&mut self) {
        self.record.sync(&self.prep.plan);
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
            if self.opts.stop.requested() {
                return Err(self.stopped_between(si));
            }
            self.train_stage(si)?;
            if let Some(new) = boundary(&self.prep, &mut self.record) {
                check_trainer(&*self.trainer, &new)?;
                self.prep = new;
                self.sync_record();
            }
            self.record.save(&self.run_file())?;
        }
        Ok(())
    }

    /// A stop asked for while stage `si - 1` took its last step: the run stops before `si`.
    fn stopped_between(&mut self, si: usize) -> RunError {
        let next = &self.prep.plan.stages[si];
        // A stage resumed part-way stands where it stopped (a stop before it took a step).
        let part_way = self
            .record
            .stage(&next.name)
            .filter(|r| r.step > 0)
            .map(|r| (next.name.clone(), r.step, r.checkpoint.clone()));
        let before = si.checked_sub(1).map(|prev| {
            let st = &self.prep.plan.stages[prev];
            let ck = self
                .record
                .stage(&st.name)
                .and_then(|r| r.checkpoint.clone());
            (st.name.clone(), st.steps, ck)
        });
        let (stage, step, checkpoint) = part_way
            .or(before)
            .unwrap_or_else(|| (next.name.clone(), 0, None));
        let stopped = Stopped {
            cause: self.opts.stop.cause(),
            stage,
            step,
            checkpoint,
        };
        self.record_stop(stopped)
    }

    /// Notes the stop in `run.ron`; a record that cannot be written is the error to report.
    fn record_stop(&mut self, stopped: Stopped) -> RunError {
        self.record.stopped = Some(stopped.clone());
        match self.record.save(&self.run_file()) {
            Ok(()) => RunError::Stopped(stopped),
            Err(e) => RunError::Other(format!(
                "{stopped}, but `run.ron` could not be updated: {e}"
            )),
        }
    }

    /// A stage stopped part-way resumes from its last checkpoint only when that file reads back
    /// whole; otherwise from the latest earlier one kept (said, and recorded), or not at all.
    fn readable_resume(&mut self, si: usize) -> Result<(), RunError> {
        let name = self.prep.plan.stages[si].name.clone();
        let run_file = self.run_file();
        loop {
            let Some(r) = self.record.stage_mut(&name) else {
                return Ok(());
            };
            let Some(ck) = r.checkpoint.clone() else {
                return Ok(());
            };
            if r.status != Status::Running || r.step == 0 {
                return Ok(());
            }
            let Err(why) = checkpoint::verify(&self.opts.out, &ck) else {
                return Ok(());
            };
            let Some(k) = r.earlier.pop() else {
                return Err(RunError::Other(format!(
                    "stage `{name}`: the checkpoint {ck} cannot be read ({why}), and no earlier \
                     checkpoint of the stage is kept (`--keep-checkpoints` keeps more); restore \
                     the file, or start a new run with another --out"
                )));
            };
            (self.log)(format!(
                "pipe run --resume: the checkpoint {ck} cannot be read ({why}): stage `{name}` \
                 resumes from the one before it, {} (step {})",
                k.checkpoint, k.step
            ));
            r.checkpoint = Some(k.checkpoint);
            r.step = k.step;
            r.loader = k.loader;
            self.record.save(&run_file)?;
        }
    }

    /// Where stage `si` starts from: part-way through, when an earlier process recorded a
    /// checkpoint of it; the optimizer state of the stage before it on its schedule, when it
    /// resumes that schedule.
    fn stage_start(&self, si: usize) -> StageStart {
        let plan = &self.prep.plan;
        let st = &plan.stages[si];
        let resume = self.record.stage(&st.name).and_then(|r| {
            let ck = r.checkpoint.clone();
            ck.filter(|_| r.status == Status::Running && r.step > 0)
                .map(|checkpoint| Resume {
                    step: r.step,
                    checkpoint,
                    loader: r.loader.clone(),
                })
        });
        let schedule_from = st
            .schedule
            .resumed
            .then(|| {
                let run = &plan.schedules[st.run];
                let pos = run.stages.iter().position(|n| n == &st.name).unwrap_or(0);
                pos.checked_sub(1).map(|i| run.stages[i].clone())
            })
            .flatten();
        StageStart {
            resume,
            schedule_from,
        }
    }

    /// A soup: its inputs' final weights averaged into its final checkpoint (written
    /// atomically, so a run killed here recomputes it on `--resume`), then recorded as done.
    fn average_stage(&mut self, si: usize, started: Instant) -> Result<(), RunError> {
        let st = self.prep.plan.stages[si].clone();
        let rel = crate::soup::average(&self.opts.out, &st).map_err(RunError::Training)?;
        let r = self
            .record
            .stage_mut(&st.name)
            .expect("the runner records every planned stage");
        r.status = Status::Done;
        r.checkpoint = Some(rel.clone());
        r.wall_s += started.elapsed().as_secs_f64();
        self.record.save(&self.run_file())?;
        let inputs: Vec<&str> = st.average.iter().map(|a| a.stage.as_str()).collect();
        (self.log)(format!(
            "stage {}: the average of {} -> {rel}",
            st.name,
            inputs.join(", ")
        ));
        Ok(())
    }

    /// Hands stage `si` to the trainer, then records what it reports.
    fn train_stage(&mut self, si: usize) -> Result<(), RunError> {
        let started = Instant::now();
        if self.prep.plan.stages[si].is_soup() {
            return self.average_stage(si, started);
        }
        if self.opts.resume {
            self.readable_resume(si)?;
        }
        let st = &self.prep.plan.stages[si];
        let stage_start = self.stage_start(si);
        let start = stage_start.first_step();
        let global0: u64 = self.prep.plan.stages[..si].iter().map(|s| s.steps).sum();
        // On a resume, drop the lines of steps this stage will run again: those after its last
        // checkpoint, or all of its lines when it was killed before its first checkpoint.
        if self.opts.resume {
            metrics::truncate(&self.opts.out, global0 + start)?;
        }
        let ir = &self.prep.checked.pipeline.as_ref().unwrap().stages[st.id];
        let mut ctx = StageContext {
            prep: &self.prep,
            index: si,
            seed: self.record.seed,
            run_dir: &self.opts.out,
            start: stage_start,
            checkpoint_every: ir
                .checkpoint_every
                .map_or(self.opts.checkpoint_every, |c| c.value),
            checkpoint_wall: self.opts.checkpoint_wall,
            keep_checkpoints: self.opts.keep_checkpoints,
            stop: self.opts.stop.clone(),
            last_checkpoint: Instant::now(),
            run_file: self.run_file(),
            metrics: MetricsWriter::open(&self.opts.out)?,
            bar: StageBar::new(&st.name, st.steps, start, self.opts.progress),
            record: &mut self.record,
        };
        if let Some(r) = ctx.record.stage_mut(&st.name) {
            r.status = Status::Running;
        }
        let outcome = match self.trainer.train_stage(&mut ctx) {
            Ok(o) => o,
            Err(RunError::Stopped(stopped)) => {
                let r = self.record.stage_mut(&st.name).unwrap();
                r.wall_s += started.elapsed().as_secs_f64();
                return Err(self.record_stop(stopped));
            }
            Err(e) => return Err(e),
        };
        let wall = started.elapsed().as_secs_f64();
        self.record.cursors = outcome.cursors;
        let r = self.record.stage_mut(&st.name).unwrap();
        r.evals.extend(outcome.evals);
        r.add_losses(st, start, &outcome.losses);
        r.wall_s += wall;
        let msg = summary::stage_line(st, r, wall);
        self.record.save(&self.run_file())?;
        (self.log)(msg);
        // WebDataset samples skipped are not fatal, so they are said where the stage ends.
        for (name, c) in &self.record.cursors {
            if c.bad_samples > 0 {
                (self.log)(format!(
                    "  {name}: {} bad samples skipped so far (recorded in run.ron); the first: {}",
                    c.bad_samples,
                    c.first_bad.as_deref().unwrap_or("?")
                ));
            }
        }
        Ok(())
    }
}

/// Every stage of the plan must suit the trainer before anything of it runs.
fn check_trainer(trainer: &dyn Trainer, prep: &Prepared) -> Result<(), RunError> {
    let p = prep.checked.pipeline.as_ref().unwrap();
    for st in &prep.plan.stages {
        trainer.can_train(p, st).map_err(|e| {
            RunError::Other(format!(
                "stage `{}`: the {} trainer cannot train it: {e}",
                st.name,
                trainer.name()
            ))
        })?;
    }
    Ok(())
}

pub(crate) fn take_lock(
    dir: &std::path::Path,
    log: &mut dyn FnMut(String),
) -> Result<RunLock, RunError> {
    match RunLock::acquire(dir) {
        Ok((lock, Acquired::Fresh)) => Ok(lock),
        Ok((lock, Acquired::TakenOver { pid })) => {
            let who = pid.map_or("a process".to_string(), |p| format!("process {p}"));
            log(format!(
                "pipe run: took over the lock of `{}` left by {who}, which is no longer running",
                dir.display()
            ));
            Ok(lock)
        }
        Err(e @ LockError::Held { .. }) => Err(RunError::Locked(e.to_string())),
        Err(LockError::Io(e)) => Err(RunError::Other(e)),
    }
}
