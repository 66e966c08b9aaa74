//! `pipe run FILE [--profile NAME] --out RUN_DIR [--resume] [--device cpu|cuda]
//! [--kernels fused|reference] [--seed N]`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::use_color;
use crate::diag;
use crate::runtime::model::Kernels;
use crate::runtime::{RunError, RunOptions, Runner};

pub fn run(opts: RunOptions, watch: bool) -> ExitCode {
    let mut runner = match Runner::new(opts, Box::new(|m| eprintln!("{m}"))) {
        Ok(r) => r,
        Err(e) => return report(e),
    };
    let started = std::time::Instant::now();
    let result = if watch {
        crate::reload::watch::run_watching(&mut runner)
    } else {
        runner.run(&mut |_, _| None)
    };
    if let Err(e) = result {
        return report(e);
    }
    print!(
        "{}",
        crate::runtime::summary::render(
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
            ExitCode::from(1)
        }
        RunError::Other(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::too_many_arguments)] // one per `pipe run` flag, named at the single call site
pub fn options(
    file: PathBuf,
    profile: Option<String>,
    out: PathBuf,
    resume: bool,
    device: &str,
    kernels: Option<&str>,
    seed: Option<u64>,
    checkpoint_every: u64,
) -> RunOptions {
    RunOptions {
        file,
        profile,
        out,
        resume,
        cuda: device == "cuda",
        kernels: kernels.map(|k| match k {
            "reference" => Kernels::Reference,
            _ => Kernels::Fused,
        }),
        seed,
        checkpoint_every,
        progress: std::io::stderr().is_terminal(),
    }
}
