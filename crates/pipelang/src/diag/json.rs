//! `--format json`: our own writer (miette's JSON handler has byte offsets only), with 1-based
//! lines and character columns.

use serde_json::{Value, json};

use super::Diagnostic;
use crate::syntax::{LineIndex, Span};

fn position(index: &LineIndex, source: &str, span: Span) -> (usize, usize, usize, usize) {
    let (l, c) = index.line_col_chars(source, span.start);
    let (el, ec) = index.line_col_chars(source, span.end);
    (l + 1, c + 1, el + 1, ec + 1)
}

/// One JSON object per diagnostic; the CLI wraps them as `{"diagnostics": [...]}`.
pub fn to_json(diags: &[Diagnostic], file: &str, source: &str) -> Vec<Value> {
    let index = LineIndex::new(source);
    diags
        .iter()
        .map(|d| {
            let (line, column, end_line, end_column) = position(&index, source, d.primary_span());
            let labels: Vec<Value> = d
                .labels
                .iter()
                .map(|l| {
                    let (line, column, end_line, end_column) = position(&index, source, l.span);
                    json!({
                        "message": l.message, "line": line, "column": column,
                        "end_line": end_line, "end_column": end_column,
                    })
                })
                .collect();
            json!({
                "code": d.code.as_str(),
                "severity": d.severity.as_str(),
                "message": d.message,
                "file": file,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "labels": labels,
                "help": d.help,
            })
        })
        .collect()
}
