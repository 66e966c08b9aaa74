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

#[test]
fn with_vit_coca_skipped_and_its_weights_given_both_vision_engines_export_the_rest() {
    for engine in ["megatron", "torchtitan"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x");
        let args = [
            "export",
            "pipelines/kimi_vl.pipe",
            "--engine",
            engine,
            "--out",
            out.to_str().unwrap(),
            "--skip",
            "vit_coca=weights/vit_coca",
        ];
        let (code, err) = pipe(&args);
        assert_eq!(code, 0, "{engine}: {err}");
        assert!(
            err.contains("P0905"),
            "{engine}: the given weights are warned: {err}"
        );
        assert!(!err.contains("P0901"), "{engine}: {err}");
        let launch = std::fs::read_to_string(out.join("launch.sh")).unwrap();
        let align = match engine {
            "megatron" => std::fs::read_to_string(out.join("runs/01-vit_align/train.sh")).unwrap(),
            _ => std::fs::read_to_string(out.join("pipelang_runs/r01_vit_align.py")).unwrap(),
        };
        // The relative path is made absolute against the directory `pipe` ran in.
        let abs = |s: &str| s.contains("/weights/vit_coca") && !s.contains("\"weights/vit_coca");
        assert!(abs(&align) || abs(&launch), "{engine}: {align}");
    }
    // Without the weights the stage that needs them is pointed at, and nothing is written.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let (code, err) = pipe(&[
        "export",
        "pipelines/kimi_vl.pipe",
        "--engine",
        "torchtitan",
        "--out",
        out.to_str().unwrap(),
        "--skip",
        "vit_coca",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("P0905") && err.contains("--skip vit_coca="),
        "{err}"
    );
    assert!(!out.exists());
    // An unknown stage is a usage error naming the stages.
    let (code, err) = pipe(&[
        "export",
        "pipelines/kimi_vl.pipe",
        "--engine",
        "torchtitan",
        "--out",
        out.to_str().unwrap(),
        "--skip",
        "vit_cocoa",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no stage `vit_cocoa`"), "{err}");
}

#[test]
fn torchtitan_export_writes_a_module_per_run_and_the_helper() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tt");
    let (code, err) = pipe(&[
        "export",
        "pipelines/tiny_text.pipe",
        "--engine",
        "torchtitan",
        "--out",
        out.to_str().unwrap(),
        "--gpus-per-node",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("13 runs for torchtitan written"), "{err}");
    let modules = std::fs::read_dir(out.join("pipelang_runs"))
        .unwrap()
        .count();
    assert_eq!(modules, 14, "13 modules and the package's __init__.py");
    let cooldown = std::fs::read_to_string(out.join("pipelang_runs/r10_cooldown.py")).unwrap();
    assert!(cooldown.contains("load=pt.final_checkpoint(\"runs/09-pretrain.p9\", 16)"));
    assert!(cooldown.contains("dp=2,"));
    assert!(out.join("pipelang_titan.py").exists());
    let launch = std::fs::read_to_string(out.join("launch.sh")).unwrap();
    assert!(launch.contains("--nproc-per-node 2"));
}
