//! LR schedules as piecewise curves over a schedule's token span. Built once per schedule run;
//! evaluating at a token position is a binary search (O(log n) in the number of pieces).

use serde::Serialize;

use crate::check::ir::{DecayShape, Duration, Segment, SegmentKind};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Shape {
    /// Straight line from `from` to `to`.
    Linear { from: f64, to: f64 },
    /// min + (from - min)(1 + cos(pi p))/2
    Cosine { from: f64, to: f64 },
    /// from - (from - to) sqrt(p)
    Sqrt { from: f64, to: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Piece {
    pub start: f64,
    pub end: f64,
    pub shape: Shape,
}

impl Piece {
    fn at(&self, pos: f64) -> f64 {
        let len = self.end - self.start;
        let p = if len <= 0.0 {
            1.0
        } else {
            ((pos - self.start) / len).clamp(0.0, 1.0)
        };
        match self.shape {
            Shape::Linear { from, to } => from + (to - from) * p,
            Shape::Cosine { from, to } => {
                to + (from - to) * (1.0 + (std::f64::consts::PI * p).cos()) / 2.0
            }
            Shape::Sqrt { from, to } => from - (from - to) * p.sqrt(),
        }
    }
    fn end_value(&self) -> f64 {
        self.at(self.end)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

/// A duration that does not fit: which segment argument, how long it is, and the room left.
#[derive(Debug, Clone, PartialEq)]
pub struct TooLong {
    pub span: crate::syntax::Span,
    pub what: &'static str,
    pub tokens: f64,
    pub room: f64,
}

/// Tokens of a duration: shares are of the whole span; steps use `tokens_per_step`.
pub fn tokens_of(d: Duration, span: f64, tokens_per_step: f64) -> f64 {
    match d {
        Duration::Tokens(t) => t,
        Duration::Share(s) => s * span,
        Duration::Steps(n) => n as f64 * tokens_per_step,
    }
}

/// Builds the curve of a chain of segments over `span` tokens. `handover` is the LR the
/// schedule starts from (a `rewarmup` first segment climbs from it; `None` means 0).
pub fn build(
    segments: &[Segment],
    span: f64,
    tokens_per_step: f64,
    handover: Option<f64>,
) -> (Curve, Vec<TooLong>) {
    let mut pieces = vec![];
    let mut problems = vec![];
    let mut pos = 0.0;
    let mut prev = handover.unwrap_or(0.0);
    let n = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let room = (span - pos).max(0.0);
        let len = match seg.over {
            Some(o) if i + 1 < n || matches!(seg.kind, SegmentKind::Rewarmup { .. }) => {
                let t = tokens_of(o.value, span, tokens_per_step);
                // A non-last segment must leave room for what follows.
                if t >= room && (i + 1 < n || t > room) {
                    problems.push(TooLong {
                        span: o.span,
                        what: "over",
                        tokens: t,
                        room,
                    });
                }
                t.min(room)
            }
            _ => room,
        };
        let start = pos;
        let end = start + len;
        let push = |pieces: &mut Vec<Piece>, a: f64, b: f64, shape: Shape| {
            if b > a || pieces.is_empty() && span <= 0.0 {
                pieces.push(Piece {
                    start: a,
                    end: b,
                    shape,
                });
            }
        };
        let warm = |pieces: &mut Vec<Piece>,
                    problems: &mut Vec<TooLong>,
                    w: Option<crate::check::ir::Sp<Duration>>,
                    peak: f64| {
            let Some(w) = w else { return start };
            let t = tokens_of(w.value, span, tokens_per_step);
            if t >= len && t > 0.0 {
                problems.push(TooLong {
                    span: w.span,
                    what: "warmup",
                    tokens: t,
                    room: len,
                });
            }
            let t = t.min(len);
            push(
                pieces,
                start,
                start + t,
                Shape::Linear {
                    from: 0.0,
                    to: peak,
                },
            );
            start + t
        };
        match &seg.kind {
            SegmentKind::Constant { lr } => push(
                &mut pieces,
                start,
                end,
                Shape::Linear {
                    from: lr.value,
                    to: lr.value,
                },
            ),
            SegmentKind::Linear { from, to } => push(
                &mut pieces,
                start,
                end,
                Shape::Linear {
                    from: from.value,
                    to: to.value,
                },
            ),
            SegmentKind::Rewarmup { to, .. } => push(
                &mut pieces,
                start,
                end,
                Shape::Linear {
                    from: prev,
                    to: to.value,
                },
            ),
            SegmentKind::Cosine { peak, warmup, min } => {
                let p = peak.map_or(prev, |p| p.value);
                let s = warm(&mut pieces, &mut problems, *warmup, p);
                push(
                    &mut pieces,
                    s,
                    end,
                    Shape::Cosine {
                        from: p,
                        to: min.value,
                    },
                );
            }
            SegmentKind::Wsd {
                peak,
                warmup,
                decay,
                min,
                shape,
            } => {
                let s = warm(&mut pieces, &mut problems, Some(*warmup), peak.value);
                let d = tokens_of(decay.value, span, tokens_per_step);
                if d > end - s {
                    problems.push(TooLong {
                        span: decay.span,
                        what: "decay",
                        tokens: d,
                        room: end - s,
                    });
                }
                let d = d.min(end - s);
                push(
                    &mut pieces,
                    s,
                    end - d,
                    Shape::Linear {
                        from: peak.value,
                        to: peak.value,
                    },
                );
                let shape = match shape {
                    DecayShape::Linear => Shape::Linear {
                        from: peak.value,
                        to: min.value,
                    },
                    DecayShape::Cosine => Shape::Cosine {
                        from: peak.value,
                        to: min.value,
                    },
                    DecayShape::Sqrt => Shape::Sqrt {
                        from: peak.value,
                        to: min.value,
                    },
                };
                push(&mut pieces, end - d, end, shape);
            }
        }
        if let Some(last) = pieces.last() {
            prev = last.end_value();
        }
        pos = end;
    }
    (Curve { span, pieces }, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::ir::Sp;
    use crate::syntax::Span;

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
            span: Span::default(),
        };
        let (c, p) = build(&[seg], 1000.0, 1.0, None);
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
                kind: SegmentKind::Rewarmup {
                    to: sp(2.0),
                    over: sp(Duration::Tokens(100.0)),
                },
                over: Some(sp(Duration::Tokens(100.0))),
                span: Span::default(),
            },
            Segment {
                kind: SegmentKind::Cosine {
                    peak: None,
                    warmup: None,
                    min: sp(0.0),
                },
                over: None,
                span: Span::default(),
            },
        ];
        let (c, p) = build(&segs, 300.0, 1.0, Some(0.5));
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
            },
            over: None,
            span: Span::default(),
        };
        let (_, p) = build(&[seg], 100.0, 10.0, None);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].what, "warmup");
        assert_eq!(p[0].tokens, 200.0);
    }
}
