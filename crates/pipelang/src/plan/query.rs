//! Point queries: the state of the run at any step of any stage, in O(log n).
//! `STAGE[.PHASE]@POINT` where POINT is a step (`1200`), tokens into the stage or phase
//! (`10B`), a share of it (`50%`) or `end` (its last step).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{PhasePlan, Plan, StagePlan};
use crate::check::units::{self, Context};
use crate::syntax::Suffix;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Step(u64),
    Tokens(f64),
    Share(f64),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PointQuery {
    pub stage: String,
    pub phase: Option<String>,
    pub at: At,
}

impl std::str::FromStr for PointQuery {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (target, point) = s.split_once('@').ok_or_else(|| {
            format!("`{s}`: expected STAGE[.PHASE]@POINT, e.g. `joint_pretrain@50%`")
        })?;
        let (stage, phase) = match target.split_once('.') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (target.to_string(), None),
        };
        let at = parse_point(point.trim()).ok_or_else(|| {
            format!(
                "`{point}`: a point is a step (`1200`), tokens (`10B`), a share (`50%`) or `end`"
            )
        })?;
        Ok(PointQuery { stage, phase, at })
    }
}

fn parse_point(p: &str) -> Option<At> {
    if p == "end" {
        return Some(At::End);
    }
    if let Some(x) = p.strip_suffix('%') {
        let v: f64 = x.trim().parse().ok()?;
        return (0.0..=100.0).contains(&v).then_some(At::Share(v / 100.0));
    }
    match units::split(p) {
        (num, Suffix::None) => num.parse::<u64>().ok().map(At::Step),
        (num, suffix) => {
            let v: f64 = num.parse().ok()?;
            (v >= 0.0).then_some(At::Tokens(v * units::factor(suffix, Context::Amount)))
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub stage: String,
    pub phase: Option<String>,
    /// Step within the stage (0-based).
    pub step: u64,
    /// Step counted from the start of the whole run.
    pub global_step: u64,
    /// Tokens into the stage where the step starts.
    pub tokens: f64,
    pub lr: f64,
    pub batch: u64,
    pub seq_len: u64,
    pub tokens_per_step: u64,
    pub rope_base: BTreeMap<String, f64>,
    pub mix: BTreeMap<String, f64>,
}

impl StagePlan {
    /// The phase a step of this stage falls in (steps past the end fall in the last phase).
    pub fn phase_of(&self, step: u64) -> &PhasePlan {
        let i = self
            .phases
            .partition_point(|p| p.first_step + p.steps <= step)
            .min(self.phases.len() - 1);
        &self.phases[i]
    }

    /// Tokens into the stage where `step` starts.
    pub fn tokens_at(&self, step: u64) -> f64 {
        let ph = self.phase_of(step);
        ph.start_tokens + (step - ph.first_step.min(step)) as f64 * ph.tokens_per_step as f64
    }
}

impl Plan {
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// LR of a step: the schedule evaluated at the token position where the step starts.
    pub fn lr_at(&self, stage: usize, step: u64) -> f64 {
        let st = &self.stages[stage];
        self.schedules[st.run]
            .curve
            .at(st.schedule.offset + st.tokens_at(step))
    }

    /// Share of every data source (indexed like `sources`) at a step.
    pub fn mix_at(&self, stage: usize, step: u64) -> Vec<f64> {
        let st = &self.stages[stage];
        st.mix_tree.at(st.tokens_at(step) / st.tokens)
    }

    pub fn point(&self, stage: usize, step: u64) -> Point {
        let st = &self.stages[stage];
        let step = step.min(st.steps.saturating_sub(1));
        let ph = st.phase_of(step);
        let global_step = self.stages[..stage].iter().map(|s| s.steps).sum::<u64>() + step;
        let shares = self.mix_at(stage, step);
        Point {
            stage: st.name.clone(),
            phase: ph.name.clone(),
            step,
            global_step,
            tokens: st.tokens_at(step),
            lr: self.lr_at(stage, step),
            batch: ph.batch,
            seq_len: ph.seq_len,
            tokens_per_step: ph.tokens_per_step,
            rope_base: ph.rope_base.clone(),
            mix: shares
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, v)| (self.sources[i].clone(), *v))
                .collect(),
        }
    }

    /// Answers `STAGE[.PHASE]@POINT`.
    pub fn query(&self, q: &PointQuery) -> Result<Point, String> {
        let si = self.stage_index(&q.stage).ok_or_else(|| {
            let names: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
            format!("no stage `{}`; stages: {}", q.stage, names.join(", "))
        })?;
        let st = &self.stages[si];
        let (first, steps, start, tokens, tps) = match &q.phase {
            None => (0, st.steps, 0.0, st.tokens, None),
            Some(name) => {
                let ph = st
                    .phases
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name))
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            st.phases.iter().filter_map(|p| p.name.as_deref()).collect();
                        if names.is_empty() {
                            format!("stage `{}` has no phases", st.name)
                        } else {
                            format!(
                                "no phase `{name}` in `{}`; phases: {}",
                                st.name,
                                names.join(", ")
                            )
                        }
                    })?;
                (
                    ph.first_step,
                    ph.steps,
                    ph.start_tokens,
                    ph.tokens,
                    Some(ph.tokens_per_step),
                )
            }
        };
        let rel = match q.at {
            At::Step(s) => {
                if s >= steps {
                    return Err(format!(
                        "step {s} is past the end: it has {steps} steps (0 ..= {})",
                        steps.saturating_sub(1)
                    ));
                }
                s
            }
            At::End => steps.saturating_sub(1),
            At::Tokens(t) | At::Share(t) => {
                let t = if let At::Share(f) = q.at {
                    f * tokens
                } else {
                    t
                };
                if t > tokens {
                    return Err(format!(
                        "{} tokens is past the end ({} tokens)",
                        crate::check::units::tokens(t),
                        crate::check::units::tokens(tokens)
                    ));
                }
                // The step whose start is at or before that token position.
                let tps = tps.unwrap_or_else(|| st.phase_of(0).tokens_per_step) as f64;
                match q.phase {
                    Some(_) => ((t / tps).floor() as u64).min(steps.saturating_sub(1)),
                    None => step_at_tokens(st, start + t),
                }
            }
        };
        Ok(self.point(si, first + rel))
    }
}

fn step_at_tokens(st: &StagePlan, t: f64) -> u64 {
    let i = st
        .phases
        .partition_point(|p| p.start_tokens + p.tokens <= t)
        .min(st.phases.len() - 1);
    let ph = &st.phases[i];
    let k = ((t - ph.start_tokens) / ph.tokens_per_step as f64)
        .floor()
        .max(0.0) as u64;
    ph.first_step + k.min(ph.steps.saturating_sub(1))
}
