//! Brace expansion in data globs, as shells and WebDataset write shard lists:
//! `laion/{00000..00127}.tar` (a range, zero-padded to the wider bound when either bound starts
//! with 0) and `{train,extra}/*.tar` (a list). Expanded before globbing (the `glob` crate reads
//! braces literally), so each shard a range names must exist. Hand-written because it is this
//! small: no brace crate covers ranges with the padding rules and stays this size.

/// Ranges longer than this are refused rather than expanded (a typo like `{0..99999999}`).
pub const MAX_EXPANSION: usize = 1_000_000;

/// The patterns `pattern` stands for, in order. A `{` without a matching `}`, or whose body is
/// neither a list (a top-level comma) nor an integer range, stays literal.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = vec![];
    expand_into(pattern, 0, &mut out)?;
    Ok(out)
}

fn expand_into(pattern: &str, from: usize, out: &mut Vec<String>) -> Result<(), String> {
    let bytes = pattern.as_bytes();
    let mut i = from;
    while let Some(off) = pattern[i..].find('{') {
        let open = i + off;
        let Some(close) = matching(bytes, open) else {
            break;
        };
        let body = &pattern[open + 1..close];
        let alternatives = match split_top(body) {
            parts if parts.len() > 1 => parts.into_iter().map(str::to_string).collect(),
            _ => match range(body)? {
                Some(items) => items,
                None => {
                    i = open + 1;
                    continue;
                }
            },
        };
        if out.len() + alternatives.len() > MAX_EXPANSION {
            return Err(format!(
                "`{pattern}` expands to more than {MAX_EXPANSION} patterns"
            ));
        }
        let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
        for alt in alternatives {
            // The alternative may hold braces of its own; the head holds none left to expand.
            expand_into(&format!("{head}{alt}{tail}"), open, out)?;
        }
        return Ok(());
    }
    out.push(pattern.to_string());
    Ok(())
}

/// The `}` closing the `{` at `open`, braces nested.
fn matching(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// `body` split at the commas outside nested braces.
fn split_top(body: &str) -> Vec<&str> {
    let mut parts = vec![];
    let (mut depth, mut start) = (0usize, 0);
    for (k, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&body[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

/// `N..M` (either way round): the integers, zero-padded to the wider bound's width when a bound
/// is written with a leading zero.
fn range(body: &str) -> Result<Option<Vec<String>>, String> {
    let Some((a, b)) = body.split_once("..") else {
        return Ok(None);
    };
    let int = |s: &str| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        (!digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let (Some(x), Some(y)) = (int(a), int(b)) else {
        return Ok(None);
    };
    let padded = |s: &str| {
        let d = s.strip_prefix('-').unwrap_or(s);
        d.len() > 1 && d.starts_with('0')
    };
    let width = match padded(a) || padded(b) {
        true => a.len().max(b.len()),
        false => 0,
    };
    let n = x.abs_diff(y) as usize + 1;
    if n > MAX_EXPANSION {
        return Err(format!(
            "`{{{body}}}` names {n} items, more than {MAX_EXPANSION}"
        ));
    }
    let step: i64 = if y >= x { 1 } else { -1 };
    Ok(Some(
        (0..n as i64)
            .map(|k| {
                let v = x + k * step;
                match v < 0 {
                    true => format!("-{:0w$}", -v, w = width.saturating_sub(1)),
                    false => format!("{v:0width$}"),
                }
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges_are_zero_padded_and_lists_expand_in_order() {
        let v = expand("laion/{00000..00127}.tar").unwrap();
        assert_eq!(v.len(), 128);
        assert_eq!(
            (&v[0][..], &v[127][..]),
            ("laion/00000.tar", "laion/00127.tar")
        );
        assert_eq!(
            expand("s{8..11}.tar").unwrap(),
            ["s8.tar", "s9.tar", "s10.tar", "s11.tar"]
        );
        assert_eq!(expand("{3..1}").unwrap(), ["3", "2", "1"]);
        assert_eq!(expand("{08..10}").unwrap(), ["08", "09", "10"]);
        assert_eq!(
            expand("{train,extra}/{0..1}.tar").unwrap(),
            ["train/0.tar", "train/1.tar", "extra/0.tar", "extra/1.tar"]
        );
        assert_eq!(expand("{a,{b,c}d}").unwrap(), ["a", "bd", "cd"]);
    }

    #[test]
    fn braces_that_are_neither_stay_literal_and_huge_ranges_are_refused() {
        assert_eq!(expand("x/{abc}/*.tar").unwrap(), ["x/{abc}/*.tar"]);
        assert_eq!(expand("x/{1..b}").unwrap(), ["x/{1..b}"]);
        assert_eq!(expand("open{1,2").unwrap(), ["open{1,2"]);
        assert_eq!(expand("{a}{1,2}").unwrap(), ["{a}1", "{a}2"]);
        assert!(expand("{0..99999999}").unwrap_err().contains("more than"));
    }
}
