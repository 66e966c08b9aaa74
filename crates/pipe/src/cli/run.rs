//! `pipe run FILE [--profile NAME] --out RUN_DIR [--resume] [--device cpu|cuda]
//! [--kernels fused|reference] [--seed N] [--checkpoint-every N] [--checkpoint-minutes M]
//! [--keep-checkpoints N] [--watch]`
//!
//! SIGINT and SIGTERM stop at the next step boundary with a checkpoint (exit 5, and the
//! command that continues); a second one stops at once.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_BUSY, EXIT_ERRORS, EXIT_STOPPED, EXIT_TRAINING, EXIT_USAGE, use_color};
use pipelang::diag;
use pipelang_runtime::model::Kernels;
use pipelang_runtime::stop::StopFlag;
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
    /// Checkpoint also once this many minutes have passed since the last checkpoint
    /// (0: by steps only).
    #[arg(long, default_value_t = 10.0)]
    checkpoint_minutes: f64,
    /// Checkpoints kept of a running stage: the latest and the ones before it (at least 1).
    #[arg(long, default_value_t = 3)]
    keep_checkpoints: usize,
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
    if a.engine == Some(super::export::Engine::Megatron) {
        eprintln!(
            "error: `pipe run` trains with OLMo-core (`--engine olmo-core`); for Megatron-LM write \
             the launch files with `pipe export {} --engine megatron --out DIR` (docs/engines.md)",
            a.file.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let stop = match StopFlag::on_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let o = pipelang_runtime::trainer::olmo_core::EngineOptions {
        out: a.out.clone(),
        nproc: a.nproc,
        ramp_pieces: a.ramp_pieces,
        resume: a.resume,
        stop,
    };
    let resume = resume_command(&a);
    let started = std::time::Instant::now();
    let mut log = |m: String| eprintln!("{m}");
    use pipelang_runtime::trainer::olmo_core as engine;
    let opened = match engine::open(&a.file, a.profile.as_deref(), &o, &mut log) {
        Ok(x) => x,
        Err(e) => return report(e, &resume),
    };
    // With --watch, accepted edits apply between engine runs, under the same rules (and the
    // same watcher) as between the candle runtime's stages.
    let watch = if a.watch {
        let target = pipelang_runtime::watch::Target {
            file: a.file.clone(),
            profile: a.profile.clone(),
            out: a.out.clone(),
            color: use_color(),
        };
        let progress = opened.record.progress_during(&opened.prep.plan);
        let watch_log: pipelang_runtime::watch::Log = std::sync::Arc::new(|m| eprintln!("{m}"));
        match pipelang_runtime::watch::Watch::start(target, &opened.prep, progress, watch_log) {
            Ok(w) => Some(w),
            Err(e) => return report(e, &resume),
        }
    } else {
        None
    };
    let result = engine::train(
        opened,
        &o,
        &mut |prep, record| watch.as_ref().and_then(|w| w.boundary(prep, record)),
        &mut log,
    );
    match result {
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
        Err(e) => report(e, &resume),
    }
}

pub fn run(a: Args) -> ExitCode {
    if a.engine.is_some() {
        return run_engine(a);
    }
    let watch = a.watch;
    let resume = resume_command(&a);
    let stop = match StopFlag::on_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let opts = match options(a, stop) {
        Ok(o) => o,
        Err(e) => return report(e, &resume),
    };
    let mut runner = match Runner::new(opts, Box::new(|m| eprintln!("{m}"))) {
        Ok(r) => r,
        Err(e) => return report(e, &resume),
    };
    let started = std::time::Instant::now();
    let result = if watch {
        pipelang_runtime::watch::run_watching(&mut runner, super::use_color())
    } else {
        runner.run(&mut |_, _| None)
    };
    if let Err(e) = result {
        return report(e, &resume);
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

/// The command that continues this run, as the user would type it.
fn resume_command(a: &Args) -> String {
    let mut c = format!(
        "pipe run {} --out {}",
        quote(&a.file.display().to_string()),
        quote(&a.out.display().to_string())
    );
    if let Some(p) = &a.profile {
        c.push_str(&format!(" --profile {}", quote(p)));
    }
    if a.engine.is_some() {
        c.push_str(&format!(" --engine olmo-core --nproc {}", a.nproc));
    }
    c.push_str(" --resume");
    c
}

/// Quotes a word for a POSIX shell when it needs it.
fn quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

fn report(e: RunError, resume: &str) -> ExitCode {
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
        RunError::Stopped(s) => {
            eprintln!("pipe run: {s}");
            eprintln!("  continue with: {resume}");
            ExitCode::from(EXIT_STOPPED)
        }
        RunError::Other(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn options(a: Args, stop: StopFlag) -> Result<RunOptions, RunError> {
    if !(a.checkpoint_minutes >= 0.0 && a.checkpoint_minutes.is_finite()) {
        return Err(RunError::Other(format!(
            "--checkpoint-minutes {}: give a number of minutes, 0 to checkpoint by steps only",
            a.checkpoint_minutes
        )));
    }
    let wall = (a.checkpoint_minutes > 0.0)
        .then(|| std::time::Duration::from_secs_f64(a.checkpoint_minutes * 60.0));
    Ok(RunOptions {
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
        checkpoint_wall: wall,
        keep_checkpoints: a.keep_checkpoints.max(1),
        stop,
        progress: std::io::stderr().is_terminal(),
    })
}
