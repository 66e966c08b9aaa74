//! The language core stays light: `pipe check`, `pipe lsp` and any program that embeds the
//! checker must not pull the training stack. Reads the real dependency graph with `cargo tree`.

use std::process::Command;

const FORBIDDEN: [&str; 7] = [
    "candle-core",
    "candle-nn",
    "tokenizers",
    "image",
    "notify",
    "plotters",
    "clap",
];

fn normal_deps(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn the_core_pulls_no_training_or_cli_crates() {
    let deps = normal_deps("pipelang");
    assert!(deps.iter().any(|d| d == "pest"), "cargo tree gave {deps:?}");
    for f in FORBIDDEN {
        assert!(
            !deps.iter().any(|d| d == f),
            "pipelang depends on {f}: {deps:?}"
        );
    }
}

#[test]
fn the_language_server_pulls_no_training_crates() {
    let deps = normal_deps("pipelang-lsp");
    for f in FORBIDDEN {
        assert!(
            !deps.iter().any(|d| d == f),
            "pipelang-lsp depends on {f}: {deps:?}"
        );
    }
}
