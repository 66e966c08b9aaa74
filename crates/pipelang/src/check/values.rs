//! Typed readings of expressions: units and types per field. A value of the wrong type is a
//! diagnostic naming both the type due and the type found.

use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::syntax::{Expr, ExprKind, Quantity, Suffix};

use super::ir::{Budget, Duration, Sp, Transition};
use super::units::{Context, factor};
use crate::schema::Ty;

/// What an expression is, for messages.
pub fn found(e: &Expr) -> &'static str {
    match &e.kind {
        ExprKind::Quantity(q) if q.steps => "a step count",
        ExprKind::Quantity(q) => match q.suffix {
            Suffix::Percent => "a percentage",
            Suffix::None => "a plain number",
            _ => "a count with a unit",
        },
        ExprKind::Ratio(..) => "a ratio",
        ExprKind::Str(_) => "a string",
        ExprKind::Ident(_) => "a name",
        ExprKind::List(_) => "a list",
        ExprKind::Call { .. } => "a call",
        ExprKind::Transition(..) => "a transition (`a -> b`)",
        ExprKind::Chain(_) => "a `then` chain",
    }
}

pub fn mismatch(diags: &mut Diagnostics, e: &Expr, ty: Ty, field: &str) {
    diags.push(
        Diagnostic::new(
            Code::TYPE,
            format!("`{field}` expects {}, found {}", ty.short(), found(e)),
        )
        .label(e.span, format!("this is {}", found(e)))
        .help(format!("write {}", ty.describe()))
        .fix(unit_fix(e, ty)),
    );
}

/// Where the number is right and only its unit is not: a share written without `%`, or a
/// `steps` on a count or length (never on tokens: `2000 steps` there means steps, not tokens).
fn unit_fix(e: &Expr, ty: Ty) -> Option<Fix> {
    let ExprKind::Quantity(q) = &e.kind else {
        return None;
    };
    let n = super::units::trim(q.number);
    let text = match (ty, q.suffix, q.steps) {
        (Ty::Share, Suffix::None, false) | (Ty::Duration, Suffix::Percent, true) => format!("{n}%"),
        (Ty::Count { .. } | Ty::Number | Ty::Length, s, true) if s != Suffix::Percent => {
            format!("{n}{}", s.as_str())
        }
        _ => return None,
    };
    Some(Fix::replace(format!("write `{text}`"), e.span, text))
}

fn quantity(e: &Expr) -> Option<&Quantity> {
    match &e.kind {
        ExprKind::Quantity(q) => Some(q),
        _ => None,
    }
}

/// A plain number with an optional K/M/B/T (an amount), or a ratio `a/b`.
fn plain(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Quantity(q) if !q.steps && q.suffix != Suffix::Percent => {
            Some(q.number * factor(q.suffix, Context::Amount))
        }
        ExprKind::Ratio(a, b) => Some(plain(a)? / plain(b)?),
        _ => None,
    }
}

pub fn number(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<f64>> {
    match plain(e) {
        Some(v) if v.is_finite() => Some(Sp::new(v, e.span)),
        _ => {
            mismatch(diags, e, Ty::Number, field);
            None
        }
    }
}

/// A learning rate: a plain number above 0.
pub fn lr(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<f64>> {
    let v = match quantity(e) {
        Some(q) if q.suffix == Suffix::None && !q.steps => q.number,
        _ => {
            mismatch(diags, e, Ty::Lr, field);
            return None;
        }
    };
    if v <= 0.0 || !v.is_finite() {
        diags.push(
            Diagnostic::new(Code::RANGE, format!("`{field}` must be above 0, found {v}"))
                .label(e.span, "a learning rate must be positive")
                .help("write a positive learning rate such as `3e-4`"),
        );
        return None;
    }
    Some(Sp::new(v, e.span))
}

/// A whole number above `min`.
pub fn count(diags: &mut Diagnostics, e: &Expr, field: &str, min: u64) -> Option<Sp<u64>> {
    let v = match plain(e) {
        Some(v) => v,
        None => {
            mismatch(diags, e, Ty::Count { min }, field);
            return None;
        }
    };
    whole(diags, e, v, field, min)
}

fn whole(diags: &mut Diagnostics, e: &Expr, v: f64, field: &str, min: u64) -> Option<Sp<u64>> {
    if v.fract() != 0.0 || !v.is_finite() {
        diags.push(
            Diagnostic::new(
                Code::TYPE,
                format!("`{field}` must be a whole number, found {v}"),
            )
            .label(e.span, "not a whole number")
            .help("write a whole number"),
        );
        return None;
    }
    if v < min as f64 {
        diags.push(
            Diagnostic::new(
                Code::RANGE,
                format!("`{field}` must be at least {min}, found {v}"),
            )
            .label(e.span, format!("below the minimum of {min}"))
            .help(format!("write a value of at least {min}")),
        );
        return None;
    }
    Some(Sp::new(v as u64, e.span))
}

/// A sequence length (K = 1,024).
pub fn length(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<u64>> {
    match quantity(e) {
        Some(q) if !q.steps && q.suffix != Suffix::Percent => whole(
            diags,
            e,
            q.number * factor(q.suffix, Context::Length),
            field,
            1,
        ),
        _ => {
            mismatch(diags, e, Ty::Length, field);
            None
        }
    }
}

/// A token amount above 0.
pub fn tokens(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<f64>> {
    tokens_as(diags, e, field, Ty::Tokens)
}

/// A token amount above 0 where `ty` is due (a type error names `ty`).
pub fn tokens_as(diags: &mut Diagnostics, e: &Expr, field: &str, ty: Ty) -> Option<Sp<f64>> {
    match quantity(e) {
        Some(q) if !q.steps && q.suffix != Suffix::Percent => positive(
            diags,
            e,
            q.number * factor(q.suffix, Context::Amount),
            field,
        ),
        _ => {
            mismatch(diags, e, ty, field);
            None
        }
    }
}

/// The number of an `N steps` (with its K/M/B/T); `None` for any other expression.
pub fn steps(e: &Expr) -> Option<f64> {
    match quantity(e) {
        Some(q) if q.steps && q.suffix != Suffix::Percent => {
            Some(q.number * factor(q.suffix, Context::Amount))
        }
        _ => None,
    }
}

/// A whole step count of at least 1, from `steps(e)`.
pub fn step_count(diags: &mut Diagnostics, e: &Expr, v: f64, field: &str) -> Option<u64> {
    whole(diags, e, v, field, 1).map(|v| v.value)
}

/// A stage's budget: tokens, or optimizer steps.
pub fn budget(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<Budget>> {
    match steps(e) {
        Some(v) => step_count(diags, e, v, field).map(|n| Sp::new(Budget::Steps(n), e.span)),
        None => {
            tokens_as(diags, e, field, Ty::Budget).map(|v| Sp::new(Budget::Tokens(v.value), e.span))
        }
    }
}

/// A ratio `a/b` of plain numbers, as a fraction; `None` (and a type error) for anything else.
pub fn ratio(diags: &mut Diagnostics, e: &Expr, field: &str, ty: Ty) -> Option<f64> {
    match plain(e) {
        Some(v) if matches!(e.kind, ExprKind::Ratio(..)) => Some(v),
        _ => {
            mismatch(diags, e, ty, field);
            None
        }
    }
}

fn positive(diags: &mut Diagnostics, e: &Expr, v: f64, field: &str) -> Option<Sp<f64>> {
    if v <= 0.0 || !v.is_finite() {
        diags.push(
            Diagnostic::new(Code::RANGE, format!("`{field}` must be above 0, found {v}"))
                .label(e.span, "must be above 0")
                .help("write a positive amount"),
        );
        return None;
    }
    Some(Sp::new(v, e.span))
}

/// A percentage in [0, 100%], as a fraction of 1.
pub fn share(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<f64>> {
    match quantity(e) {
        Some(q) if q.suffix == Suffix::Percent && !q.steps => {
            share_range(diags, e, q.number / 100.0, field)
        }
        _ => {
            mismatch(diags, e, Ty::Share, field);
            None
        }
    }
}

fn share_range(diags: &mut Diagnostics, e: &Expr, v: f64, field: &str) -> Option<Sp<f64>> {
    if !(0.0..=1.0).contains(&v) {
        diags.push(
            Diagnostic::new(
                Code::RANGE,
                format!(
                    "`{field}` must be between 0% and 100%, found {}%",
                    v * 100.0
                ),
            )
            .label(e.span, "outside 0% ..= 100%")
            .help("write a share between 0% and 100%"),
        );
        return None;
    }
    Some(Sp::new(v, e.span))
}

pub fn duration(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<Duration>> {
    match quantity(e) {
        Some(q) if q.steps => {
            if q.suffix == Suffix::Percent {
                mismatch(diags, e, Ty::Duration, field);
                return None;
            }
            let v = whole(
                diags,
                e,
                q.number * factor(q.suffix, Context::Amount),
                field,
                0,
            )?;
            Some(Sp::new(Duration::Steps(v.value), e.span))
        }
        Some(q) if q.suffix == Suffix::Percent => share_range(diags, e, q.number / 100.0, field)
            .map(|v| Sp::new(Duration::Share(v.value), e.span)),
        Some(q) => {
            let v = q.number * factor(q.suffix, Context::Amount);
            if v < 0.0 || !v.is_finite() {
                diags.push(
                    Diagnostic::new(Code::RANGE, format!("`{field}` must not be negative"))
                        .label(e.span, "negative duration")
                        .help("write a duration of 0 or more"),
                );
                return None;
            }
            Some(Sp::new(Duration::Tokens(v), e.span))
        }
        None => {
            mismatch(diags, e, Ty::Duration, field);
            None
        }
    }
}

pub fn string(diags: &mut Diagnostics, e: &Expr, field: &str) -> Option<Sp<String>> {
    match &e.kind {
        ExprKind::Str(s) => Some(Sp::new(s.clone(), e.span)),
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::TYPE,
                    format!("`{field}` expects a string, found {}", found(e)),
                )
                .label(e.span, format!("this is {}", found(e)))
                .help("write a quoted string, e.g. \"corpus/*.jsonl\""),
            );
            None
        }
    }
}

/// A value or a transition `a -> b` of values read by `read`.
pub fn transition<T>(
    diags: &mut Diagnostics,
    e: &Expr,
    field: &str,
    mut read: impl FnMut(&mut Diagnostics, &Expr, &str) -> Option<Sp<T>>,
) -> Option<Transition<T>> {
    match &e.kind {
        ExprKind::Transition(a, b) => {
            let from = read(diags, a, field);
            let to = read(diags, b, field)?;
            from.map(|from| Transition {
                from: Some(from),
                to,
            })
        }
        _ => read(diags, e, field).map(|to| Transition { from: None, to }),
    }
}
