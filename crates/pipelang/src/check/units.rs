//! Numbers as people write them in recipes: `5.2T` tokens, `8K` contexts, `4e-4` LRs.

/// A token amount with the largest K/M/B/T (powers of 1,000) that keeps it >= 1.
pub fn tokens(v: f64) -> String {
    let units = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")];
    for (scale, u) in units {
        if v.abs() >= scale {
            return format!("{}{u}", trim2(v / scale));
        }
    }
    trim(v)
}

/// A sequence length: `8K` when a multiple of 1,024, else the plain count.
pub fn length(v: u64) -> String {
    if v >= 1024 && v.is_multiple_of(1024) {
        format!("{}K", v / 1024)
    } else {
        v.to_string()
    }
}

/// An LR in the short scientific form used in recipes (`4e-4`, `2.5e-5`).
pub fn lr(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let s = format!("{v:.3e}");
    let (m, e) = s.split_once('e').unwrap();
    let m = m.trim_end_matches('0').trim_end_matches('.');
    format!("{m}e{e}")
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
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
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
    }
}
