//! The seam between the runner and what trains a stage. The runner sequences the stages, owns
//! the run record and the metrics file, and hands one stage at a time to a [`Trainer`] with a
//! [`StageContext`]: the plan, where the stage's state comes from, and the sinks every step and
//! every checkpoint are reported to. The candle trainer (`candle/`) trains in this process; an
//! external engine (OLMo-core under torchrun, one launch per stage, phase or mixture piece)
//! would translate the same context into its launch and stream its steps into the same sinks,
//! so `metrics.jsonl`, `run.ron` and resume do not depend on which one trained.

pub mod candle;
pub mod olmo_core;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pipelang::check::ir::Pipeline;
use pipelang::plan::{Plan, StagePlan};

use super::checkpoint;
use super::data::{LoaderState, SourceCursor};
use super::metrics::{MetricsLine, MetricsWriter};
use super::progress::StageBar;
use super::record::{Kept, RunRecord, Status, Stopped};
use super::setup::{Prepared, RunError};
use super::stop::StopFlag;

pub trait Trainer {
    fn name(&self) -> &str;

    /// Why this trainer cannot train `stage`; asked of every stage before the run writes
    /// anything, so an unsupported recipe stops at once.
    fn can_train(&self, pipeline: &Pipeline, stage: &StagePlan) -> Result<(), String>;

    /// Trains the context's stage from its start to its last step, reporting every step with
    /// [`StageContext::step_done`] and every checkpoint with [`StageContext::checkpointed`].
    /// After each step it checkpoints when [`StageContext::checkpoint_due`] says so, then
    /// returns [`StageContext::stopped`] when [`StageContext::stop_requested`] (a signal).
    fn train_stage(&mut self, ctx: &mut StageContext) -> Result<StageOutcome, RunError>;
}

/// Where a stage's state comes from. The weights of the models it does not resume come from
/// the plan (`StagePlan::weights_from`: the final checkpoint of the stage that last trained
/// them, or a fresh initialisation).
#[derive(Debug, Clone, Default)]
pub struct StageStart {
    /// The stage stopped part-way in an earlier process and continues from its last checkpoint
    /// (trained weights and optimizer state).
    pub resume: Option<Resume>,
    /// The stage before this one on its LR schedule, when this stage resumes the schedule:
    /// its final checkpoint holds the optimizer state to continue (unless resuming).
    pub schedule_from: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Resume {
    /// Steps done: the first step to run.
    pub step: u64,
    /// The checkpoint, relative to the run directory.
    pub checkpoint: String,
    /// The data loader's state at that checkpoint, when the trainer recorded one.
    pub loader: Option<LoaderState>,
}

impl StageStart {
    pub fn first_step(&self) -> u64 {
        self.resume.as_ref().map_or(0, |r| r.step)
    }
}

/// What a trainer hands back when its stage is done.
pub struct StageOutcome {
    /// The loss of every step it ran, in order (from `StageStart::first_step`).
    pub losses: Vec<f64>,
    /// Evaluations (name -> value), added to the stage's record.
    pub evals: BTreeMap<String, f64>,
    /// Where every data source stands, for the next stage to continue from.
    pub cursors: BTreeMap<String, SourceCursor>,
}

pub struct StageContext<'r> {
    pub prep: &'r Prepared,
    /// The stage's index in `prep.plan.stages`.
    pub index: usize,
    pub seed: u64,
    pub run_dir: &'r Path,
    pub start: StageStart,
    /// Checkpoint after every this many steps, and after the last.
    pub checkpoint_every: u64,
    /// Checkpoint also once this much time has passed since the last one (`None`: steps only).
    pub checkpoint_wall: Option<Duration>,
    /// How many checkpoints of a running stage are kept: the latest and the ones before it.
    pub keep_checkpoints: usize,
    /// Set by SIGINT and SIGTERM: stop at the next step boundary, after a checkpoint.
    pub stop: StopFlag,
    pub(crate) last_checkpoint: Instant,
    pub(crate) record: &'r mut RunRecord,
    pub(crate) run_file: PathBuf,
    pub(crate) metrics: MetricsWriter,
    pub(crate) bar: StageBar,
}

impl<'r> StageContext<'r> {
    pub fn plan(&self) -> &'r Plan {
        &self.prep.plan
    }

    pub fn stage(&self) -> &'r StagePlan {
        &self.prep.plan.stages[self.index]
    }

    pub fn pipeline(&self) -> &'r Pipeline {
        self.prep
            .checked
            .pipeline
            .as_ref()
            .expect("a planned pipeline is checked")
    }

    /// The step across the whole run of this stage's `step`.
    pub fn global_step(&self, step: u64) -> u64 {
        let before: u64 = self.plan().stages[..self.index]
            .iter()
            .map(|s| s.steps)
            .sum();
        before + step
    }

    /// Cursors of every data source after the last finished stage.
    pub fn cursors(&self) -> &BTreeMap<String, SourceCursor> {
        &self.record.cursors
    }

    /// Records one finished step: its line in `metrics.jsonl`, and the progress bar.
    pub fn step_done(&mut self, line: &MetricsLine) -> Result<(), RunError> {
        self.metrics.write(line)?;
        self.bar.step(line);
        Ok(())
    }

    /// Whether the trainer checkpoints after `step`: at the end of the stage, every
    /// `checkpoint_every` steps, once `checkpoint_wall` has passed since the last one, and
    /// before a requested stop.
    pub fn checkpoint_due(&self, step: u64) -> bool {
        step + 1 == self.stage().steps
            || (step + 1).is_multiple_of(self.checkpoint_every)
            || self
                .checkpoint_wall
                .is_some_and(|w| self.last_checkpoint.elapsed() >= w)
            || self.stop.requested()
    }

    /// The stages that branch from this one after `step` (`after THIS @ POSITION`): the
    /// trainer saves a checkpoint for each (`checkpoint::branch_path`) before anything else.
    pub fn branches_after(&self, step: u64) -> Vec<String> {
        let me = &self.stage().name;
        self.plan()
            .stages
            .iter()
            .filter(|s| {
                s.branch
                    .as_ref()
                    .is_some_and(|b| &b.parent == me && b.step == step + 1)
            })
            .map(|s| s.name.clone())
            .collect()
    }

    /// Whether the trainer should stop after `step` (a signal asked for it): true only
    /// part-way through the stage, since a stage at its last step simply ends, and the runner
    /// stops before the next one.
    pub fn stop_requested(&self, step: u64) -> bool {
        self.stop.requested() && step + 1 < self.stage().steps
    }

    /// The checkpoint a run that fails now would go back to: this stage's latest, or else the
    /// final checkpoint of the last finished stage before it (`None`: nothing was saved yet).
    pub fn last_good_checkpoint(&self) -> Option<String> {
        let stage = self.stage();
        if let Some(c) = self
            .record
            .stage(&stage.name)
            .and_then(|r| r.checkpoint.clone())
        {
            return Some(c);
        }
        self.plan().stages[..self.index].iter().rev().find_map(|s| {
            self.record
                .stage(&s.name)
                .filter(|r| r.status == Status::Done)
                .and_then(|r| r.checkpoint.clone())
        })
    }

    /// The error a trainer returns when training cannot go on at `step` (a non-finite loss or
    /// gradient): the stage, the step and the LR, and the last good checkpoint.
    pub fn diverged(&self, step: u64, lr: f64, what: &str) -> RunError {
        let last = match self.last_good_checkpoint() {
            Some(c) => format!("the last good checkpoint is {c}"),
            None => "no checkpoint was written before it".into(),
        };
        RunError::Training(format!(
            "stage `{}` step {step}: {what} at LR {}; lower the LR or check the data ({last}; \
             every checkpoint written before is intact)",
            self.stage().name,
            pipelang::check::units::lr(lr)
        ))
    }

    /// The error a trainer returns when it cannot write the checkpoint `rel` (a full disk, a
    /// read-only run directory): what failed, and the checkpoint the run still has.
    pub fn checkpoint_failed(&self, rel: &str, e: &dyn std::fmt::Display) -> RunError {
        let kept = match self.last_good_checkpoint() {
            Some(c) => {
                format!("the previous checkpoint {c} is whole and `--resume` continues from it")
            }
            None => "no earlier checkpoint was written".into(),
        };
        RunError::Other(format!(
            "stage `{}`: cannot write the checkpoint {rel} in `{}`: {e}; {kept}",
            self.stage().name,
            self.run_dir.display()
        ))
    }

    /// The error a trainer returns to stop after its checkpoint of `steps_done` steps.
    pub fn stopped(&self, steps_done: u64) -> RunError {
        let stage = self.stage();
        RunError::Stopped(Stopped {
            cause: self.stop.cause(),
            stage: stage.name.clone(),
            step: steps_done,
            checkpoint: self
                .record
                .stage(&stage.name)
                .and_then(|r| r.checkpoint.clone()),
        })
    }

    /// Records a checkpoint the trainer has written (`checkpoint`, relative to the run
    /// directory) after `steps_done` steps: the metrics lines up to it are made durable first,
    /// then `run.ron` points at it, then the checkpoints past `keep_checkpoints` are removed
    /// (all periodic ones once the stage's final checkpoint is written).
    pub fn checkpointed(
        &mut self,
        steps_done: u64,
        checkpoint: String,
        loader: Option<LoaderState>,
    ) -> Result<(), RunError> {
        self.metrics.sync()?;
        let stage = self.stage();
        let keep = self.keep_checkpoints.max(1);
        let r = self
            .record
            .stage_mut(&stage.name)
            .expect("the runner records every planned stage");
        let previous = r.checkpoint.replace(checkpoint.clone());
        let previous_loader = std::mem::replace(&mut r.loader, loader);
        let previous_step = std::mem::replace(&mut r.step, steps_done);
        if let Some(p) = previous.filter(|p| *p != checkpoint && checkpoint::is_periodic(p)) {
            r.earlier.push(Kept {
                step: previous_step,
                checkpoint: p,
                loader: previous_loader,
            });
        }
        let mut drop = vec![];
        if steps_done == stage.steps {
            r.status = Status::Done;
            drop.append(&mut r.earlier);
        } else {
            let excess = (r.earlier.len() + 1).saturating_sub(keep);
            drop.extend(r.earlier.drain(..excess));
        }
        self.record.save(&self.run_file).map_err(|e| {
            RunError::Other(format!(
                "stage `{}`: wrote the checkpoint {checkpoint} but cannot update `{}`: {e}; \
                 it still names the checkpoint before, which is kept",
                stage.name,
                self.run_file.display()
            ))
        })?;
        self.last_checkpoint = Instant::now();
        for k in drop {
            checkpoint::remove(self.run_dir, &k.checkpoint);
        }
        Ok(())
    }
}
