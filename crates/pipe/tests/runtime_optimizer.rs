//! `pipe run` trains with the recipe's optimizer: the AdamW settings, the per-model LR factor
//! and the stage's seed are read back from the checkpoint's safetensors header, and the LR the
//! optimizer applied to the scaled model at every logged step is compared with the plan's LR
//! times the factor. The stage's budget is in steps, so the step count is the recipe's.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PIPELINE: &str = r#"
pipeline optim_test {
  seed        = 5
  batch       = 2
  seq_len     = 32
  sample_data = "SAMPLE"
  optimizer   = adamw(beta1 = 0.8, beta2 = 0.99, eps = 1e-6, weight_decay = 0.05, clip = 0.5)
}
model lm   = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
model tiny = decoder { vocab = 300, d_model = 16, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage first {
  train  = [lm]
  budget = 12 steps
  lr     = cosine(peak = 3e-3, warmup = 3 steps, min = 3e-4)
  data   = web
  lr_scale { lm = 0.25 }
}
stage second {
  train     = [tiny]
  budget    = 5 steps
  lr        = constant(1e-3)
  data      = web
  seed      = 11
  optimizer = adamw(weight_decay = 0, clip = 0)
}
"#;

fn header(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta
        .metadata()
        .clone()
        .expect("the checkpoint has metadata");
    serde_json::from_str(&meta["pipelang.trained_with"]).unwrap()
}

#[test]
fn the_run_trains_with_the_recipes_optimizer_lr_scale_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let sample =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("sample_data/kimi_vl");
    let src = PIPELINE.replace("SAMPLE", sample.to_str().unwrap());
    let file = dir.path().join("optim.pipe");
    std::fs::write(&file, &src).unwrap();
    let out = dir.path().join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plan = pipelang::check::check(&src).into_plan().unwrap();
    assert_eq!(plan.stages[0].steps, 12);
    assert_eq!(plan.stages[1].steps, 5);

    let first = header(&out.join("checkpoints/first/final.safetensors"));
    assert_eq!(first["stage"], "first");
    assert_eq!(
        first["adamw"],
        serde_json::json!({"beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05, "clip_norm": 0.5})
    );
    assert_eq!(first["lr_scale"], serde_json::json!({"lm": 0.25}));
    assert_eq!(first["seed"], 5, "the run's seed");
    let second = header(&out.join("checkpoints/second/final.safetensors"));
    // The stage's own arguments over the pipeline's; `clip = 0` does not clip.
    assert_eq!(
        second["adamw"],
        serde_json::json!({"beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.0, "clip_norm": null})
    );
    assert_eq!(second["lr_scale"], serde_json::json!({"tiny": 1.0}));
    assert_eq!(second["seed"], 11);

    let rows: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as u64, plan.total_steps, "one line per step");
    for r in rows.iter().filter(|r| r["stage"] == "first") {
        let step = r["step"].as_u64().unwrap();
        let at = plan.step(0, step);
        assert_eq!(r["lr"].as_f64().unwrap(), at.lr, "step {step}");
        // What the optimizer applied to `lm`: the schedule's LR times 0.25.
        assert_eq!(
            r["model_lr"]["lm"].as_f64().unwrap(),
            at.lr * 0.25,
            "step {step}"
        );
    }
    for r in rows.iter().filter(|r| r["stage"] == "second") {
        assert!(
            r.get("model_lr").is_none(),
            "no factor, no per-model LR: {r}"
        );
    }
}
