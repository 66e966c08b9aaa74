//! The plan as a readable table: one row per stage and per phase.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::check::units;

use super::rope::RopeScaling;
use super::{PhasePlan, Plan, StepState};

/// A phase's batch and tokens per step: `a -> b` where a ramp changes them.
fn batch_cells(ph: &PhasePlan) -> (String, String) {
    match ph.batch_end {
        Some(end) => (
            format!("{} -> {}", units::grouped(ph.batch), units::grouped(end)),
            format!(
                "{} -> {}",
                units::grouped(ph.tokens_per_step),
                units::grouped(end * ph.seq_len)
            ),
        ),
        None => (units::grouped(ph.batch), units::grouped(ph.tokens_per_step)),
    }
}

fn shares(m: &BTreeMap<String, f64>) -> String {
    if m.len() == 1 {
        return m.keys().next().unwrap().clone();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {}%", units::trim(v * 100.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mix_cell(start: &BTreeMap<String, f64>, end: &BTreeMap<String, f64>) -> String {
    if start == end {
        shares(start)
    } else {
        format!("{} -> {}", shares(start), shares(end))
    }
}

fn rope(m: &BTreeMap<String, f64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {}", units::trim(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bases, each decoder's scaling after its base (`lm 500000 llama3 x8 from 8K`).
fn rope_cell(bases: &BTreeMap<String, f64>, scaling: &BTreeMap<String, RopeScaling>) -> String {
    bases
        .iter()
        .map(|(k, v)| match scaling.get(k) {
            Some(s) => format!("{k} {} {}", units::trim(*v), s.brief()),
            None => format!("{k} {}", units::trim(*v)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(plan: &Plan) -> String {
    let mut rows: Vec<[String; 10]> = vec![[
        "stage / phase".into(),
        "steps".into(),
        "tokens".into(),
        "batch".into(),
        "tok/step".into(),
        "seq_len".into(),
        "rope".into(),
        "schedule".into(),
        "lr start -> end".into(),
        "mix start -> end".into(),
    ]];
    for st in &plan.stages {
        let sched = format!(
            "{}{}",
            if st.schedule.resumed { "resume " } else { "" },
            st.schedule.name
        );
        if st.is_soup() {
            // No steps: what it is made of, where the mixture would be.
            let inputs: Vec<String> = st
                .average
                .iter()
                .map(|a| format!("{} {}%", a.stage, units::trim2(a.weight * 100.0)))
                .collect();
            rows.push([
                st.name.clone(),
                "0".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                units::length(st.seq_len),
                rope(&st.rope_base),
                "-".into(),
                format!("= {}", units::lr(st.lr.end)),
                format!("average: {}", inputs.join(", ")),
            ]);
            continue;
        }
        let (batch, tps) = if st.phases.len() > 1 {
            ("-".into(), "-".into())
        } else {
            batch_cells(&st.phases[0])
        };
        rows.push([
            st.name.clone(),
            units::grouped(st.steps),
            units::tokens(st.tokens),
            batch,
            tps,
            if st.phases.len() > 1 {
                "-".into()
            } else {
                units::length(st.seq_len)
            },
            if st.phases.len() > 1 {
                "-".into()
            } else {
                rope_cell(&st.rope_base, &st.rope_scaling)
            },
            sched,
            format!("{} -> {}", units::lr(st.lr.start), units::lr(st.lr.end)),
            mix_cell(&st.mix.start, &st.mix.end),
        ]);
        if st.phases.len() > 1 {
            for ph in &st.phases {
                let (batch, tps) = batch_cells(ph);
                rows.push([
                    format!("  .{}", ph.name.as_deref().unwrap_or("")),
                    units::grouped(ph.steps),
                    units::tokens(ph.tokens),
                    batch,
                    tps,
                    units::length(ph.seq_len),
                    rope_cell(&ph.rope_base, &ph.rope_scaling),
                    String::new(),
                    format!("{} -> {}", units::lr(ph.lr.start), units::lr(ph.lr.end)),
                    mix_cell(&ph.mix.start, &ph.mix.end),
                ]);
            }
        }
    }
    let widths: Vec<usize> = (0..10)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let profile = plan
        .profile
        .as_ref()
        .map_or(String::new(), |p| format!(" (profile {p})"));
    let _ = writeln!(
        out,
        "pipeline {}{profile}: {} stages, {} tokens, {} steps",
        plan.pipeline,
        plan.stages.len(),
        units::tokens(plan.total_tokens),
        units::grouped(plan.total_steps)
    );
    // Parallel branches (variants, a ViT branch): the compute above counts each of them, the
    // wall clock only the longest chain.
    if plan.sequential_steps != plan.total_steps {
        let _ = writeln!(
            out,
            "in sequence (parallel branches side by side): {} tokens, {} steps",
            units::tokens(plan.sequential_tokens),
            units::grouped(plan.sequential_steps)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for c in 0..10 {
            let right = (1..=5).contains(&c);
            let cell = if right {
                format!("{:>w$}", r[c], w = widths[c])
            } else {
                format!("{:<w$}", r[c], w = widths[c])
            };
            line.push_str(&cell);
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 9));
        }
    }
    // A branch point is where the branch's weights come from: the step, as rounded.
    for st in &plan.stages {
        if let Some(b) = &st.branch {
            let _ = writeln!(
                out,
                "branch {}: from {} after step {} (token {}), beside the rest of {}",
                st.name,
                b.parent,
                units::grouped(b.step),
                units::tokens(b.tokens),
                b.parent
            );
        }
    }
    // A schedule's span is what its curve is fitted to: a stage that resumes it stretches the
    // curve of the stages before it, so the span and who shares it are shown.
    for sc in &plan.schedules {
        let _ = writeln!(
            out,
            "schedule {}: span {} tokens, stages {}",
            sc.name,
            units::tokens(sc.span),
            sc.stages.join(", ")
        );
    }
    let _ = writeln!(out, "optimizer: {}", optimizer(&plan.optimizer));
    for st in &plan.stages {
        let mut own = vec![];
        if st.optimizer != plan.optimizer {
            own.push(format!("optimizer {}", optimizer(&st.optimizer)));
        }
        if !st.lr_scale.is_empty() {
            own.push(format!("lr_scale {}", rope(&st.lr_scale)));
        }
        if let Some(seed) = st.seed {
            own.push(format!("seed {seed}"));
        }
        if !own.is_empty() {
            let _ = writeln!(out, "  {}: {}", st.name, own.join(", "));
        }
    }
    // What a stage hands on when it averages its weights along the way.
    for st in &plan.stages {
        let Some(a) = st.averaging else { continue };
        let how = match a {
            super::StageAverage::Last { first_step, steps } => format!(
                "the mean of the weights after its last {} steps (steps {}..={})",
                units::grouped(steps),
                units::grouped(first_step),
                units::grouped(st.steps - 1)
            ),
            super::StageAverage::Ema { decay } => {
                format!("an exponential moving average of its weights, decay {decay} per step")
            }
        };
        let _ = writeln!(out, "average {}: hands on {how}", st.name);
    }
    out
}

/// `adamw(beta1 = 0.9, ...)` with every argument, as a recipe writes it.
pub fn optimizer(o: &crate::check::ir::Optimizer) -> String {
    use crate::schema::optimizer::{ADAMW, PARAMS};
    let args: Vec<String> = PARAMS
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} = {}", p.name, units::setting(o.get(i))))
        .collect();
    format!("{ADAMW}({})", args.join(", "))
}

pub fn render_point(p: &StepState) -> String {
    let mut out = String::new();
    let phase = p
        .phase
        .as_ref()
        .map_or(String::new(), |ph| format!(".{ph}"));
    let _ = writeln!(
        out,
        "{}{phase} step {} (run step {})",
        p.stage,
        units::grouped(p.step),
        units::grouped(p.global_step)
    );
    let _ = writeln!(
        out,
        "  tokens     {} into the stage",
        units::tokens(p.tokens)
    );
    let _ = writeln!(out, "  lr         {}", units::lr(p.lr));
    let _ = writeln!(
        out,
        "  seq_len    {} ({} tokens/step, batch {})",
        units::length(p.seq_len),
        units::grouped(p.tokens_per_step),
        p.batch
    );
    let _ = writeln!(out, "  rope_base  {}", rope(&p.rope_base));
    for (m, s) in &p.rope_scaling {
        let _ = writeln!(out, "  rope_scaling {m} {s}");
    }
    let _ = writeln!(out, "  mix        {}", shares(&p.mix));
    out
}
