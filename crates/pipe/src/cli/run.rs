//! `pipe run FILE [--profile NAME] --out RUN_DIR [--resume] [--device cpu|cuda]
//! [--kernels fused|reference] [--seed N]`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_BUSY, EXIT_ERRORS, EXIT_TRAINING, EXIT_USAGE, use_color};
use pipelang::diag;
use pipelang_runtime::model::Kernels;
use pipelang_runtime::{RunError, RunOptions, Runner};

/// Train the pipeline's stages in plan order, with checkpoints, resume and metrics.
#[derive(clap::Args, Debug)]
pub struct Args {
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
    /// Train with an external engine instead of pipelang's runtime (docs/engines.md).
    #[arg(long, value_enum)]
    engine: Option<super::export::Engine>,
    /// Processes per engine run (`torchrun --nproc-per-node`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    nproc: u32,
    /// Pieces per phase whose mixture ramps, for an engine (default: within 1 point of the plan).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    ramp_pieces: Option<u64>,
}

/// `--engine olmo-core`: the plan's runs trained by OLMo-core under torchrun.
fn run_engine(a: Args) -> ExitCode {
    if a.watch {
        eprintln!("error: --watch is not yet supported with --engine (docs/engines.md)");
        return ExitCode::from(EXIT_USAGE);
    }
    let o = pipelang_runtime::trainer::olmo_core::EngineOptions {
        out: a.out.clone(),
        nproc: a.nproc,
        ramp_pieces: a.ramp_pieces,
        resume: a.resume,
    };
    let started = std::time::Instant::now();
    let mut log = |m: String| eprintln!("{m}");
    match pipelang_runtime::trainer::olmo_core::run_file(
        &a.file,
        a.profile.as_deref(),
        &o,
        &mut log,
    ) {
        Ok((prep, record)) => {
            print!(
                "{}",
                pipelang_runtime::summary::render(
                    &prep.plan,
                    &record,
                    &a.out,
                    started.elapsed().as_secs_f64()
                )
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(e),
    }
}

pub fn run(a: Args) -> ExitCode {
    if a.engine.is_some() {
        return run_engine(a);
    }
    let watch = a.watch;
    let opts = options(a);
    let mut runner = match Runner::new(opts, Box::new(|m| eprintln!("{m}"))) {
        Ok(r) => r,
        Err(e) => return report(e),
    };
    let started = std::time::Instant::now();
    let result = if watch {
        pipelang_runtime::watch::run_watching(&mut runner, super::use_color())
    } else {
        runner.run(&mut |_, _| None)
    };
    if let Err(e) = result {
        return report(e);
    }
    print!(
        "{}",
        pipelang_runtime::summary::render(
            &runner.prep.plan,
            &runner.record,
            &runner.opts.out,
            started.elapsed().as_secs_f64()
        )
    );
    ExitCode::SUCCESS
}

fn report(e: RunError) -> ExitCode {
    match e {
        RunError::Diagnostics {
            file,
            source,
            diagnostics,
        } => {
            eprint!(
                "{}",
                diag::render_human(
                    &diagnostics,
                    &file.display().to_string(),
                    &source,
                    use_color()
                )
            );
            eprintln!("pipe run: stopped before training; nothing was written");
            ExitCode::from(EXIT_ERRORS)
        }
        RunError::Training(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_TRAINING)
        }
        RunError::Locked(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_BUSY)
        }
        RunError::Other(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn options(a: Args) -> RunOptions {
    RunOptions {
        file: a.file,
        profile: a.profile,
        out: a.out,
        resume: a.resume,
        cuda: a.device == "cuda",
        kernels: a.kernels.map(|k| match k.as_str() {
            "reference" => Kernels::Reference,
            _ => Kernels::Fused,
        }),
        seed: a.seed,
        checkpoint_every: a.checkpoint_every.max(1),
        progress: std::io::stderr().is_terminal(),
    }
}
