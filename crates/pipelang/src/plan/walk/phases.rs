//! A stage's phases in steps: each phase's budget, batch, sequence length and RoPE bases, and
//! its step count (whole steps, with a warning when rounding moves the budget).

use crate::check::ir::*;
use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics};

use super::transitions::{self, Held};

/// One phase (a stage without phases has one, unnamed), before the plan names its models.
#[derive(Debug, Clone)]
pub(crate) struct PhaseSteps {
    pub name: Option<String>,
    /// Token position inside the stage where the phase starts (declared budgets).
    pub start: f64,
    pub tokens: f64,
    pub batch: u64,
    pub seq_len: u64,
    pub tokens_per_step: u64,
    pub steps: u64,
    /// RoPE base of each decoder in the stage.
    pub rope: Vec<(ModelId, f64)>,
}

/// The stage's phases in order; `seq` and `rope` come in as the stage starts and leave as its
/// last phase ends.
pub(super) fn phases(
    p: &Pipeline,
    st: &Stage,
    seq: &mut Held<u64>,
    rope: &mut [(ModelId, Held<f64>)],
    diags: &mut Diagnostics,
) -> Vec<PhaseSteps> {
    let stage_batch = st.batch.map_or(p.batch.value, |b| b.value);
    let declared: Vec<Option<&Phase>> = if st.phases.is_empty() {
        vec![None]
    } else {
        st.phases.iter().map(Some).collect()
    };
    let mut out = vec![];
    let mut start = 0.0;
    for ph in declared {
        let (tokens, batch, budget_span) = match ph {
            None => (st.budget.value, stage_batch, st.budget.span),
            Some(ph) => {
                if let Some(t) = ph.seq_len {
                    transitions::apply_seq_len(seq, t, diags);
                }
                if let Some(t) = ph.rope_base {
                    transitions::apply_rope(rope, t, diags);
                }
                let tokens = match ph.budget.value {
                    PhaseBudget::Share(x) => x * st.budget.value,
                    PhaseBudget::Tokens(t) => t,
                };
                (
                    tokens,
                    ph.batch.map_or(stage_batch, |b| b.value),
                    ph.budget.span,
                )
            }
        };
        let tps = batch * seq.value;
        let steps = whole_steps(tokens, tps, batch, seq.value, budget_span, diags);
        out.push(PhaseSteps {
            name: ph.map(|x| x.name.clone()),
            start,
            tokens,
            batch,
            seq_len: seq.value,
            tokens_per_step: tps,
            steps,
            rope: rope.iter().map(|(m, h)| (*m, h.value)).collect(),
        });
        start += tokens;
    }
    out
}

/// Steps of `tps` tokens that cover `tokens` (the last one whole).
fn whole_steps(
    tokens: f64,
    tps: u64,
    batch: u64,
    seq_len: u64,
    budget_span: crate::syntax::Span,
    diags: &mut Diagnostics,
) -> u64 {
    if !(tokens.is_finite() && tokens > 0.0) {
        return 0;
    }
    let steps = (tokens / tps as f64).ceil() as u64;
    let trained = steps as f64 * tps as f64;
    if (trained - tokens).abs() / tokens > 1e-3 {
        diags.push(
            Diagnostic::new(
                Code::ROUNDING,
                format!(
                    "{} whole steps of {} tokens train {} tokens, not {}",
                    units::grouped(steps),
                    units::grouped(tps),
                    units::tokens(trained),
                    units::tokens(tokens)
                ),
            )
            .label(
                budget_span,
                format!(
                    "{:+.2}% after rounding to whole steps",
                    (trained - tokens) / tokens * 100.0
                ),
            )
            .help(format!(
                "a step is batch x seq_len = {batch} x {seq_len} tokens: make the budget a multiple of it, or much larger"
            )),
        );
    }
    steps
}
