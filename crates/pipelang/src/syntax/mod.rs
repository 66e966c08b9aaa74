//! Source text -> AST with byte spans. The parser never gives up on a file: syntax errors
//! become [`SyntaxError`]s next to the items that did parse.

pub mod ast;
mod explain;
mod fast;
mod lower;
mod span;

pub use ast::*;
pub use span::{LineIndex, Span};

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
