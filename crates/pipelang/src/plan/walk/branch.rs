//! Branch points: `after PARENT @ POSITION` starts a stage from the checkpoint the parent
//! passes at that position. The position becomes a step of the parent (a position in tokens
//! rounds to the nearest step boundary: budgets are decimal, steps are powers of two, so an
//! exact `925B` is almost never a boundary); what the parent hands over there, the sequence
//! length and RoPE bases of the step before it and the LR where it stands, replaces what it
//! hands over at its end.

use crate::check::ir::*;
use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::syntax::Span;

use super::phases::PhaseSteps;
use super::transitions::Held;
use super::{Handed, StageWalk};

/// Where a branch starts: after `step` steps of `parent`, at `tokens` into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BranchPoint {
    pub parent: StageId,
    pub step: u64,
    pub tokens: f64,
}

/// Tokens into the stage where `step` starts (a step past the last one: the end of its steps).
pub(crate) fn tokens_at(phases: &[PhaseSteps], step: u64) -> f64 {
    let mut first = 0;
    for (i, ph) in phases.iter().enumerate() {
        if step < first + ph.steps || i + 1 == phases.len() {
            let k = step - first;
            if k >= ph.steps {
                return ph.start + ph.trained;
            }
            let r = ph
                .runs
                .partition_point(|r| r.first_step <= k)
                .saturating_sub(1);
            let run = &ph.runs[r];
            return ph.start + run.start + ((k - run.first_step) * run.batch * ph.seq_len) as f64;
        }
        first += ph.steps;
    }
    0.0
}

/// The phase of the parent's step before the branch (the last step the branch's weights saw).
fn phase_before(phases: &[PhaseSteps], step: u64) -> usize {
    let mut first = 0;
    for (i, ph) in phases.iter().enumerate() {
        first += ph.steps;
        if step <= first {
            return i;
        }
    }
    phases.len() - 1
}

/// The branch point of stage `st` in its parent's steps; `None` (reported) when it is not
/// strictly inside the parent.
pub(super) fn resolve(
    p: &Pipeline,
    st: &Stage,
    b: &Branch,
    parent: &StageWalk,
    diags: &mut Diagnostics,
) -> Option<BranchPoint> {
    let par = &p.stages[b.parent.value];
    let steps: u64 = parent.phases.iter().map(|ph| ph.steps).sum();
    let end = tokens_at(&parent.phases, steps);
    let (step, wanted) = match b.at.value {
        Budget::Steps(n) => {
            let k = if b.from_end {
                steps.checked_sub(n)
            } else {
                Some(n)
            };
            (k.filter(|&k| k <= steps), None)
        }
        Budget::Tokens(t) => {
            let t = if b.from_end { parent.tokens - t } else { t };
            if !(0.0..=parent.tokens).contains(&t) {
                (None, Some(t))
            } else {
                // The nearest step boundary; the earlier on a tie. `tokens_at` grows with
                // the step, so the first boundary at or past `t` is a binary search.
                let (mut lo, mut hi) = (0u64, steps);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if tokens_at(&parent.phases, mid) < t {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                let up = lo;
                let down = up.saturating_sub(1);
                let near =
                    if tokens_at(&parent.phases, up) - t < t - tokens_at(&parent.phases, down) {
                        up
                    } else {
                        down
                    };
                (Some(near), Some(t))
            }
        }
    };
    let outside = |why: String, help: String, fix: Option<Fix>| {
        Diagnostic::new(
            Code::BRANCH_OUTSIDE,
            format!("`{}` branches from `{}` {why}", st.name, par.name),
        )
        .label(b.at.span, why.clone())
        .label(
            par.name_span,
            format!(
                "`{}` runs {} steps, {} tokens",
                par.name,
                steps,
                units::tokens(end)
            ),
        )
        .help(help)
        .fix(fix)
    };
    let at_end = || {
        Fix::replace(
            format!("start from the final weights of `{}`", par.name),
            Span::new(b.parent.span.end, b.at.span.end),
            "",
        )
    };
    let plain_after = format!(
        "a branch at the end is `after {}` (its final weights): drop the `@ ...`",
        par.name
    );
    let at_start = if par.after.is_empty() {
        format!(
            "a branch at the start of `{}` starts from nothing it trained: run the stage without `after {}`",
            par.name, par.name
        )
    } else {
        let names: Vec<&str> = par
            .after
            .iter()
            .map(|a| p.stages[a.value].name.as_str())
            .collect();
        format!(
            "a branch at the start of `{}` starts from what it starts from: write `after {}` instead",
            par.name,
            names.join(", ")
        )
    };
    match step {
        None => {
            let why = match (b.at.value, wanted) {
                (_, Some(t)) if t < 0.0 => {
                    format!("before its start ({} tokens before it)", units::tokens(-t))
                }
                (_, Some(t)) => format!(
                    "past its end (token {} of {})",
                    units::tokens(t),
                    units::tokens(parent.tokens)
                ),
                (Budget::Steps(n), _) if b.from_end => {
                    format!("before its start ({n} steps back from its end, of {steps})")
                }
                (Budget::Steps(n), _) => format!("past its end (step {n} of {steps})"),
                _ => unreachable!("a position in tokens is always `wanted`"),
            };
            let help = if wanted.is_some_and(|t| t < 0.0)
                || (b.from_end && matches!(b.at.value, Budget::Steps(_)))
            {
                at_start
            } else {
                plain_after.clone()
            };
            diags.push(outside(why, help, None));
            None
        }
        Some(0) => {
            diags.push(outside("at its start".into(), at_start, None));
            None
        }
        Some(k) if k >= steps => {
            diags.push(outside("at its end".into(), plain_after, Some(at_end())));
            None
        }
        Some(k) => {
            let tokens = tokens_at(&parent.phases, k);
            if let Some(t) = wanted
                && (tokens - t).abs() > 1e-3 * t
            {
                diags.push(
                    Diagnostic::new(
                        Code::BRANCH_ROUNDED,
                        format!(
                            "the branch point at token {} of `{}` is not on a step boundary: the branch starts after step {k}, at token {}",
                            units::tokens(t),
                            par.name,
                            units::tokens(tokens)
                        ),
                    )
                    .label(b.at.span, format!("inside step {}", k.min(steps)))
                    .label(par.name_span, format!(
                        "`{}` trains {} tokens per step here",
                        par.name,
                        units::tokens(tokens_at(&parent.phases, k + 1) - tokens)
                    ))
                    .help(format!("write `@ {k} steps` to branch there without rounding"))
                    .fix(Fix::replace(format!("branch after {k} steps"), b.at.span, format!("@ {k} steps"))),
                );
            }
            Some(BranchPoint {
                parent: b.parent.value,
                step: k,
                tokens,
            })
        }
    }
}

/// What the parent hands over at the branch point: its weights, as at its end (the runtime
/// saves them at the step), and the sequence length and RoPE bases of the step before it.
pub(super) fn handed_at(
    p: &Pipeline,
    h: &Handed,
    parent: &StageWalk,
    bp: BranchPoint,
    at: Span,
) -> Handed {
    let i = phase_before(&parent.phases, bp.step);
    let ph = &parent.phases[i];
    let par = &p.stages[bp.parent];
    // Where the value was set: the phase (or an earlier one) that states it, else the stage.
    let declared = |f: &dyn Fn(&Phase) -> Option<Span>, stage: Option<Span>| {
        par.phases
            .get(..=i.min(par.phases.len().saturating_sub(1)))
            .and_then(|phs| phs.iter().rev().find_map(f))
            .or(stage)
            .unwrap_or(at)
    };
    let mut out = h.clone();
    out.seq_len = Held {
        value: ph.seq_len,
        from: declared(
            &|q| q.seq_len.map(|t| t.to.span),
            par.seq_len.map(|t| t.to.span),
        ),
    };
    let rope_from = declared(
        &|q| q.rope_base.map(|t| t.to.span),
        par.rope_base.map(|t| t.to.span),
    );
    for (m, base) in &ph.rope {
        out.rope[*m] = Some(Held {
            value: *base,
            from: rope_from,
        });
    }
    // The RoPE scaling too is the one of the phase the point falls in.
    let scaling_from = declared(
        &|q| q.rope_scaling.map(|t| t.to.span),
        par.rope_scaling.map(|t| t.to.span),
    );
    for (m, scaling) in &ph.scaling {
        out.scaling[*m] = Some(Held {
            value: *scaling,
            from: scaling_from,
        });
    }
    out
}
