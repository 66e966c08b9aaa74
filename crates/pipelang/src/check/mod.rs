//! The checker: one `check()` for the CLI, the planner, the runtime, hot reload and the
//! language server. It lowers the syntax tree to a typed pipeline, validates every item and
//! every hand-over between stages, and collects all diagnostics instead of stopping at one.

mod fields;
pub mod file_memo;
pub mod files;
pub(crate) mod fixes;
pub(crate) mod graph;
pub mod init_file;
pub mod ir;
mod lower;
mod lower_lr;
mod lower_mix;
mod lower_optimizer;
mod lower_rope;
mod lower_stage;
pub mod names;
pub(crate) mod phase_budgets;
mod profile;
pub mod units;
mod validate;
pub mod values;
pub mod variants;
pub mod vocab;

use std::sync::OnceLock;

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::plan::{self, Plan, Walk};
use crate::syntax::{self, File, Item, Span};

pub use ir::Pipeline;
pub use lower_lr::LR_FUNCTIONS;

/// A checked source: its syntax tree, its typed pipeline (with the requested profile applied),
/// every diagnostic and, on demand, its plan.
///
/// The plan is resolved the first time it is asked for, not by the check: `pipe check` and
/// most edits in the editor never look at it, and on a large file it is a fifth of the check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub file: File,
    pub pipeline: Option<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
    /// The walk of `pipeline`, kept only when the check found no error.
    walk: Option<Walk>,
    plan: OnceLock<Plan>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The plan, when the whole file (base and every profile) has no errors. Plans are made
    /// of sound pipelines, so an error added to `diagnostics` afterwards (a file-aware pass)
    /// takes the plan away too.
    pub fn plan(&self) -> Option<&Plan> {
        let (Some(p), Some(w)) = (&self.pipeline, &self.walk) else {
            return None;
        };
        if self.has_errors() {
            return None;
        }
        Some(self.plan.get_or_init(|| plan::resolve(p, w)))
    }

    /// The plan, as [`Checked::plan`] gives it, owned.
    pub fn into_plan(mut self) -> Option<Plan> {
        self.plan()?;
        self.plan.take()
    }
}

/// Checks a source and every profile in it; the pipeline returned is the base one.
pub fn check(source: &str) -> Checked {
    check_with(source, None)
}

/// Checks a source and every profile in it; the pipeline returned has `profile` applied.
pub fn check_with(source: &str, profile: Option<&str>) -> Checked {
    let mut file = syntax::parse(source);
    let mut diags = Diagnostics::default();
    for e in &mut file.errors {
        match detached_unit(source, e) {
            Some(d) => diags.push(d),
            None => diags.push(syntax_error(e)),
        }
    }
    let base = analyse(&file, None);
    let base_keys: foldhash::HashSet<(Code, Span)> = base
        .2
        .list
        .iter()
        .map(|d| (d.code, d.primary_span()))
        .collect();
    diags.list.extend(base.2.list.iter().cloned());
    let mut chosen = None;
    let profiles: Vec<&syntax::ProfileItem> = file
        .items
        .iter()
        .filter_map(|i| {
            if let Item::Profile(p) = i {
                Some(p)
            } else {
                None
            }
        })
        .collect();
    for prof in &profiles {
        let r = analyse(&file, Some(prof));
        for d in r.2.list {
            // A budget or duration the profile scaled was not written by anyone: its rounding
            // to whole steps (or shrinking under one) is expected at laptop scale and not
            // actionable.
            let scaled = !prof.span.contains(d.primary_span().start);
            if matches!(d.code, Code::ROUNDING | Code::UNDER_A_STEP) && scaled {
                continue;
            }
            // A profile's tiny budgets make any batch a large share of them; the base
            // pipeline is where a batch meant as tokens is caught.
            if d.code == Code::ABSURD_BATCH {
                continue;
            }
            if !base_keys.contains(&(d.code, d.primary_span())) {
                let mut d = d;
                d.message = format!("with profile `{}`: {}", prof.name.name, d.message);
                diags.push(d);
            }
        }
        if profile == Some(prof.name.name.as_str()) {
            chosen = Some((r.0, r.1));
        }
    }
    let (pipeline, walk) = match (profile, chosen) {
        (None, _) => (base.0, base.1),
        (Some(_), Some(c)) => c,
        (Some(name), None) => {
            let names: Vec<&str> = profiles.iter().map(|p| p.name.name.as_str()).collect();
            diags.push(
                Diagnostic::new(
                    Code::PROFILE_UNKNOWN,
                    format!("there is no profile `{name}`"),
                )
                .label(Span::new(0, 0), "in this file")
                .help(match names.is_empty() {
                    true => "this file declares no profiles".to_string(),
                    false => format!("profiles: {}", names.join(", ")),
                }),
            );
            (None, None)
        }
    };
    for d in &mut diags.list {
        crate::diag::lay_out_fixes(source, &mut d.fixes);
    }
    let mut diagnostics = diags.finish();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    // A note speaks of a recipe that works; beside an error it is noise, often a consequence.
    if has_errors {
        diagnostics.retain(|d| d.severity != crate::diag::Severity::Advice);
    }
    Checked {
        file,
        pipeline,
        diagnostics,
        walk: walk.filter(|_| !has_errors),
        plan: OnceLock::new(),
    }
}

fn syntax_error(e: &syntax::SyntaxError) -> Diagnostic {
    let expected = match e.expected.len() {
        0 => String::new(),
        1 => format!(", expected {}", e.expected[0]),
        _ => {
            let (last, rest) = e.expected.split_last().unwrap();
            format!(", expected {} or {last}", rest.join(", "))
        }
    };
    let mut d = Diagnostic::new(Code::SYNTAX, format!("unexpected {}{expected}", e.found))
        .label(e.span, "here");
    if e.skipped.len() > e.span.len() + 1 {
        d = d.label(e.skipped, "skipped while recovering");
    }
    if let Some((span, note)) = &e.note {
        d = d.label(*span, note.clone());
    }
    // `4k`: the unit's letter in lower case.
    if let Some(u) = ["`k`", "`m`", "`b`", "`t`"].iter().find(|u| e.found == **u) {
        return d.help(format!(
            "K, M, B and T are written in capitals: `{}`",
            u.trim_matches('`').to_uppercase()
        ));
    }
    d.help("fix the text here; checking went on after the skipped part")
}

/// `budget = 15.6 T`: a K/M/B/T (or `%`) written apart from its number. One error with the fix,
/// and the field it belongs to is treated as broken, so its number alone (15.6 tokens) does not
/// go on to produce rounding warnings or phase sums of its own.
fn detached_unit(source: &str, e: &mut syntax::SyntaxError) -> Option<Diagnostic> {
    let text = source.get(e.skipped.start..e.skipped.end)?.trim_end();
    if !matches!(text, "K" | "M" | "B" | "T" | "%") {
        return None;
    }
    let before = &source[..e.skipped.start];
    let number = before.trim_end_matches([' ', '\t']);
    if number.len() == before.len() || !number.ends_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let line = &number[number.rfind('\n').map_or(0, |i| i + 1)..];
    let (key, value) = line.rsplit_once('=')?;
    let key = key.trim().rsplit([' ', '{', ',', '(']).next()?.to_string();
    let gap = Span::new(number.len(), e.skipped.start);
    let written = format!("{}{text}", value.trim());
    e.key = Some(key.clone());
    Some(
        Diagnostic::new(
            Code::SYNTAX,
            format!("`{text}` is apart from its number: write `{written}`"),
        )
        .label(
            Span::new(
                number.len() - value.trim().len(),
                e.skipped.start + text.len(),
            ),
            "a unit goes right after the number",
        )
        .help(format!("remove the space: `{key} = {written}`"))
        .fix(Some(crate::diag::Fix::replace(
            format!("write `{written}`"),
            gap,
            String::new(),
        ))),
    )
}

/// Lowers and validates one variant of the file (the base, or a profile applied to it).
fn analyse(
    file: &File,
    profile: Option<&syntax::ProfileItem>,
) -> (Option<Pipeline>, Option<Walk>, Diagnostics) {
    let mut pre = Diagnostics::default();
    let applied;
    let (file, scaling) = match profile {
        Some(p) => {
            let (f, s) = profile::apply(file, p, &mut pre);
            applied = f;
            (&applied, Some(s))
        }
        None => (file, None),
    };
    let (pipeline, lower) = lower::Lower::new(file).lower();
    let used = lower.used;
    let mut diags = lower.diags;
    diags.list.extend(pre.list);
    let Some(mut p) = pipeline else {
        return (None, None, diags);
    };
    if let (Some(s), Some(prof)) = (scaling, profile) {
        profile::scale(&mut p, &s, prof.span, &mut diags);
        p.profile = Some(prof.name.name.clone());
    }
    validate::models(&p, &mut diags);
    for s in &p.schedules {
        validate::segments(&s.segments, &mut diags);
    }
    for m in &p.mixtures {
        validate::mixture(&m.nodes, m.name_span, &mut diags);
    }
    // Variants are copies of one declaration (checked once); a soup trains nothing.
    for s in p
        .stages
        .iter()
        .filter(|s| s.is_declaration() && s.average.is_none())
    {
        validate::stage(&p, s, &mut diags);
    }
    let feeds = vocab::feeds(&p);
    vocab::bytes(&p, &feeds, &mut diags);
    vocab::mixed(&p, &feeds, &mut diags);
    if profile.is_none() {
        unused(file, &used, &mut diags);
    }
    // The planner's walk checks every hand-over between stages (weights, seq_len, RoPE, LR).
    let walk = graph::order(&p, &mut diags).map(|order| plan::walk(&p, &order, &mut diags));
    (Some(p), walk, diags)
}

fn unused(file: &File, used: &foldhash::HashSet<String>, diags: &mut Diagnostics) {
    for item in &file.items {
        let what = match item {
            Item::Model(_) => "model",
            Item::Data(_) => "data source",
            Item::Schedule(_) => "schedule",
            Item::Mix(_) => "mixture",
            _ => continue,
        };
        let name = item.name();
        if !used.contains(&name.name) {
            diags.push(
                Diagnostic::new(
                    Code::UNUSED,
                    format!("{what} `{}` is never used", name.name),
                )
                .label(name.span, "declared here")
                .help(format!(
                    "use it in a stage or remove it; an unused {what} often means a typo elsewhere"
                )),
            );
        }
    }
}
