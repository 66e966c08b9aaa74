//! The `pipe` command line. Each subcommand lives in its own file; all of them go through the
//! same `check()`.

mod bench;
mod check;
mod fix;
mod fmt;
mod lsp;
mod plan;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Check pipelines: names, units, ranges, the stage graph and every hand-over.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check with this profile applied (every profile is always checked too).
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Exit with 1 when there are warnings.
        #[arg(long)]
        deny_warnings: bool,
        /// Apply every fix the diagnostics know (the editors' quick fixes) to the files, then
        /// report what is left.
        #[arg(long)]
        fix: bool,
    },
    /// Show the exact schedule: steps, LR, mixture, RoPE and sequence length per stage.
    Plan {
        file: PathBuf,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// The state at one point: STAGE[.PHASE]@POINT, POINT a step (1200), tokens (10B), a share (50%) or `end`.
        #[arg(long)]
        at: Option<crate::plan::PointQuery>,
        /// Write the resolved plan as RON.
        #[arg(long)]
        emit_ron: Option<PathBuf>,
        /// Draw LR, mixture, seq_len and RoPE along the run (.svg or .png).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Train the pipeline's stages in plan order, with checkpoints, resume and metrics.
    Run {
        file: PathBuf,
        #[arg(long)]
        profile: Option<String>,
        /// The run directory (run.ron, checkpoints/, metrics.jsonl).
        #[arg(long)]
        out: PathBuf,
        /// Continue the run in --out from its last checkpoint.
        #[arg(long)]
        resume: bool,
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
        device: String,
        /// The models' kernels: `fused` (CPU custom ops, the CPU default) or `reference`
        /// (plain differentiable candle ops, the default on other devices).
        #[arg(long, value_parser = ["fused", "reference"])]
        kernels: Option<String>,
        /// Overrides the pipeline's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Checkpoint every N steps (and at the end of every stage).
        #[arg(long, default_value_t = 500)]
        checkpoint_every: u64,
        /// Re-check the pipeline file on every change and apply safe edits between stages.
        #[arg(long)]
        watch: bool,
    },
    /// Write the generated sample data (shapes, captions, documents, videos) into DIR.
    SampleData {
        dir: PathBuf,
        #[arg(long, default_value_t = 2025)]
        seed: u64,
    },
    /// Training throughput of the runtime on the benchmark model (bench/throughput.pipe).
    Bench {
        #[arg(long, default_value_t = 30)]
        steps: u64,
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Where to train: `cpu`, or `cuda` (a build with `--features cuda`).
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
        device: String,
        /// Also print the wall time per step of each fused op (CPU kernels).
        #[arg(long)]
        ops: bool,
    },
    /// Plot the loss and LR of a run across its stages.
    Report {
        run_dir: PathBuf,
        #[arg(long)]
        plot: PathBuf,
    },
    /// Rewrite files in the canonical layout (`-`: stdin to stdout); comments are kept.
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write nothing; exit with 1 when a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Run the language server on stdin/stdout (for editors).
    Lsp {
        /// Serve over stdin/stdout (the only transport, and the default). Accepted because LSP
        /// clients such as vscode-languageclient pass it when they start a server over stdio.
        #[arg(long)]
        stdio: bool,
    },
}

/// Exit codes: 0 success, 1 the input has errors, 2 usage or I/O problems.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            files,
            profile,
            format,
            deny_warnings,
            fix,
        } => check::run(&files, profile.as_deref(), format, deny_warnings, fix),
        Command::Plan {
            file,
            profile,
            format,
            at,
            emit_ron,
            plot,
        } => plan::run(plan::Args {
            file: &file,
            profile: profile.as_deref(),
            format,
            at: at.as_ref(),
            emit_ron: emit_ron.as_ref(),
            plot: plot.as_ref(),
        }),
        Command::Run {
            file,
            profile,
            out,
            resume,
            device,
            kernels,
            seed,
            checkpoint_every,
            watch,
        } => run::run(
            run::options(
                file,
                profile,
                out,
                resume,
                &device,
                kernels.as_deref(),
                seed,
                checkpoint_every.max(1),
            ),
            watch,
        ),
        Command::Bench {
            steps,
            warmup,
            threads,
            device,
            ops,
        } => {
            if let Some(t) = threads {
                // SAFETY: set before any thread pool starts, on the main thread.
                unsafe { std::env::set_var("RAYON_NUM_THREADS", t.to_string()) };
            }
            bench::run(steps.max(1), warmup, device == "cuda", ops)
        }
        Command::SampleData { dir, seed } => {
            match crate::runtime::data::generate_sample_data(&dir, seed) {
                Ok(s) => {
                    println!(
                        "wrote {} files ({} images, {} bytes) to {}",
                        s.files,
                        s.images,
                        s.bytes,
                        s.dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Report { run_dir, plot } => match crate::runtime::report::plot(&run_dir, &plot) {
            Ok(()) => {
                eprintln!("plot written to {}", plot.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Fmt { files, check } => fmt::run(&files, check),
        Command::Lsp { stdio: _ } => lsp::run(),
    }
}

/// Reads a file or explains why not (exit code 2).
pub(crate) fn read_source(path: &std::path::Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", path.display());
        ExitCode::from(2)
    })
}

pub(crate) fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}
