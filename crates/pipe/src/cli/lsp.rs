//! `pipe lsp`: the language server over stdio, for editors.

use std::process::ExitCode;

use super::EXIT_ERRORS;

/// Run the language server on stdin/stdout (for editors).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve over stdin/stdout (the only transport, and the default). Accepted because LSP
    /// clients such as vscode-languageclient pass it when they start a server over stdio.
    #[arg(long)]
    stdio: bool,
}

pub fn run(_: Args) -> ExitCode {
    match pipelang_lsp::run_stdio() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe lsp: {e}");
            ExitCode::from(EXIT_ERRORS)
        }
    }
}
