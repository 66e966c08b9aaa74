//! `pipe report RUN_DIR [--plot PATH]`: the end-of-run table again, from `run.ron` and the last
//! applied version of the pipeline; with `--plot`, loss and LR across the stages.

use std::path::PathBuf;
use std::process::ExitCode;

use pipelang_runtime::record::RunRecord;

use super::{EXIT_ERRORS, EXIT_USAGE};

/// Print a run's summary table again; `--plot` draws its loss and LR across the stages.
#[derive(clap::Args, Debug)]
pub struct Args {
    run_dir: PathBuf,
    /// Also draw the loss and LR of every step (.svg or .png).
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    if let Some(plot) = &a.plot {
        if let Err(e) = crate::plot::report::plot(&a.run_dir, plot) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        eprintln!("plot written to {}", plot.display());
    }
    match summary(&a.run_dir) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}

/// The table `pipe run` printed at its end, for the plan of the last applied version.
fn summary(dir: &std::path::Path) -> Result<String, (u8, String)> {
    let record = RunRecord::load(&dir.join("run.ron")).map_err(|e| (EXIT_USAGE, e))?;
    let version = record.versions.last().ok_or_else(|| {
        (
            EXIT_USAGE,
            format!("`{}` records no pipeline version", dir.display()),
        )
    })?;
    let path = dir.join(&version.source_file);
    let source = std::fs::read_to_string(&path)
        .map_err(|e| (EXIT_USAGE, format!("cannot read `{}`: {e}", path.display())))?;
    let checked = pipelang::check::check_with(&source, record.profile.as_deref());
    let plan = checked.into_plan().ok_or_else(|| {
        (
            EXIT_ERRORS,
            format!(
                "`{}` no longer plans: run `pipe check` on it",
                path.display()
            ),
        )
    })?;
    let wall: f64 = record.stages.iter().map(|s| s.wall_s).sum();
    Ok(pipelang_runtime::summary::render(&plan, &record, dir, wall))
}
