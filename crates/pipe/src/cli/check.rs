//! `pipe check FILE... [--profile NAME] [--format human|json] [--deny-warnings] [--fix] [--data]`

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERRORS, EXIT_USAGE, Format, use_color};
use pipelang::diag::{self, Severity};
#[cfg(feature = "train")]
use pipelang_runtime::data::prepared::Manifest;

/// Without the runtime there is no manifest to read.
#[cfg(not(feature = "train"))]
#[derive(Debug)]
enum Manifest {}

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
    /// Also open every data source: count documents and tokens with its tokenizer, and report
    /// what each stage asks of it (epochs), globs that match nothing and records that do not
    /// read.
    #[cfg(feature = "train")]
    #[arg(long)]
    data: bool,
    /// With --data: read the counts of the sources `pipe prepare-data` wrote to DIR from its
    /// manifest instead of tokenising them, where the files still hash the same.
    #[cfg(feature = "train")]
    #[arg(long, value_name = "DIR", requires = "data")]
    prepared: Option<PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    let Args {
        files,
        profile,
        format,
        deny_warnings,
        fix,
        #[cfg(feature = "train")]
        data,
        #[cfg(feature = "train")]
        prepared,
    } = a;
    #[cfg(not(feature = "train"))]
    let data = false;
    #[cfg(feature = "train")]
    let prepared = match prepared.map(|d| Manifest::read(&d)).transpose() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    #[cfg(not(feature = "train"))]
    let prepared: Option<Manifest> = None;
    let mut all_data = vec![];
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
            // `init` files against the parameters the runtime builds; without the runtime
            // (`--no-default-features`) the files and their dtypes only.
            #[cfg(feature = "train")]
            let shapes = |m| pipelang_runtime::build::param_shapes(p, m).ok();
            #[cfg(not(feature = "train"))]
            let shapes = |_| None;
            all.extend(pipelang::check::init_file::check(p, path, &shapes));
            all.sort_by_key(|d| (d.primary_span().start, d.severity));
            checked.diagnostics = all;
        }
        let report = data_report(data, &checked, path, format, prepared.as_ref());
        if let Some((diags, json, _)) = &report {
            // The census repeats the file checks above; each is reported once.
            for d in diags {
                if !checked.diagnostics.contains(d) {
                    checked.diagnostics.push(d.clone());
                }
            }
            checked
                .diagnostics
                .sort_by_key(|d| (d.primary_span().start, d.severity));
            all_data.push(serde_json::json!({ "file": name, "report": json }));
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
                if let Some((_, _, table)) = &report {
                    print!("{table}");
                }
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
        let mut out = serde_json::json!({ "diagnostics": all_json });
        if data {
            out["data"] = serde_json::json!(all_data);
        }
        println!("{out}");
    }
    if unreadable {
        ExitCode::from(EXIT_USAGE)
    } else if failed {
        ExitCode::from(EXIT_ERRORS)
    } else {
        ExitCode::SUCCESS
    }
}

/// The data census of `--data`: its diagnostics, its JSON and its table.
#[cfg(feature = "train")]
fn data_report(
    data: bool,
    checked: &pipelang::check::Checked,
    path: &std::path::Path,
    format: Format,
    prepared: Option<&Manifest>,
) -> Option<(Vec<diag::Diagnostic>, serde_json::Value, String)> {
    use std::io::IsTerminal;
    if !data {
        return None;
    }
    let progress = format == Format::Human && std::io::stderr().is_terminal();
    let r = super::check_data::census(checked, path, progress, prepared)?;
    Some((
        r.diagnostics.clone(),
        super::check_data::json(&r),
        super::check_data::table(&r),
    ))
}

#[cfg(not(feature = "train"))]
fn data_report(
    _: bool,
    _: &pipelang::check::Checked,
    _: &std::path::Path,
    _: Format,
    _: Option<&Manifest>,
) -> Option<(Vec<diag::Diagnostic>, serde_json::Value, String)> {
    None
}
