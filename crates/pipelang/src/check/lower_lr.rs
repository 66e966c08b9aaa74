//! LR expressions: `constant`, `linear`, `cosine`, `wsd`, `rewarmup`, `exponential` joined with
//! `then` (the functions and their arguments are `schema::lr`), and a
//! stage's `lr = schedule | resume | resume(name) | <inline chain>`.

use crate::diag::{Code, Diagnostic};
use crate::schema::lr;
use crate::syntax::{Expr, ExprKind};

use super::ir::*;
use super::lower::Lower;
use super::names::NameKind;
use super::values;

pub use crate::schema::lr::NAMES as LR_FUNCTIONS;

impl Lower<'_> {
    /// A chain of LR segments. `None` when nothing usable could be read.
    pub fn lr_chain(&mut self, e: &Expr, _named: bool) -> Option<Vec<Segment>> {
        let parts: Vec<&Expr> = match &e.kind {
            ExprKind::Chain(v) => v.iter().collect(),
            _ => vec![e],
        };
        let mut segs = vec![];
        let n = parts.len();
        let mut ok = true;
        for (i, part) in parts.into_iter().enumerate() {
            match self.segment(part, i, n) {
                Some(s) => segs.push(s),
                None => ok = false,
            }
        }
        (ok && !segs.is_empty()).then_some(segs)
    }

    fn segment(&mut self, e: &Expr, index: usize, count: usize) -> Option<Segment> {
        let ExprKind::Call { name, args } = &e.kind else {
            self.diags.push(
                Diagnostic::new(
                    Code::TYPE,
                    format!("expected an LR function, found {}", values::found(e)),
                )
                .label(e.span, "not an LR function")
                .help(format!(
                    "write e.g. `cosine(peak = 3e-4, warmup = 1%, min = 3e-5)`; functions: {}",
                    LR_FUNCTIONS.join(", ")
                )),
            );
            return None;
        };
        let Some(f) = lr::function(&name.name) else {
            self.unknown_kind(name, "LR function", LR_FUNCTIONS);
            return None;
        };
        let last = index + 1 == count;
        let a = self.bind(name, args, f.params, f.required);
        let arg = |n: &str| f.params.iter().position(|p| *p == n).and_then(|i| a[i]);
        let lr = |l: &mut Self, n: &str| arg(n).and_then(|x| values::lr(&mut l.diags, x, n));
        let dur = |l: &mut Self, n: &str| arg(n).and_then(|x| values::duration(&mut l.diags, x, n));
        // `min`, `from` of `linear` and `exponential`: a learning rate that may be 0.
        let rate = |l: &mut Self, n: &str| -> Result<Option<Sp<f64>>, ()> {
            match arg(n) {
                None => Ok(None),
                Some(x) => match values::number(&mut l.diags, x, n) {
                    Some(v) => Ok(Some(l.non_negative(v, n))),
                    None => Err(()),
                },
            }
        };
        let min_or_0 = |l: &mut Self| rate(l, "min").map(|m| m.unwrap_or(Sp::new(0.0, args.span)));
        let kind = match f.name {
            "constant" => SegmentKind::Constant {
                lr: lr(self, "lr")?,
            },
            "linear" => {
                // A linear segment may start or end at 0 (a warmup from 0, an anneal to 0).
                let from = rate(self, "from");
                let to = rate(self, "to");
                SegmentKind::Linear {
                    from: from.ok()?,
                    to: to.ok()??,
                }
            }
            "cosine" => {
                let peak = lr(self, "peak");
                let warmup = dur(self, "warmup");
                let min = min_or_0(self).ok()?;
                let horizon = dur(self, "horizon").and_then(|h| self.above_zero(h, "horizon"));
                if arg("peak").is_some() && peak.is_none()
                    || arg("horizon").is_some() && horizon.is_none()
                {
                    return None;
                }
                SegmentKind::Cosine {
                    peak,
                    warmup,
                    min,
                    horizon,
                }
            }
            "wsd" => {
                let peak = lr(self, "peak");
                let warmup = dur(self, "warmup");
                let decay = dur(self, "decay");
                let min = min_or_0(self).ok()?;
                let shape = match arg("shape") {
                    None => DecayShape::Linear,
                    Some(x) => self.decay_shape(x)?,
                };
                if !last {
                    self.diags.push(
                        Diagnostic::new(
                            Code::ARGUMENTS,
                            "`wsd` must be the last segment of a schedule",
                        )
                        .label(e.span, "its decay is placed at the end of the span")
                        .help("move `wsd` to the end of the `then` chain"),
                    );
                    return None;
                }
                SegmentKind::Wsd {
                    peak: peak?,
                    warmup: warmup?,
                    decay: decay?,
                    min,
                    shape,
                }
            }
            "rewarmup" => {
                let to = lr(self, "to");
                if arg("over").is_none() && arg("until").is_none() {
                    self.diags.push(
                        Diagnostic::new(Code::ARGUMENTS, "`rewarmup` is missing `over`")
                            .label(args.span, "missing arguments")
                            .help("add `over = 1B` (how long it climbs), or `until = 5T` (where it reaches `to`)"),
                    );
                    return None;
                }
                SegmentKind::Rewarmup { to: to? }
            }
            "exponential" => {
                let half_life =
                    dur(self, "half_life").and_then(|h| self.above_zero(h, "half_life"));
                let min = min_or_0(self);
                let from = rate(self, "from");
                SegmentKind::Exponential {
                    from: from.ok()?,
                    half_life: half_life?,
                    min: min.ok()?,
                }
            }
            _ => unreachable!("every LR function of the schema is lowered"),
        };
        let over = dur(self, "over");
        let until = dur(self, "until");
        if (arg("over").is_some() && over.is_none()) || (arg("until").is_some() && until.is_none())
        {
            return None;
        }
        if let (Some(o), Some(u)) = (over, until) {
            self.diags.push(
                Diagnostic::new(
                    Code::ARGUMENTS,
                    format!("`{}` has both `over` and `until`", name.name),
                )
                .label(u.span, "ends the segment here")
                .label(o.span, "and gives it a length here")
                .help("keep one: `over` is how long the segment lasts, `until` the schedule position where it ends"),
            );
            return None;
        }
        let rewarmup = matches!(kind, SegmentKind::Rewarmup { .. });
        if let Some((o, what)) = over
            .map(|o| (o, "over"))
            .or(until.map(|u| (u, "until")))
            .filter(|_| last && !rewarmup)
        {
            self.diags.push(
                Diagnostic::new(
                    Code::ARGUMENTS,
                    format!(
                        "the last segment `{}` fills the rest of the span: `{what}` has no effect",
                        name.name
                    ),
                )
                .label(o.span, "ignored")
                .help(format!(
                    "remove `{what}`, or add a segment after this one with `then`"
                )),
            );
            return None;
        }
        if !last && over.is_none() && until.is_none() {
            self.diags.push(
                Diagnostic::new(Code::ARGUMENTS, format!("`{}` is followed by `then` but has no length", name.name))
                    .label(e.span, "how long does this segment last?")
                    .help("add `over = 10B` (or a share `over = 5%`, or `over = 500 steps`); only the last segment fills the rest of the span"),
            );
            return None;
        }
        Some(Segment {
            kind,
            over,
            until,
            span: e.span,
        })
    }

    /// `shape = linear | cosine | sqrt | exponential(half_life = D)` of `wsd`.
    fn decay_shape(&mut self, x: &Expr) -> Option<DecayShape> {
        match (&x.kind, x.as_ident()) {
            (_, Some("linear")) => Some(DecayShape::Linear),
            (_, Some("cosine")) => Some(DecayShape::Cosine),
            (_, Some("sqrt")) => Some(DecayShape::Sqrt),
            (ExprKind::Call { name, args }, _) if name.name == "exponential" => {
                let a = self.bind(
                    name,
                    args,
                    lr::EXPONENTIAL_SHAPE_PARAMS,
                    lr::EXPONENTIAL_SHAPE_PARAMS,
                );
                let half_life = a[0]
                    .and_then(|h| values::duration(&mut self.diags, h, "half_life"))
                    .and_then(|h| self.above_zero(h, "half_life"))?;
                Some(DecayShape::Exponential { half_life })
            }
            _ => {
                self.diags.push(
                    Diagnostic::new(Code::UNKNOWN_KIND, "unknown decay shape")
                        .label(x.span, "expected `linear`, `cosine`, `sqrt` or `exponential(half_life = ...)`")
                        .help("write `shape = linear`, `shape = cosine`, `shape = sqrt` or `shape = exponential(half_life = 5000 steps)`"),
                );
                None
            }
        }
    }

    fn above_zero(&mut self, d: Sp<Duration>, field: &str) -> Option<Sp<Duration>> {
        let zero = match d.value {
            Duration::Tokens(t) => t == 0.0,
            Duration::Share(s) => s == 0.0,
            Duration::Steps(n) => n == 0,
        };
        if zero {
            self.diags.push(
                Diagnostic::new(Code::RANGE, format!("`{field}` must be above 0"))
                    .label(d.span, "a length of 0")
                    .help(format!(
                        "write a positive length for `{field}`, e.g. `5000 steps`"
                    )),
            );
            return None;
        }
        Some(d)
    }

    fn non_negative(&mut self, v: Sp<f64>, field: &str) -> Sp<f64> {
        if v.value < 0.0 {
            self.diags.push(
                Diagnostic::new(Code::RANGE, format!("`{field}` must not be negative"))
                    .label(v.span, "negative learning rate")
                    .help("write 0 or a positive learning rate"),
            );
        }
        v
    }

    /// A stage's `lr = ...`.
    pub fn stage_lr(&mut self, e: &Expr) -> Option<StageLr> {
        match &e.kind {
            ExprKind::Ident(n) if n == "resume" => Some(StageLr::Resume {
                target: None,
                span: e.span,
            }),
            ExprKind::Ident(n) => self
                .resolve(n, e.span, NameKind::Schedule)
                .map(|id| StageLr::Start(Sp::new(id, e.span))),
            ExprKind::Call { name, args } if name.name == "resume" => {
                let a = self.bind(name, args, &["from"], &["from"]);
                let x = a[0]?;
                let Some(target) = x.as_ident() else {
                    self.diags.push(
                        Diagnostic::new(
                            Code::TYPE,
                            "`resume(...)` takes the name of a schedule or a stage",
                        )
                        .label(x.span, format!("this is {}", values::found(x)))
                        .help("write `resume(llm_lr)` or `resume(stage_name)`"),
                    );
                    return None;
                };
                self.mark_used(target);
                match self.symbols.map.get(target).copied() {
                    Some(s) if s.kind == NameKind::Schedule => Some(StageLr::Resume {
                        target: Some(Sp::new(
                            ResumeTarget::Schedule(ScheduleId::new(s.id)),
                            x.span,
                        )),
                        span: e.span,
                    }),
                    Some(s) if s.kind == NameKind::Stage => Some(StageLr::Resume {
                        target: Some(Sp::new(ResumeTarget::Stage(StageId::new(s.id)), x.span)),
                        span: e.span,
                    }),
                    _ => {
                        self.resolve::<ScheduleId>(target, x.span, NameKind::Schedule);
                        None
                    }
                }
            }
            _ => self.lr_chain(e, false).map(StageLr::Inline),
        }
    }
}
