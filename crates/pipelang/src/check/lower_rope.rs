//! `rope_scaling = none | linear(...) | yarn(...) | llama3(...)` (a decoder's, and a stage's or
//! a phase's, plain or as a transition), read against `schema::rope`. What needs the context
//! length it is used at (`original` against the seq_len) is checked by the walk.

use crate::diag::{Code, Diagnostic};
use crate::schema::Ty;
use crate::schema::rope::{self as schema, ArgTy};
use crate::syntax::{Expr, ExprKind};

use super::ir::*;
use super::lower::Lower;
use super::{units, values};

impl Lower<'_> {
    pub fn rope_scaling_transition(&mut self, e: &Expr) -> Option<Transition<RopeScaling>> {
        match &e.kind {
            ExprKind::Transition(a, b) => {
                let from = self.rope_scaling(a);
                let to = self.rope_scaling(b)?;
                from.map(|from| Transition {
                    from: Some(from),
                    to,
                })
            }
            _ => self.rope_scaling(e).map(|to| Transition { from: None, to }),
        }
    }

    pub fn rope_scaling(&mut self, e: &Expr) -> Option<Sp<RopeScaling>> {
        let Some((name, args)) = e.as_call() else {
            values::mismatch(&mut self.diags, e, Ty::RopeScaling, "rope_scaling");
            return None;
        };
        let Some(kind) = schema::kind(&name.name) else {
            let known: Vec<&str> = schema::names().collect();
            self.unknown_kind(&name, "RoPE scaling", &known);
            return None;
        };
        let params: Vec<&str> = kind.args.iter().map(|a| a.name).collect();
        let required: Vec<&str> = kind
            .args
            .iter()
            .filter(|a| a.default.is_none())
            .map(|a| a.name)
            .collect();
        let bound: Vec<Option<&Expr>> = match args {
            Some(args) => self.bind(&name, args, &params, &required),
            None if !required.is_empty() => {
                self.diags.push(
                    Diagnostic::new(
                        Code::ARGUMENTS,
                        format!(
                            "`{}` is missing {}",
                            kind.name,
                            required
                                .iter()
                                .map(|m| format!("`{m}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                    .label(e.span, "missing arguments")
                    .help(format!(
                        "`{}` takes: {}",
                        kind.name,
                        params.join(", ")
                    )),
                );
                return None;
            }
            None => vec![None; params.len()],
        };
        // Each argument's value (or default), `None` where it was wrong (reported).
        let mut vals: Vec<Option<f64>> = vec![];
        for (arg, x) in kind.args.iter().zip(&bound) {
            let Some(x) = x else {
                vals.push(arg.default);
                continue;
            };
            vals.push(match arg.ty {
                ArgTy::Length => {
                    values::length(&mut self.diags, x, arg.name).map(|v| v.value as f64)
                }
                ArgTy::Number { min } => {
                    let v = values::number(&mut self.diags, x, arg.name);
                    v.and_then(|v| self.rope_arg_range(arg, min, v))
                }
            });
        }
        let vals: Vec<f64> = vals.into_iter().collect::<Option<_>>()?;
        let scaling = match kind.name {
            "none" => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor: vals[0] },
            "yarn" => RopeScaling::Yarn {
                factor: vals[0],
                original: vals[1] as u64,
                alpha: vals[2],
                beta: vals[3],
            },
            "llama3" => RopeScaling::Llama3 {
                factor: vals[0],
                low_freq: vals[1],
                high_freq: vals[2],
                original: vals[3] as u64,
            },
            other => unreachable!("`schema::rope` declares `{other}`, the lowering does not"),
        };
        // The band's two edges, in the order the kind needs them.
        let band = match scaling {
            RopeScaling::Yarn { alpha, beta, .. } => Some(("alpha", alpha, "beta", beta, 2, 3)),
            RopeScaling::Llama3 {
                low_freq,
                high_freq,
                ..
            } => Some(("low_freq", low_freq, "high_freq", high_freq, 1, 2)),
            _ => None,
        };
        if let Some((lo, a, hi, b, ia, ib)) = band
            && a >= b
        {
            let at = |i: usize| bound[i].map_or(e.span, |x: &Expr| x.span);
            self.diags.push(
                Diagnostic::new(
                    Code::ROPE_SCALING_BAND,
                    format!(
                        "`{}`'s `{lo}` ({}) must be below its `{hi}` ({})",
                        kind.name,
                        units::trim(a),
                        units::trim(b)
                    ),
                )
                .label(at(ib), format!("`{hi}` here"))
                .label(at(ia), format!("`{lo}` here"))
                .help(match kind.name {
                    "yarn" => "the ramp runs from `alpha` rotations (interpolated) to `beta` \
                               (kept): the paper's are `alpha = 1, beta = 32`"
                        .to_string(),
                    _ => "the smooth band lies between the wavelengths `original / low_freq` and \
                          `original / high_freq`: Llama 3.1's are `low_freq = 1, high_freq = 4`"
                        .to_string(),
                }),
            );
            return None;
        }
        Some(Sp::new(scaling, e.span))
    }

    /// An argument above its minimum; the factor has its own code (a factor of 1 or below is
    /// the usual slip: no scaling, or an inverted ratio).
    fn rope_arg_range(&mut self, arg: &schema::Arg, min: f64, v: Sp<f64>) -> Option<f64> {
        if v.value > min {
            return Some(v.value);
        }
        let d = if arg.name == "factor" {
            Diagnostic::new(
                Code::ROPE_SCALING_FACTOR,
                format!(
                    "a RoPE scaling factor must be above 1, found {}",
                    units::trim(v.value)
                ),
            )
            .label(v.span, "not above 1")
            .help(if v.value == 1.0 {
                "a factor of 1 scales nothing: write `rope_scaling = none`".to_string()
            } else {
                format!(
                    "the factor is how many times longer the context gets (`factor = {}` for {})",
                    units::trim(1.0 / v.value),
                    units::trim(v.value)
                )
            })
        } else {
            Diagnostic::new(
                Code::RANGE,
                format!(
                    "`{}` must be above {}, found {}",
                    arg.name,
                    units::trim(min),
                    units::trim(v.value)
                ),
            )
            .label(v.span, "out of range")
            .help(format!(
                "`{}`: {}{}",
                arg.name,
                arg.doc,
                arg.default.map_or(String::new(), |d| format!(
                    "; the default is {}",
                    units::trim(d)
                ))
            ))
        };
        self.diags.push(d);
        None
    }
}
