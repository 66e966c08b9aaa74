//! LR expressions: `constant`, `linear`, `cosine`, `wsd`, `rewarmup` joined with `then`, and a
//! stage's `lr = schedule | resume | resume(name) | <inline chain>`.

use crate::diag::{Code, Diagnostic};
use crate::syntax::{Expr, ExprKind};

use super::ir::*;
use super::lower::Lower;
use super::names::NameKind;
use super::values;

pub const LR_FUNCTIONS: &[&str] = &["constant", "linear", "cosine", "wsd", "rewarmup"];

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
                Diagnostic::new(Code::TYPE, format!("expected an LR function, found {}", values::found(e)))
                    .label(e.span, "not an LR function")
                    .help("write e.g. `cosine(peak = 3e-4, warmup = 1%, min = 3e-5)`; functions: constant, linear, cosine, wsd, rewarmup"),
            );
            return None;
        };
        let last = index + 1 == count;
        let lr = |l: &mut Self, x: Option<&Expr>, n: &str| {
            x.and_then(|x| values::lr(&mut l.diags, x, n))
        };
        let dur = |l: &mut Self, x: Option<&Expr>, n: &str| {
            x.and_then(|x| values::duration(&mut l.diags, x, n))
        };
        let (kind, over) = match name.name.as_str() {
            "constant" => {
                let a = self.bind(name, args, &["lr", "over"], &["lr"]);
                (
                    SegmentKind::Constant {
                        lr: lr(self, a[0], "lr")?,
                    },
                    dur(self, a[1], "over"),
                )
            }
            "linear" => {
                let a = self.bind(name, args, &["from", "to", "over"], &["from", "to"]);
                // A linear segment may start or end at 0 (a warmup from 0, an anneal to 0).
                let from = a[0]
                    .and_then(|x| values::number(&mut self.diags, x, "from"))
                    .map(|v| self.non_negative(v, "from"));
                let to = a[1]
                    .and_then(|x| values::number(&mut self.diags, x, "to"))
                    .map(|v| self.non_negative(v, "to"));
                (
                    SegmentKind::Linear {
                        from: from?,
                        to: to?,
                    },
                    dur(self, a[2], "over"),
                )
            }
            "cosine" => {
                let a = self.bind(name, args, &["peak", "warmup", "min", "over"], &[]);
                let peak = lr(self, a[0], "peak");
                let warmup = dur(self, a[1], "warmup");
                let min = match a[2] {
                    Some(x) => values::number(&mut self.diags, x, "min")
                        .map(|v| self.non_negative(v, "min"))?,
                    None => Sp::new(0.0, args.span),
                };
                if index == 0 && a[0].is_none() {
                    self.diags.push(
                        Diagnostic::new(Code::ARGUMENTS, "`cosine` starts the schedule but has no `peak`")
                            .label(args.span, "no `peak` and no segment before it")
                            .help("add `peak = ...`, or put a segment before it (`rewarmup(...) then cosine(min = ...)`)"),
                    );
                    return None;
                }
                if a[0].is_some() && peak.is_none() {
                    return None;
                }
                (
                    SegmentKind::Cosine { peak, warmup, min },
                    dur(self, a[3], "over"),
                )
            }
            "wsd" => {
                let a = self.bind(
                    name,
                    args,
                    &["peak", "warmup", "decay", "min", "shape"],
                    &["peak", "warmup", "decay"],
                );
                let peak = lr(self, a[0], "peak");
                let warmup = dur(self, a[1], "warmup");
                let decay = dur(self, a[2], "decay");
                let min = match a[3] {
                    Some(x) => values::number(&mut self.diags, x, "min")
                        .map(|v| self.non_negative(v, "min"))?,
                    None => Sp::new(0.0, args.span),
                };
                let shape = match a[4] {
                    None => DecayShape::Linear,
                    Some(x) => match x.as_ident() {
                        Some("linear") => DecayShape::Linear,
                        Some("cosine") => DecayShape::Cosine,
                        Some("sqrt") => DecayShape::Sqrt,
                        _ => {
                            self.diags.push(
                                Diagnostic::new(Code::UNKNOWN_KIND, "unknown decay shape")
                                    .label(x.span, "expected `linear`, `cosine` or `sqrt`")
                                    .help("write `shape = linear`, `shape = cosine` or `shape = sqrt`"),
                            );
                            return None;
                        }
                    },
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
                (
                    SegmentKind::Wsd {
                        peak: peak?,
                        warmup: warmup?,
                        decay: decay?,
                        min,
                        shape,
                    },
                    None,
                )
            }
            "rewarmup" => {
                let a = self.bind(name, args, &["to", "over"], &["to", "over"]);
                let to = lr(self, a[0], "to");
                let over = dur(self, a[1], "over");
                (
                    SegmentKind::Rewarmup {
                        to: to?,
                        over: over?,
                    },
                    over,
                )
            }
            _ => {
                self.unknown_kind(name, "LR function", LR_FUNCTIONS);
                return None;
            }
        };
        if let Some(o) = over.filter(|_| last && !matches!(kind, SegmentKind::Rewarmup { .. })) {
            self.diags.push(
                Diagnostic::new(
                    Code::ARGUMENTS,
                    format!(
                        "the last segment `{}` fills the rest of the span: `over` has no effect",
                        name.name
                    ),
                )
                .label(o.span, "ignored")
                .help("remove `over`, or add a segment after this one with `then`"),
            );
            return None;
        }
        if !last && over.is_none() {
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
            span: e.span,
        })
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
                self.used.insert(target.to_string());
                match self.symbols.map.get(target).copied() {
                    Some(s) if s.kind == NameKind::Schedule => Some(StageLr::Resume {
                        target: Some(Sp::new(ResumeTarget::Schedule(s.id), x.span)),
                        span: e.span,
                    }),
                    Some(s) if s.kind == NameKind::Stage => Some(StageLr::Resume {
                        target: Some(Sp::new(ResumeTarget::Stage(s.id), x.span)),
                        span: e.span,
                    }),
                    _ => {
                        self.resolve(target, x.span, NameKind::Schedule);
                        None
                    }
                }
            }
            _ => self.lr_chain(e, false).map(StageLr::Inline),
        }
    }
}
