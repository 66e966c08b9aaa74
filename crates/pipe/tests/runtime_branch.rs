//! A branch point (`after first @ 16 steps`) trained end to end: the parent saves the weights
//! of its 16th step as the branch's checkpoint, bit for bit the weights a parent that stops at
//! step 16 ends with, and the branch trains from exactly those weights: it ends as a branch
//! from that parent does. A run killed before or after the branch point and resumed gives the same.

mod common;

use std::path::Path;

use common::{model_hash, pipe, wait_for_steps, write_pipeline_text};

/// `first` trains 40 steps at a constant LR on `web`; `branch` starts from its 16th step and
/// reads only `hq`, so its data does not depend on how far `first` read `web`.
fn pipeline(parent_budget: &str, after: &str) -> String {
    format!(
        r#"
pipeline branch_test {{
  seed        = 11
  batch       = 4
  seq_len     = 32
  sample_data = "SAMPLE"
}}
model lm = decoder {{ vocab = 300, d_model = 32, layers = 1, heads = 2 }}
data web = text("corpus/text/*.jsonl")
data hq  = text("corpus/text_hq/*.jsonl")
stage first {{
  train  = [lm]
  budget = {parent_budget}
  lr     = constant(2e-3)
  data   = web
}}
stage branch {after} {{
  train  = [lm]
  budget = 1_024          // 8 steps
  lr     = linear(to = 0)
  data   = hq
}}
"#
    )
}

fn run(file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--checkpoint-every",
        "8",
        "--keep-checkpoints",
        "100",
    ];
    args.extend_from_slice(extra);
    let o = pipe(&args).output().unwrap();
    assert!(
        o.status.success(),
        "pipe run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn hash(out: &Path, rel: &str) -> String {
    model_hash(&out.join("checkpoints").join(rel))
}

#[test]
fn the_branch_starts_from_the_parent_weights_at_the_branch_step() {
    let dir = tempfile::tempdir().unwrap();
    let branched = write_pipeline_text(
        dir.path(),
        "branched.pipe",
        &pipeline("5_120 // 40 steps", "after first @ 16 steps"),
    );
    let out = dir.path().join("branched");
    run(&branched, &out, &[]);
    let at_branch = hash(&out, "first/branch-branch.safetensors");
    // The parent went on: its final weights are not the branch point's.
    assert_ne!(at_branch, hash(&out, "first/final.safetensors"));

    // The same recipe with the parent stopped at step 16 (a constant LR, so its first 16
    // steps are the same) and a plain `after`: its final checkpoint is the parent's weights
    // after 16 steps, which the branch checkpoint must hold bit for bit, and the branch's
    // final weights must be the same bits, so it started from exactly those weights.
    let cut = write_pipeline_text(
        dir.path(),
        "cut.pipe",
        &pipeline("2_048 // 16 steps", "after first"),
    );
    let cut_out = dir.path().join("cut");
    run(&cut, &cut_out, &[]);
    assert_eq!(at_branch, hash(&cut_out, "first/final.safetensors"));
    assert_eq!(
        hash(&out, "branch/final.safetensors"),
        hash(&cut_out, "branch/final.safetensors")
    );
}

/// Kills a run once `kill_at` steps are logged, resumes it, and compares with a clean run.
fn kill_and_resume(kill_at: usize) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline_text(
        dir.path(),
        "branched.pipe",
        &pipeline("5_120 // 40 steps", "after first @ end - 24 steps"),
    );
    let clean = dir.path().join("clean");
    run(&file, &clean, &[]);

    let killed = dir.path().join("killed");
    let f = file.to_str().unwrap();
    let mut child = pipe(&[
        "run",
        f,
        "--out",
        killed.to_str().unwrap(),
        "--checkpoint-every",
        "8",
        "--keep-checkpoints",
        "100",
    ])
    .spawn()
    .unwrap();
    wait_for_steps(&mut child, &killed, kill_at);
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    run(&file, &killed, &["--resume"]);
    for rel in [
        "first/branch-branch.safetensors",
        "first/final.safetensors",
        "branch/final.safetensors",
    ] {
        assert_eq!(
            hash(&clean, rel),
            hash(&killed, rel),
            "{rel}, killed at step {kill_at}"
        );
    }
}

#[test]
fn killed_before_the_branch_point_and_resumed() {
    kill_and_resume(11);
}

#[test]
fn killed_after_the_branch_point_and_resumed() {
    kill_and_resume(29);
}
