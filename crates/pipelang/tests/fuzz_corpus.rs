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

/// The normal dependencies a crate's manifest declares (`[dependencies]` keys).
fn declared_deps(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split(['.', '=', ' ']).next())
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The dependencies `fuzz/Cargo.lock` records for one of its path packages.
fn locked_deps(package: &str) -> Vec<String> {
    let lock = std::fs::read_to_string(root().join("fuzz/Cargo.lock")).unwrap();
    let entry = lock
        .split("[[package]]")
        .find(|p| p.lines().any(|l| l == format!("name = \"{package}\"")))
        .unwrap_or_else(|| panic!("fuzz/Cargo.lock has no package `{package}`"));
    entry
        .lines()
        .skip_while(|l| !l.starts_with("dependencies = ["))
        .skip(1)
        .take_while(|l| *l != "]")
        .map(|l| {
            let l = l.trim().trim_matches(|c| c == '"' || c == ',');
            l.split(' ').next().unwrap().to_string()
        })
        .collect()
}

/// `fuzz/run.sh` builds with `--locked`, and the fuzz package has its own lock file, which no
/// workspace build updates: a dependency added to the core or the server must be added there
/// too (`cd fuzz && cargo update --workspace`), or every campaign stops before it starts.
#[test]
fn the_fuzz_lock_file_has_every_dependency_of_the_crates_it_fuzzes() {
    for (package, manifest) in [
        ("pipelang", "crates/pipelang/Cargo.toml"),
        ("pipelang-lsp", "crates/pipelang-lsp/Cargo.toml"),
    ] {
        let declared = declared_deps(manifest);
        assert!(declared.len() >= 4, "{manifest}: read {declared:?}");
        let locked = locked_deps(package);
        for d in &declared {
            assert!(
                locked.contains(d),
                "fuzz/Cargo.lock lists no `{d}` for `{package}` ({manifest} depends on it): \
                 run `cd fuzz && cargo update --workspace`"
            );
        }
    }
}
