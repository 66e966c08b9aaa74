//! `pipe check --fix` on the fixtures in tests/fix/: each file gets fixed in place, and what the
//! checker says afterwards is exactly what no fix could repair.

use std::path::Path;
use std::process::Command;

fn codes(src: &str) -> Vec<String> {
    pipelang::check::check(src)
        .diagnostics
        .iter()
        .map(|d| d.code.0.to_string())
        .collect()
}

/// Runs `pipe check --fix` on a copy of `tests/fix/NAME`; returns the fixed text and the exit code.
fn fix(name: &str) -> (String, String, i32) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fix")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(name);
    std::fs::copy(&src, &copy).unwrap();
    let before = std::fs::read_to_string(&copy).unwrap();
    assert!(
        pipelang::check::check(&before)
            .diagnostics
            .iter()
            .any(|d| !d.fixes.is_empty()),
        "{name} has nothing to fix"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["check", "--fix"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("applied"), "{name}: {stderr}");
    (
        std::fs::read_to_string(&copy).unwrap(),
        stderr,
        out.status.code().unwrap(),
    )
}

#[test]
fn misspelt_names_are_renamed() {
    let (text, err, code) = fix("did_you_mean.pipe");
    assert!(text.contains("train  = [lm]"), "{text}");
    assert!(text.contains("budget  = 1B"), "{text}");
    assert!(text.contains("cosine(peak = 3e-4"), "{text}");
    assert_eq!(codes(&text), Vec::<String>::new(), "{err}");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_missing_after_is_added() {
    let (text, err, code) = fix("missing_after.pipe");
    assert!(text.contains("stage more after pre {"), "{text}");
    assert_eq!(codes(&text), Vec::<String>::new(), "{err}");
    assert_eq!(code, 0);
}

#[test]
fn transitions_start_from_the_inherited_values() {
    let (text, err, code) = fix("transition.pipe");
    assert!(text.contains("seq_len   = 1K -> 4K"), "{text}");
    assert!(text.contains("rope_base = 10000 -> 100_000"), "{text}");
    assert_eq!(codes(&text), Vec::<String>::new(), "{err}");
    assert_eq!(code, 0);
}

#[test]
fn units_are_corrected() {
    let (text, err, code) = fix("units.pipe");
    assert!(text.contains("code = 20%"), "{text}");
    assert!(text.contains("seq_len = 1K\n"), "{text}");
    assert_eq!(codes(&text), Vec::<String>::new(), "{err}");
    assert_eq!(code, 0);
}

#[test]
fn a_missing_field_is_added_in_the_blocks_layout() {
    let (text, err, code) = fix("missing_field.pipe");
    assert!(
        text.contains("  lr     = cosine(peak = 3e-4, warmup = 1%, min = 3e-5)\n  budget = 1T\n}"),
        "{text}"
    );
    assert_eq!(codes(&text), Vec::<String>::new(), "{err}");
    assert_eq!(code, 0);
}

#[test]
fn what_has_no_fix_stays_and_fails_the_check() {
    let (text, err, code) = fix("unrelated_left.pipe");
    assert!(text.contains("train  = [lm]"), "{text}");
    assert_eq!(codes(&text), vec!["P0401".to_string()], "{err}");
    assert!(
        err.contains("P0401"),
        "the remaining error is reported: {err}"
    );
    assert_eq!(code, 1);
}

#[test]
fn a_clean_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("kimi_vl.pipe");
    std::fs::copy(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("pipelines/kimi_vl.pipe"),
        &copy,
    )
    .unwrap();
    let before = std::fs::metadata(&copy).unwrap().modified().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["check", "--fix"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("applied"));
    assert_eq!(
        std::fs::metadata(&copy).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn a_bare_duration_shorter_than_a_step_counts_steps() {
    let (text, err, code) = fix("steps.pipe");
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("warmup = 2000 steps,"), "{text}");
    assert!(codes(&text).is_empty(), "{:?}", codes(&text));
}
