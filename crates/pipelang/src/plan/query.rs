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
        let at = parse_point(point.trim())?;
        Ok(PointQuery { stage, phase, at })
    }
}

fn parse_point(p: &str) -> Result<At, String> {
    let unknown =
        || format!("`{p}`: a point is a step (`1200`), tokens (`10B`), a share (`50%`) or `end`");
    if p == "end" {
        return Ok(At::End);
    }
    if let Some(x) = p.strip_suffix('%') {
        let v: f64 = x.trim().parse().map_err(|_| unknown())?;
        // A share that parses but is out of range is not a syntax problem: say which end.
        return match v {
            v if v > 100.0 => Err(format!(
                "`{p}` is past the end: a share runs from 0% to 100% (`end` is the last step)"
            )),
            v if v < 0.0 => Err(format!(
                "`{p}` is before the start: a share runs from 0% to 100%"
            )),
            v => Ok(At::Share(v / 100.0)),
        };
    }
    match units::split(p) {
        (num, Suffix::None) => num.parse::<u64>().map(At::Step).map_err(|_| unknown()),
        (num, suffix) => {
            let v: f64 = num.parse().map_err(|_| unknown())?;
            if v < 0.0 {
                return Err(format!("`{p}` is before the start of the stage"));
            }
            Ok(At::Tokens(v * units::factor(suffix, Context::Amount)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_past_100_percent_says_so() {
        let e = "pre@101%".parse::<PointQuery>().unwrap_err();
        assert!(
            e.contains("past the end") && e.contains("0% to 100%"),
            "{e}"
        );
        let e = "pre@abc".parse::<PointQuery>().unwrap_err();
        assert!(e.contains("a point is a step"), "{e}");
        assert_eq!("pre@100%".parse::<PointQuery>().unwrap().at, At::Share(1.0));
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
        if st.is_soup() {
            let inputs: Vec<&str> = st.average.iter().map(|a| a.stage.as_str()).collect();
            return Err(format!(
                "`{}` is a soup (the average of {}): it has no steps; ask for a step of one of \
                 its inputs or of a stage after it",
                st.name,
                inputs.join(", ")
            ));
        }
        let (first, steps, start, tokens, phase) = match &q.phase {
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
                    Some(ph),
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
                match phase {
                    Some(ph) => ph.step_at_tokens(t),
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
    ph.first_step + ph.step_at_tokens(t - ph.start_tokens)
}

impl super::PhasePlan {
    /// The step of the phase (counted within it) whose start is at or before `t` tokens into
    /// the phase: a binary search over its runs of one batch.
    pub fn step_at_tokens(&self, t: f64) -> u64 {
        let i = self
            .runs
            .partition_point(|r| r.start <= t)
            .saturating_sub(1);
        let run = &self.runs[i];
        let k = ((t - run.start) / (run.batch * self.seq_len) as f64)
            .floor()
            .max(0.0) as u64;
        (run.first_step + k).min(self.steps.saturating_sub(1))
    }
}
