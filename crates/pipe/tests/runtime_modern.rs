//! `pipe run` end to end on `pipelines/tiny_modern.pipe`: a dense decoder with grouped-query
//! attention, QK-norm, tied embeddings and a stated FFN width, and a mixture of experts with
//! multi-query attention, a shared expert and a dense first layer, each trained with falling
//! loss; the checkpoints hold the parameters those fields shape.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn modern_decoders_train_with_falling_loss() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["run", "pipelines/tiny_modern.pipe", "--out"])
        .arg(out.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let rows = metrics(out.path());
    for (stage, steps) in [("dense_pretrain", 120), ("moe_pretrain", 120)] {
        let mine: Vec<f64> = rows
            .iter()
            .filter(|r| r["stage"] == stage)
            .map(|r| r["loss"].as_f64().unwrap())
            .collect();
        assert_eq!(mine.len(), steps, "{stage}");
        let tenth = mine.len() / 10;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (first, last) = (mean(&mine[..tenth]), mean(&mine[mine.len() - tenth..]));
        assert!(
            last < first * 0.8,
            "{stage}: the loss did not fall ({first} -> {last})"
        );
    }
    // The checkpoints hold what the fields shape: 4 + 2 x 2 heads of 16 in the dense model's
    // attention, no output head of its own, per-head QK norms; 4 + 2 x 1 in the MoE's, its
    // shared expert, and a dense first layer.
    let tensors = |stage: &str| -> Vec<(String, Vec<usize>)> {
        let path = out
            .path()
            .join(format!("checkpoints/{stage}/final.safetensors"));
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect()
    };
    let shape = |v: &[(String, Vec<usize>)], n: &str| {
        v.iter().find(|(k, _)| k == n).map(|(_, s)| s.clone())
    };
    let dense = tensors("dense_anneal");
    assert_eq!(
        shape(&dense, "model/dense/block0.attn.qkv.weight"),
        Some(vec![128, 64])
    );
    assert_eq!(
        shape(&dense, "model/dense/block1.attn.q_norm.weight"),
        Some(vec![16])
    );
    assert_eq!(
        shape(&dense, "model/dense/block0.mlp.down.weight"),
        Some(vec![64, 192])
    );
    assert_eq!(
        shape(&dense, "model/dense/head.weight"),
        None,
        "tied: no head"
    );
    let moe = tensors("moe_pretrain");
    assert_eq!(
        shape(&moe, "model/moe/block0.attn.qkv.weight"),
        Some(vec![96, 64])
    );
    assert!(
        shape(&moe, "model/moe/block0.mlp.up.weight").is_some(),
        "a dense first layer"
    );
    assert_eq!(
        shape(&moe, "model/moe/block1.moe.shared.down.weight"),
        Some(vec![64, 64])
    );
    assert_eq!(
        shape(&moe, "model/moe/block2.moe.expert3.down.weight"),
        Some(vec![64, 64])
    );
}
