//! The refusals: an edit may change only what has not started. Each refusal is a `P0801`
//! diagnostic whose primary label is the edit in the new source.

use crate::check::ir::{Pipeline, Stage};
use crate::diag::{Code, Diagnostic};
use crate::plan::Plan;
use crate::syntax::Span;

use super::edits::{Edit, Kind, Owner};
use super::handover::{self, Difference};
use super::{Progress, Started};

pub struct Inputs<'a> {
    pub old: &'a Plan,
    pub new: &'a Plan,
    pub new_p: &'a Pipeline,
    pub progress: &'a Progress,
    pub edits: &'a [Edit],
}

impl Inputs<'_> {
    /// Started stages in the order they ran.
    fn started(&self) -> Vec<(&str, Started)> {
        self.old
            .stages
            .iter()
            .filter_map(|s| self.progress.of(&s.name).map(|k| (s.name.as_str(), k)))
            .collect()
    }

    /// A stage of the new source, by name.
    fn new_stage(&self, name: &str) -> Option<&Stage> {
        self.new_p.stages.iter().find(|s| s.name == name)
    }

    fn name_span(&self, stage: &str) -> Option<Span> {
        self.new_stage(stage).map(|s| s.name_span)
    }
}

fn state(k: Started) -> &'static str {
    match k {
        Started::Done => "has already run",
        Started::Running => "is running",
    }
}

fn refusal(message: String, span: Span, label: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::RELOAD_REFUSED, message).label(span, label)
}

pub fn refusals(inp: &Inputs) -> Vec<Diagnostic> {
    let started = inp.started();
    let mut out = vec![];
    let mut refused: Vec<&str> = vec![];
    for &(name, k) in &started {
        let mine: Vec<&Edit> = inp
            .edits
            .iter()
            .filter(|e| e.owner == Owner::Stage(name.to_string()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        refused.push(name);
        for e in mine {
            out.push(stage_edit(name, k, e));
        }
    }
    used_items(inp, &started, &mut out, &mut refused);
    order(inp, &started, &mut out);
    branch_points(inp, &started, &mut out);
    for &(name, k) in &started {
        if refused.contains(&name) {
            continue;
        }
        if let Some(d) = handover::compare(inp.old, inp.new, name) {
            out.push(handover_refusal(inp, name, k, &d));
        }
    }
    out
}

/// The stage itself was edited (or removed).
fn stage_edit(name: &str, k: Started, e: &Edit) -> Diagnostic {
    let why = match k {
        Started::Done => format!("`{name}` is part of what the run already did"),
        Started::Running => "the running stage keeps its plan".to_string(),
    };
    let next = format!("edit a stage that has not started, or add one after `{name}`");
    if e.kind == Kind::Removed {
        return refusal(
            format!("stage `{name}` {} and cannot be removed", state(k)),
            e.span,
            format!("`{name}` was here"),
        )
        .help(format!(
            "put `{name}` back: {why}. To change what comes next, {next}"
        ));
    }
    refusal(
        format!(
            "stage `{name}` {}: its `{}` cannot change",
            state(k),
            e.field
        ),
        e.span,
        "edited here",
    )
    .help(format!(
        "undo this edit: {why}. To change what comes next, {next}"
    ))
}

/// Models, data sources and pipeline settings that a started stage already used.
fn used_items<'a>(
    inp: &Inputs<'a>,
    started: &[(&'a str, Started)],
    out: &mut Vec<Diagnostic>,
    refused: &mut Vec<&'a str>,
) {
    for e in inp.edits {
        let (what, users): (String, Vec<(&str, Started)>) = match &e.owner {
            Owner::Model(m) => (
                format!("model `{m}`"),
                started
                    .iter()
                    .filter(|(s, _)| {
                        let st = inp.old.stage(s).unwrap();
                        st.train.contains(m) || st.freeze.contains(m)
                    })
                    .copied()
                    .collect(),
            ),
            Owner::Data(d) => {
                let id = inp.old.sources.position(|x| x == d);
                (
                    format!("data source `{d}`"),
                    started
                        .iter()
                        .filter(|(s, _)| {
                            let st = inp.old.stage(s).unwrap();
                            id.is_some_and(|id| st.mix_tree.used_sources().contains(&id))
                        })
                        .copied()
                        .collect(),
                )
            }
            // The run's seed and data root were fixed when it started.
            Owner::Pipeline if matches!(e.field.as_str(), "seed" | "data_root" | "sample_data") => {
                ("the pipeline".to_string(), started.to_vec())
            }
            _ => continue,
        };
        let Some(&(first, k)) = users.first() else {
            continue;
        };
        let field = if e.field.is_empty() {
            String::new()
        } else {
            format!("its `{}` ", e.field)
        };
        let verb = match e.kind {
            Kind::Removed => "cannot be removed",
            _ => "cannot change",
        };
        let mut d = refusal(
            format!(
                "{what}: {field}{verb}: stage `{first}` {} with it",
                state(k)
            ),
            e.span,
            "edited here",
        );
        for &(s, k) in &users {
            if let Some(span) = inp.name_span(s) {
                d = d.label(span, format!("`{s}` {} with it", state(k)));
            }
            if !refused.contains(&s) {
                refused.push(s);
            }
        }
        let help = match &e.owner {
            Owner::Model(_) => {
                "undo the edit; for a different model, declare a new one and use it in stages that have not started"
            }
            Owner::Data(_) => {
                "undo the edit; for other data, declare a new source and mix it into stages that have not started"
            }
            _ => {
                "undo the edit; these settings hold for the whole run (start a new run to change them)"
            }
        };
        out.push(d.help(help));
    }
}

/// Stages that have not started must run after every started one: the run cannot go back.
fn order(inp: &Inputs, started: &[(&str, Started)], out: &mut Vec<Diagnostic>) {
    let is_started = |n: &str| started.iter().any(|(s, _)| *s == n);
    let Some(last) = inp.new.stages.iter().rposition(|s| is_started(&s.name)) else {
        return;
    };
    let Some(&(after, k)) = started.last() else {
        return;
    };
    for st in &inp.new.stages[..last] {
        if is_started(&st.name) {
            continue;
        }
        let span = inp.name_span(&st.name).unwrap_or_default();
        out.push(
            refusal(
                format!(
                    "stage `{}` would run before `{}`, which {}",
                    st.name,
                    inp.new.stages[last].name,
                    state(k)
                ),
                span,
                "this stage has not started",
            )
            .help(format!(
                "make it run after the stages that have started: `stage {} after {after}`",
                st.name
            )),
        );
    }
}

/// A branch that has not started takes its weights from a checkpoint its parent saves when it
/// passes the branch point. A parent that has run (or is running: it keeps its plan, and so
/// the points where it saves) saved only the points of the running plan, so a branch point
/// of a started parent can be neither moved nor added.
fn branch_points(inp: &Inputs, started: &[(&str, Started)], out: &mut Vec<Diagnostic>) {
    for st in &inp.new.stages {
        let Some(b) = &st.branch else {
            continue;
        };
        let Some(&(_, k)) = started.iter().find(|(s, _)| *s == b.parent) else {
            continue;
        };
        if inp.progress.of(&st.name).is_some() {
            continue;
        }
        let before = inp.old.stage(&st.name).and_then(|o| o.branch.as_ref());
        if before.is_some_and(|o| o.parent == b.parent && o.step == b.step) {
            continue;
        }
        let at = inp
            .new_stage(&st.name)
            .and_then(|s| s.branch.map(|x| x.at.span))
            .unwrap_or_default();
        let kept = match before {
            Some(o) if o.parent == b.parent => format!("only step {} was kept", o.step),
            _ => "no step of it was kept for a branch".to_string(),
        };
        let mut d = refusal(
            format!(
                "stage `{}` would branch from `{}` at step {}, but `{}` {}: {kept}",
                st.name,
                b.parent,
                b.step,
                b.parent,
                state(k)
            ),
            at,
            format!("step {} of `{}`", b.step, b.parent),
        );
        if let Some(span) = inp.name_span(&b.parent) {
            d = d.label(span, format!("`{}` {}", b.parent, state(k)));
        }
        out.push(d.help(match before {
            Some(_) => format!(
                "undo the move of the branch point, or start `{}` from the end of `{}` (`after {}`)",
                st.name, b.parent, b.parent
            ),
            None => format!(
                "branch from the end of `{}` (`after {}`), or from a stage that has not started",
                b.parent, b.parent
            ),
        }));
    }
}

/// A started stage would train differently although it was not edited itself: find the edit
/// that reaches it (through a schedule's span, a pipeline default or a model).
fn handover_refusal(inp: &Inputs, name: &str, k: Started, d: &Difference) -> Diagnostic {
    let stage_span = inp.name_span(name).unwrap_or_default();
    let old = inp.old.stage(name).unwrap();
    let schedule = &old.schedule.name;
    let cause = match d {
        Difference::Lr { .. } => lr_cause(inp, name),
        // Other values reach a started stage only from the pipeline's defaults or its models.
        _ => inp
            .edits
            .iter()
            .find(|e| matches!(e.owner, Owner::Pipeline | Owner::Model(_) | Owner::Data(_))),
    }
    .or_else(|| {
        inp.edits
            .iter()
            .find(|e| !matches!(&e.owner, Owner::Stage(s) if inp.progress.of(s).is_some()))
    });
    let (span, label) = match cause {
        Some(e) => (e.span, edit_label(e, d, schedule)),
        None => (stage_span, String::new()),
    };
    let (message, help) = match d {
        Difference::Lr { .. } => (
            format!(
                "this edit changes schedule `{schedule}`, which stage `{name}` {} on: {}",
                state(k),
                d.describe()
            ),
            format!(
                "keep the span of `{schedule}` as it is: undo the edit, or give the stages that \
                 have not started their own schedule (`lr = ...` instead of `resume`)"
            ),
        ),
        _ => (
            format!(
                "this edit changes what stage `{name}` {} with: {}",
                state(k),
                d.describe()
            ),
            format!(
                "undo the edit; `{name}` keeps what it ran with. Set new values on the stages \
                 that have not started (with a transition `old -> new` where they hand over)"
            ),
        ),
    };
    let mut diag = refusal(message, span, label);
    if span != stage_span {
        diag = diag.label(
            stage_span,
            format!("`{name}` {} with the old values", state(k)),
        );
    }
    diag.help(help)
}

/// The edit that moves a schedule's span or shape: the schedule itself, or a stage on it (in
/// the running or the new plan) that has not started.
fn lr_cause<'a>(inp: &Inputs<'a>, name: &str) -> Option<&'a Edit> {
    let run_of = |plan: &Plan| -> Vec<String> {
        let st = plan.stage(name).unwrap();
        plan.schedules[st.run].stages.clone()
    };
    let mut on_run = run_of(inp.old);
    on_run.extend(run_of(inp.new));
    let schedule = inp.old.stage(name).unwrap().schedule.name.clone();
    inp.edits
        .iter()
        .find(|e| e.owner == Owner::Schedule(schedule.clone()))
        .or_else(|| {
            inp.edits.iter().find(|e| match &e.owner {
                Owner::Stage(s) => on_run.contains(s) && inp.progress.of(s).is_none(),
                _ => false,
            })
        })
}

fn edit_label(e: &Edit, d: &Difference, schedule: &str) -> String {
    let what = match (&e.owner, e.kind) {
        (Owner::Stage(s), Kind::Added) => format!("new stage `{s}`"),
        (Owner::Stage(s), Kind::Removed) => format!("removing `{s}`"),
        (Owner::Stage(s), _) => format!("the `{}` of `{s}`", e.field),
        (Owner::Schedule(s), _) => format!("this change to `{s}`"),
        (Owner::Model(m), _) => format!("the `{}` of `{m}`", e.field),
        (Owner::Data(x), _) => format!("the `{}` of `{x}`", e.field),
        (Owner::Pipeline, _) => format!("the pipeline's `{}`", e.field),
    };
    match d {
        Difference::Lr { .. } => format!("{what} changes the span or shape of `{schedule}`"),
        _ => format!("{what} changed here"),
    }
}
