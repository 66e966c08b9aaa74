//! A stage's phase budgets against its budget: `rest` last and once, shares of a budget in
//! steps whole, and the sum exact. Where the units mix (steps in a stage of tokens, tokens in
//! a stage of steps) the sum is known only once the planner has counted the steps where they
//! fall, so `plan/walk/phases.rs` checks it there with `total`.

use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics};

use super::ir::*;

pub fn check(s: &Stage, diags: &mut Diagnostics) {
    if s.phases.is_empty() || !s.budget.value.is_known() {
        return;
    }
    let last = s.phases.len() - 1;
    for (i, ph) in s.phases.iter().enumerate() {
        if ph.budget.value == PhaseBudget::Rest && i != last {
            diags.push(rest_not_last(s, ph));
        }
    }
    if let Budget::Steps(n) = s.budget.value {
        for ph in &s.phases {
            if let PhaseBudget::Share(x) = ph.budget.value
                && share_of_steps(x, n).is_none()
            {
                diags.push(not_whole(s, ph, x, n));
            }
        }
    }
    if !rest_in_place(s) || mixes_units(s) {
        return;
    }
    let (sum, budget) = match s.budget.value {
        Budget::Tokens(t) => (
            s.phases
                .iter()
                .map(|ph| match ph.budget.value {
                    PhaseBudget::Share(x) => x * t,
                    PhaseBudget::Tokens(v) => v,
                    PhaseBudget::Steps(_) | PhaseBudget::Rest => 0.0,
                })
                .sum(),
            t,
        ),
        Budget::Steps(n) => (
            s.phases
                .iter()
                .map(|ph| match ph.budget.value {
                    PhaseBudget::Share(x) => share_of_steps(x, n).unwrap_or(0) as f64,
                    PhaseBudget::Steps(v) => v as f64,
                    PhaseBudget::Tokens(_) | PhaseBudget::Rest => 0.0,
                })
                .sum(),
            n as f64,
        ),
    };
    total(s, sum, budget, diags);
}

/// Whether a phase budget's unit differs from the stage's: steps in a stage of tokens, or
/// tokens in a stage of steps.
pub fn mixes_units(s: &Stage) -> bool {
    s.phases.iter().any(|ph| {
        matches!(
            (s.budget.value, ph.budget.value),
            (Budget::Tokens(_), PhaseBudget::Steps(_)) | (Budget::Steps(_), PhaseBudget::Tokens(_))
        )
    })
}

/// `rest`, if written, only on the last phase.
pub fn rest_in_place(s: &Stage) -> bool {
    let n = s.phases.len();
    !s.phases[..n.saturating_sub(1)]
        .iter()
        .any(|ph| ph.budget.value == PhaseBudget::Rest)
}

/// `x` of `n` steps, when it is a whole number of them (at least one).
pub fn share_of_steps(x: f64, n: u64) -> Option<u64> {
    let v = x * n as f64;
    let r = v.round();
    ((v - r).abs() <= 1e-9 * v.max(1.0) && r >= 1.0).then_some(r as u64)
}

/// The phases' `sum` (in the stage's unit, without a last `rest`) against the stage's
/// `budget`: a `rest` needs something left, other phases must add up exactly.
pub fn total(s: &Stage, sum: f64, budget: f64, diags: &mut Diagnostics) {
    let unit = |v: f64| match s.budget.value {
        Budget::Tokens(_) => units::tokens(v),
        Budget::Steps(_) => format!("{} steps", units::grouped(v.round() as u64)),
    };
    let last = &s.phases[s.phases.len() - 1];
    let tolerance = match s.budget.value {
        Budget::Tokens(_) => 1e-9 * budget,
        Budget::Steps(_) => 0.5,
    };
    if last.budget.value == PhaseBudget::Rest {
        if budget - sum <= tolerance {
            let mut d = Diagnostic::new(
                Code::PHASE_REST,
                format!(
                    "the phases of `{}` before `{}` take {} of its {}: nothing is left for `rest`",
                    s.name,
                    last.name,
                    unit(sum),
                    unit(budget)
                ),
            )
            .label(s.budget.span, "the stage's budget");
            for ph in &s.phases[..s.phases.len() - 1] {
                d = d.label(ph.budget.span, format!("phase `{}`", ph.name));
            }
            diags.push(
                d.label(last.budget.span, "nothing left")
                    .help("shorten the phases before it, or give the stage a larger budget"),
            );
        }
        return;
    }
    if (sum - budget).abs() > tolerance {
        let mut d = Diagnostic::new(
            Code::PHASES,
            format!(
                "the phases of `{}` add up to {} of its budget ({} of {})",
                s.name,
                pct(sum / budget),
                unit(sum),
                unit(budget)
            ),
        )
        .label(s.budget.span, "the stage's budget");
        for ph in &s.phases {
            d = d.label(ph.budget.span, format!("phase `{}`", ph.name));
        }
        diags.push(d.help(
            "phase budgets must add up to exactly the stage's budget (shares to 100%); or write `budget = rest` on the last phase",
        ));
    }
}

fn pct(v: f64) -> String {
    let x = (v * 100.0 * 1e6).round() / 1e6;
    format!("{x}%")
}

fn rest_not_last(s: &Stage, ph: &Phase) -> Diagnostic {
    Diagnostic::new(
        Code::PHASE_REST,
        format!(
            "phase `{}` takes the `rest` of `{}` but is not its last phase",
            ph.name, s.name
        ),
    )
    .label(ph.budget.span, "not the last phase")
    .help(format!(
        "only the last phase can take what the others leave: give `{}` a budget of its own, or move it last",
        ph.name
    ))
}

fn not_whole(s: &Stage, ph: &Phase, x: f64, n: u64) -> Diagnostic {
    let v = x * n as f64;
    Diagnostic::new(
        Code::SHARE_OF_STEPS,
        format!(
            "phase `{}` is {} of {} steps = {} steps, not a whole number",
            ph.name,
            units::trim(x * 100.0) + "%",
            units::grouped(n),
            units::trim(v)
        ),
    )
    .label(ph.budget.span, format!("{} steps", units::trim(v)))
    .label(s.budget.span, "a budget in steps")
    .help(format!(
        "a step is not divided: write the phase in steps (`budget = {} steps`) and let the last phase take the `rest`",
        (v.floor() as u64).max(1)
    ))
}
