//! Numbers as people write them in recipes: `5.2T` tokens, `8K` contexts, `4e-4` LRs. The one
//! place that says what K/M/B/T are worth: the checker, hover and `--at` read them here, and
//! the same values print them back.

use crate::syntax::Suffix;

/// Where a number stands decides what K/M/B/T multiply by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Token amounts, counts, step counts, plain numbers: powers of 1,000 (`20B` tokens).
    Amount,
    /// Sequence lengths: powers of 1,024, as model cards write contexts (`8K` = 8,192).
    Length,
}

impl Context {
    fn base(self) -> f64 {
        match self {
            Context::Amount => 1e3,
            Context::Length => 1024.0,
        }
    }
}

/// The word after a number that makes it optimizer steps (`2000 steps`): durations and budgets.
pub const STEPS: &str = "steps";

/// Largest first, for printing.
const MAGNITUDES: [Suffix; 4] = [Suffix::T, Suffix::B, Suffix::M, Suffix::K];

/// What a number written with `suffix` is multiplied by in `ctx`; 1 without a K/M/B/T (a
/// percentage's division by 100 is the reader's, as a share is not an amount).
pub fn factor(suffix: Suffix, ctx: Context) -> f64 {
    let power = match suffix {
        Suffix::K => 1,
        Suffix::M => 2,
        Suffix::B => 3,
        Suffix::T => 4,
        Suffix::None | Suffix::Percent => 0,
    };
    ctx.base().powi(power)
}

/// A number written outside a recipe (`--at 10B`, `--at 1_200`): the digits and the K/M/B/T
/// after them, if any. `_` between digits is dropped as in recipes.
pub fn split(text: &str) -> (String, Suffix) {
    let text = text.replace('_', "");
    match text.chars().last().and_then(Suffix::from_char) {
        Some(s) if s != Suffix::Percent => (text[..text.len() - 1].to_string(), s),
        _ => (text, Suffix::None),
    }
}

/// A token amount with the largest K/M/B/T that keeps it >= 1.
pub fn tokens(v: f64) -> String {
    for s in MAGNITUDES {
        let scale = factor(s, Context::Amount);
        if v.abs() >= scale {
            return format!("{}{}", trim2(v / scale), s.as_str());
        }
    }
    trim(v)
}

/// A sequence length: `8K` when a multiple of 1,024, else the plain count.
pub fn length(v: u64) -> String {
    let k = factor(Suffix::K, Context::Length) as u64;
    if v >= k && v.is_multiple_of(k) {
        format!("{}K", v / k)
    } else {
        v.to_string()
    }
}

/// An LR in the short scientific form used in recipes (`4e-4`, `2.5e-5`).
pub fn lr(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:.3e}");
    let (m, e) = s.split_once('e').unwrap();
    let m = m.trim_end_matches('0').trim_end_matches('.');
    format!("{m}e{e}")
}

/// A setting as a recipe writes it: small values in the scientific form (`1e-8`), others plain
/// (`0.95`, `1`).
pub fn setting(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        lr(v)
    } else {
        format!("{v}")
    }
}

/// Up to 2 decimals, no trailing zeros.
pub fn trim2(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// Up to 4 significant decimals, no trailing zeros.
pub fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// A whole number with `,` every three digits (`5,200,000,000,000`).
pub fn grouped(v: u64) -> String {
    separated(v, ',')
}

/// A whole number as a recipe writes it, `_` every three digits (`10_000`).
pub fn underscored(v: u64) -> String {
    separated(v, '_')
}

fn separated(v: u64, sep: char) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Context, factor, split};
    use crate::syntax::Suffix;

    #[test]
    fn amounts_are_powers_of_1000() {
        assert_eq!(factor(Suffix::K, Context::Amount), 1e3);
        assert_eq!(factor(Suffix::M, Context::Amount), 1e6);
        assert_eq!(factor(Suffix::B, Context::Amount), 1e9);
        assert_eq!(factor(Suffix::T, Context::Amount), 1e12);
        assert_eq!(factor(Suffix::None, Context::Amount), 1.0);
        assert_eq!(5.2 * factor(Suffix::T, Context::Amount), 5.2e12);
    }

    #[test]
    fn lengths_are_powers_of_1024() {
        assert_eq!(8.0 * factor(Suffix::K, Context::Length), 8192.0);
        assert_eq!(128.0 * factor(Suffix::K, Context::Length), 131_072.0);
        assert_eq!(factor(Suffix::M, Context::Length), 1_048_576.0);
        assert_eq!(factor(Suffix::T, Context::Length), 1024f64.powi(4));
        assert_eq!(factor(Suffix::None, Context::Length), 1.0);
    }

    #[test]
    fn splits_a_written_number() {
        assert_eq!(split("10B"), ("10".to_string(), Suffix::B));
        assert_eq!(split("1_200"), ("1200".to_string(), Suffix::None));
        assert_eq!(split("2.5K"), ("2.5".to_string(), Suffix::K));
        assert_eq!(split("50%"), ("50%".to_string(), Suffix::None));
        assert_eq!(split(""), (String::new(), Suffix::None));
    }

    #[test]
    fn formats() {
        assert_eq!(super::tokens(5.2e12), "5.2T");
        assert_eq!(super::tokens(20e9), "20B");
        assert_eq!(super::tokens(512.0), "512");
        assert_eq!(super::length(8192), "8K");
        assert_eq!(super::length(100), "100");
        assert_eq!(super::lr(4e-4), "4e-4");
        assert_eq!(super::lr(2.5e-5), "2.5e-5");
        assert_eq!(super::grouped(5_200_000_000_000), "5,200,000,000,000");
        assert_eq!(super::underscored(10_000), "10_000");
        assert_eq!(super::underscored(448), "448");
    }
}
