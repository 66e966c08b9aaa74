//! The fused CPU kernels and the reference ops (what a CUDA run uses) train the same model
//! through the real `pipe run` path: with the same seed, the losses of the first 50 steps agree
//! within float tolerance (summation order differs, so not bit for bit).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn losses(pipe: &Path, kernels: &str, dir: &Path) -> Vec<f64> {
    let status = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["run", "--profile", "fifty", "--kernels", kernels, "--out"])
        .arg(dir)
        .arg(pipe)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pipe run --kernels {kernels} failed");
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

#[test]
fn fused_and_reference_kernels_give_the_same_losses() {
    let tmp = tempfile::tempdir().unwrap();
    // tiny_text at a third of its tokens, its sample data where the repo keeps it.
    let sample = repo().join("sample_data/kimi_vl");
    let src = std::fs::read_to_string(repo().join("pipelines/tiny_text.pipe"))
        .unwrap()
        .replace(
            "\"../sample_data/kimi_vl\"",
            &format!("{:?}", sample.display().to_string()),
        )
        + "\nprofile fifty { scale tokens by 0.32 }\n";
    let pipe = tmp.path().join("tiny_text.pipe");
    std::fs::write(&pipe, src).unwrap();
    let fused = losses(&pipe, "fused", &tmp.path().join("fused"));
    let reference = losses(&pipe, "reference", &tmp.path().join("reference"));
    assert!(fused.len() >= 50 && fused.len() == reference.len());
    for (i, (a, b)) in fused.iter().zip(&reference).take(50).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1.0),
            "step {i}: fused loss {a} vs reference {b}"
        );
    }
    // Not trivially equal: the two paths really are different code.
    assert!(fused.iter().zip(&reference).any(|(a, b)| a != b));
}
