//! A stage's phases in steps: each phase's budget, batch, sequence length and RoPE bases, and
//! its step count (whole steps, with a warning when rounding moves the budget).

use crate::check::ir::*;
use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics};

use super::transitions::{self, Held};
use crate::plan::batch::{self, BatchRun};

/// One phase (a stage without phases has one, unnamed), before the plan names its models.
#[derive(Debug, Clone)]
pub(crate) struct PhaseSteps {
    pub name: Option<String>,
    /// Token position inside the stage where the phase starts (declared budgets).
    pub start: f64,
    pub tokens: f64,
    /// Of the first step.
    pub batch: u64,
    pub seq_len: u64,
    /// Of the first step.
    pub tokens_per_step: u64,
    pub steps: u64,
    /// Runs of steps with one batch (one run unless the batch ramps).
    pub runs: Vec<BatchRun>,
    /// Tokens of the phase's whole steps.
    pub trained: f64,
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
    let stage_batch = st
        .batch
        .unwrap_or(Sp::new(Batch::Sequences(p.batch.value), p.batch.span));
    let declared: Vec<Option<&Phase>> = if st.phases.is_empty() {
        vec![None]
    } else {
        st.phases.iter().map(Some).collect()
    };
    let mut out = vec![];
    let mut start = 0.0;
    for ph in declared {
        // A ramp counts from where it is written: the stage's start, or its own phase's.
        let (tokens, batch, origin, budget_span) = match ph {
            None => (st.budget.value, stage_batch, 0.0, st.budget.span),
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
                match ph.batch {
                    Some(b) => (tokens, b, 0.0, ph.budget.span),
                    None => (tokens, stage_batch, start, ph.budget.span),
                }
            }
        };
        let (batch, seq_len) = countable(batch, seq, diags);
        if let Batch::Tokens(t) = batch.value {
            batch_tokens_rounding(t, seq_len, batch.span, diags);
        }
        let runs = batch::runs(batch.value, seq_len, origin, tokens);
        let first = runs.runs[0].batch;
        let tps = first * seq_len;
        whole_steps(tokens, &runs, tps, first, seq_len, budget_span, diags);
        out.push(PhaseSteps {
            name: ph.map(|x| x.name.clone()),
            start,
            tokens,
            batch: first,
            seq_len,
            tokens_per_step: tps,
            steps: runs.steps,
            trained: runs.trained,
            runs: runs.runs,
            rope: rope.iter().map(|(m, h)| (*m, h.value)).collect(),
        });
        start += tokens;
    }
    out
}

/// Tokens per step past 2^53 are not whole numbers in f64 and overflow u64 products (the
/// fuzzer found `seq_len` of 120 digits): reported at the batch, and the phase is walked as
/// one sequence of one token so that the rest of the file is still checked.
const MAX_STEP_TOKENS: f64 = 9_007_199_254_740_992.0;

fn countable(batch: Sp<Batch>, seq: &Held<u64>, diags: &mut Diagnostics) -> (Sp<Batch>, u64) {
    let sequences = match batch.value {
        Batch::Sequences(b) => b as f64,
        Batch::Ramp { from, to, .. } => from.max(to) as f64,
        Batch::Tokens(t) => t / seq.value.max(1) as f64,
    };
    let step = sequences * seq.value as f64;
    if step <= MAX_STEP_TOKENS {
        return (batch, seq.value);
    }
    diags.push(
        Diagnostic::new(
            Code::RANGE,
            format!(
                "a step of {sequences:.0} sequences of {} tokens is {step:.3e} tokens, more than \
                 a plan can count",
                seq.value
            ),
        )
        .label(batch.span, "tokens per step past 2^53")
        .help("lower `batch` or `seq_len`: a step holds at most 2^53 (about 9e15) tokens"),
    );
    (Sp::new(Batch::Sequences(1), batch.span), 1)
}

/// `batch_tokens` that whole sequences of the phase's seq_len miss by more than 0.1%.
fn batch_tokens_rounding(
    tokens: f64,
    seq_len: u64,
    span: crate::syntax::Span,
    diags: &mut Diagnostics,
) {
    let n = batch::tokens_to_sequences(tokens, seq_len);
    let got = (n * seq_len) as f64;
    if (got - tokens).abs() / tokens > 1e-3 {
        diags.push(
            Diagnostic::new(
                Code::BATCH_TOKENS_ROUNDING,
                format!(
                    "`batch_tokens = {}` is {} sequences of {} = {} tokens per step",
                    units::tokens(tokens),
                    units::grouped(n),
                    units::length(seq_len),
                    units::grouped(n * seq_len),
                ),
            )
            .label(
                span,
                format!(
                    "{:+.2}% in whole sequences of {}",
                    (got - tokens) / tokens * 100.0,
                    units::length(seq_len)
                ),
            )
            .help(format!(
                "a step holds whole sequences: write a multiple of the seq_len {} (e.g. `batch_tokens = {}`)",
                units::length(seq_len),
                n * seq_len
            )),
        );
    }
}

/// Warns when the whole steps that cover `tokens` (the last one whole) train more than 0.1%
/// past it.
fn whole_steps(
    tokens: f64,
    runs: &batch::PhaseRuns,
    tps: u64,
    batch: u64,
    seq_len: u64,
    budget_span: crate::syntax::Span,
    diags: &mut Diagnostics,
) {
    if !(tokens.is_finite() && tokens > 0.0) {
        return;
    }
    let (steps, trained) = (runs.steps, runs.trained);
    if (trained - tokens).abs() / tokens > 1e-3 {
        // Under a ramp the steps differ; the last one is what passes the budget.
        let of = match runs.runs.last() {
            Some(last) if runs.runs.len() > 1 => format!(
                "(batch {} -> {})",
                units::grouped(batch),
                units::grouped(last.batch)
            ),
            _ => format!("of {} tokens", units::grouped(tps)),
        };
        diags.push(
            Diagnostic::new(
                Code::ROUNDING,
                format!(
                    "{} whole steps {of} train {} tokens, not {}",
                    units::grouped(steps),
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
}
