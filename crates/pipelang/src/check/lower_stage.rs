//! Stages: models trained and frozen, budget, data or mixture, loss, LR, transitions, phases.

use crate::diag::{Code, Diagnostic};
use crate::syntax::{Body, Entry, Expr, ExprKind, Span, StageItem};

use super::fields::Fields;
use super::ir::*;
use super::lower::Lower;
use super::names::NameKind;
use super::units;
use super::values;
use crate::schema::{phase, stage};

impl Lower<'_> {
    pub fn stage(&mut self, s: &StageItem) -> Stage {
        let f = Fields::collect(&self.file.errors, &s.body, &stage::BLOCK, &mut self.diags);
        let header = Span::new(s.span.start, s.body.span.start.max(s.span.start));
        let at = s.name.span;
        let what = format!("stage `{}`", s.name.name);

        let unresolved_after = self.unresolved;
        let after = s
            .after
            .iter()
            .flat_map(|a| self.stage_set(&a.name, a.span))
            .collect();
        let unknown_after = self.unresolved > unresolved_after;
        let branch = self.branch(s);
        let unresolved_before = self.unresolved;
        let train = match f.require(&stage::TRAIN, at, &what, &mut self.diags) {
            Some(x) => {
                if matches!(&x.value.kind, ExprKind::List(v) if v.is_empty()) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::TRAINS_NOTHING,
                            format!("stage `{}` trains nothing", s.name.name),
                        )
                        .label(x.value.span, "no model learns here")
                        .help("list the models that learn in `train = [...]`"),
                    );
                }
                self.ref_list(&x.value, "train", NameKind::Model)
            }
            None => vec![],
        };
        let freeze = f.get(&stage::FREEZE).map_or(vec![], |x| {
            self.ref_list(&x.value, "freeze", NameKind::Model)
        });
        let unknown_models = self.unresolved > unresolved_before;
        let budget = f
            .require(&stage::BUDGET, at, &what, &mut self.diags)
            .and_then(|x| values::budget(&mut self.diags, &x.value, "budget"))
            .unwrap_or(Sp::new(Budget::Tokens(f64::NAN), at));
        let batch = self.batch(&f, &stage::BATCH, &stage::BATCH_TOKENS);
        let seq_len = f
            .get(&stage::SEQ_LEN)
            .and_then(|x| values::transition(&mut self.diags, &x.value, "seq_len", values::length));
        let rope_base = f
            .get(&stage::ROPE_BASE)
            .and_then(|x| values::transition(&mut self.diags, &x.value, "rope_base", rope));
        let rope_scaling = f
            .get(&stage::ROPE_SCALING)
            .and_then(|x| self.rope_scaling_transition(&x.value));
        let loss = match f.get(&stage::LOSS) {
            Some(x) => self
                .loss(&x.value)
                .unwrap_or(Sp::new(Loss::NextToken, x.value.span)),
            None => Sp::new(Loss::NextToken, at),
        };
        let lr_field = f.require(&stage::LR, at, &what, &mut self.diags);
        let lr_span = lr_field.map_or(at, |x| x.value.span);
        let lr = lr_field
            .and_then(|x| self.stage_lr(&x.value))
            .unwrap_or(StageLr::Inline(vec![]));
        let checkpoint_every = self.opt_count(&f, &stage::CHECKPOINT_EVERY);
        let optimizer = f
            .get(&stage::OPTIMIZER)
            .and_then(|x| self.optimizer(&x.value));
        let seed = self.opt_count(&f, &stage::SEED);
        let averaging = self.averaging(&f);
        let scale_blocks: Vec<&Body> = f
            .blocks
            .iter()
            .filter(|b| b.keyword.name == stage::LR_SCALE)
            .map(|b| &b.body)
            .collect();
        let lr_scale = self.lr_scale(&scale_blocks, &s.name.name, &train);

        // `data = SOURCE`, `mix = NAME` and `mix { ... }`: one of the three.
        let mixes: Vec<_> = f
            .blocks
            .iter()
            .filter(|b| b.keyword.name == stage::MIX.name)
            .collect();
        let mut given: Vec<(Span, &str)> = vec![];
        if let Some(d) = f.get(&stage::DATA) {
            given.push((d.key.span, "one source here"));
        }
        if let Some(m) = f.get(&stage::MIX) {
            given.push((m.key.span, "a named mixture here"));
        }
        if let Some(m) = mixes.first() {
            given.push((m.keyword.span, "a mixture here"));
        }
        let mut mix = vec![];
        let mut mix_span = at;
        match given.as_slice() {
            [] => self.diags.push(
                Diagnostic::new(
                    Code::NO_DATA,
                    format!("stage `{}` has no data", s.name.name),
                )
                .label(at, "what does this stage train on?")
                .help("add `data = SOURCE`, `mix = MIXTURE` or `mix { a = 70%, b = rest }`"),
            ),
            [_] => {
                mix_span = match (f.get(&stage::DATA), f.get(&stage::MIX), mixes.first()) {
                    (Some(d), _, _) => d.value.span,
                    (_, Some(m), _) => m.value.span,
                    (_, _, Some(m)) => m.keyword.span,
                    _ => at,
                };
                mix = self.mixture(&s.name.name, s.name.span).unwrap_or_default();
            }
            [first, more @ ..] => {
                let mut d = Diagnostic::new(
                    Code::NO_DATA,
                    format!("stage `{}` gives its data more than once", s.name.name),
                )
                .label(first.0, first.1);
                for (sp, what) in more {
                    d = d.label(*sp, format!("and {what}"));
                }
                self.diags.push(d.help(
                    "keep one: `data = SOURCE` for one source, `mix = MIXTURE` for a named mixture, `mix { ... }` for a mixture of its own",
                ));
            }
        }
        for extra in mixes.iter().skip(1) {
            self.diags.push(
                Diagnostic::new(Code::DUPLICATE, "a stage has one `mix` block")
                    .label(extra.keyword.span, "second `mix`")
                    .label(mixes[0].keyword.span, "first one here")
                    .help("merge the two mixtures"),
            );
        }

        let mut phases: Vec<Phase> = vec![];
        for b in f.blocks.iter().filter(|b| b.keyword.name == "phase") {
            let Some(name) = &b.name else {
                self.diags.push(
                    Diagnostic::new(Code::MISSING_FIELD, "a phase needs a name")
                        .label(b.keyword.span, "unnamed phase")
                        .help("write `phase NAME { budget = 50% }`"),
                );
                continue;
            };
            if let Some(prev) = phases.iter().find(|x| x.name == name.name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DUPLICATE,
                        format!("phase `{}` is declared twice", name.name),
                    )
                    .label(name.span, "second declaration")
                    .label(prev.name_span, "first declared here")
                    .help("rename one of the phases"),
                );
                continue;
            }
            if let Some(ph) = self.phase(b.body.clone(), name.name.clone(), name.span, b.span) {
                phases.push(ph);
            }
        }

        let mut weights = vec![];
        for b in f.blocks.iter().filter(|b| b.keyword.name == "weights") {
            for e in &b.body.entries {
                let Entry::Field(x) = e else {
                    self.diags.push(
                        Diagnostic::new(
                            Code::UNKNOWN_FIELD,
                            "`weights` holds `model = stage` entries",
                        )
                        .label(e.span(), "not a `model = stage` entry")
                        .help("write `weights { llm = text_pretrain }`"),
                    );
                    continue;
                };
                let m = self.resolve(&x.key.name, x.key.span, NameKind::Model);
                let st = self.ident_ref(&x.value, "weights", NameKind::Stage);
                if let (Some(m), Some(st)) = (m, st) {
                    weights.push((Sp::new(m, x.key.span), st));
                }
            }
        }

        Stage {
            name: s.name.name.clone(),
            name_span: s.name.span,
            span: s.span,
            header,
            after,
            branch,
            train,
            freeze,
            budget,
            batch,
            seq_len,
            rope_base,
            rope_scaling,
            loss,
            lr,
            lr_span,
            mix,
            mix_span,
            phases,
            weights,
            checkpoint_every,
            optimizer,
            lr_scale,
            seed,
            averaging,
            unknown_models,
            unknown_after,
            variant: None,
            average: None,
        }
    }

    /// The one branch point of `after` (a stage starts from one checkpoint): its parent and
    /// position, read as a budget is (tokens, or steps with the word).
    fn branch(&mut self, s: &StageItem) -> Option<Branch> {
        let mut points = s
            .after
            .iter()
            .zip(&s.at)
            .filter_map(|(a, at)| Some((a, at.as_ref()?)));
        let (name, at) = points.next()?;
        for (other, b) in points {
            self.diags.push(
                Diagnostic::new(
                    Code::BRANCH_TWICE,
                    format!("stage `{}` branches from two checkpoints", s.name.name),
                )
                .label(b.span, format!("a second branch point, inside `{}`", other.name))
                .label(at.span, format!("the first, inside `{}`", name.name))
                .help("a stage starts from one checkpoint: keep one `@`, and list the other stage without it (its final weights)"),
            );
        }
        let parent = self.resolve::<StageId>(&name.name, name.span, NameKind::Stage)?;
        // A position at 0 is a place the walk explains (the start of the parent), not a range error.
        let pos = match &at.amount.kind {
            ExprKind::Quantity(q)
                if q.number == 0.0 && q.suffix != crate::syntax::Suffix::Percent =>
            {
                Sp::new(
                    if q.steps {
                        Budget::Steps(0)
                    } else {
                        Budget::Tokens(0.0)
                    },
                    at.amount.span,
                )
            }
            _ => values::budget(&mut self.diags, &at.amount, "after ... @")?,
        };
        Some(Branch {
            parent: Sp::new(parent, name.span),
            at: Sp::new(pos.value, at.span),
            from_end: at.from_end,
        })
    }

    fn phase(&mut self, body: Body, name: String, name_span: Span, span: Span) -> Option<Phase> {
        let f = Fields::collect(&self.file.errors, &body, &phase::BLOCK, &mut self.diags);
        let b = f.require(
            &phase::BUDGET,
            name_span,
            &format!("phase `{name}`"),
            &mut self.diags,
        )?;
        let budget = phase_budget(self, &b.value)?;
        let seq_len = f
            .get(&phase::SEQ_LEN)
            .and_then(|x| values::transition(&mut self.diags, &x.value, "seq_len", values::length));
        let rope_base = f
            .get(&phase::ROPE_BASE)
            .and_then(|x| values::transition(&mut self.diags, &x.value, "rope_base", rope));
        let rope_scaling = f
            .get(&phase::ROPE_SCALING)
            .and_then(|x| self.rope_scaling_transition(&x.value));
        let batch = self.batch(&f, &phase::BATCH, &phase::BATCH_TOKENS);
        Some(Phase {
            name,
            name_span,
            span,
            budget,
            seq_len,
            rope_base,
            rope_scaling,
            batch,
        })
    }

    /// `batch = N`, `batch = ramp(A -> B, over = T)` or `batch_tokens = T`; one of them.
    fn batch(
        &mut self,
        f: &Fields,
        batch: &crate::schema::Field,
        tokens: &crate::schema::Field,
    ) -> Option<Sp<Batch>> {
        let (b, t) = (f.get(batch), f.get(tokens));
        if let (Some(b), Some(t)) = (b, t) {
            self.diags.push(
                Diagnostic::new(
                    Code::BATCH_BOTH,
                    "`batch` and `batch_tokens` both set the batch",
                )
                .label(t.key.span, "tokens per step here")
                .label(b.key.span, "sequences per step here")
                .help("keep one: `batch` in sequences, or `batch_tokens` in tokens per step"),
            );
            return None;
        }
        if let Some(t) = t {
            let v = values::tokens(&mut self.diags, &t.value, tokens.name)?;
            if v.value <= 0.0 {
                self.diags.push(
                    Diagnostic::new(Code::RANGE, "`batch_tokens` must be above 0")
                        .label(v.span, "no tokens per step")
                        .help("write the tokens of one step, e.g. `batch_tokens = 4M`"),
                );
                return None;
            }
            return Some(Sp::new(Batch::Tokens(v.value), v.span));
        }
        let e = &b?.value;
        match &e.kind {
            ExprKind::Call { name, args } if name.name == "ramp" => {
                let a = self.bind(name, args, &["batch", "over"], &["batch", "over"]);
                let (x, over) = (a[0]?, a[1]?);
                let ExprKind::Transition(from, to) = &x.kind else {
                    self.diags.push(
                        Diagnostic::new(
                            Code::TYPE,
                            "a batch `ramp` takes a transition of sequences",
                        )
                        .label(x.span, format!("this is {}", values::found(x)))
                        .help("write `ramp(3072 -> 15360, over = 469B)`"),
                    );
                    return None;
                };
                let from = values::count(&mut self.diags, from, "ramp", 1);
                let to = values::count(&mut self.diags, to, "ramp", 1);
                let over = values::tokens(&mut self.diags, over, "over");
                let (from, to, over) = (from?, to?, over?);
                if over.value <= 0.0 {
                    self.diags.push(
                        Diagnostic::new(Code::RANGE, "a batch ramp's `over` must be above 0")
                            .label(over.span, "no tokens to ramp over")
                            .help(format!(
                                "write a plain `batch = {}` for a constant batch",
                                to.value
                            )),
                    );
                    return None;
                }
                Some(Sp::new(
                    Batch::Ramp {
                        from: from.value,
                        to: to.value,
                        over: over.value,
                    },
                    e.span,
                ))
            }
            _ => self
                .count(e, batch)
                .map(|n| Sp::new(Batch::Sequences(n.value), n.span)),
        }
    }

    fn loss(&mut self, e: &Expr) -> Option<Sp<Loss>> {
        match &e.kind {
            ExprKind::Ident(n) if n == "next_token" => Some(Sp::new(Loss::NextToken, e.span)),
            ExprKind::Ident(n) if n == "coca" => Some(Sp::new(
                Loss::Coca {
                    caption_weight: 1.0,
                },
                e.span,
            )),
            ExprKind::Call { name, args } if name.name == "coca" => {
                let a = self.bind(name, args, &["caption_weight"], &[]);
                let w = match a[0] {
                    Some(x) => values::number(&mut self.diags, x, "caption_weight")?.value,
                    None => 1.0,
                };
                if w < 0.0 {
                    self.diags.push(
                        Diagnostic::new(Code::RANGE, "`caption_weight` must not be negative")
                            .label(a[0].unwrap().span, "negative weight")
                            .help("write a weight of 0 or more"),
                    );
                    return None;
                }
                Some(Sp::new(Loss::Coca { caption_weight: w }, e.span))
            }
            ExprKind::Ident(_) | ExprKind::Call { .. } => {
                let id = match &e.kind {
                    ExprKind::Call { name, .. } => name.clone(),
                    _ => crate::syntax::Ident {
                        name: e.as_ident().unwrap().to_string(),
                        span: e.span,
                    },
                };
                self.unknown_kind(&id, "loss", crate::schema::LOSSES);
                None
            }
            _ => {
                values::mismatch(&mut self.diags, e, crate::schema::Ty::Number, "loss");
                None
            }
        }
    }
}

impl Lower<'_> {
    /// `average = last(D)` or `ema = DECAY` (one of the two).
    fn averaging(&mut self, f: &Fields) -> Option<Sp<Averaging>> {
        let (avg, ema) = (f.get(&stage::AVERAGE), f.get(&stage::EMA));
        if let (Some(a), Some(e)) = (avg, ema) {
            self.diags.push(
                Diagnostic::new(
                    Code::AVERAGE_AND_EMA,
                    "a stage averages its weights one way: `average` or `ema`",
                )
                .label(e.key.span, "an exponential moving average here")
                .label(a.key.span, "and a checkpoint average here")
                .help("keep `average = last(D)` (a uniform mean over the final window) or `ema = DECAY`, not both"),
            );
            return None;
        }
        if let Some(a) = avg {
            let e = &a.value;
            let arg = match &e.kind {
                ExprKind::Call { name, args } if name.name == "last" => {
                    self.bind(name, args, &["window"], &["window"])[0]
                }
                _ => {
                    values::mismatch(&mut self.diags, e, stage::AVERAGE.ty, stage::AVERAGE.name);
                    None
                }
            }?;
            let d = values::duration(&mut self.diags, arg, stage::AVERAGE.name)?;
            return Some(Sp::new(Averaging::Last(d.value), e.span));
        }
        let e = ema?;
        let v = values::number(&mut self.diags, &e.value, stage::EMA.name)?;
        if !(v.value > 0.0 && v.value < 1.0) {
            self.diags.push(
                Diagnostic::new(
                    Code::RANGE,
                    format!(
                        "`ema` must be strictly between 0 and 1, found {}",
                        units::trim(v.value)
                    ),
                )
                .label(v.span, "not a decay")
                .help("the EMA keeps this share of itself at every step: write e.g. `ema = 0.999`"),
            );
            return None;
        }
        Some(Sp::new(Averaging::Ema(v.value), v.span))
    }
}

fn rope(diags: &mut crate::diag::Diagnostics, e: &Expr, field: &str) -> Option<Sp<f64>> {
    let v = values::number(diags, e, field)?;
    if v.value <= 0.0 {
        diags.push(
            Diagnostic::new(Code::RANGE, "`rope_base` must be above 0")
                .label(v.span, "not positive")
                .help("RoPE bases are large positive numbers such as `10_000`"),
        );
        return None;
    }
    Some(v)
}

fn phase_budget(l: &mut Lower, e: &Expr) -> Option<Sp<PhaseBudget>> {
    let field = phase::BUDGET.name;
    let share = match &e.kind {
        ExprKind::Ident(n) if n == phase::REST => return Some(Sp::new(PhaseBudget::Rest, e.span)),
        ExprKind::Quantity(q) if q.suffix == crate::syntax::Suffix::Percent => {
            values::share(&mut l.diags, e, field)?.value
        }
        ExprKind::Ratio(..) => {
            let v = values::ratio(&mut l.diags, e, field, phase::BUDGET.ty)?;
            if !(v.is_finite() && v <= 1.0) {
                l.diags.push(
                    Diagnostic::new(
                        Code::RANGE,
                        format!(
                            "a phase budget must be a share of at most 1, found {}",
                            units::trim(v)
                        ),
                    )
                    .label(e.span, "more than the stage's budget")
                    .help("write a ratio between 0 and 1, such as `1/6`"),
                );
                return None;
            }
            v
        }
        _ => {
            return match values::steps(e) {
                Some(v) => values::step_count(&mut l.diags, e, v, field)
                    .map(|n| Sp::new(PhaseBudget::Steps(n), e.span)),
                None => values::tokens_as(&mut l.diags, e, field, phase::BUDGET.ty)
                    .map(|v| Sp::new(PhaseBudget::Tokens(v.value), e.span)),
            };
        }
    };
    if share <= 0.0 {
        l.diags.push(
            Diagnostic::new(Code::RANGE, "a phase budget must be above 0%")
                .label(e.span, "empty phase")
                .help("give the phase a share above 0% or remove it"),
        );
        return None;
    }
    Some(Sp::new(PhaseBudget::Share(share), e.span))
}
