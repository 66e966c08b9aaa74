//! Point queries (`pipe plan --at`): a point of a stage or phase, answered with its step state.
//! `STAGE[.PHASE]@POINT` where POINT is a step (`1200`), tokens into the stage or phase
//! (`10B`), a share of it (`50%`) or `end` (its last step).

use super::{Plan, StagePlan, StepState};
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

impl Plan {
    /// Answers `STAGE[.PHASE]@POINT`.
    pub fn query(&self, q: &PointQuery) -> Result<StepState, String> {
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
        Ok(self.step(si, first + rel))
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
