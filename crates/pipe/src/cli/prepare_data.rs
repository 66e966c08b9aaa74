//! `pipe prepare-data FILE --format olmo-core|megatron --out DIR [--profile NAME]`: every text
//! source of the recipe tokenised into the engine's token files
//! (`pipelang_runtime::data::prepared`), with `DIR/manifest.json`. A rerun skips the shards a
//! previous run finished.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERRORS, EXIT_USAGE, use_color};
use pipelang::diag;
use pipelang_runtime::RunError;
use pipelang_runtime::data::census::short;
use pipelang_runtime::data::prepared::{self, Format, PrepareError};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Engine {
    OlmoCore,
    Megatron,
}

/// Tokenise every text source into the token files an engine trains from, with a manifest.
#[derive(clap::Args, Debug)]
pub struct Args {
    file: PathBuf,
    #[arg(long, value_enum)]
    format: Engine,
    /// The folder of the token files and manifest.json (created; reused by a rerun).
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    profile: Option<String>,
}

pub fn run(a: Args) -> ExitCode {
    let source = match super::read_source(&a.file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let prep = match pipelang_runtime::setup::prepare(&a.file, a.profile.as_deref(), source) {
        Ok(p) => p,
        Err(RunError::Diagnostics {
            file,
            source,
            diagnostics,
        }) => {
            let name = file.display().to_string();
            eprint!(
                "{}",
                diag::render_human(&diagnostics, &name, &source, use_color())
            );
            eprintln!("pipe prepare-data: the pipeline has errors; nothing was written");
            return ExitCode::from(EXIT_ERRORS);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let p = prep.checked.pipeline.as_ref().expect("checked");
    if let Err(e) =
        pipelang_runtime::setup::ensure_sample_data(p, &prep.data_root, p.seed.value, &mut |m| {
            eprintln!("{m}")
        })
    {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let format = match a.format {
        Engine::OlmoCore => Format::OlmoCore,
        Engine::Megatron => Format::Megatron,
    };
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(format.name());
    let report = prepared::prepare(&prep, format, &a.out, &bar);
    bar.finish_and_clear();
    let r = match report {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            let data = errors
                .iter()
                .any(|e| matches!(e, PrepareError::Data { .. }));
            eprintln!(
                "pipe prepare-data: {} problem(s); the finished shards are kept, a rerun builds \
                 the rest",
                errors.len()
            );
            return ExitCode::from(if data { EXIT_ERRORS } else { EXIT_USAGE });
        }
    };
    let m = &r.manifest;
    println!(
        "{:<16} {:>6} {:>10} {:>10} {:>10}  dtype",
        "source", "shards", "bytes", "documents", "tokens"
    );
    for s in &m.sources {
        println!(
            "{:<16} {:>6} {:>10} {:>10} {:>10}  {}",
            s.name,
            s.shards.len(),
            short(s.bytes as f64),
            short(s.documents as f64),
            short(s.tokens as f64),
            s.dtype.name()
        );
    }
    // Each skipped source is named where it is declared, so an editor jumps to it.
    let index = pipelang::syntax::LineIndex::new(&prep.source);
    for s in &m.skipped {
        let at = p
            .data
            .iter()
            .find(|d| d.name == s.name)
            .map_or(0, |d| d.name_span.start);
        let (line, col) = index.line_col_chars(&prep.source, at);
        println!(
            "{}:{}:{}: data source `{}` ({} data) skipped: {}",
            a.file.display(),
            line + 1,
            col + 1,
            s.name,
            s.kind,
            s.reason
        );
    }
    if r.reused > 0 {
        eprintln!(
            "skipped {} shard(s) a previous run had finished (same inputs, tokenizer and format)",
            r.reused
        );
    }
    let threads = rayon_threads();
    eprintln!(
        "tokenised {} shard(s), {} in {:.2} s ({:.1} MB/s, {:.1} MB/s per core on {threads}); \
         manifest: {}",
        r.built,
        short(r.bytes_tokenized as f64),
        r.seconds,
        r.bytes_tokenized as f64 / 1e6 / r.seconds.max(1e-9),
        r.bytes_tokenized as f64 / 1e6 / r.seconds.max(1e-9) / threads as f64,
        a.out.join(prepared::MANIFEST).display()
    );
    ExitCode::SUCCESS
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
