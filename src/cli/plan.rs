//! `pipe plan FILE [--profile NAME] [--format human|json] [--at STAGE[.PHASE]@POINT]
//! [--emit-ron PATH] [--plot PATH.svg|PATH.png]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Format, read_source, use_color};
use crate::diag;
use crate::plan::{self, PointQuery, table};

pub struct Args<'a> {
    pub file: &'a Path,
    pub profile: Option<&'a str>,
    pub format: Format,
    pub at: Option<&'a PointQuery>,
    pub emit_ron: Option<&'a PathBuf>,
    pub plot: Option<&'a PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    let source = match read_source(a.file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let checked = crate::check::check_with(&source, a.profile);
    let name = a.file.display().to_string();
    if checked.has_errors() {
        eprint!(
            "{}",
            diag::render_human(&checked.diagnostics, &name, &source, use_color())
        );
        eprintln!("{name}: the pipeline has errors; fix them to get a plan (`pipe check {name}`)");
        return ExitCode::from(1);
    }
    let Some(plan) = plan::plan(&checked) else {
        eprintln!("{name}: no plan could be made");
        return ExitCode::from(1);
    };
    if let Some(path) = a.emit_ron {
        let text = match ron::ser::to_string_pretty(&plan, ron::ser::PrettyConfig::default()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot serialise the plan: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = crate::runtime::atomic::write(path, text.as_bytes()) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = a.plot {
        if let Err(e) = plan::plot::plot(&plan, path) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        eprintln!("plot written to {}", path.display());
    }
    if let Some(q) = a.at {
        let point = match plan.query(q) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
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
