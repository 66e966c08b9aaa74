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

use pipelang::check::ir::Pipeline;
use pipelang::plan::{Plan, StagePlan};

use super::checkpoint;
use super::data::{LoaderState, SourceCursor};
use super::metrics::{MetricsLine, MetricsWriter};
use super::progress::StageBar;
use super::record::{RunRecord, Status};
use super::setup::{Prepared, RunError};

pub trait Trainer {
    fn name(&self) -> &str;

    /// Why this trainer cannot train `stage`; asked of every stage before the run writes
    /// anything, so an unsupported recipe stops at once.
    fn can_train(&self, pipeline: &Pipeline, stage: &StagePlan) -> Result<(), String>;

    /// Trains the context's stage from its start to its last step, reporting every step with
    /// [`StageContext::step_done`] and every checkpoint with [`StageContext::checkpointed`].
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

    /// Whether the trainer checkpoints after `step`.
    pub fn checkpoint_due(&self, step: u64) -> bool {
        step + 1 == self.stage().steps || (step + 1).is_multiple_of(self.checkpoint_every)
    }

    /// Records a checkpoint the trainer has written (`checkpoint`, relative to the run
    /// directory) after `steps_done` steps: the metrics lines up to it are made durable first,
    /// then `run.ron` points at it, then the checkpoint it replaces is removed.
    pub fn checkpointed(
        &mut self,
        steps_done: u64,
        checkpoint: String,
        loader: Option<LoaderState>,
    ) -> Result<(), RunError> {
        self.metrics.sync()?;
        let stage = self.stage();
        let r = self
            .record
            .stage_mut(&stage.name)
            .expect("the runner records every planned stage");
        let previous = r.checkpoint.replace(checkpoint.clone());
        r.step = steps_done;
        r.loader = loader;
        if steps_done == stage.steps {
            r.status = Status::Done;
        }
        self.record.save(&self.run_file)?;
        checkpoint::prune(self.run_dir, previous.as_deref(), &checkpoint);
        Ok(())
    }
}
