//! An edited source applied to a run under the hot-reload rules (`pipelang::reload`): by the
//! watcher at a stage boundary, and by `--resume` when the file differs from the version the
//! run last applied. Either the edit becomes a new version (saved as `pipeline.vN.pipe` and
//! recorded in `run.ron`) or it is refused with what refused it; the run never goes on with an
//! edit it has not judged.

use std::path::Path;

use pipelang::check::Checked;
use pipelang::diag::Diagnostic;
use pipelang::reload::{Outcome, judge};

use crate::record::RunRecord;
use crate::setup::{self, Prepared, RunError};

/// An edit that may be applied.
pub enum Applied {
    /// It plans the same as the running version: nothing to apply.
    Unchanged,
    /// A new version, saved and recorded.
    Version(Box<Version>),
}

pub struct Version {
    pub prep: Prepared,
    /// Its number (1 is the version the run started with) and its saved source.
    pub number: usize,
    pub source_file: String,
    /// The first stage it changes the course of (`None`: every stage has run).
    pub from_stage: Option<String>,
    pub global_step: u64,
    pub changes: Vec<String>,
}

impl Version {
    /// "version 3 (pipeline.v3.pipe) from stage `x` at global step N", for messages.
    pub fn describe(&self) -> String {
        let from = self
            .from_stage
            .as_ref()
            .map_or("the end".to_string(), |s| format!("stage `{s}`"));
        format!(
            "version {} ({}) from {from} at global step {}",
            self.number, self.source_file, self.global_step
        )
    }
}

/// Why an edit was not applied; the diagnostics are located in the edited source.
pub enum Refused {
    /// The check or the reload rules (P0801 and the hand-over rules) refuse it.
    Rules(Vec<Diagnostic>),
    /// It is allowed, but cannot be carried out (data that cannot be read, a version that
    /// cannot be saved).
    Failed {
        what: String,
        diagnostics: Vec<Diagnostic>,
    },
}

/// Judges `checked` (the check of `source`) against the running `prep` at the run's current
/// progress (`RunRecord::progress_between`), and applies it when the rules accept it.
pub fn apply(
    prep: &Prepared,
    record: &mut RunRecord,
    out: &Path,
    source: String,
    checked: Checked,
) -> Result<Applied, Refused> {
    let failed = |what: String, diagnostics| Err(Refused::Failed { what, diagnostics });
    let Some(pipeline) = prep.checked.pipeline.as_ref() else {
        return failed("the running pipeline has no checked form".into(), vec![]);
    };
    let progress = record.progress_between();
    let accepted = match judge(&prep.plan, pipeline, &progress, checked) {
        Outcome::Accepted(a) => a,
        Outcome::Rejected(diags) => return Err(Refused::Rules(diags)),
    };
    if accepted.changes.is_empty() {
        return Ok(Applied::Unchanged);
    }
    let new = match setup::from_checked(&prep.file, source.clone(), accepted.checked) {
        Ok(p) => p,
        Err(RunError::Diagnostics { diagnostics, .. }) => {
            return failed("it has errors".into(), diagnostics);
        }
        Err(e) => return failed(e.to_string(), vec![]),
    };
    // Data the remaining stages read must open now rather than fail half-way through.
    let done = &progress.done;
    let p = new.checked.pipeline.as_ref().expect("a planned pipeline");
    for d in p.data.indices() {
        let used = new
            .plan
            .stages
            .iter()
            .any(|s| !done.contains(&s.name) && s.mix_tree.used_sources().contains(&d));
        if !used {
            continue;
        }
        match setup::open_source(&new, d) {
            Ok(_) => {}
            Err(RunError::Diagnostics { diagnostics, .. }) => {
                let what = format!("data source `{}` cannot be read", p.data[d].name);
                return failed(what, diagnostics);
            }
            Err(e) => return failed(e.to_string(), vec![]),
        }
    }
    let from_stage = new
        .plan
        .stages
        .iter()
        .find(|s| !done.contains(&s.name))
        .map(|s| s.name.clone());
    // Steps done so far: whole stages, and the part of a stage stopped part-way.
    let global_step = record
        .stages
        .iter()
        .map(|s| {
            if done.contains(&s.name) {
                s.steps
            } else {
                s.step
            }
        })
        .sum();
    let changes = accepted.changes;
    let source_file = match record.add_version(
        out,
        &source,
        from_stage.clone(),
        global_step,
        changes.clone(),
    ) {
        Ok(f) => f,
        Err(e) => return failed(format!("cannot save the new version: {e}"), vec![]),
    };
    Ok(Applied::Version(Box::new(Version {
        prep: new,
        number: record.versions.len(),
        source_file,
        from_stage,
        global_step,
        changes,
    })))
}

/// `--resume` of a directory whose pipeline file differs from the version the run last
/// applied: the edit is judged by the hot-reload rules at the run's progress and applied as a
/// new version (its changes said), or the resume is refused with the rules' diagnostics. A
/// file that only reformats or comments plans the same and changes nothing.
pub fn on_resume(
    path: &Path,
    profile: Option<&str>,
    out: &Path,
    prep: &Prepared,
    record: &mut RunRecord,
    log: &mut dyn FnMut(String),
) -> Result<Option<Prepared>, RunError> {
    let last = record
        .versions
        .last()
        .map(|v| v.source_file.clone())
        .unwrap_or_default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            log(format!(
                "pipe run --resume: cannot read `{}` ({e}): continuing with {last}, the version \
                 the run last applied",
                path.display()
            ));
            return Ok(None);
        }
    };
    if text == prep.source {
        return Ok(None);
    }
    let file = path.display();
    let checked = pipelang::check::check_with(&text, profile);
    match apply(prep, record, out, text.clone(), checked) {
        Ok(Applied::Unchanged) => {
            log(format!(
                "pipe run --resume: `{file}` differs from {last}, the version the run last \
                 applied, but plans the same: continuing"
            ));
            Ok(None)
        }
        Ok(Applied::Version(v)) => {
            let mut msg = format!(
                "pipe run --resume: `{file}` differs from {last}, the version the run last \
                 applied: applied {}:",
                v.describe()
            );
            for c in &v.changes {
                msg.push_str("\n  ");
                msg.push_str(c);
            }
            log(msg);
            Ok(Some(v.prep))
        }
        Err(Refused::Rules(diagnostics)) => {
            log(format!(
                "pipe run --resume: `{file}` differs from {last}, the version the run last \
                 applied, and the hot-reload rules refuse the edit (below): revert it to \
                 continue this run, or start a new run with another --out"
            ));
            Err(RunError::Diagnostics {
                file: path.to_path_buf(),
                source: text,
                diagnostics,
            })
        }
        Err(Refused::Failed { what, diagnostics }) if !diagnostics.is_empty() => {
            log(format!(
                "pipe run --resume: the edit of `{file}` cannot be applied: {what}"
            ));
            Err(RunError::Diagnostics {
                file: path.to_path_buf(),
                source: text,
                diagnostics,
            })
        }
        Err(Refused::Failed { what, .. }) => Err(RunError::Other(format!(
            "pipe run --resume: the edit of `{file}` cannot be applied: {what}"
        ))),
    }
}
