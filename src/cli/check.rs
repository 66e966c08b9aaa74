//! `pipe check FILE... [--profile NAME] [--format human|json] [--deny-warnings] [--fix]`

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Format, read_source, use_color};
use crate::diag::{self, Severity};

pub fn run(
    files: &[PathBuf],
    profile: Option<&str>,
    format: Format,
    deny_warnings: bool,
    fix: bool,
) -> ExitCode {
    let mut all_json = vec![];
    let mut failed = false;
    for path in files {
        let mut source = match read_source(path) {
            Ok(s) => s,
            Err(code) => return code,
        };
        if fix {
            let (fixed, applied) = super::fix::fix_source(&source, profile);
            if applied > 0 {
                if let Err(e) = std::fs::write(path, &fixed) {
                    eprintln!("error: cannot write `{}`: {e}", path.display());
                    return ExitCode::from(2);
                }
                eprintln!("{}: applied {applied} fix(es)", path.display());
                source = fixed;
            }
        }
        let checked = crate::check::check_with(&source, profile);
        let name = path.display().to_string();
        let errors = checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let warnings = checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        failed |= errors > 0 || (deny_warnings && warnings > 0);
        match format {
            Format::Json => all_json.extend(diag::to_json(&checked.diagnostics, &name, &source)),
            Format::Human => {
                eprint!(
                    "{}",
                    diag::render_human(&checked.diagnostics, &name, &source, use_color())
                );
                if errors + warnings == 0 {
                    let stages = checked.pipeline.as_ref().map_or(0, |p| p.stages.len());
                    let profiles = checked.pipeline.as_ref().map_or(0, |p| p.profiles.len());
                    eprintln!("{name}: ok ({stages} stages, {profiles} profiles)");
                } else {
                    eprintln!("{name}: {errors} error(s), {warnings} warning(s)");
                }
            }
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::json!({ "diagnostics": all_json }));
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
