//! `pipe lsp`: the language server over stdio, for editors.

use std::process::ExitCode;

use super::EXIT_ERRORS;

/// Run the language server on stdin/stdout (for editors).
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_: Args) -> ExitCode {
    match pipelang_lsp::run_stdio() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe lsp: {e}");
            ExitCode::from(EXIT_ERRORS)
        }
    }
}
