//! The fuzz targets' bodies (fuzz/src, the same files libFuzzer runs) over their seeds and
//! every input a campaign ever crashed on (fuzz/regressions/TARGET), so that CI keeps each
//! fixed crash fixed and the targets cannot rot without building libFuzzer.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/check.rs"]
mod check;
#[path = "../../../fuzz/src/fmt.rs"]
mod fmt;
#[path = "../../../fuzz/src/parse.rs"]
mod parse;
#[path = "../../../fuzz/src/plan.rs"]
mod plan;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn files_in(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_file()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(p);
        }
    }
}

/// The seed corpus `fuzz/run.sh` starts from, plus the target's regressions.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut v = vec![];
    for d in ["pipelines", "crates/pipelang/tests/ui"] {
        files_in(&root().join(d), &mut v);
    }
    let seeds = v.len();
    assert!(
        seeds > 60,
        "expected the recipes and UI fixtures, found {seeds} files"
    );
    files_in(&root().join("fuzz/seeds").join(target), &mut v);
    files_in(&root().join("fuzz/regressions").join(target), &mut v);
    v.sort();
    v
}

fn run_all(target: &str, body: fn(&[u8])) {
    for p in inputs(target) {
        let data = std::fs::read(&p).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| body(&data)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("fuzz target `{target}` fails on {}: {msg}", p.display());
        }
    }
}

#[test]
fn parse_target_on_its_corpus() {
    run_all("parse", parse::run);
}

#[test]
fn check_target_on_its_corpus() {
    run_all("check", check::run);
}

#[test]
fn plan_target_on_its_corpus() {
    run_all("plan", plan::run);
}

#[test]
fn fmt_target_on_its_corpus() {
    run_all("fmt", fmt::run);
}
