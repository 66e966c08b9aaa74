//! `pipe run --watch`: watches the pipeline file and applies accepted edits between stages.
//!
//! The folder holding the file is watched, not the file: editors that save by writing a new
//! file and renaming it over the old one replace the inode a file watch would follow. Every
//! settled change is evaluated at once against the running plan (so the author sees the
//! verdict while still in the editor) and the latest accepted version is queued; at the next
//! stage boundary it is evaluated again against the then-current progress and applied.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use crate::edit::{self, Applied, Refused};
use crate::record::RunRecord;
use crate::{Prepared, RunError, Runner};
use pipelang::check::Checked;
use pipelang::diag::{self, Diagnostic};
use pipelang::reload::{Outcome, Progress, evaluate};

/// Quiet time before a change is read: long enough to merge an editor's truncate-and-write
/// into one change, short enough to keep the verdict well under 100 ms.
const SETTLE: Duration = Duration::from_millis(40);

/// Where messages go (stderr for `pipe run`; tests and benchmarks collect them).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// An accepted version waiting for the next stage boundary.
#[derive(Debug, Clone)]
pub struct Queued {
    pub source: String,
    /// The check of `source`, made once when it was saved.
    pub checked: Checked,
    pub changes: Vec<String>,
    /// When it was checked and queued.
    pub at: Instant,
}

struct Shared {
    /// What the runner is on, the same allocation as the runner's: what edits are compared
    /// with.
    running: Arc<Prepared>,
    progress: Progress,
    /// The text last evaluated; events that leave it unchanged are ignored.
    seen: String,
    queued: Option<Queued>,
}

/// What the watcher needs to know about the run.
pub struct Target {
    pub file: PathBuf,
    pub profile: Option<String>,
    /// The run directory, where applied versions are saved.
    pub out: PathBuf,
    /// Whether diagnostics are drawn in colour (the caller knows its terminal).
    pub color: bool,
}

pub struct Watch {
    target: Arc<Target>,
    shared: Arc<Mutex<Shared>>,
    log: Log,
    _debouncer: notify_debouncer_full::Debouncer<
        notify::RecommendedWatcher,
        notify_debouncer_full::RecommendedCache,
    >,
}

/// Runs with the pipeline file watched; edits are applied at stage boundaries.
pub fn run_watching(runner: &mut Runner, color: bool) -> Result<(), RunError> {
    let target = Target {
        file: runner.opts.file.clone(),
        profile: runner.opts.profile.clone(),
        out: runner.opts.out.clone(),
        color,
    };
    let progress = runner.record.progress_during(&runner.prep.plan);
    let log: Log = Arc::new(|m| eprintln!("{m}"));
    let watch = Watch::start(target, &runner.prep, progress, log)?;
    runner.run(&mut |prep, record| watch.boundary(prep, record))
}

impl Watch {
    /// Starts watching. A file that already differs from the running source (edited while a
    /// resumed run was stopped) is evaluated at once.
    pub fn start(
        target: Target,
        prep: &Arc<Prepared>,
        progress: Progress,
        log: Log,
    ) -> Result<Watch, RunError> {
        let target = Arc::new(target);
        if prep.checked.pipeline.is_none() {
            return Err(RunError::Other(
                "the running pipeline has no checked form".into(),
            ));
        }
        let shared = Arc::new(Mutex::new(Shared {
            running: prep.clone(),
            progress,
            seen: prep.source.clone(),
            queued: None,
        }));
        let dir = match target.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file.file_name().map(|n| n.to_os_string());
        let (t, s, l) = (target.clone(), shared.clone(), log.clone());
        let handler = move |res: DebounceEventResult| match res {
            Ok(events) => {
                let ours = events.iter().any(|e| {
                    !matches!(e.event.kind, EventKind::Access(_))
                        && e.event
                            .paths
                            .iter()
                            .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
                });
                if ours {
                    changed(&t, &s, &l);
                }
            }
            Err(errors) => {
                for e in errors {
                    l(format!("pipe run --watch: {e}"));
                }
            }
        };
        let mut debouncer =
            new_debouncer(SETTLE, None, handler).map_err(|e| watch_error(&dir, e))?;
        debouncer
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&dir, e))?;
        log(format!(
            "pipe run --watch: watching {} (edits to stages not yet started apply between stages)",
            target.file.display()
        ));
        changed(&target, &shared, &log);
        Ok(Watch {
            target,
            shared,
            log,
            _debouncer: debouncer,
        })
    }

    /// The version waiting for the next boundary, if any.
    pub fn queued(&self) -> Option<Queued> {
        lock(&self.shared).queued.clone()
    }

    /// At a stage boundary: applies the queued version if it is still safe, saving its source
    /// in the run directory and recording it in `record.versions`.
    pub fn boundary(&self, prep: &Arc<Prepared>, record: &mut RunRecord) -> Option<Arc<Prepared>> {
        let mut sh = lock(&self.shared);
        let next = sh
            .queued
            .take()
            .and_then(|q| self.apply(prep, record, q))
            .map(Arc::new);
        sh.running = next.clone().unwrap_or_else(|| prep.clone());
        // The runner goes straight on to the next stage not done.
        sh.progress = record.progress_during(&sh.running.plan);
        next
    }

    fn apply(&self, prep: &Prepared, record: &mut RunRecord, q: Queued) -> Option<Prepared> {
        match edit::apply(prep, record, &self.target.out, q.source.clone(), q.checked) {
            Ok(Applied::Unchanged) => None,
            Ok(Applied::Version(v)) => {
                (self.log)(format!("pipe run --watch: applied {}", v.describe()));
                Some(v.prep)
            }
            Err(Refused::Rules(diags)) => {
                self.show(&q.source, &diags);
                (self.log)(
                    "pipe run --watch: the queued edit is no longer safe now that the stage has \
                     ended: not applied"
                        .into(),
                );
                None
            }
            Err(Refused::Failed { what, diagnostics }) => {
                if !diagnostics.is_empty() {
                    self.show(&q.source, &diagnostics);
                }
                (self.log)(format!(
                    "pipe run --watch: the queued edit was not applied: {what}"
                ));
                None
            }
        }
    }

    fn show(&self, source: &str, diags: &[Diagnostic]) {
        show(&self.target, &self.log, source, diags);
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere must not silence the watcher: the state is replaced whole each time.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn watch_error(dir: &Path, e: impl std::fmt::Display) -> RunError {
    RunError::Other(format!(
        "cannot watch `{}`: {e}\n  run without --watch, or raise the limit on watched files",
        dir.display()
    ))
}

fn show(t: &Target, log: &Log, source: &str, diags: &[Diagnostic]) {
    log(diag::render_human(
        diags,
        &t.file.display().to_string(),
        source,
        t.color,
    ));
}

/// The file changed: read it, evaluate it against the running plan, report, queue.
fn changed(t: &Target, shared: &Mutex<Shared>, log: &Log) {
    let text = match std::fs::read_to_string(&t.file) {
        Ok(text) => text,
        // Mid-save by rename: the new file's own event follows.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log(format!(
                "pipe run --watch: cannot read {}: {e}",
                t.file.display()
            ));
            return;
        }
    };
    let mut sh = lock(shared);
    if text == sh.seen {
        return;
    }
    sh.seen = text.clone();
    let Some(pipeline) = sh.running.checked.pipeline.as_ref() else {
        return;
    };
    let outcome = evaluate(
        &sh.running.plan,
        pipeline,
        &sh.progress,
        &text,
        t.profile.as_deref(),
    );
    let stage = sh.progress.running.clone();
    let until = stage.map_or("at the next stage boundary".to_string(), |s| {
        format!("when `{s}` ends")
    });
    match outcome {
        Outcome::Rejected(diags) => {
            show(t, log, &text, &diags);
            let kept = match &sh.queued {
                Some(_) => format!("; the edit accepted earlier still applies {until}"),
                None => String::new(),
            };
            log(format!(
                "pipe run --watch: edit not applied ({} problem(s)); the run goes on with its \
                 current plan{kept}",
                diags.len()
            ));
        }
        Outcome::Accepted(a) if a.changes.is_empty() => {
            let dropped = match sh.queued.take() {
                Some(_) => "; the edit queued earlier is dropped",
                None => "",
            };
            log(format!(
                "pipe run --watch: the edit does not change the plan{dropped}"
            ));
        }
        Outcome::Accepted(a) => {
            let mut msg = format!("pipe run --watch: edit accepted, applies {until}:");
            for c in &a.changes {
                msg.push_str("\n  ");
                msg.push_str(c);
            }
            let a = *a;
            sh.queued = Some(Queued {
                source: text,
                checked: a.checked,
                changes: a.changes,
                at: Instant::now(),
            });
            log(msg);
        }
    }
}
