//! `optimizer = adamw(...)` (the pipeline's and a stage's own) and a stage's
//! `lr_scale { model = factor }`, read against `schema::optimizer` and the stage's models.

use crate::diag::{Code, Diagnostic, Fix};
use crate::schema::optimizer::{ADAMW, PARAMS};
use crate::syntax::{Body, Entry, Expr};

use super::ir::*;
use super::lower::Lower;
use super::names::{NameKind, did_you_mean};
use super::{units, values};

impl Lower<'_> {
    /// The arguments written (index into `PARAMS`, value), each in its range.
    pub fn optimizer(&mut self, e: &Expr) -> Option<Sp<Vec<(usize, f64)>>> {
        let Some((name, args)) = e.as_call() else {
            values::mismatch(
                &mut self.diags,
                e,
                crate::schema::Ty::Optimizer,
                "optimizer",
            );
            return None;
        };
        if name.name != ADAMW {
            self.unknown_kind(&name, "optimizer", &[ADAMW]);
            return None;
        }
        let Some(args) = args else {
            return Some(Sp::new(vec![], e.span));
        };
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        let bound = self.bind(&name, args, &names, &[]);
        let mut out = vec![];
        for (i, (param, x)) in PARAMS.iter().zip(bound).enumerate() {
            let Some(x) = x else { continue };
            let Some(v) = values::number(&mut self.diags, x, param.name) else {
                continue;
            };
            let (lo, lo_in) = param.min;
            let low = if lo_in { v.value < lo } else { v.value <= lo };
            let high = param.below.is_some_and(|b| v.value >= b);
            if low || high {
                let range = match (lo_in, param.below) {
                    (true, Some(b)) => format!("from {lo} up to (not including) {b}"),
                    (false, Some(b)) => format!("above {lo} and below {b}"),
                    (true, None) => format!("at least {lo}"),
                    (false, None) => format!("above {lo}"),
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::RANGE,
                        format!(
                            "`{}` must be {range}, found {}",
                            param.name,
                            units::setting(v.value)
                        ),
                    )
                    .label(x.span, "out of range")
                    .help(format!(
                        "the default is `{} = {}` ({})",
                        param.name,
                        units::setting(param.default),
                        param.doc
                    )),
                );
                continue;
            }
            out.push((i, v.value));
        }
        Some(Sp::new(out, e.span))
    }

    /// `lr_scale { model = factor }`: each model one the stage trains, each factor above 0.
    pub fn lr_scale(
        &mut self,
        blocks: &[&Body],
        stage: &str,
        train: &[Sp<ModelId>],
    ) -> Vec<(Sp<ModelId>, Sp<f64>)> {
        let mut out: Vec<(Sp<ModelId>, Sp<f64>)> = vec![];
        if blocks.is_empty() {
            return out;
        }
        // Names by id: a scan of the symbols, so only for a stage that writes `lr_scale`.
        let trained: Vec<String> = train
            .iter()
            .filter_map(|m| {
                self.symbols
                    .map
                    .iter()
                    .find(|(_, s)| s.kind == NameKind::Model && s.id == m.value.index())
                    .map(|(n, _)| n.clone())
            })
            .collect();
        for body in blocks {
            for e in &body.entries {
                let Entry::Field(x) = e else {
                    self.diags.push(
                        Diagnostic::new(
                            Code::UNKNOWN_FIELD,
                            "`lr_scale` holds `model = factor` entries",
                        )
                        .label(e.span(), "not a `model = factor` entry")
                        .help("write `lr_scale { vit = 0.1 }`"),
                    );
                    continue;
                };
                let factor = values::number(&mut self.diags, &x.value, &x.key.name);
                let Some(m) = self.resolve::<ModelId>(&x.key.name, x.key.span, NameKind::Model)
                else {
                    continue;
                };
                if !train.iter().any(|t| t.value == m) {
                    let guess = did_you_mean(&x.key.name, trained.iter().map(String::as_str));
                    self.diags.push(
                        Diagnostic::new(
                            Code::LR_SCALE_MODEL,
                            format!(
                                "`lr_scale` of stage `{stage}` names `{}`, which the stage does not train",
                                x.key.name
                            ),
                        )
                        .label(x.key.span, "not trained here")
                        .help(match &guess {
                            Some(g) => format!("did you mean `{g}`?"),
                            None => format!(
                                "an LR scale applies to a model the stage trains: {}",
                                trained.join(", ")
                            ),
                        })
                        .fix(guess.map(|g| Fix::rename(x.key.span, g))),
                    );
                    continue;
                }
                if let Some((prev, _)) = out.iter().find(|(p, _)| p.value == m) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::DUPLICATE,
                            format!("`lr_scale` sets `{}` twice", x.key.name),
                        )
                        .label(x.key.span, "again here")
                        .label(prev.span, "first here")
                        .help("keep one factor per model"),
                    );
                    continue;
                }
                let Some(f) = factor else { continue };
                if !(f.value > 0.0 && f.value.is_finite()) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::RANGE,
                            format!(
                                "an LR scale must be above 0, found {}",
                                units::trim(f.value)
                            ),
                        )
                        .label(f.span, "not above 0")
                        .help("to keep a model's weights as they are, `freeze` it instead"),
                    );
                    continue;
                }
                out.push((Sp::new(m, x.key.span), f));
            }
        }
        out
    }
}
