//! LR schedules as piecewise curves over a schedule's token span. Built once per schedule run;
//! evaluating at a token position is a binary search (O(log n) in the number of pieces).

use serde::{Deserialize, Serialize};

use crate::check::ir::{DecayShape, Duration, Segment, SegmentKind, Sp};
use crate::syntax::Span;

/// In JSON, `{"kind": "linear", "from": .., "to": ..}` (docs/language.md gives each formula).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// Straight line from `from` to `to`.
    Linear { from: f64, to: f64 },
    /// min + (from - min)(1 + cos(pi p))/2
    Cosine { from: f64, to: f64 },
    /// The first `part` (0..1) of that cosine: to + (from - to)(1 + cos(pi p part))/2; a cosine
    /// whose `horizon` lies beyond the end of its segment.
    CosinePart { from: f64, to: f64, part: f64 },
    /// from - (from - to) sqrt(p)
    Sqrt { from: f64, to: f64 },
    /// from 2^(-p halvings): halves every `1/halvings` of the piece.
    Exponential { from: f64, halvings: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    pub start: f64,
    pub end: f64,
    pub shape: Shape,
}

impl Piece {
    /// The LR at `pos` (clamped to the piece).
    pub fn at(&self, pos: f64) -> f64 {
        let len = self.end - self.start;
        let p = if len <= 0.0 {
            1.0
        } else {
            ((pos - self.start) / len).clamp(0.0, 1.0)
        };
        let pi = std::f64::consts::PI;
        match self.shape {
            Shape::Linear { from, to } => from + (to - from) * p,
            Shape::Cosine { from, to } => to + (from - to) * (1.0 + (pi * p).cos()) / 2.0,
            Shape::CosinePart { from, to, part } => {
                to + (from - to) * (1.0 + (pi * p * part).cos()) / 2.0
            }
            Shape::Sqrt { from, to } => from - (from - to) * p.sqrt(),
            Shape::Exponential { from, halvings } => from * (-p * halvings).exp2(),
        }
    }
    fn end_value(&self) -> f64 {
        self.at(self.end)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub span: f64,
    pub pieces: Vec<Piece>,
}

impl Curve {
    /// LR at a token position counted from the start of the span (clamped to the span).
    pub fn at(&self, pos: f64) -> f64 {
        if self.pieces.is_empty() {
            return 0.0;
        }
        let pos = pos.clamp(0.0, self.span);
        let i = self
            .pieces
            .partition_point(|p| p.end <= pos)
            .min(self.pieces.len() - 1);
        self.pieces[i].at(pos)
    }

    pub fn peak_between(&self, a: f64, b: f64) -> f64 {
        // Extremes of every piece are at its ends, so the ends inside [a, b] and a, b suffice.
        let mut best = self.at(a).max(self.at(b));
        for p in &self.pieces {
            for x in [p.start, p.end] {
                if x >= a && x <= b {
                    best = best.max(self.at(x));
                }
            }
        }
        best
    }
}

/// A schedule argument that cannot be placed, found while building the curve (the span and the
/// tokens per step are known only then).
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A duration that does not fit: which argument, how long it is, and the room left.
    TooLong {
        span: Span,
        what: &'static str,
        tokens: f64,
        room: f64,
    },
    /// An `until` at or before the position where its segment starts.
    UntilNotAfter { span: Span, at: f64, start: f64 },
    /// An `until` beyond the span (or at its end, before another segment).
    UntilBeyond { span: Span, at: f64, end: f64 },
    /// A `horizon` not longer than the warmup it includes.
    HorizonWithinWarmup {
        span: Span,
        horizon: f64,
        warmup: f64,
    },
    /// A token duration above 0 and shorter than one step: steps meant, tokens written.
    UnderAStep {
        span: Span,
        what: &'static str,
        tokens: f64,
        step: f64,
    },
    /// A segment that starts from the LR before it (`linear` without `from`, `cosine` without
    /// `peak`, `exponential` without `from`) starts the schedule, and nothing hands one over.
    NoStartLr {
        span: Span,
        function: &'static str,
        arg: &'static str,
    },
}

/// Where the optimizer steps of a schedule's span fall: steps of different sizes (phases with
/// other batches or lengths, batch ramps) one after the other, so a duration in steps is the
/// tokens of the steps it covers where it lies.
#[derive(Debug, Clone, PartialEq)]
pub struct StepClock {
    /// Runs of equal steps in span order: (first token, first step, tokens per step).
    runs: Vec<(f64, f64, f64)>,
}

impl StepClock {
    /// Steps of `tokens_per_step` everywhere.
    pub fn uniform(tokens_per_step: f64) -> StepClock {
        StepClock {
            runs: vec![(0.0, 0.0, tokens_per_step)],
        }
    }

    /// From runs of equal steps in span order: (first token, tokens per step, steps).
    pub fn from_runs(runs: impl IntoIterator<Item = (f64, f64, u64)>) -> StepClock {
        let mut out: Vec<(f64, f64, f64)> = vec![];
        let mut step = 0u64;
        for (pos, tps, n) in runs {
            out.push((pos, step as f64, tps));
            step += n;
        }
        if out.is_empty() {
            out.push((0.0, 0.0, 1.0));
        }
        StepClock { runs: out }
    }

    /// The step (fractional) where token `pos` of the span falls.
    fn step_at(&self, pos: f64) -> f64 {
        let i = self.runs.partition_point(|r| r.0 <= pos).saturating_sub(1);
        let (p, s, t) = self.runs[i];
        s + (pos - p) / t
    }

    /// The token where (fractional) step `step` starts.
    fn pos_at(&self, step: f64) -> f64 {
        let i = self.runs.partition_point(|r| r.1 <= step).saturating_sub(1);
        let (p, s, t) = self.runs[i];
        p + (step - s) * t
    }

    /// Tokens of `n` steps from token `pos` on (backwards for a negative `n`).
    pub fn tokens_of_steps(&self, pos: f64, n: f64) -> f64 {
        (self.pos_at((self.step_at(pos) + n).max(0.0)) - pos).abs()
    }

    /// Tokens per step at token `pos`.
    pub fn at(&self, pos: f64) -> f64 {
        let i = self.runs.partition_point(|r| r.0 <= pos).saturating_sub(1);
        self.runs[i].2
    }
}

/// Tokens of a duration at token `at` of the span: shares are of the whole span; steps are
/// those of the span from `at` on (backwards for `back`, a duration that ends at `at`).
pub fn tokens_of(d: Duration, span: f64, clock: &StepClock, at: f64, back: bool) -> f64 {
    match d {
        Duration::Tokens(t) => t,
        Duration::Share(s) => s * span,
        Duration::Steps(n) => clock.tokens_of_steps(at, if back { -(n as f64) } else { n as f64 }),
    }
}

/// Builds pieces and collects problems for one curve.
struct Builder<'c> {
    span: f64,
    clock: &'c StepClock,
    pieces: Vec<Piece>,
    problems: Vec<Problem>,
}

impl Builder<'_> {
    /// Tokens of a duration argument that starts at token `at` (ends there, for `back`), and
    /// whether it is usable for further checks (a token duration under one step is reported
    /// once, as that).
    fn tokens_at(
        &mut self,
        d: Sp<Duration>,
        what: &'static str,
        at: f64,
        back: bool,
    ) -> (f64, bool) {
        let t = tokens_of(d.value, self.span, self.clock, at, back);
        let step = self.clock.at(at);
        if let Duration::Tokens(_) = d.value
            && t > 0.0
            && t < step
        {
            self.problems.push(Problem::UnderAStep {
                span: d.span,
                what,
                tokens: t,
                step,
            });
            return (t, false);
        }
        (t, true)
    }

    fn push(&mut self, a: f64, b: f64, shape: Shape) {
        if b > a || self.pieces.is_empty() && self.span <= 0.0 {
            self.pieces.push(Piece {
                start: a,
                end: b,
                shape,
            });
        }
    }

    /// `prev`, the LR where a segment starts; reported when nothing hands one over.
    fn before(
        &mut self,
        first: bool,
        span: Span,
        prev: f64,
        function: &'static str,
        arg: &'static str,
    ) -> f64 {
        if first {
            self.problems.push(Problem::NoStartLr {
                span,
                function,
                arg,
            });
        }
        prev
    }

    fn hold(&mut self, a: f64, b: f64, lr: f64) {
        self.push(a, b, Shape::Linear { from: lr, to: lr });
    }

    /// A linear warmup from 0 to `peak` at the start of `[start, start + len]`; returns where
    /// it ends.
    fn warm(&mut self, w: Option<Sp<Duration>>, start: f64, len: f64, peak: f64) -> f64 {
        let Some(w) = w else { return start };
        let (t, ok) = self.tokens_at(w, "warmup", start, false);
        if ok && t >= len && t > 0.0 {
            self.problems.push(Problem::TooLong {
                span: w.span,
                what: "warmup",
                tokens: t,
                room: len,
            });
        }
        let t = t.min(len);
        self.push(
            start,
            start + t,
            Shape::Linear {
                from: 0.0,
                to: peak,
            },
        );
        start + t
    }

    /// `max(min, from 2^(-t / half_life))` over `[a, b]`: the halving part, then `min` held.
    fn exponential(&mut self, a: f64, b: f64, from: f64, half_life: Sp<Duration>, min: f64) {
        // A half-life in steps is counted where the decay starts.
        let (h, _) = self.tokens_at(half_life, "half_life", a, false);
        if from <= min {
            return self.hold(a, b, min);
        }
        // Where the curve reaches `min` (never, for a `min` of 0 or a zero half-life).
        let reach = if min > 0.0 && h > 0.0 {
            a + h * (from / min).log2()
        } else if h > 0.0 {
            f64::INFINITY
        } else {
            a
        };
        let cut = reach.min(b);
        self.push(
            a,
            cut,
            Shape::Exponential {
                from,
                halvings: (cut - a) / h,
            },
        );
        self.hold(cut, b, min);
    }
}

/// Builds the curve of a chain of segments over `span` tokens. `handover` is the LR the
/// schedule starts from (a first segment that starts from the LR before it, `rewarmup`,
/// `linear` without `from`, `cosine` without `peak`, `exponential` without `from`, starts from
/// it; `None` means 0).
pub fn build(
    segments: &[Segment],
    span: f64,
    clock: &StepClock,
    handover: Option<f64>,
) -> (Curve, Vec<Problem>) {
    let mut b = Builder {
        span,
        clock,
        pieces: vec![],
        problems: vec![],
    };
    let mut pos = 0.0;
    let mut prev = handover.unwrap_or(0.0);
    let n = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == n;
        let rewarmup = matches!(seg.kind, SegmentKind::Rewarmup { .. });
        let room = (span - pos).max(0.0);
        let len = match (seg.over, seg.until) {
            (Some(o), _) if !last || rewarmup => {
                let (t, ok) = b.tokens_at(o, "over", pos, false);
                // A non-last segment must leave room for what follows.
                if ok && t >= room && (!last || t > room) {
                    b.problems.push(Problem::TooLong {
                        span: o.span,
                        what: "over",
                        tokens: t,
                        room,
                    });
                }
                t.min(room)
            }
            (_, Some(u)) if !last || rewarmup => {
                let (at, ok) = b.tokens_at(u, "until", 0.0, false);
                if ok && at <= pos {
                    b.problems.push(Problem::UntilNotAfter {
                        span: u.span,
                        at,
                        start: pos,
                    });
                } else if ok && (at > span || !last && at >= span) {
                    b.problems.push(Problem::UntilBeyond {
                        span: u.span,
                        at,
                        end: span,
                    });
                }
                (at.min(span) - pos).max(0.0)
            }
            _ => room,
        };
        let start = pos;
        let end = start + len;
        // The LR the segment starts from when it names none: the previous segment's end, or
        // the hand-over LR.
        let first = i == 0 && handover.is_none();
        match &seg.kind {
            SegmentKind::Constant { lr } => b.hold(start, end, lr.value),
            SegmentKind::Linear { from, to } => {
                let from = from.map_or_else(
                    || b.before(first, seg.span, prev, "linear", "from"),
                    |f| f.value,
                );
                b.push(start, end, Shape::Linear { from, to: to.value })
            }
            SegmentKind::Rewarmup { to } => b.push(
                start,
                end,
                Shape::Linear {
                    from: prev,
                    to: to.value,
                },
            ),
            SegmentKind::Exponential {
                from,
                half_life,
                min,
            } => {
                let from = from.map_or_else(
                    || b.before(first, seg.span, prev, "exponential", "from"),
                    |f| f.value,
                );
                b.exponential(start, end, from, *half_life, min.value);
            }
            SegmentKind::Cosine {
                peak,
                warmup,
                min,
                horizon,
            } => {
                let p = peak.map_or_else(
                    || b.before(first, seg.span, prev, "cosine", "peak"),
                    |p| p.value,
                );
                let s = b.warm(*warmup, start, len, p);
                let to = min.value;
                match horizon {
                    None => b.push(s, end, Shape::Cosine { from: p, to }),
                    Some(h) => {
                        let (ht, ok) = b.tokens_at(*h, "horizon", start, false);
                        let reach = start + ht;
                        if ok && reach <= s && s > start {
                            b.problems.push(Problem::HorizonWithinWarmup {
                                span: h.span,
                                horizon: ht,
                                warmup: s - start,
                            });
                        }
                        if reach <= end {
                            b.push(s, reach, Shape::Cosine { from: p, to });
                            b.hold(reach.max(s), end, to);
                        } else {
                            let part = (end - s) / (reach - s);
                            b.push(s, end, Shape::CosinePart { from: p, to, part });
                        }
                    }
                }
            }
            SegmentKind::Wsd {
                peak,
                warmup,
                decay,
                min,
                shape,
            } => {
                let s = b.warm(Some(*warmup), start, len, peak.value);
                let (d, ok) = b.tokens_at(*decay, "decay", end, true);
                if ok && d > end - s {
                    b.problems.push(Problem::TooLong {
                        span: decay.span,
                        what: "decay",
                        tokens: d,
                        room: end - s,
                    });
                }
                let d = d.min(end - s);
                b.hold(s, end - d, peak.value);
                let (from, to) = (peak.value, min.value);
                match shape {
                    DecayShape::Linear => b.push(end - d, end, Shape::Linear { from, to }),
                    DecayShape::Cosine => b.push(end - d, end, Shape::Cosine { from, to }),
                    DecayShape::Sqrt => b.push(end - d, end, Shape::Sqrt { from, to }),
                    DecayShape::Exponential { half_life } => {
                        b.exponential(end - d, end, from, *half_life, to)
                    }
                }
            }
        }
        if let Some(last) = b.pieces.last() {
            prev = last.end_value();
        }
        pos = end;
    }
    (
        Curve {
            span,
            pieces: b.pieces,
        },
        b.problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp<T>(v: T) -> Sp<T> {
        Sp::new(v, Span::default())
    }

    #[test]
    fn wsd_holds_then_decays_linearly() {
        let seg = Segment {
            kind: SegmentKind::Wsd {
                peak: sp(1.0),
                warmup: sp(Duration::Tokens(10.0)),
                decay: sp(Duration::Share(0.1)),
                min: sp(0.1),
                shape: DecayShape::Linear,
            },
            over: None,
            until: None,
            span: Span::default(),
        };
        let (c, p) = build(&[seg], 1000.0, &StepClock::uniform(1.0), None);
        assert!(p.is_empty());
        assert_eq!(c.at(0.0), 0.0);
        assert_eq!(c.at(5.0), 0.5);
        assert_eq!(c.at(500.0), 1.0);
        assert_eq!(c.at(900.0), 1.0);
        assert!((c.at(950.0) - 0.55).abs() < 1e-12);
        assert!((c.at(1000.0) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn rewarmup_climbs_from_the_handover_then_cosine_falls_from_its_target() {
        let segs = vec![
            Segment {
                kind: SegmentKind::Rewarmup { to: sp(2.0) },
                over: Some(sp(Duration::Tokens(100.0))),
                until: None,
                span: Span::default(),
            },
            Segment {
                kind: SegmentKind::Cosine {
                    peak: None,
                    warmup: None,
                    min: sp(0.0),
                    horizon: None,
                },
                over: None,
                until: None,
                span: Span::default(),
            },
        ];
        let (c, p) = build(&segs, 300.0, &StepClock::uniform(1.0), Some(0.5));
        assert!(p.is_empty());
        assert_eq!(c.at(0.0), 0.5);
        assert_eq!(c.at(50.0), 1.25);
        assert_eq!(c.at(100.0), 2.0);
        // half-way through the cosine: min + (peak - min)(1 + cos(pi/2))/2 = 1.0
        assert!((c.at(200.0) - 1.0).abs() < 1e-12);
        assert!(c.at(300.0).abs() < 1e-12);
    }

    #[test]
    fn a_warmup_longer_than_the_span_is_reported() {
        let seg = Segment {
            kind: SegmentKind::Cosine {
                peak: Some(sp(1.0)),
                warmup: Some(sp(Duration::Steps(20))),
                min: sp(0.0),
                horizon: None,
            },
            over: None,
            until: None,
            span: Span::default(),
        };
        let (_, p) = build(&[seg], 100.0, &StepClock::uniform(10.0), None);
        assert_eq!(
            p,
            vec![Problem::TooLong {
                span: Span::default(),
                what: "warmup",
                tokens: 200.0,
                room: 100.0
            }]
        );
    }
}
