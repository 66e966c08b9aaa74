//! The `pipe` command line. Each subcommand lives in its own file with its own `Args`; all of
//! them go through the same `check()`.

#[cfg(feature = "train")]
mod bench;
mod check;
#[cfg(feature = "train")]
mod check_data;
mod export;
mod fix;
mod fmt;
mod lsp;
mod plan;
#[cfg(feature = "train")]
mod prepare_data;
#[cfg(feature = "train")]
mod report;
#[cfg(feature = "train")]
mod run;
#[cfg(feature = "train")]
mod sample_data;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes (docs/exit-codes.md). 0 is success.
/// The input (the pipeline or its data) has errors; nothing was run.
pub const EXIT_ERRORS: u8 = 1;
/// Usage or I/O problems: a file that cannot be read or written, a bad argument.
pub const EXIT_USAGE: u8 = 2;
/// Training started and failed (a numerical or device error inside a stage).
#[cfg(feature = "train")]
pub const EXIT_TRAINING: u8 = 3;
/// `pipe run`: another live process trains into the run directory (its PID is named).
#[cfg(feature = "train")]
pub const EXIT_BUSY: u8 = 4;
/// `pipe run`: stopped by SIGINT or SIGTERM at a step boundary after a checkpoint;
/// `--resume` continues (a second signal exits at once with 128 + the signal's number).
#[cfg(feature = "train")]
pub const EXIT_STOPPED: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    name = "pipe",
    version,
    about = "Check, plan and run multi-stage pre-training recipes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Check(check::Args),
    Plan(plan::Args),
    Export(export::Args),
    #[cfg(feature = "train")]
    Run(run::Args),
    #[cfg(feature = "train")]
    SampleData(sample_data::Args),
    #[cfg(feature = "train")]
    PrepareData(prepare_data::Args),
    #[cfg(feature = "train")]
    Bench(bench::Args),
    #[cfg(feature = "train")]
    Report(report::Args),
    Fmt(fmt::Args),
    Lsp(lsp::Args),
}

pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(a) => check::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Export(a) => export::run(a),
        #[cfg(feature = "train")]
        Command::Run(a) => run::run(a),
        #[cfg(feature = "train")]
        Command::SampleData(a) => sample_data::run(a),
        #[cfg(feature = "train")]
        Command::PrepareData(a) => prepare_data::run(a),
        #[cfg(feature = "train")]
        Command::Bench(a) => bench::run(a),
        #[cfg(feature = "train")]
        Command::Report(a) => report::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Lsp(a) => lsp::run(a),
    }
}

/// Reads a file or explains why not (exit code 2).
pub(crate) fn read_source(path: &std::path::Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", path.display());
        ExitCode::from(EXIT_USAGE)
    })
}

pub(crate) fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}
