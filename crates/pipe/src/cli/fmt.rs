//! `pipe fmt FILE... [--check]`: rewrites files in the canonical layout (`-` formats stdin to
//! stdout). With `--check` nothing is written: it lists the files that would change and exits 1.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERRORS, EXIT_USAGE, read_source};

/// Rewrite files in the canonical layout (`-`: stdin to stdout); comments are kept.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write nothing; exit with 1 when a file is not formatted.
    #[arg(long)]
    check: bool,
}

pub fn run(a: Args) -> ExitCode {
    let Args { files, check } = a;
    let mut failed = false;
    for path in &files {
        let stdin = path.as_os_str() == "-";
        let source = if stdin {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("error: cannot read stdin: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            s
        } else {
            match read_source(path) {
                Ok(s) => s,
                Err(code) => return code,
            }
        };
        let name = if stdin {
            "<stdin>".into()
        } else {
            path.display().to_string()
        };
        let formatted = match pipelang::fmt::format(&source) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: cannot format {name}: {e}");
                failed = true;
                continue;
            }
        };
        if check {
            if formatted != source {
                let line = first_difference(&source, &formatted);
                eprintln!(
                    "{name}: not formatted (first difference at line {line}); run `pipe fmt {name}`"
                );
                failed = true;
            }
        } else if stdin {
            if std::io::stdout().write_all(formatted.as_bytes()).is_err() {
                return ExitCode::from(EXIT_USAGE);
            }
        } else if formatted != source {
            if let Err(e) = std::fs::write(path, &formatted) {
                eprintln!("error: cannot write `{name}`: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            eprintln!("formatted {name}");
        }
    }
    if failed {
        ExitCode::from(EXIT_ERRORS)
    } else {
        ExitCode::SUCCESS
    }
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}
