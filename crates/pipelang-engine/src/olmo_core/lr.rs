//! A run's LR as OLMo-core schedules it. OLMo-core sets a step's LR after adding that step's
//! tokens (`Scheduler.set_lr` reads `trainer.global_train_tokens_seen`), and every run counts
//! its tokens from zero, so the engine asks for step `k` at `c = (k + 1) tokens_per_step`
//! while the plan's LR of that step is the curve at the step's first token,
//! `offset + k tokens_per_step`. The export shifts by one step: a first stage of
//! `tokens_per_step` tokens holds the run's first LR, and the curve's pieces follow.
//!
//! Where the pieces fit `ComposableScheduler` exactly (linear and cosine pieces, whole token
//! boundaries, a cosine entered at its start) the run gets one; otherwise (a cosine entered
//! part-way, sqrt, exponential, a cut cosine) the driver's registered `pipelang_curve`
//! scheduler evaluates the plan's own pieces, with the same shift.

use pipelang::plan::lr::{Piece, Shape};
use serde::{Deserialize, Serialize};

use crate::runs::EngineRun;

/// `ComposableSchedulerStage` with an explicit `start_lr` and `end_lr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub duration: u64,
    pub shape: StageShape,
    pub start_lr: f64,
    pub end_lr: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageShape {
    Linear,
    Cosine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scheduler {
    /// `ComposableScheduler(units="tokens", stages=...)`.
    Composable { stages: Vec<Stage> },
    /// The driver's `pipelang_curve`: the plan's pieces at `offset + c - shift`.
    Curve {
        offset: f64,
        shift: u64,
        span: f64,
        pieces: Vec<Piece>,
    },
}

/// A token position that is a whole number (within rounding of a share of the span).
fn whole(x: f64) -> Option<u64> {
    let r = x.round();
    ((x - r).abs() <= 1e-6 * r.abs().max(1.0) && r >= 0.0).then_some(r as u64)
}

fn composable(run: &EngineRun) -> Option<Vec<Stage>> {
    let tps = run.tokens_per_step;
    let offset = whole(run.lr.offset)?;
    let first = run.plan_lr(0);
    let mut stages = vec![Stage {
        duration: tps,
        shape: StageShape::Linear,
        start_lr: first,
        end_lr: first,
    }];
    for p in &run.lr.pieces {
        let (start, end) = (whole(p.start)?, whole(p.end)?);
        let a = start.max(offset);
        if end <= a {
            continue;
        }
        let (shape, start_lr, end_lr) = match p.shape {
            Shape::Linear { to, .. } => (StageShape::Linear, p.at(a as f64), to),
            // A cosine stays one only when entered at its start.
            Shape::Cosine { from, to } if a == start => (StageShape::Cosine, from, to),
            _ => return None,
        };
        stages.push(Stage {
            duration: end - a,
            shape,
            start_lr,
            end_lr,
        });
    }
    Some(stages)
}

impl Scheduler {
    pub fn of(run: &EngineRun) -> Scheduler {
        match composable(run) {
            Some(stages) => Scheduler::Composable { stages },
            None => Scheduler::Curve {
                offset: run.lr.offset,
                shift: run.tokens_per_step,
                span: run.lr.span,
                pieces: run.lr.pieces.clone(),
            },
        }
    }

    /// The LR OLMo-core sets at `current` tokens seen: a port of
    /// `ComposableScheduler._main_schedule_lr` and of the driver's `PipelangCurve.get_lr`.
    pub fn at(&self, current: u64) -> f64 {
        match self {
            Scheduler::Composable { stages } => {
                let mut stage_start = 0;
                let mut previous_end = 0.0;
                for s in stages {
                    let stage_end = stage_start + s.duration;
                    if current < stage_end {
                        let c = (current - stage_start) as f64;
                        let d = s.duration as f64;
                        return match s.shape {
                            StageShape::Linear => s.start_lr + (s.end_lr - s.start_lr) * c / d,
                            StageShape::Cosine => {
                                s.end_lr
                                    + (s.start_lr - s.end_lr)
                                        * (1.0 + (std::f64::consts::PI * c / d).cos())
                                        / 2.0
                            }
                        };
                    }
                    previous_end = s.end_lr;
                    stage_start = stage_end;
                }
                previous_end
            }
            Scheduler::Curve {
                offset,
                shift,
                span,
                pieces,
            } => {
                let x = (offset + current as f64 - *shift as f64).clamp(0.0, *span);
                let i = pieces.partition_point(|p| p.end <= x).min(pieces.len() - 1);
                pieces[i].at(x)
            }
        }
    }

    /// The LR the engine sets at the run's step `k` (0-based).
    pub fn at_step(&self, run: &EngineRun, k: u64) -> f64 {
        self.at((k + 1) * run.tokens_per_step)
    }
}
