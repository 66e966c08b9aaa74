//! The accepted difference between two plans, one readable line per stage, e.g.
//! `joint_cooldown: lr peak 2e-4 -> 3e-4, budget 600B -> 800B (steps 100 -> 133)`.

use std::collections::BTreeMap;

use crate::check::units;
use crate::plan::{Plan, StagePlan};

use super::handover::bases;

/// Changed, added and removed stages of `new` against `old`, in the new execution order
/// (removed stages last).
pub fn changes(old: &Plan, new: &Plan) -> Vec<String> {
    let mut out = vec![];
    for b in &new.stages {
        match old.stage(&b.name) {
            Some(a) => {
                let parts = stage(a, b);
                if !parts.is_empty() {
                    out.push(format!("{}: {}", b.name, parts.join(", ")));
                }
            }
            None => out.push(format!("{}: new stage, {}", b.name, summary(b))),
        }
    }
    for a in &old.stages {
        if new.stage(&a.name).is_none() {
            out.push(format!("{}: removed", a.name));
        }
    }
    out
}

fn summary(s: &StagePlan) -> String {
    let resumed = if s.schedule.resumed {
        "resumes"
    } else {
        "starts"
    };
    format!(
        "budget {} ({} steps), seq_len {}, lr {} -> {} (peak {}), {resumed} `{}`",
        units::tokens(s.tokens),
        s.steps,
        units::length(s.seq_len),
        units::lr(s.lr.start),
        units::lr(s.lr.end),
        units::lr(s.lr.peak),
        s.schedule.name
    )
}

fn differ(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-9 * a.abs().max(b.abs())
}

fn stage(a: &StagePlan, b: &StagePlan) -> Vec<String> {
    let mut out = vec![];
    if a.average != b.average {
        let inputs = |s: &StagePlan| {
            s.average
                .iter()
                .map(|i| format!("{} {}%", i.stage, units::trim2(i.weight * 100.0)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!("average {} -> {}", inputs(a), inputs(b)));
    }
    if a.branch != b.branch {
        let from = |s: &StagePlan| match &s.branch {
            Some(x) => format!("`{}` after step {}", x.parent, x.step),
            None => "the end of its predecessors".to_string(),
        };
        out.push(format!("starts from {} -> {}", from(a), from(b)));
    }
    for (what, x, y) in [
        ("lr start", a.lr.start, b.lr.start),
        ("lr peak", a.lr.peak, b.lr.peak),
        ("lr end", a.lr.end, b.lr.end),
    ] {
        if differ(x, y) {
            out.push(format!("{what} {} -> {}", units::lr(x), units::lr(y)));
        }
    }
    if differ(a.tokens, b.tokens) || a.steps != b.steps {
        out.push(format!(
            "budget {} -> {} (steps {} -> {})",
            units::tokens(a.tokens),
            units::tokens(b.tokens),
            a.steps,
            b.steps
        ));
    }
    if a.schedule.name != b.schedule.name || a.schedule.resumed != b.schedule.resumed {
        let how = |s: &StagePlan| {
            let verb = if s.schedule.resumed {
                "resumes"
            } else {
                "starts"
            };
            format!("{verb} `{}`", s.schedule.name)
        };
        out.push(format!("schedule: {} -> {}", how(a), how(b)));
    }
    if a.seq_len != b.seq_len {
        out.push(format!(
            "seq_len {} -> {}",
            units::length(a.seq_len),
            units::length(b.seq_len)
        ));
    }
    if a.rope_base != b.rope_base {
        out.push(format!(
            "rope_base {} -> {}",
            bases(&a.rope_base),
            bases(&b.rope_base)
        ));
    }
    if a.rope_scaling != b.rope_scaling {
        out.push(format!(
            "rope_scaling {} -> {}",
            super::handover::scalings(&a.rope_scaling),
            super::handover::scalings(&b.rope_scaling)
        ));
    }
    for (what, x, y) in [
        ("mix start", &a.mix.start, &b.mix.start),
        ("mix end", &a.mix.end, &b.mix.end),
    ] {
        if shares_differ(x, y) {
            out.push(format!("{what} {} -> {}", shares(x), shares(y)));
        }
    }
    for (what, x, y) in [
        ("train", &a.train, &b.train),
        ("freeze", &a.freeze, &b.freeze),
    ] {
        if x != y {
            out.push(format!("{what} [{}] -> [{}]", x.join(", "), y.join(", ")));
        }
    }
    if a.loss != b.loss {
        out.push(format!("loss {} -> {}", a.loss, b.loss));
    }
    if a.optimizer != b.optimizer {
        out.push(format!(
            "optimizer {} -> {}",
            crate::plan::table::optimizer(&a.optimizer),
            crate::plan::table::optimizer(&b.optimizer)
        ));
    }
    if a.lr_scale != b.lr_scale {
        out.push(format!("lr_scale {:?} -> {:?}", a.lr_scale, b.lr_scale));
    }
    if a.seed != b.seed {
        out.push(format!("seed {:?} -> {:?}", a.seed, b.seed));
    }
    phases(a, b, &mut out);
    out
}

fn phases(a: &StagePlan, b: &StagePlan, out: &mut Vec<String>) {
    let names = |s: &StagePlan| -> Vec<String> {
        s.phases
            .iter()
            .map(|p| p.name.clone().unwrap_or_else(|| "-".into()))
            .collect()
    };
    if names(a) != names(b) {
        out.push(format!(
            "phases [{}] -> [{}]",
            names(a).join(", "),
            names(b).join(", ")
        ));
        return;
    }
    // Unnamed single phases are the stage itself, already described above.
    if a.phases.len() < 2 {
        return;
    }
    for (p, q) in a.phases.iter().zip(&b.phases) {
        let mut parts = vec![];
        if differ(p.tokens, q.tokens) {
            parts.push(format!(
                "budget {} -> {}",
                units::tokens(p.tokens),
                units::tokens(q.tokens)
            ));
        }
        if p.seq_len != q.seq_len {
            parts.push(format!(
                "seq_len {} -> {}",
                units::length(p.seq_len),
                units::length(q.seq_len)
            ));
        }
        if p.rope_base != q.rope_base {
            parts.push(format!(
                "rope_base {} -> {}",
                bases(&p.rope_base),
                bases(&q.rope_base)
            ));
        }
        if p.rope_scaling != q.rope_scaling {
            parts.push(format!(
                "rope_scaling {} -> {}",
                super::handover::scalings(&p.rope_scaling),
                super::handover::scalings(&q.rope_scaling)
            ));
        }
        if p.batch != q.batch {
            parts.push(format!("batch {} -> {}", p.batch, q.batch));
        }
        if !parts.is_empty() {
            let name = p.name.as_deref().unwrap_or("-");
            out.push(format!("phase {name} {}", parts.join(", ")));
        }
    }
}

fn shares_differ(x: &BTreeMap<String, f64>, y: &BTreeMap<String, f64>) -> bool {
    x.len() != y.len()
        || x.iter()
            .zip(y)
            .any(|((n, v), (m, w))| n != m || differ(*v, *w))
}

fn shares(m: &BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(n, v)| format!("{n} {}%", units::trim2(v * 100.0)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}
