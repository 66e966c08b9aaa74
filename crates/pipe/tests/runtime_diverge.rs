//! A run that diverges (a re-warm-up to LR 80) stops with exit 3 naming the stage, the step,
//! the LR and the last good checkpoint; every checkpoint written before is whole and finite.

mod common;

use std::path::Path;

use common::{pipe, write_pipeline_text};
use pipelang_runtime::record::RunRecord;

const DIVERGES: &str = r#"
pipeline diverges {
  seed        = 11
  batch       = 4
  seq_len     = 32
  sample_data = "SAMPLE"
}
model lm = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage first {
  train  = [lm]
  budget = 2_560          // 20 steps
  lr     = constant(1e-3)
  data   = web
}
stage hot after first {
  train  = [lm]
  budget = 5_120
  lr     = constant(80)
  data   = web
}
"#;

/// Every tensor of a checkpoint file, read whole: none may be NaN or infinite.
fn assert_whole_and_finite(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let t = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(!t.is_empty());
    for (name, view) in t.tensors() {
        // The optimizer's step count is an integer; weights and moments are f32.
        if view.dtype() != safetensors::Dtype::F32 {
            continue;
        }
        for c in view.data().chunks_exact(4) {
            let x = f32::from_le_bytes(c.try_into().unwrap());
            assert!(x.is_finite(), "{}: {name} holds {x}", file.display());
        }
    }
}

#[test]
fn divergence_names_stage_step_lr_and_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline_text(dir.path(), "hot.pipe", DIVERGES);
    let out = dir.path().join("run");
    let o = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--checkpoint-every",
        "2",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let rec = RunRecord::load(&out.join("run.ron")).unwrap();
    let hot = rec.stage("hot").unwrap();
    assert!(hot.step < hot.steps, "the stage did not finish: {hot:?}");
    assert!(err.contains("stage `hot` step "), "{err}");
    assert!(err.contains(" at LR "), "{err}");
    // The last good checkpoint is the latest one recorded: of `hot` when it had written one,
    // else the final checkpoint of `first` it started from.
    let last = hot
        .checkpoint
        .clone()
        .unwrap_or_else(|| "checkpoints/first/final.safetensors".into());
    assert!(
        err.contains(&format!("the last good checkpoint is {last}")),
        "{err}"
    );
    let mut all: Vec<String> = rec
        .stages
        .iter()
        .flat_map(|s| {
            s.earlier
                .iter()
                .map(|k| k.checkpoint.clone())
                .chain(s.checkpoint.clone())
        })
        .collect();
    all.sort();
    assert!(all.contains(&"checkpoints/first/final.safetensors".to_string()));
    for ck in &all {
        assert_whole_and_finite(&out.join(ck));
    }
}
