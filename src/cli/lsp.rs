//! `pipe lsp`: the language server over stdio, for editors.

use std::process::ExitCode;

pub fn run() -> ExitCode {
    match crate::lsp::run_stdio() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe lsp: {e}");
            ExitCode::from(1)
        }
    }
}
