//! The language server's fuzz target body (fuzz/src/lsp.rs, the file libFuzzer runs) over its
//! seeds and every input a campaign ever crashed on (fuzz/regressions/lsp), so CI keeps each
//! fixed crash fixed and the target cannot rot without building libFuzzer.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/lsp.rs"]
mod lsp;

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

#[test]
fn lsp_target_on_its_corpus() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut inputs = vec![];
    for d in ["pipelines", "crates/pipelang/tests/ui"] {
        files_in(&root.join(d), &mut inputs);
    }
    let seeds = inputs.len();
    files_in(&root.join("fuzz/seeds/lsp"), &mut inputs);
    assert!(
        seeds > 60 && inputs.len() > seeds,
        "expected the recipes, UI fixtures and fuzz/seeds/lsp, found {} files",
        inputs.len()
    );
    files_in(&root.join("fuzz/regressions/lsp"), &mut inputs);
    inputs.sort();
    for p in inputs {
        let data = std::fs::read(&p).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| lsp::run(&data)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("fuzz target `lsp` fails on {}: {msg}", p.display());
        }
    }
}
