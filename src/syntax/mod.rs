//! Source text -> AST with byte spans. The parser never gives up on a file: syntax errors
//! become [`SyntaxError`]s next to the items that did parse.

pub mod ast;
mod explain;
mod lower;
mod span;

pub use ast::*;
pub use span::{LineIndex, Span};

/// Parses a whole `.pipe` source. Always returns a file; its `errors` hold every syntax error.
pub fn parse(source: &str) -> File {
    lower::parse_file(source)
}
