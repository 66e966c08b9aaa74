//! A stage's phases in steps: each phase's budget, batch, sequence length and RoPE bases, and
//! its step count (whole steps, with a warning when rounding moves the budget).

use crate::check::ir::*;
use crate::check::phase_budgets;
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
    /// RoPE scaling of each decoder in the stage.
    pub scaling: Vec<(ModelId, RopeScaling)>,
}

/// The stage's phases in order; `seq` and `rope` come in as the stage starts and leave as its
/// last phase ends.
pub(super) fn phases(
    p: &Pipeline,
    st: &Stage,
    seq: &mut Held<u64>,
    rope: &mut [(ModelId, Held<f64>)],
    scaling: &mut [(ModelId, Held<RopeScaling>)],
    diags: &mut Diagnostics,
) -> Vec<PhaseSteps> {
    // One report per scaling that does not fit, however many phases it spans.
    let mut too_long: Vec<crate::syntax::Span> = vec![];
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
    let mut steps_so_far = 0;
    // Whether a budget past 2^53 tokens was reported (once per stage).
    let mut past = false;
    for ph in declared {
        // A ramp counts from where it is written: the stage's start, or its own phase's.
        let (target, batch, origin, budget_span) = match ph {
            None => (
                match st.budget.value {
                    Budget::Tokens(t) => Target::Tokens(t),
                    Budget::Steps(n) => Target::Steps(n),
                },
                stage_batch,
                0.0,
                st.budget.span,
            ),
            Some(ph) => {
                if let Some(t) = ph.seq_len {
                    transitions::apply_seq_len(seq, t, diags);
                }
                if let Some(t) = ph.rope_base {
                    transitions::apply_rope(rope, t, diags);
                }
                if let Some(t) = ph.rope_scaling {
                    transitions::apply_scaling(scaling, t, diags);
                }
                let target = phase_target(st.budget.value, ph.budget.value, start, steps_so_far);
                match ph.batch {
                    Some(b) => (target, b, 0.0, ph.budget.span),
                    None => (target, stage_batch, start, ph.budget.span),
                }
            }
        };
        let (batch, seq_len) = countable(batch, seq, diags);
        transitions::original_fits(p, scaling, *seq, &mut too_long, diags);
        if let Batch::Tokens(t) = batch.value {
            batch_tokens_rounding(t, seq_len, batch.span, diags);
        }
        let stage_tokens = match st.budget.value {
            Budget::Tokens(t) => t,
            Budget::Steps(_) => f64::INFINITY,
        };
        let absurd = absurd_batch(batch, seq_len, stage_tokens, diags);
        // A share or `rest` of a stage budget too large is the stage budget's mistake.
        let cause = match ph.map(|x| x.budget.value) {
            Some(PhaseBudget::Tokens(_) | PhaseBudget::Steps(_)) => budget_span,
            _ => st.budget.span,
        };
        let target = countable_target(target, start, batch.value, seq_len, cause, &mut past, diags);
        let (runs, tokens) = match target {
            Target::Tokens(tokens) => {
                let runs = batch::runs(batch.value, seq_len, origin, tokens);
                let first = runs.runs[0].batch;
                // Rounding to steps of an absurd batch is its consequence, not news.
                if !absurd {
                    whole_steps(
                        tokens,
                        &runs,
                        first * seq_len,
                        first,
                        seq_len,
                        budget_span,
                        diags,
                    );
                }
                (runs, tokens)
            }
            // Steps are whole by definition: their tokens are what they train.
            Target::Steps(n) => {
                let runs = batch::runs_steps(batch.value, seq_len, origin, n);
                let trained = runs.trained;
                (runs, trained)
            }
        };
        let first = runs.runs[0].batch;
        steps_so_far += runs.steps;
        out.push(PhaseSteps {
            name: ph.map(|x| x.name.clone()),
            start,
            tokens,
            batch: first,
            seq_len,
            tokens_per_step: first * seq_len,
            steps: runs.steps,
            trained: runs.trained,
            runs: runs.runs,
            rope: rope.iter().map(|(m, h)| (*m, h.value)).collect(),
            scaling: scaling.iter().map(|(m, h)| (*m, h.value)).collect(),
        });
        start += tokens;
    }
    // Steps in a stage of tokens (or tokens in one of steps) add up only now.
    if !st.phases.is_empty()
        && st.budget.value.is_known()
        && phase_budgets::mixes_units(st)
        && phase_budgets::rest_in_place(st)
    {
        let rest = st.phases.last().map(|ph| ph.budget.value) == Some(PhaseBudget::Rest);
        let counted = if rest {
            &out[..out.len() - 1]
        } else {
            &out[..]
        };
        let (sum, budget) = match st.budget.value {
            Budget::Tokens(t) => (counted.iter().map(|p| p.tokens).sum(), t),
            Budget::Steps(n) => (counted.iter().map(|p| p.steps as f64).sum(), n as f64),
        };
        phase_budgets::total(st, sum, budget, diags);
    }
    out
}

/// What a phase trains for: a token amount (whole steps that cover it) or a step count.
#[derive(Debug, Clone, Copy)]
enum Target {
    Tokens(f64),
    Steps(u64),
}

/// A phase's budget in the stage's terms: shares of the stage's unit, `rest` what the phases
/// before it (`start` tokens, `steps` steps) leave.
fn phase_target(stage: Budget, phase: PhaseBudget, start: f64, steps: u64) -> Target {
    match (stage, phase) {
        (_, PhaseBudget::Tokens(t)) => Target::Tokens(t),
        (_, PhaseBudget::Steps(n)) => Target::Steps(n),
        (Budget::Tokens(t), PhaseBudget::Share(x)) => Target::Tokens(x * t),
        (Budget::Tokens(t), PhaseBudget::Rest) => Target::Tokens((t - start).max(0.0)),
        (Budget::Steps(n), PhaseBudget::Share(x)) => {
            Target::Steps(phase_budgets::share_of_steps(x, n).unwrap_or((x * n as f64) as u64))
        }
        (Budget::Steps(n), PhaseBudget::Rest) => Target::Steps(n.saturating_sub(steps)),
    }
}

/// Tokens per step above `batch::ABSURD_TOKENS_PER_STEP`, or above a tenth of the stage's
/// budget from a batch of 100K sequences or more, from a batch written in sequences: most likely tokens meant (`batch = 16M`), so the
/// help suggests `batch_tokens`. Returns whether it warned.
fn absurd_batch(
    batch: Sp<Batch>,
    seq_len: u64,
    stage_tokens: f64,
    diags: &mut Diagnostics,
) -> bool {
    let most = match batch.value {
        Batch::Sequences(n) => n,
        Batch::Ramp { from, to, .. } => from.max(to),
        Batch::Tokens(_) => return false,
    };
    let tps = most as f64 * seq_len as f64;
    // A tenth of the budget alone is not a mistake at small scale (a 5M-token test stage at
    // 512 x 8K); with a batch that reads like a token count (100K sequences and more) it is.
    let of_budget = stage_tokens.is_finite() && tps > stage_tokens / 10.0 && most >= 100_000;
    if tps <= batch::ABSURD_TOKENS_PER_STEP && !of_budget {
        return false;
    }
    let why = if tps > batch::ABSURD_TOKENS_PER_STEP {
        format!(
            "above {} tokens per step",
            units::tokens(batch::ABSURD_TOKENS_PER_STEP)
        )
    } else {
        format!(
            "more than a tenth of the stage's {} tokens",
            units::tokens(stage_tokens)
        )
    };
    diags.push(
        Diagnostic::new(
            Code::ABSURD_BATCH,
            format!(
                "a batch of {} sequences of {} is {} tokens per step, {why}",
                units::grouped(most),
                units::length(seq_len),
                units::tokens(tps)
            ),
        )
        .label(batch.span, "sequences per step")
        .help(format!(
            "`batch` counts sequences; for tokens per step write `batch_tokens = {}`",
            units::tokens(most as f64)
        )),
    );
    true
}

/// Tokens per step (and, in `countable_target`, a stage's tokens) past 2^53 are not whole
/// numbers in f64 and overflow u64 products (the fuzzer found `seq_len` of 120 digits):
/// reported at the batch, and the phase is walked as one sequence of one token so that the rest
/// of the file is still checked.
const MAX_STEP_TOKENS: f64 = 9_007_199_254_740_992.0;

/// The most sequences a step of `batch` holds at `seq_len` (a ramp's larger end).
fn largest_sequences(batch: Batch, seq_len: u64) -> f64 {
    match batch {
        Batch::Sequences(b) => b as f64,
        Batch::Ramp { from, to, .. } => from.max(to) as f64,
        Batch::Tokens(t) => t / seq_len.max(1) as f64,
    }
}

fn countable(batch: Sp<Batch>, seq: &Held<u64>, diags: &mut Diagnostics) -> (Sp<Batch>, u64) {
    let sequences = largest_sequences(batch.value, seq.value);
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

/// A stage's token positions past 2^53 are not whole numbers in f64, and its step count would
/// overflow (the fuzzer found `budget = 1888...B` of 50 digits): reported at the budget, and the
/// phase is walked as one step so that the rest of the file is still checked.
fn countable_target(
    target: Target,
    start: f64,
    batch: Batch,
    seq_len: u64,
    span: crate::syntax::Span,
    reported: &mut bool,
    diags: &mut Diagnostics,
) -> Target {
    // A step holds at least one sequence, however few tokens `batch_tokens` asks for.
    let step = largest_sequences(batch, seq_len).max(1.0) * seq_len as f64;
    let tokens = match target {
        Target::Tokens(t) => t,
        Target::Steps(n) => n as f64 * step,
    };
    // An unknown budget (NaN, already reported) is not too large.
    let end = start + tokens;
    if end.is_nan() || end <= MAX_STEP_TOKENS {
        return target;
    }
    if std::mem::replace(reported, true) {
        return Target::Steps(1);
    }
    diags.push(
        Diagnostic::new(
            Code::RANGE,
            format!(
                "this budget takes the stage past 2^53 tokens (to at least {end:.3e}), more \
                 than a plan can count"
            ),
        )
        .label(span, "past 2^53 tokens")
        .help(
            "a stage trains at most 2^53 (about 9e15, 9,007T) tokens: lower the budget (the \
             units are K, M, B and T tokens, or `steps`)",
        ),
    );
    Target::Steps(1)
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
