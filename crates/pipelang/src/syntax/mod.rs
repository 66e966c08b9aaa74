//! Source text -> AST with byte spans. The parser never gives up on a file: syntax errors
//! become [`SyntaxError`]s next to the items that did parse.

pub mod ast;
mod explain;
mod fast;
mod lower;
mod span;

pub use ast::*;
pub use span::{LineIndex, Span};

/// The keywords that start an item (`grammar/pipe.pest`'s `item_start`).
const ITEM_KEYWORDS: &[&str] = &[
    "pipeline", "model", "data", "schedule", "stage", "profile", "mix",
];

/// Whether text at column 0 starts like an item (`item_start`): a keyword and a blank; `mix`
/// only with a name after it, since `mix {` is a stage's own mixture.
fn starts_item(text: &[u8]) -> bool {
    ITEM_KEYWORDS.iter().any(|k| {
        let Some(rest) = text.strip_prefix(k.as_bytes()) else {
            return false;
        };
        if !rest.starts_with(b" ") && !rest.starts_with(b"\t") {
            return false;
        }
        *k != "mix"
            || rest
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t'))
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    })
}

/// Parses a whole `.pipe` source. Always returns a file; its `errors` hold every syntax error.
/// A file without errors takes the hand-written fast path; any other goes to the pest parser,
/// which recovers and explains.
pub fn parse(source: &str) -> File {
    fast::parse(source).unwrap_or_else(|| lower::parse_file(source))
}

/// The pest parser alone, error recovery included. [`parse`] gives the same tree; this is
/// public so that tests can hold the two parsers against each other.
pub fn parse_recovering(source: &str) -> File {
    lower::parse_file(source)
}

/// The fast path alone: `None` when the file has a syntax error (or nests deeper than it
/// recurses). Public for the same reason as [`parse_recovering`].
pub fn parse_fast(source: &str) -> Option<File> {
    fast::parse(source)
}
