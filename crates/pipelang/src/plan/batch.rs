//! Batches that change inside a phase: a `ramp` gives each step the linear value at the token
//! position where it starts, rounded down to whole sequences. Steps follow one another by their
//! own size, so there is no closed form for where step k starts; instead a phase keeps one run
//! per batch value (at most |to - from| + 1 of them, however many steps), and a step is found
//! by a binary search over the runs.

use serde::{Deserialize, Serialize};

use crate::check::ir::Batch;

/// Tokens per step past which a batch written in sequences is taken for a mistake (the largest
/// published recipes train on about 6e7 tokens per step).
pub const ABSURD_TOKENS_PER_STEP: f64 = 1e9;

/// Consecutive steps of one phase with the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchRun {
    /// First step of the run, counted within the phase.
    pub first_step: u64,
    /// Tokens into the phase where the run's first step starts.
    pub start: f64,
    /// Sequences per step.
    pub batch: u64,
}

/// The steps of a phase: the runs, how many steps, and the tokens they train.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRuns {
    pub runs: Vec<BatchRun>,
    pub steps: u64,
    pub trained: f64,
}

/// The batch of a ramp at `r` tokens from where it is written.
pub fn ramp_at(from: u64, to: u64, over: f64, r: f64) -> u64 {
    if r >= over {
        return to;
    }
    let v = from as f64 + (to as f64 - from as f64) * (r / over);
    // Rounded down, but never past the end value (float noise at the boundary).
    (v.floor() as u64).clamp(from.min(to), from.max(to))
}

/// Steps of `seq_len` tokens per sequence covering `tokens` tokens of a phase whose start lies
/// `origin` tokens after where its batch is written (a stage's ramp counts from the stage's
/// start). A fixed batch is one run.
pub fn runs(batch: Batch, seq_len: u64, origin: f64, tokens: f64) -> PhaseRuns {
    let seq = seq_len.max(1) as f64;
    let mut out = PhaseRuns {
        runs: vec![],
        steps: 0,
        trained: 0.0,
    };
    if !(tokens.is_finite() && tokens > 0.0) {
        out.runs.push(BatchRun {
            first_step: 0,
            start: 0.0,
            batch: fixed(batch, seq_len),
        });
        return out;
    }
    let mut pos = 0.0;
    while pos < tokens {
        let (b, limit) = match batch {
            Batch::Ramp { from, to, over } => {
                let r = origin + pos;
                let b = ramp_at(from, to, over, r);
                (b, next_change(from, to, over, b, r) - origin)
            }
            other => (fixed(other, seq_len), f64::INFINITY),
        };
        let step_tokens = b as f64 * seq;
        let limit = limit.min(tokens);
        // Steps starting before `limit` keep this batch; at least one, so the walk advances.
        let n = (((limit - pos) / step_tokens).ceil() as u64).max(1);
        if out.runs.last().is_none_or(|l| l.batch != b) {
            out.runs.push(BatchRun {
                first_step: out.steps,
                start: pos,
                batch: b,
            });
        }
        out.steps += n;
        pos += n as f64 * step_tokens;
    }
    out.trained = pos;
    out
}

/// The first `steps` steps of a phase (a budget in steps), as `runs` lays them out: the same
/// runs, so a step's batch is where it falls on the ramp.
pub fn runs_steps(batch: Batch, seq_len: u64, origin: f64, steps: u64) -> PhaseRuns {
    let seq = seq_len.max(1) as f64;
    let mut out = PhaseRuns {
        runs: vec![],
        steps: 0,
        trained: 0.0,
    };
    let mut pos = 0.0;
    loop {
        let (b, limit) = match batch {
            Batch::Ramp { from, to, over } => {
                let r = origin + pos;
                let b = ramp_at(from, to, over, r);
                (b, next_change(from, to, over, b, r) - origin)
            }
            other => (fixed(other, seq_len), f64::INFINITY),
        };
        let step_tokens = b as f64 * seq;
        let left = steps - out.steps;
        // Steps starting before `limit` keep this batch; at least one, so the walk advances.
        let n = if limit.is_finite() {
            (((limit - pos) / step_tokens).ceil() as u64)
                .max(1)
                .min(left)
        } else {
            left
        };
        if out.runs.last().is_none_or(|l| l.batch != b) {
            out.runs.push(BatchRun {
                first_step: out.steps,
                start: pos,
                batch: b,
            });
        }
        out.steps += n;
        pos += n as f64 * step_tokens;
        if out.steps == steps {
            break;
        }
    }
    out.trained = pos;
    out
}

/// Sequences per step of a batch that does not change with the position.
pub fn fixed(batch: Batch, seq_len: u64) -> u64 {
    match batch {
        Batch::Sequences(n) => n,
        Batch::Ramp { from, .. } => from,
        Batch::Tokens(t) => tokens_to_sequences(t, seq_len),
    }
}

/// `batch_tokens` in whole sequences of `seq_len` (the nearest, at least one).
pub fn tokens_to_sequences(tokens: f64, seq_len: u64) -> u64 {
    ((tokens / seq_len.max(1) as f64).round() as u64).max(1)
}

/// The first position (from where the ramp is written) past `r` at which the batch is no longer
/// `b`; infinite once the ramp has reached its end.
fn next_change(from: u64, to: u64, over: f64, b: u64, r: f64) -> f64 {
    if r >= over || from == to {
        return f64::INFINITY;
    }
    let (f, t) = (from as f64, to as f64);
    let at = if to > from {
        // v = f + (t - f) r / over reaches b + 1 (or the end).
        if b >= to {
            return f64::INFINITY;
        }
        over * ((b + 1) as f64 - f) / (t - f)
    } else {
        // Decreasing: floor(v) stays b while v >= b, i.e. up to and including this position;
        // the next step that starts after it has a smaller batch.
        let edge = over * (f - b as f64) / (f - t);
        // Smallest position strictly after `edge`.
        edge + edge.abs().max(1.0) * f64::EPSILON
    };
    at.min(over).max(r + f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, step by step: each step's batch is the ramp at the token where it starts.
    fn naive(from: u64, to: u64, over: f64, seq: u64, tokens: f64) -> Vec<u64> {
        let mut pos = 0.0;
        let mut out = vec![];
        while pos < tokens {
            let b = ramp_at(from, to, over, pos);
            out.push(b);
            pos += (b * seq) as f64;
        }
        out
    }

    fn expand(r: &PhaseRuns) -> Vec<u64> {
        let mut out = vec![];
        for (i, run) in r.runs.iter().enumerate() {
            let end = r.runs.get(i + 1).map_or(r.steps, |n| n.first_step);
            out.extend(std::iter::repeat_n(
                run.batch,
                (end - run.first_step) as usize,
            ));
        }
        out
    }

    #[test]
    fn runs_match_the_step_by_step_definition() {
        for &(from, to, over, seq, tokens) in &[
            (3u64, 15u64, 1000.0, 4u64, 3000.0),
            (16, 64, 10_000.0, 8, 40_000.0),
            (64, 16, 10_000.0, 8, 40_000.0),
            (7, 7, 500.0, 3, 2000.0),
            (1, 1000, 1e6, 2, 1e6),
        ] {
            let r = runs(Batch::Ramp { from, to, over }, seq, 0.0, tokens);
            let want = naive(from, to, over, seq, tokens);
            assert_eq!(expand(&r), want, "ramp {from} -> {to} over {over}");
            assert_eq!(r.steps as usize, want.len());
            let trained: u64 = want.iter().map(|b| b * seq).sum();
            assert_eq!(r.trained, trained as f64);
        }
    }

    #[test]
    fn steps_budgets_follow_the_ramp_as_token_budgets_do() {
        for &(from, to, over, seq, steps) in &[
            (3u64, 15u64, 1000.0, 4u64, 40u64),
            (16, 64, 10_000.0, 8, 500),
            (64, 16, 10_000.0, 8, 500),
            (7, 7, 500.0, 3, 9),
        ] {
            let r = runs_steps(Batch::Ramp { from, to, over }, seq, 0.0, steps);
            let mut pos = 0.0;
            let want: Vec<u64> = (0..steps)
                .map(|_| {
                    let b = ramp_at(from, to, over, pos);
                    pos += (b * seq) as f64;
                    b
                })
                .collect();
            assert_eq!(expand(&r), want, "ramp {from} -> {to} over {over}");
            assert_eq!(r.steps, steps);
            assert_eq!(r.trained, want.iter().map(|b| b * seq).sum::<u64>() as f64);
        }
        // A fixed batch: 10 steps of 4 x 8 tokens.
        let r = runs_steps(Batch::Sequences(4), 8, 0.0, 10);
        assert_eq!((r.steps, r.trained, r.runs.len()), (10, 320.0, 1));
    }

    #[test]
    fn a_later_phase_continues_the_stage_ramp() {
        // A phase that starts 500 tokens into the stage sees the ramp from there.
        let r = runs(
            Batch::Ramp {
                from: 10,
                to: 20,
                over: 1000.0,
            },
            1,
            500.0,
            100.0,
        );
        assert_eq!(r.runs[0].batch, 15);
    }

    #[test]
    fn batch_tokens_round_to_whole_sequences() {
        assert_eq!(tokens_to_sequences(16_000_000.0, 8192), 1953);
        assert_eq!(tokens_to_sequences(100.0, 8192), 1);
        assert_eq!(fixed(Batch::Tokens(4.0 * 1024.0 * 1024.0), 8192), 512);
    }
}
