//! Whether a started stage would still train exactly as it did: its steps, phases (sequence
//! length, batch, RoPE bases), mixture and LR at every step, compared between the running plan
//! and the new one. Values flow forward along `after` edges, except the LR: a schedule's span
//! is the sum of the budgets of every stage on it, so an edit to a later stage can bend the
//! curve an earlier one already ran.

use crate::check::units;
use crate::plan::{Plan, StagePlan};

/// What differs for a started stage, most basic first (a different step count makes the
/// per-step comparisons meaningless).
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    Steps { old: u64, new: u64 },
    Phases(String),
    Models(String),
    Mix { step: u64 },
    Lr { step: u64, old: f64, new: f64 },
}

impl Difference {
    pub fn describe(&self) -> String {
        match self {
            Difference::Steps { old, new } => format!("its steps would change ({old} -> {new})"),
            Difference::Phases(what) => what.clone(),
            Difference::Models(what) => what.clone(),
            Difference::Mix { step } => format!("its data mixture would change (step {step})"),
            Difference::Lr { step, old, new } => format!(
                "its LR would change (step {step}: {} -> {})",
                units::lr(*old),
                units::lr(*new)
            ),
        }
    }
}

/// The first difference in how stage `name` trains under `old` and `new`, if any.
pub fn compare(old: &Plan, new: &Plan, name: &str) -> Option<Difference> {
    let oi = old.stage_index(name)?;
    let ni = new.stage_index(name)?;
    let (a, b) = (&old.stages[oi], &new.stages[ni]);
    // A changed sequence length changes the step count too: name the cause first.
    if let Some(d) = phases(a, b) {
        return Some(Difference::Phases(d));
    }
    if a.steps != b.steps {
        return Some(Difference::Steps {
            old: a.steps,
            new: b.steps,
        });
    }
    if a.train != b.train || a.freeze != b.freeze || a.loss != b.loss {
        return Some(Difference::Models(
            "the models it trains or its loss would change".into(),
        ));
    }
    let from = |s: &StagePlan| -> Vec<(String, Option<String>)> {
        s.weights_from
            .iter()
            .map(|w| (w.model.clone(), w.from.clone()))
            .collect()
    };
    if from(a) != from(b) {
        return Some(Difference::Models(
            "the stage its weights come from would change".into(),
        ));
    }
    if a.optimizer != b.optimizer {
        return Some(Difference::Models(format!(
            "its optimizer would change ({} -> {})",
            crate::plan::table::optimizer(&a.optimizer),
            crate::plan::table::optimizer(&b.optimizer)
        )));
    }
    if a.lr_scale != b.lr_scale {
        return Some(Difference::Models("its `lr_scale` would change".into()));
    }
    if a.seed != b.seed {
        return Some(Difference::Models("its seed would change".into()));
    }
    if let Some(step) = mix(old, oi, new, ni) {
        return Some(Difference::Mix { step });
    }
    lr(old, oi, new, ni).map(|(step, o, n)| Difference::Lr {
        step,
        old: o,
        new: n,
    })
}

fn phases(a: &StagePlan, b: &StagePlan) -> Option<String> {
    for (p, q) in a.phases.iter().zip(&b.phases) {
        let at = match &p.name {
            Some(n) => format!(" in phase `{n}`"),
            None => String::new(),
        };
        if p.seq_len != q.seq_len {
            return Some(format!(
                "the seq_len it ran with would change{at} ({} -> {})",
                units::length(p.seq_len),
                units::length(q.seq_len)
            ));
        }
        if p.rope_base != q.rope_base {
            return Some(format!(
                "the RoPE base it ran with would change{at} ({} -> {})",
                bases(&p.rope_base),
                bases(&q.rope_base)
            ));
        }
        if p.rope_scaling != q.rope_scaling {
            return Some(format!(
                "the RoPE scaling it ran with would change{at} ({} -> {})",
                scalings(&p.rope_scaling),
                scalings(&q.rope_scaling)
            ));
        }
        if p.batch != q.batch
            || p.runs != q.runs
            || p.first_step != q.first_step
            || p.steps != q.steps
        {
            return Some(format!(
                "its batches would change{at} (batch {} x {} steps -> {} x {})",
                p.batch, p.steps, q.batch, q.steps
            ));
        }
        if !close(p.start_tokens, q.start_tokens) || p.tokens_per_step != q.tokens_per_step {
            return Some(format!("its token positions would change{at}"));
        }
    }
    (a.phases.len() != b.phases.len()).then(|| {
        format!(
            "its phases would change ({} -> {})",
            a.phases.len(),
            b.phases.len()
        )
    })
}

pub fn bases(m: &std::collections::BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = m.values().map(|v| units::tokens(*v)).collect();
    parts.join(", ")
}

pub fn scalings(m: &std::collections::BTreeMap<String, crate::plan::rope::RopeScaling>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
    parts.join(", ")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-30)
}

/// The mixture is a polynomial in the stage fraction of degree at most the nesting depth of
/// its groups (ramps are linear, nested groups multiply), so agreement at nine points of the
/// stage means the same mixture at every step.
fn mix(old: &Plan, oi: usize, new: &Plan, ni: usize) -> Option<u64> {
    let (a, b) = (&old.stages[oi], &new.stages[ni]);
    let last = a.steps.saturating_sub(1);
    for k in 0..=8u64 {
        let step = last * k / 8;
        let f = a.tokens_at(step) / a.tokens;
        let x = a.mix_tree.named(f, &old.sources);
        let y = b.mix_tree.named(f, &new.sources);
        let same = x.len() == y.len()
            && x.iter()
                .zip(&y)
                .all(|((n, v), (m, w))| n == m && close(*v, *w));
        if !same {
            return Some(step);
        }
    }
    None
}

/// The first step whose LR differs. Between breakpoints (piece ends of either curve, phase
/// starts) each LR is one smooth piece of a step's token position (linear, cosine or sqrt), so
/// both ends and three inner steps of every such interval decide it: O(pieces), not O(steps),
/// which matters at full scale (millions of steps).
fn lr(old: &Plan, oi: usize, new: &Plan, ni: usize) -> Option<(u64, f64, f64)> {
    let (a, b) = (&old.stages[oi], &new.stages[ni]);
    if a.steps == 0 {
        return None;
    }
    let last = a.steps - 1;
    let mut marks: Vec<u64> = vec![0, last];
    let mut breakpoint = |x: f64| {
        if x > 0.0 && x < a.tokens {
            let s = step_at(a, x);
            marks.extend([s.saturating_sub(1), s, (s + 1).min(last)]);
        }
    };
    for (plan, st) in [(old, a), (new, b)] {
        for piece in &plan.schedules[st.run].curve.pieces {
            breakpoint(piece.start - st.schedule.offset);
            breakpoint(piece.end - st.schedule.offset);
        }
    }
    for ph in &a.phases {
        breakpoint(ph.start_tokens);
    }
    marks.sort_unstable();
    marks.dedup();
    let mut steps = marks.clone();
    for w in marks.windows(2) {
        let (s, e) = (w[0], w[1]);
        if e > s + 1 {
            steps.extend([s + (e - s) / 4, s + (e - s) / 2, s + 3 * (e - s) / 4]);
        }
    }
    steps.sort_unstable();
    steps.dedup();
    steps.into_iter().find_map(|step| {
        let (x, y) = (old.lr_at(oi, step), new.lr_at(ni, step));
        (!close(x, y)).then_some((step, x, y))
    })
}

/// The step of a stage during which token position `x` (within the stage) is trained.
fn step_at(st: &StagePlan, x: f64) -> u64 {
    for ph in &st.phases {
        let len = (ph.steps * ph.tokens_per_step) as f64;
        if x < ph.start_tokens + len {
            let k = ((x - ph.start_tokens).max(0.0) / ph.tokens_per_step as f64) as u64;
            return ph.first_step + k.min(ph.steps.saturating_sub(1));
        }
    }
    st.steps.saturating_sub(1)
}
