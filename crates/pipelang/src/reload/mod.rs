//! Hot reload: edits to stages not yet run are re-checked and applied between stages.
//!
//! `evaluate` is the one set of rules, used by the watcher (`pipe run --watch`) and by tests:
//! a new source is checked and planned like `pipe check` would, compared item by item with the
//! running pipeline (`edits`), refused where it touches what already ran (`rules`, with the
//! plan-level comparison of started stages in `handover`), and otherwise described stage by
//! stage (`diff`).

mod diff;
mod edits;
mod handover;
mod rules;

use crate::check::{self, Checked, ir};
use crate::diag::{Code, Diagnostic};
use crate::plan::Plan;
use crate::syntax::Span;

pub use diff::changes;

/// Which stages of the running plan have started: finished ones, and the one training now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub done: Vec<String>,
    pub running: Option<String>,
}

/// How far a stage has got, for the wording of refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Done,
    Running,
}

impl Progress {
    pub fn of(&self, stage: &str) -> Option<Started> {
        if self.done.iter().any(|d| d == stage) {
            Some(Started::Done)
        } else if self.running.as_deref() == Some(stage) {
            Some(Started::Running)
        } else {
            None
        }
    }
}

/// What became of an edited source.
#[derive(Debug)]
pub enum Outcome {
    /// Errors from checking (the codes `pipe check` reports) or refusals (`P0801`), located in
    /// the new source. The run keeps its plan.
    Rejected(Vec<Diagnostic>),
    /// Boxed: a checked pipeline and its plan are large beside a list of diagnostics.
    Accepted(Box<Accepted>),
}

/// A new version that only changes stages not yet started.
#[derive(Debug)]
pub struct Accepted {
    /// One line per changed, added or removed stage (empty: the plan is the same).
    pub changes: Vec<String>,
    pub checked: Checked,
    pub plan: Plan,
}

/// Checks and plans `new_source` with `profile`, and decides whether it can replace the
/// running plan given how far the run has got.
pub fn evaluate(
    running: &Plan,
    running_pipeline: &ir::Pipeline,
    progress: &Progress,
    new_source: &str,
    profile: Option<&str>,
) -> Outcome {
    judge(
        running,
        running_pipeline,
        progress,
        check::check_with(new_source, profile),
    )
}

/// The rules alone, for a source already checked: the watcher checks an edit once, when it is
/// saved, and judges it again at the stage boundary, where the progress has moved on.
pub fn judge(
    running: &Plan,
    running_pipeline: &ir::Pipeline,
    progress: &Progress,
    checked: Checked,
) -> Outcome {
    if checked.has_errors() {
        let errors = checked
            .diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        return Outcome::Rejected(errors);
    }
    let (Some(new_plan), Some(new_p)) = (checked.plan().cloned(), checked.pipeline.as_ref()) else {
        return Outcome::Rejected(vec![
            Diagnostic::new(
                Code::RELOAD_REFUSED,
                "the edited pipeline could not be planned",
            )
            .label(Span::new(0, 0), "in this file")
            .help("run `pipe plan` on the file to see why"),
        ]);
    };
    let found = edits::between(running_pipeline, new_p);
    let refusals = rules::refusals(&rules::Inputs {
        old: running,
        new: &new_plan,
        new_p,
        progress,
        edits: &found,
    });
    if !refusals.is_empty() {
        return Outcome::Rejected(refusals);
    }
    Outcome::Accepted(Box::new(Accepted {
        changes: diff::changes(running, &new_plan),
        plan: new_plan,
        checked,
    }))
}

#[cfg(test)]
mod tests;
