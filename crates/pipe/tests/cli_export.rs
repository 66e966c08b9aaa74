//! `pipe export` as a user runs it: the files on disk, the layout refused before anything is
//! written, the recipe's stages that Megatron-LM cannot train reported, exit codes.

use std::process::Command;

fn pipe(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn megatron_export_writes_a_launch_script_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mg");
    let o = out.to_str().unwrap();
    let (code, err) = pipe(&[
        "export",
        "pipelines/tiny_text.pipe",
        "--engine",
        "megatron",
        "--out",
        o,
        "--gpus-per-node",
        "8",
        "--tp",
        "2",
        "--pp",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("13 runs for Megatron-LM written"), "{err}");
    let runs = std::fs::read_dir(out.join("runs")).unwrap().count();
    assert_eq!(runs, 13);
    let s = std::fs::read_to_string(out.join("runs/10-cooldown/train.sh")).unwrap();
    assert!(s.contains("--pretrained-checkpoint \"$ROOT/runs/09-pretrain.p9/checkpoint\""));
    assert!(s.contains("--tensor-model-parallel-size 2"));
    assert!(s.contains("--global-batch-size 8"));
    assert!(out.join("launch.sh").exists());
}

#[test]
fn a_layout_that_does_not_divide_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mg");
    let (code, err) = pipe(&[
        "export",
        "pipelines/tiny_text.pipe",
        "--engine",
        "megatron",
        "--out",
        out.to_str().unwrap(),
        "--gpus-per-node",
        "3",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("P0904"), "{err}");
    assert!(
        err.contains("tiny_text.pipe:8:17"),
        "the batch is pointed at: {err}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn the_coca_stage_of_the_reference_recipe_is_refused_for_megatron() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mg");
    let (code, err) = pipe(&[
        "export",
        "pipelines/kimi_vl.pipe",
        "--engine",
        "megatron",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Megatron-LM cannot train stage `vit_coca`"),
        "{err}"
    );
    assert!(!out.exists());
}
