//! Hover: a stage or phase shows its resolved plan, a number its exact value where it stands,
//! a name its declaration, a field its entry in the schema.

use std::fmt::Write;

use pipelang::check::ir::{MixNode, MixTarget};
use pipelang::check::names::NameKind;
use pipelang::check::units::{Context, factor, grouped, length, lr, tokens};
use pipelang::plan::rope::RopeScaling;
use pipelang::plan::{Lr, MixSummary, PhasePlan, StagePlan, StepState};
use pipelang::schema::{self, Block, Field, Scale, data, phase, pipeline, profile, stage};
use pipelang::syntax::{Body, Entry, Expr, ExprKind, File, Item, Quantity, Span, Suffix};

use super::document::Document;

/// Markdown for the thing under `offset`, and the span it describes.
pub fn hover(doc: &Document, offset: usize) -> Option<(String, Span)> {
    if let Some(o) = doc.names.at(offset) {
        let decl = doc.names.decls.get(&o.name)?;
        let mut md = String::new();
        if decl.kind == NameKind::Stage {
            md += &stage_markdown(doc, &o.name);
        } else {
            let _ = writeln!(md, "{} `{}`\n", capitalised(decl.kind.article()), o.name);
            if decl.kind == NameKind::Mixture {
                md += &mixture_users(doc, &o.name);
            }
        }
        if !o.is_decl || decl.kind != NameKind::Stage {
            let line = doc.index.line(decl.name_span.start);
            let _ = write!(
                md,
                "\n```pipe\n{}\n```\ndeclared on line {}",
                doc.text().line_text(line).trim(),
                line + 1
            );
        }
        return Some((md, o.span));
    }
    if let Some((stage, phase, span)) = phase_at(&doc.checked.file, offset) {
        return Some((phase_markdown(doc, &stage, &phase), span));
    }
    if let Some((block, field, span)) = field_at(&doc.checked.file, offset) {
        return Some((field_markdown(block, field), span));
    }
    let (e, q, key) = quantity_at(&doc.checked.file, offset)?;
    let written = doc.text.get(e.span.start..e.span.end)?.trim();
    Some((quantity_markdown(written, q, &key), e.span))
}

/// The stages that train on a named mixture, directly or through other mixtures.
fn mixture_users(doc: &Document, name: &str) -> String {
    fn copies(nodes: &[MixNode], name: &str) -> bool {
        nodes.iter().any(|n| {
            n.copy_of.as_deref() == Some(name)
                || matches!(&n.target, MixTarget::Group(g) if copies(g, name))
        })
    }
    let Some(p) = &doc.checked.pipeline else {
        return String::new();
    };
    let users: Vec<String> = p
        .stages
        .iter()
        .filter(|s| copies(&s.mix, name))
        .map(|s| format!("`{}`", s.name))
        .collect();
    if users.is_empty() {
        "used by no stage\n".to_string()
    } else {
        format!("used by {}\n", users.join(", "))
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn stage_markdown(doc: &Document, name: &str) -> String {
    let mut md = format!("**stage `{name}`**\n\n");
    let Some(plan) = doc.plan() else {
        let errors = doc
            .checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        md += &format!(
            "No plan while the file has {errors} error(s): fix them to see steps, LR and mixture."
        );
        return md;
    };
    let Some(s) = plan.stage(name) else {
        return md + "This stage is not in the plan.";
    };
    md += &stage_plan(s);
    if let Some(i) = plan.stage_index(name) {
        md += &first_step(&plan.step(i, 0));
    }
    md
}

/// What the stage's first step runs with, from the same step state the trainer reads.
fn first_step(at: &StepState) -> String {
    let rope: Vec<String> = at
        .rope_base
        .iter()
        .map(|(m, b)| match at.rope_scaling.get(m) {
            Some(s) => format!("{m} {} {}", grouped_f(*b), s.brief()),
            None => format!("{m} {}", grouped_f(*b)),
        })
        .collect();
    let mut line = format!(
        "\n**first step**: LR {}, batch {} × seq_len {}",
        pipelang::check::units::lr(at.lr),
        grouped(at.batch),
        length(at.seq_len)
    );
    if !rope.is_empty() {
        line += &format!(", RoPE {}", rope.join(", "));
    }
    line + "\n"
}

fn stage_plan(s: &StagePlan) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "- **steps**: {} × {} tokens per step",
        grouped(s.steps),
        grouped(s.tokens_per_step)
    );
    let _ = writeln!(
        md,
        "- **budget**: {} = {} tokens (trained in whole steps: {})",
        tokens(s.tokens),
        grouped_f(s.tokens),
        grouped_f(s.trained_tokens)
    );
    let resumed = if s.schedule.resumed { ", resumed" } else { "" };
    let _ = writeln!(
        md,
        "- **LR**: {} (schedule `{}`{resumed})",
        lr_line(&s.lr),
        s.schedule.name
    );
    let last = s.phases.last();
    let seq_end = last.map_or(s.seq_len, |p| p.seq_len);
    let _ = writeln!(
        md,
        "- **seq_len**: {}",
        from_to(length(s.seq_len), length(seq_end))
    );
    let rope_end = last.map_or(&s.rope_base, |p| &p.rope_base);
    for (model, base) in &s.rope_base {
        let end = rope_end.get(model).copied().unwrap_or(*base);
        let _ = writeln!(
            md,
            "- **RoPE base** ({model}): {}",
            from_to(grouped_f(*base), grouped_f(end))
        );
        let scaling = |m: &std::collections::BTreeMap<String, RopeScaling>| {
            m.get(model).map_or("none".to_string(), |s| s.show())
        };
        let (a, b) = (
            scaling(&s.rope_scaling),
            scaling(last.map_or(&s.rope_scaling, |p| &p.rope_scaling)),
        );
        if a != "none" || b != "none" {
            let _ = writeln!(md, "- **RoPE scaling** ({model}): {}", from_to(a, b));
        }
    }
    md += &mix_lines(&s.mix);
    if !s.train.is_empty() {
        let _ = writeln!(md, "- **trains**: {}", s.train.join(", "));
    }
    if s.phases.len() > 1 || s.phases.iter().any(|p| p.name.is_some()) {
        md += "\n| phase | steps | seq_len | RoPE base | LR |\n|---|---|---|---|---|\n";
        for p in &s.phases {
            let rope: Vec<String> = p.rope_base.values().map(|b| grouped_f(*b)).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                p.name.as_deref().unwrap_or("-"),
                grouped(p.steps),
                length(p.seq_len),
                rope.join(", "),
                lr_line(&p.lr)
            );
        }
    }
    md
}

fn phase_markdown(doc: &Document, stage: &str, phase: &str) -> String {
    let mut md = format!("**phase `{phase}`** of stage `{stage}`\n\n");
    let found = doc
        .plan()
        .and_then(|p| p.stage(stage))
        .and_then(|s| s.phases.iter().find(|p| p.name.as_deref() == Some(phase)));
    let Some(p) = found else {
        return md + "No plan while the file has errors.";
    };
    md += &phase_plan(p);
    md
}

fn phase_plan(p: &PhasePlan) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "- **steps**: {} (steps {}..{} of the stage) × {} tokens per step ({} × {})",
        grouped(p.steps),
        grouped(p.first_step + 1),
        grouped(p.first_step + p.steps),
        grouped(p.tokens_per_step),
        grouped(p.batch),
        grouped(p.seq_len)
    );
    let _ = writeln!(
        md,
        "- **budget**: {} = {} tokens",
        tokens(p.tokens),
        grouped_f(p.tokens)
    );
    let _ = writeln!(md, "- **LR**: {}", lr_line(&p.lr));
    let _ = writeln!(md, "- **seq_len**: {}", length(p.seq_len));
    for (model, base) in &p.rope_base {
        let _ = writeln!(md, "- **RoPE base** ({model}): {}", grouped_f(*base));
        if let Some(sc) = p.rope_scaling.get(model) {
            let _ = writeln!(md, "- **RoPE scaling** ({model}): {}", sc.show());
        }
    }
    md + &mix_lines(&p.mix)
}

fn lr_line(l: &Lr) -> String {
    let mut s = from_to(lr(l.start), lr(l.end));
    if l.peak > l.start.max(l.end) {
        s += &format!(" (peak {})", lr(l.peak));
    }
    s
}

fn from_to(a: String, b: String) -> String {
    if a == b { a } else { format!("{a} → {b}") }
}

fn mix_lines(m: &MixSummary) -> String {
    let show = |mix: &std::collections::BTreeMap<String, f64>| {
        let mut parts: Vec<(&String, &f64)> = mix.iter().filter(|(_, v)| **v > 0.0).collect();
        parts.sort_by(|a, b| b.1.total_cmp(a.1));
        let parts: Vec<String> = parts
            .iter()
            .map(|(k, v)| format!("{k} {}%", pipelang::check::units::trim2(**v * 100.0)))
            .collect();
        parts.join(", ")
    };
    let (a, b) = (show(&m.start), show(&m.end));
    if a == b {
        format!("- **mixture**: {a}\n")
    } else {
        format!("- **mixture at start**: {a}\n- **mixture at end**: {b}\n")
    }
}

fn grouped_f(v: f64) -> String {
    if v.is_finite() && v >= 0.0 && (v - v.round()).abs() <= 1e-6 * v.abs().max(1.0) {
        grouped(v.round() as u64)
    } else {
        format!("{v}")
    }
}

/// A number's exact value where it stands: in a length `K` is 1,024, elsewhere 1,000.
fn quantity_markdown(written: &str, q: &Quantity, key: &str) -> String {
    let amount = q.number * factor(q.suffix, Context::Amount);
    if q.steps {
        return format!("`{written}` = {} optimizer steps", grouped_f(amount));
    }
    if q.suffix == Suffix::Percent {
        let of = match key {
            "budget" => " of the stage's budget",
            "warmup" | "decay" | "over" => " of the schedule's span",
            _ => "",
        };
        return format!(
            "`{written}` = {}{of}",
            pipelang::check::units::trim(q.number / 100.0)
        );
    }
    if key == "seq_len" {
        let v = q.number * factor(q.suffix, Context::Length);
        let unit = if q.suffix != Suffix::None {
            " (in a length, K = 1,024)"
        } else {
            ""
        };
        return format!(
            "`{written}` in a length = {} tokens per sequence{unit}",
            grouped_f(v)
        );
    }
    let tokens = matches!(key, "budget" | "warmup" | "decay" | "over");
    let what = if tokens { " tokens" } else { "" };
    format!("`{written}` = {}{what}", grouped_f(amount))
}

fn field_markdown(block: &Block, f: &Field) -> String {
    let mut md = format!(
        "**`{}`** of {}: {}, default {}\n",
        f.name,
        block.what,
        f.ty.name(),
        f.missing.docs()
    );
    if !f.doc.is_empty() {
        md += &format!("\n{}\n", f.doc);
    }
    if f.scale != Scale::No {
        md += &format!(
            "\nA profile scales it with `scale {} by F`.\n",
            f.scale.target()
        );
    }
    md
}

/// The field name under `offset`, with the block it belongs to.
fn field_at(file: &File, offset: usize) -> Option<(&'static Block, &'static Field, Span)> {
    file.items
        .iter()
        .filter(|i| i.span().contains(offset))
        .find_map(|item| match item {
            Item::Pipeline(p) => key_in(file, &p.body, &pipeline::BLOCK, offset),
            Item::Model(m) => key_in(file, &m.body, schema::model(&m.kind.name)?, offset),
            Item::Data(d) => key_in(file, d.body.as_ref()?, &data::BLOCK, offset),
            Item::Stage(s) => key_in(file, &s.body, &stage::BLOCK, offset),
            Item::Profile(p) => key_in(file, &p.body, &profile::BLOCK, offset),
            Item::Schedule(_) | Item::Mix(_) => None,
        })
}

fn key_in(
    file: &File,
    body: &Body,
    block: &'static Block,
    offset: usize,
) -> Option<(&'static Block, &'static Field, Span)> {
    body.entries.iter().find_map(|e| match e {
        Entry::Field(f) if f.key.span.contains(offset) => {
            Some((block, block.field(&f.key.name)?, f.key.span))
        }
        Entry::Block(b) if b.body.span.contains(offset) => {
            let inner = match (block.keyword, b.keyword.name.as_str()) {
                ("stage", "phase") => &phase::BLOCK,
                ("profile", "stage") => &stage::BLOCK,
                ("profile", "model") => {
                    let name = &b.name.as_ref()?.name;
                    let kind = file.items.iter().find_map(|i| match i {
                        Item::Model(m) if m.name.name == *name => Some(&m.kind.name),
                        _ => None,
                    })?;
                    schema::model(kind)?
                }
                _ => return None,
            };
            key_in(file, &b.body, inner, offset)
        }
        _ => None,
    })
}

/// The named phase under `offset`: (stage, phase, span of the phase name).
fn phase_at(file: &File, offset: usize) -> Option<(String, String, Span)> {
    file.items.iter().find_map(|item| {
        let Item::Stage(s) = item else { return None };
        s.body.entries.iter().find_map(|e| match e {
            Entry::Block(b) if b.keyword.name == "phase" => {
                let n = b.name.as_ref()?;
                n.span
                    .contains(offset)
                    .then(|| (s.name.name.clone(), n.name.clone(), n.span))
            }
            _ => None,
        })
    })
}

/// The number under `offset`, with the field or argument it is the value of.
fn quantity_at(file: &File, offset: usize) -> Option<(&Expr, &Quantity, String)> {
    for item in &file.items {
        if !item.span().contains(offset) {
            continue;
        }
        let found = match item {
            Item::Pipeline(p) => in_body(&p.body, offset),
            Item::Profile(p) => in_body(&p.body, offset),
            Item::Mix(m) => in_body(&m.body, offset),
            Item::Stage(s) => in_body(&s.body, offset),
            Item::Model(m) => m
                .args
                .iter()
                .flat_map(|a| &a.args)
                .find_map(|a| in_expr(&a.value, offset, a.name.as_ref().map_or("", |n| &n.name)))
                .or_else(|| in_body(&m.body, offset)),
            Item::Data(d) => d.body.as_ref().and_then(|b| in_body(b, offset)),
            Item::Schedule(s) => in_expr(&s.value, offset, ""),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn in_body(body: &Body, offset: usize) -> Option<(&Expr, &Quantity, String)> {
    body.entries.iter().find_map(|e| {
        if !e.span().contains(offset) {
            return None;
        }
        match e {
            Entry::Field(f) => in_expr(&f.value, offset, &f.key.name)
                .or_else(|| f.body.as_ref().and_then(|b| in_body(b, offset))),
            Entry::Block(b) => in_body(&b.body, offset),
            Entry::Scale(s) => in_expr(&s.factor, offset, "scale"),
        }
    })
}

fn in_expr<'a>(e: &'a Expr, offset: usize, key: &str) -> Option<(&'a Expr, &'a Quantity, String)> {
    if !e.span.contains(offset) {
        return None;
    }
    match &e.kind {
        ExprKind::Quantity(q) => Some((e, q, key.to_string())),
        ExprKind::Call { args, .. } => args.args.iter().find_map(|a| {
            let key = a.name.as_ref().map_or(key, |n| n.name.as_str());
            in_expr(&a.value, offset, key)
        }),
        ExprKind::List(xs) | ExprKind::Chain(xs) => xs.iter().find_map(|x| in_expr(x, offset, key)),
        ExprKind::Transition(a, b) => in_expr(a, offset, key).or_else(|| in_expr(b, offset, key)),
        // `1/256` is a ratio: its parts are not amounts of their own.
        ExprKind::Ratio(..) | ExprKind::Str(_) | ExprKind::Ident(_) => None,
    }
}
