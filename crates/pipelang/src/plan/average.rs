//! Weights averaged along a stage: `average = last(D)` (checkpoint averaging, Polyak) and
//! `ema = DECAY`, resolved to the steps they cover. The runtime keeps the average beside the
//! weights and hands it on at the end of the stage instead of the last step's weights.

use serde::{Deserialize, Serialize};

use super::walk::PhaseSteps;
use crate::check::ir::{Averaging, Duration, Sp, Stage};
use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageAverage {
    /// The uniform mean of the weights after each step from `first_step` to the stage's last
    /// (`steps` of them): the steps that start in the final window.
    Last { first_step: u64, steps: u64 },
    /// `e = w` after the stage's first step, then `e = decay * e + (1 - decay) * w` after
    /// every later one.
    Ema { decay: f64 },
}

/// The steps a stage's averaging covers; a window longer than the stage, or covering no step,
/// is P0240 at the field.
pub(crate) fn resolve(
    st: &Stage,
    phases: &[PhaseSteps],
    tokens: f64,
    diags: &mut Diagnostics,
) -> Option<StageAverage> {
    let a: Sp<Averaging> = st.averaging?;
    let total: u64 = phases.iter().map(|p| p.steps).sum();
    let window = match a.value {
        Averaging::Ema(decay) => return Some(StageAverage::Ema { decay }),
        Averaging::Last(w) => w,
    };
    let (steps, too_long) = match window {
        Duration::Steps(n) => (n, n > total),
        Duration::Tokens(t) => (steps_from(phases, tokens - t), t > tokens),
        Duration::Share(f) => (steps_from(phases, tokens * (1.0 - f)), false),
    };
    let what = match window {
        Duration::Steps(n) => format!("{n} steps"),
        Duration::Tokens(t) => format!("{} tokens", units::tokens(t)),
        Duration::Share(f) => format!("{}% of the stage", units::trim(f * 100.0)),
    };
    if too_long {
        diags.push(
            Diagnostic::new(
                Code::AVERAGE_WINDOW,
                format!(
                    "stage `{}` averages its last {what}, but trains {} ({} steps)",
                    st.name,
                    units::tokens(tokens),
                    units::grouped(total)
                ),
            )
            .label(a.span, "longer than the stage")
            .help("average a window within the stage, e.g. `last(10%)`"),
        );
        return None;
    }
    if steps == 0 {
        diags.push(
            Diagnostic::new(
                Code::AVERAGE_WINDOW,
                format!(
                    "stage `{}` averages its last {what}, where no step starts",
                    st.name
                ),
            )
            .label(a.span, "no step starts in this window")
            .help("widen the window to at least one step (or remove `average`)"),
        );
        return None;
    }
    Some(StageAverage::Last {
        first_step: total - steps,
        steps,
    })
}

/// How many of the stage's last steps start at or after token position `x` of the stage.
fn steps_from(phases: &[PhaseSteps], x: f64) -> u64 {
    let total: u64 = phases.iter().map(|p| p.steps).sum();
    let mut before = 0;
    for ph in phases {
        for (i, r) in ph.runs.iter().enumerate() {
            let end = ph.runs.get(i + 1).map_or(ph.steps, |n| n.first_step);
            let tps = (r.batch * ph.seq_len) as f64;
            let start = ph.start + r.start;
            let j = ((x - start) / tps).ceil().max(0.0) as u64;
            if r.first_step + j < end {
                return total - (before + r.first_step + j);
            }
        }
        before += ph.steps;
    }
    0
}
