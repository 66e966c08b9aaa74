//! `run.ron`: what a run has done, enough to resume it exactly and to reproduce it. Written
//! atomically after every checkpoint and at every stage boundary.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use pipelang::plan::{Plan, StagePlan};
use pipelang::reload::Progress;

use super::data::{LoaderState, SourceCursor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Running,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub status: Status,
    /// Steps completed (the next step to run).
    pub step: u64,
    pub steps: u64,
    pub tokens: f64,
    /// The last checkpoint of this stage, relative to the run directory.
    pub checkpoint: Option<String>,
    /// Data stream state at that checkpoint (cursors and mixture counts: the data RNG state).
    pub loader: Option<LoaderState>,
    /// Mean loss over the first and last tenth of the stage's steps.
    pub loss_first_tenth: Option<f64>,
    pub loss_last_tenth: Option<f64>,
    /// Evaluations run at the end of the stage (name -> value).
    pub evals: BTreeMap<String, f64>,
    pub wall_s: f64,
    /// The same loss figures per phase, for stages with more than one phase.
    #[serde(default)]
    pub phases: Vec<PhaseLoss>,
    /// Periodic checkpoints kept before `checkpoint`, oldest first: where a resume can go back
    /// to when the last one cannot be read. Removed when the stage ends.
    #[serde(default)]
    pub earlier: Vec<Kept>,
}

/// A periodic checkpoint kept behind the latest one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    /// Steps done when it was written.
    pub step: u64,
    /// Relative to the run directory.
    pub checkpoint: String,
    pub loader: Option<LoaderState>,
}

/// Where a run stopped on request: recorded in `run.ron` until `--resume` continues it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stopped {
    /// What asked for the stop ("SIGTERM", "SIGINT").
    pub cause: String,
    pub stage: String,
    /// Steps of `stage` done (and checkpointed).
    pub step: u64,
    /// The checkpoint it resumes from, relative to the run directory.
    pub checkpoint: Option<String>,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by {} after step {} of stage `{}`",
            self.cause, self.step, self.stage
        )?;
        match &self.checkpoint {
            Some(c) => write!(f, "; checkpoint {c}"),
            None => Ok(()),
        }
    }
}

/// Mean loss over the first and last tenth of one phase's steps. Within a phase the sequence
/// length is fixed, so these are comparable where the stage's first and last tenth may not be
/// (a context extension sees new positions: its loss steps up when the context grows).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseLoss {
    pub name: String,
    pub seq_len: u64,
    pub loss_first_tenth: Option<f64>,
    pub loss_last_tenth: Option<f64>,
}

/// An applied version of the pipeline source (the first is the one the run started with).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub source_hash: String,
    /// File name of the saved source, in the run directory.
    pub source_file: String,
    /// Stage and step before which it took effect.
    pub from_stage: Option<String>,
    pub global_step: u64,
    /// The accepted differences, one line each.
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    pub profile: Option<String>,
    pub seed: u64,
    pub source_hash: String,
    pub plan_hash: String,
    pub stages: Vec<StageRecord>,
    /// Cursors of every data source after the last finished stage (sources continue across
    /// stages instead of restarting).
    pub cursors: BTreeMap<String, SourceCursor>,
    pub versions: Vec<Version>,
    /// Set when the run stopped on request (SIGINT, SIGTERM); cleared when it resumes.
    #[serde(default)]
    pub stopped: Option<Stopped>,
    /// The runs of an external engine (`pipe run --engine`), in the order they started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_runs: Vec<EngineRunRecord>,
}

/// One run of an external engine: a stage, phase or mixture piece trained by one engine process
/// group, in its own folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRunRecord {
    /// `STAGE[.PHASE][.pK]`.
    pub name: String,
    /// Its folder in the run directory (`engine/runs/NN-NAME`).
    pub dir: String,
    pub stage: String,
    pub steps: u64,
    /// Steps done and checkpointed.
    pub step: u64,
    pub status: Status,
    /// Launches: one, and one more per resume of a try killed or stopped part-way.
    pub tries: u32,
    pub wall_s: f64,
}

impl RunRecord {
    pub fn load(path: &Path) -> Result<RunRecord, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        ron::from_str(&text).map_err(|e| format!("`{}` is not a run record: {e}", path.display()))
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .map_err(std::io::Error::other)?;
        super::atomic::write(path, text.as_bytes())
    }

    /// Saves an applied version of the source as `pipeline.vN.pipe` in the run directory and
    /// records it; the first version (the one the run starts with) and every live edit alike.
    pub fn add_version(
        &mut self,
        dir: &Path,
        source: &str,
        from_stage: Option<String>,
        global_step: u64,
        changes: Vec<String>,
    ) -> std::io::Result<String> {
        let source_file = format!("pipeline.v{}.pipe", self.versions.len() + 1);
        super::atomic::write(&dir.join(&source_file), source.as_bytes())?;
        self.versions.push(Version {
            source_hash: sha256(source.as_bytes()),
            source_file: source_file.clone(),
            from_stage,
            global_step,
            changes,
        });
        Ok(source_file)
    }

    /// Where in `engine_runs` the engine run in `dir` is recorded; `make` records it when it
    /// first starts.
    pub fn engine_run(&mut self, dir: &str, make: impl FnOnce() -> EngineRunRecord) -> usize {
        match self.engine_runs.iter().position(|r| r.dir == dir) {
            Some(i) => i,
            None => {
                self.engine_runs.push(make());
                self.engine_runs.len() - 1
            }
        }
    }

    pub fn stage(&self, name: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn stage_mut(&mut self, name: &str) -> Option<&mut StageRecord> {
        self.stages.iter_mut().find(|s| s.name == name)
    }
}

impl StageRecord {
    /// The loss figures of a stage that ran steps `start..` with `losses`; figures of steps
    /// that ran before a resume keep the values recorded then.
    pub fn add_losses(&mut self, st: &StagePlan, start: u64, losses: &[f64]) {
        let tenth = (losses.len() / 10).max(1);
        if start == 0 {
            self.loss_first_tenth = mean(&losses[..tenth.min(losses.len())]);
        }
        self.loss_last_tenth = mean(&losses[losses.len().saturating_sub(tenth)..]);
        if st.phases.len() > 1 {
            self.phases = phase_losses(st, start, losses, &self.phases);
        }
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Per-phase first and last tenth from the losses of steps `start..`; a figure whose steps ran
/// before a resume keeps the value recorded then.
fn phase_losses(
    st: &StagePlan,
    start: u64,
    losses: &[f64],
    before: &[PhaseLoss],
) -> Vec<PhaseLoss> {
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
            PhaseLoss {
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

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// How far a run has got, in the terms of the reload rules.
impl StageRecord {
    /// A planned stage that has not started.
    pub fn pending(st: &StagePlan) -> StageRecord {
        StageRecord {
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
            earlier: vec![],
        }
    }
}

impl RunRecord {
    /// Follows the plan a run goes on with (after a reload): a record for every planned stage
    /// not yet recorded, the sizes of the stages not finished, stages removed before they
    /// started dropped, and the plan's hash.
    pub fn sync(&mut self, plan: &Plan) {
        for st in &plan.stages {
            match self.stage_mut(&st.name) {
                None => self.stages.push(StageRecord::pending(st)),
                Some(r) if r.status != Status::Done => {
                    r.steps = st.steps;
                    r.tokens = st.tokens;
                }
                Some(_) => {}
            }
        }
        self.stages.retain(|r| {
            r.status != Status::Pending || plan.stages.iter().any(|s| s.name == r.name)
        });
        self.plan_hash = plan.hash();
    }

    fn done_stages(&self) -> Vec<String> {
        self.stages
            .iter()
            .filter(|s| s.status == Status::Done)
            .map(|s| s.name.clone())
            .collect()
    }

    /// While a stage trains: the finished stages, and the first stage of the plan not finished
    /// (the one the runner is on).
    pub fn progress_during(&self, plan: &Plan) -> Progress {
        let done = self.done_stages();
        let running = plan
            .stages
            .iter()
            .find(|s| !done.contains(&s.name))
            .map(|s| s.name.clone());
        Progress { done, running }
    }

    /// At a stage boundary: the finished stages; a stage counts as running only when it stopped
    /// part-way (a resumed run), since the next stage has not taken a step yet.
    pub fn progress_between(&self) -> Progress {
        let running = self
            .stages
            .iter()
            .find(|s| s.status == Status::Running && s.step > 0)
            .map(|s| s.name.clone());
        Progress {
            done: self.done_stages(),
            running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(done: &[&str], running: Option<&str>) -> Progress {
        Progress {
            done: done.iter().map(|s| s.to_string()).collect(),
            running: running.map(str::to_string),
        }
    }

    #[test]
    fn progress_follows_the_run_record() {
        let src = "pipeline t { seed = 1\n batch = 2\n seq_len = 16 }\n\
            model lm = decoder { vocab = 512\n d_model = 16\n layers = 1\n heads = 2 }\n\
            data web = text(\"web/*.jsonl\")\n\
            stage one { train = [lm]\n budget = 320\n lr = constant(1e-3)\n data = web }\n\
            stage two after one { train = [lm]\n budget = 320\n lr = constant(1e-3)\n data = web }\n\
            stage three after two { train = [lm]\n budget = 320\n lr = constant(1e-3)\n data = web }\n";
        let plan = pipelang::check::check(src)
            .into_plan()
            .expect("the test pipeline plans");
        let rec = |name: &str, status, step| StageRecord {
            name: name.into(),
            status,
            step,
            steps: 100,
            tokens: 0.0,
            checkpoint: None,
            loader: None,
            loss_first_tenth: None,
            loss_last_tenth: None,
            evals: Default::default(),
            wall_s: 0.0,
            phases: vec![],
            earlier: vec![],
        };
        let record = RunRecord {
            pipeline: "t".into(),
            profile: None,
            seed: 1,
            source_hash: String::new(),
            plan_hash: String::new(),
            stages: vec![
                rec("one", Status::Done, 100),
                rec("two", Status::Running, 20),
                rec("three", Status::Pending, 0),
            ],
            cursors: Default::default(),
            versions: vec![],
            stopped: None,
            engine_runs: vec![],
        };
        assert_eq!(
            record.progress_during(&plan),
            progress(&["one"], Some("two"))
        );
        assert_eq!(record.progress_between(), progress(&["one"], Some("two")));
        let mut fresh = record.clone();
        fresh.stages[1].step = 0;
        fresh.stages[1].status = Status::Pending;
        assert_eq!(fresh.progress_between(), progress(&["one"], None));
    }
}
