//! `pipe plan FILE [--profile NAME] [--format human|json] [--at STAGE[.PHASE]@POINT]
//! [--emit-ron PATH] [--plot PATH.svg|PATH.png]`

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERRORS, EXIT_USAGE, Format, read_source, use_color};
use pipelang::diag;
use pipelang::plan::{PointQuery, table};

/// Show the exact schedule: steps, LR, mixture, RoPE and sequence length per stage.
#[derive(clap::Args, Debug)]
pub struct Args {
    file: PathBuf,
    #[arg(long)]
    profile: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// The state at one point: STAGE[.PHASE]@POINT, POINT a step (1200), tokens (10B), a share (50%) or `end`.
    #[arg(long)]
    at: Option<PointQuery>,
    /// Write the resolved plan as RON.
    #[arg(long)]
    emit_ron: Option<PathBuf>,
    /// Draw LR, mixture, seq_len and RoPE along the run (.svg or .png).
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    let source = match read_source(&a.file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let checked = pipelang::check::check_with(&source, a.profile.as_deref());
    let name = a.file.display().to_string();
    if checked.has_errors() {
        eprint!(
            "{}",
            diag::render_human(&checked.diagnostics, &name, &source, use_color())
        );
        eprintln!("{name}: the pipeline has errors; fix them to get a plan (`pipe check {name}`)");
        return ExitCode::from(EXIT_ERRORS);
    }
    let Some(plan) = checked.plan() else {
        eprintln!("{name}: no plan could be made");
        return ExitCode::from(EXIT_ERRORS);
    };
    if let Some(path) = &a.emit_ron {
        let text = match ron::ser::to_string_pretty(&plan, ron::ser::PrettyConfig::default()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot serialise the plan: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        if let Err(e) = pipelang::atomic::write(path, text.as_bytes()) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Some(path) = &a.plot {
        if let Err(e) = crate::plot::plan::plot(&plan, path) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        eprintln!("plot written to {}", path.display());
    }
    if let Some(q) = &a.at {
        let point = match plan.query(q) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        match a.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&point).unwrap()),
            Format::Human => print!("{}", table::render_point(&point)),
        }
        return ExitCode::SUCCESS;
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan).unwrap()),
        Format::Human => print!("{}", table::render(&plan)),
    }
    ExitCode::SUCCESS
}
