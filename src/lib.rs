//! pipelang: a checked, executable language for multi-stage pre-training recipes.
//!
//! The folders follow the program's own pipeline: `syntax` (pest -> AST with byte spans) ->
//! `check` (typed pipeline + diagnostics) -> `plan` (resolved schedule) -> `runtime` (candle),
//! with `reload`, `lsp` and `fmt` beside them, all sharing one `check()`.

pub mod check;
pub mod cli;
pub mod diag;
pub mod fmt;
pub mod lsp;
pub mod plan;
pub mod reload;
pub mod runtime;
pub mod syntax;
