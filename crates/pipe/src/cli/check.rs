//! `pipe check FILE... [--profile NAME] [--format human|json] [--deny-warnings] [--fix]`

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERRORS, EXIT_USAGE, Format, use_color};
use pipelang::diag::{self, Severity};

/// Check pipelines: names, units, ranges, the stage graph and every hand-over.
#[derive(clap::Args, Debug)]
pub struct Args {
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
}

pub fn run(a: Args) -> ExitCode {
    let Args {
        files,
        profile,
        format,
        deny_warnings,
        fix,
    } = a;
    let profile = profile.as_deref();
    let mut all_json = vec![];
    let mut failed = false;
    let mut unreadable = false;
    for path in &files {
        let name = path.display().to_string();
        let mut source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                // A file that cannot be read is reported in the format asked for, and the
                // other files are still checked.
                let message = format!("cannot read `{name}`: {e}");
                match format {
                    Format::Json => all_json.push(serde_json::json!({
                        "file": name,
                        "severity": "error",
                        "code": null,
                        "message": message,
                        "labels": [],
                    })),
                    Format::Human => eprintln!("error: {message}"),
                }
                unreadable = true;
                continue;
            }
        };
        if fix {
            let (fixed, applied) = super::fix::fix_source(&source, profile);
            if applied > 0 {
                if let Err(e) = pipelang::atomic::write(path, fixed.as_bytes()) {
                    eprintln!("error: cannot write `{name}`: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
                eprintln!("{name}: applied {applied} fix(es)");
                source = fixed;
            }
        }
        let mut checked = pipelang::check::check_with(&source, profile);
        // The files the pipeline names (tokenizers), resolved as `pipe run` resolves them.
        if let Some(p) = &checked.pipeline {
            let mut all = std::mem::take(&mut checked.diagnostics);
            all.extend(pipelang::check::files::check(p, path));
            all.sort_by_key(|d| (d.primary_span().start, d.severity));
            checked.diagnostics = all;
        }
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
    if unreadable {
        ExitCode::from(EXIT_USAGE)
    } else if failed {
        ExitCode::from(EXIT_ERRORS)
    } else {
        ExitCode::SUCCESS
    }
}
