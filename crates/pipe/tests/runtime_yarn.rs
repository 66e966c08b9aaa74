//! `pipe run` end to end on `pipelines/tiny_yarn.pipe`: a context extension under YaRN trains
//! with falling loss in each of its phases, every step runs with the plan's scaling (the
//! metrics say so step by step), and the checkpoints record the rotary embedding the model was
//! trained with.

use std::path::{Path, PathBuf};
use std::process::Command;

use pipelang::plan::rope::{Rope, RopeScaling};
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

fn trained_with_rope(out: &Path, stage: &str) -> Value {
    let bytes = std::fs::read(out.join(format!("checkpoints/{stage}/final.safetensors"))).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = &meta.metadata().as_ref().unwrap()["pipelang.trained_with"];
    serde_json::from_str::<Value>(json).unwrap()["rope"].clone()
}

#[test]
fn a_yarn_extension_trains_with_the_planned_scaling() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["run", "pipelines/tiny_yarn.pipe", "--out"])
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
    let yarn = RopeScaling::Yarn {
        factor: 4.0,
        original: 32,
        alpha: 1.0,
        beta: 32.0,
    };
    let pre: Vec<&Value> = rows.iter().filter(|r| r["stage"] == "pretrain").collect();
    assert_eq!(pre.len(), 120);
    assert!(pre.iter().all(|r| r.get("rope_scaling").is_none()));
    for (phase, seq) in [("ctx_64", 64), ("ctx_128", 128)] {
        let mine: Vec<&Value> = rows.iter().filter(|r| r["phase"] == phase).collect();
        assert_eq!(mine.len(), 80, "{phase}");
        for r in &mine {
            assert_eq!(r["seq_len"], seq);
            let s: RopeScaling = serde_json::from_value(r["rope_scaling"]["lm"].clone()).unwrap();
            assert_eq!(s, yarn, "{phase} step {}", r["step"]);
        }
        let loss: Vec<f64> = mine.iter().map(|r| r["loss"].as_f64().unwrap()).collect();
        let tenth = loss.len() / 10;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (first, last) = (mean(&loss[..tenth]), mean(&loss[loss.len() - tenth..]));
        assert!(
            last < first,
            "{phase}: the loss did not fall ({first} -> {last})"
        );
    }
    let rope: Rope =
        serde_json::from_value(trained_with_rope(out.path(), "extend")["lm"].clone()).unwrap();
    assert_eq!(
        rope,
        Rope {
            base: 10_000.0,
            scaling: yarn
        }
    );
    let rope: Rope =
        serde_json::from_value(trained_with_rope(out.path(), "pretrain")["lm"].clone()).unwrap();
    assert_eq!(rope, Rope::plain(10_000.0));
}
