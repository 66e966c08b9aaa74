//! Puts comments and blank lines back into the printed lines, by source position.
//!
//! A comment alone on its line goes before the first printed line that starts after it, at
//! that line's indentation (one level deeper before a `}`). A comment after code goes at the
//! end of the last printed line that covers its source line; a line that receives several
//! keeps the last one and gets the others on their own lines above it. A blank line in the
//! source before a line (or comment) that starts its source line is kept, one at most, never
//! right after a `{` or before a `}`.

use super::comments::Comment;
use super::print::{Kind, Line};
use crate::syntax::LineIndex;

/// Trailing comments start in this column (0-based) when the code leaves room.
pub const COMMENT_COLUMN: usize = 39;

pub fn render(src: &str, index: &LineIndex, comments: &[Comment], lines: &[Line]) -> String {
    let n = lines.len();
    let mut before: Vec<Vec<&Comment>> = vec![vec![]; n + 1];
    let mut trailing: Vec<Vec<&Comment>> = vec![vec![]; n];
    for c in comments {
        if c.own_line {
            let at = lines.partition_point(|l| l.src.start <= c.span.start);
            before[at].push(c);
            continue;
        }
        let covers = |l: &Line| {
            index.line(l.src.start) <= c.line
                && c.line <= index.line(l.src.end.saturating_sub(1).max(l.src.start))
        };
        let target = lines.iter().rposition(covers).or_else(|| {
            lines
                .iter()
                .rposition(|l| index.line(l.src.start) <= c.line)
        });
        match target {
            Some(i) => trailing[i].push(c),
            None => before[0].push(c),
        }
    }
    for i in 0..n {
        if trailing[i].len() > 1 {
            let last = trailing[i].pop();
            before[i].append(&mut trailing[i]);
            before[i].sort_by_key(|c| c.span.start);
            trailing[i].extend(last);
        }
    }

    let mut out = String::new();
    let mut prev_open = true; // no blank line at the start of the file
    let mut emit = |out: &mut String,
                    indent: usize,
                    text: &str,
                    start: usize,
                    kind: Kind,
                    comment: Option<&Comment>| {
        if !prev_open
            && kind != Kind::Close
            && starts_line(src, index, start)
            && blank_before(src, index, start)
        {
            out.push('\n');
        }
        let mut line = format!("{}{text}", " ".repeat(indent));
        if let Some(c) = comment {
            let width = line.chars().count();
            let pad = COMMENT_COLUMN.max(width + 1) - width;
            line += &" ".repeat(pad);
            line += &src[c.span.start..c.span.end];
        }
        out.push_str(line.trim_end());
        out.push('\n');
        prev_open = kind == Kind::Open;
    };
    for i in 0..=n {
        let indent = match lines.get(i) {
            Some(l) if l.kind == Kind::Close => l.indent + 2,
            Some(l) => l.indent,
            None => 0,
        };
        for c in &before[i] {
            emit(
                &mut out,
                indent,
                &src[c.span.start..c.span.end],
                c.span.start,
                Kind::Plain,
                None,
            );
        }
        if let Some(l) = lines.get(i) {
            emit(
                &mut out,
                l.indent,
                &l.text,
                l.src.start,
                l.kind,
                trailing[i].first().copied(),
            );
        }
    }
    out
}

/// Nothing but whitespace before `offset` on its line.
fn starts_line(src: &str, index: &LineIndex, offset: usize) -> bool {
    src[index.line_start(index.line(offset))..offset]
        .trim()
        .is_empty()
}

/// The source line before `offset`'s line is blank.
fn blank_before(src: &str, index: &LineIndex, offset: usize) -> bool {
    let line = index.line(offset);
    if line == 0 {
        return false;
    }
    let start = index.line_start(line - 1);
    let end = index.line_start(line);
    src[start..end].trim().is_empty()
}
