//! The canonical layout of `.pipe` files, shared by `pipe fmt` and the language server.
//!
//! Formatting prints the syntax tree again (`print`), then puts every comment and blank line
//! back by source position (`layout`). It refuses files with syntax errors: a tree with error
//! nodes does not hold all of the text, and formatting it would lose some.

mod comments;
mod expr;
mod layout;
mod print;

use crate::syntax::{self, LineIndex};

pub use layout::COMMENT_COLUMN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The file does not parse; `line` and `column` are 1-based (column in characters).
    #[error(
        "line {line}, column {column}: {message}; fix the syntax error first (`pipe check` explains it)"
    )]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The formatter produced text that does not parse back, or lost a comment: a bug, reported
    /// instead of writing the file.
    #[error("internal formatter error: {0}; the file was left unchanged, please report it")]
    Internal(String),
}

/// The canonical layout of `source`. Idempotent: formatting the result changes nothing.
pub fn format(source: &str) -> Result<String, FormatError> {
    let file = syntax::parse(source);
    let index = LineIndex::new(source);
    if let Some(e) = file.errors.iter().min_by_key(|e| e.span.start) {
        let (line, col) = index.line_col_chars(source, e.span.start);
        let expected = match e.expected.as_slice() {
            [] => String::new(),
            [one] => format!(", expected {one}"),
            [rest @ .., last] => format!(", expected {} or {last}", rest.join(", ")),
        };
        return Err(FormatError::Syntax {
            line: line + 1,
            column: col + 1,
            message: format!("unexpected {}{expected}", e.found),
        });
    }
    let comments = comments::scan(source, &index);
    let mut printer = print::Printer::new(source, &comments);
    printer.file(&file);
    let out = layout::render(source, &index, &comments, &printer.lines);

    let again = syntax::parse(&out);
    if let Some(e) = again.errors.first() {
        let (line, col) = LineIndex::new(&out).line_col_chars(&out, e.span.start);
        return Err(FormatError::Internal(format!(
            "the output does not parse at line {}, column {}",
            line + 1,
            col + 1
        )));
    }
    let kept = comments::scan(&out, &LineIndex::new(&out)).len();
    if kept != comments.len() {
        return Err(FormatError::Internal(format!(
            "{} comments in, {kept} out",
            comments.len()
        )));
    }
    Ok(out)
}
