//! pipelang: a checked, executable language for multi-stage pre-training recipes.
//!
//! The modules follow the program's own pipeline: `syntax` (pest -> AST with byte spans) ->
//! `check` (typed pipeline + diagnostics) -> `plan` (the resolved schedule), with `fmt` and the
//! pure rules of hot reload (`reload`) beside them, all sharing one `check()`. Training lives
//! in `pipelang-runtime`, the language server in `pipelang-lsp`, the command line in `pipe`.

pub mod atomic;
pub mod check;
pub mod diag;
pub mod fmt;
pub mod idx;
pub mod plan;
pub mod reload;
pub mod schema;
pub mod syntax;
