//! A smooth mixture ramp cut into pieces of static shares: no released engine changes its
//! mixture inside a run, so a phase whose shares move becomes K runs, each with the mean share
//! of its steps. K is the smallest that keeps every step within `MAX_ERROR` of the plan, unless
//! the user picks it (`--ramp-pieces`).

use pipelang::plan::{PhasePlan, Plan};
use serde::{Deserialize, Serialize};

/// The default bound: no source's share is ever more than 1 point off the plan.
pub const MAX_ERROR: f64 = 0.01;

/// Steps a piece's mean and error are taken over when it is longer (full-scale stages have
/// millions of steps; shares are smooth, so evenly spaced steps with both ends suffice).
const SAMPLES: u64 = 2048;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    /// First step, counted within the stage.
    pub first_step: u64,
    pub steps: u64,
    /// Share of every source, indexed like `Plan::sources` (zeros included).
    pub shares: Vec<f64>,
    /// The largest distance between a share here and the plan's, over the piece's steps.
    pub max_error: f64,
}

fn sample_steps(first: u64, n: u64) -> Vec<u64> {
    if n <= SAMPLES {
        return (first..first + n).collect();
    }
    (0..SAMPLES)
        .map(|i| first + i * (n - 1) / (SAMPLES - 1))
        .collect()
}

fn piece(plan: &Plan, stage: usize, first: u64, n: u64) -> Piece {
    let steps = sample_steps(first, n);
    let all: Vec<Vec<f64>> = steps
        .iter()
        .map(|&s| plan.mix_at(stage, s).into_raw())
        .collect();
    let mut mean = vec![0.0; plan.sources.len()];
    for v in &all {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x / all.len() as f64;
        }
    }
    let max_error = all
        .iter()
        .flat_map(|v| v.iter().zip(&mean).map(|(x, m)| (x - m).abs()))
        .fold(0.0, f64::max);
    Piece {
        first_step: first,
        steps: n,
        shares: mean,
        max_error,
    }
}

/// `k` pieces of (nearly) equal steps over a phase.
fn cut(plan: &Plan, stage: usize, ph: &PhasePlan, k: u64) -> Vec<Piece> {
    let k = k.clamp(1, ph.steps.max(1));
    (0..k)
        .map(|i| {
            let a = ph.steps * i / k;
            let b = ph.steps * (i + 1) / k;
            piece(plan, stage, ph.first_step + a, b - a)
        })
        .collect()
}

/// The pieces of one phase: `k` of them when given, else the fewest within `MAX_ERROR`
/// (a phase whose shares do not move is one piece).
pub fn split(plan: &Plan, stage: usize, ph: &PhasePlan, k: Option<u64>) -> Vec<Piece> {
    if let Some(k) = k {
        return cut(plan, stage, ph, k);
    }
    let mut k = 1;
    loop {
        let pieces = cut(plan, stage, ph, k);
        if pieces.iter().all(|p| p.max_error <= MAX_ERROR) || k >= ph.steps {
            return pieces;
        }
        // For shares linear in the position the error halves as k doubles: jump close.
        let worst = pieces.iter().map(|p| p.max_error).fold(0.0, f64::max);
        k = (k + 1).max((k as f64 * worst / MAX_ERROR).floor() as u64);
    }
}
