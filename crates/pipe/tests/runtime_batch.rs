//! `pipe run` follows the plan's batches: a batch ramp (a new batch every few steps) and
//! `batch_tokens` across a change of sequence length. Every logged step's batch, sequence
//! length, token position and LR are compared with `Plan::step`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PIPELINE: &str = r#"
pipeline batch_test {
  seed        = 5
  batch       = 4
  seq_len     = 32
  sample_data = "SAMPLE"
}
model lm = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage ramped {
  train  = [lm]
  budget = 4_096
  batch  = ramp(2 -> 8, over = 2_048)   // 2 sequences at first, 8 from token 2,048 on
  lr     = cosine(peak = 3e-3, warmup = 4 steps, min = 3e-4)
  data   = web
}
stage by_tokens after ramped {
  train        = [lm]
  budget       = 4_096
  batch_tokens = 256                    // 8 sequences of 32, then 4 of 64
  lr           = resume
  data         = web
  phase short { budget = 50% }
  phase long  { budget = 50%, seq_len = 32 -> 64 }
}
"#;

#[test]
fn logged_batches_follow_the_ramp_and_batch_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let sample =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("sample_data/kimi_vl");
    let src = PIPELINE.replace("SAMPLE", sample.to_str().unwrap());
    let file = dir.path().join("batch.pipe");
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
    let rows: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as u64, plan.total_steps, "one line per step");
    let mut batches = vec![];
    for (si, st) in plan.stages.iter().enumerate() {
        for r in rows.iter().filter(|r| r["stage"] == st.name.as_str()) {
            let step = r["step"].as_u64().unwrap();
            let at = plan.step(si, step);
            assert_eq!(
                r["batch"].as_u64().unwrap(),
                at.batch,
                "{} step {step}",
                st.name
            );
            assert_eq!(
                r["seq_len"].as_u64().unwrap(),
                at.seq_len,
                "{} step {step}",
                st.name
            );
            assert_eq!(
                r["tokens"].as_f64().unwrap(),
                at.tokens + at.tokens_per_step as f64,
                "{} step {step}: tokens logged after the step",
                st.name
            );
            assert_eq!(r["lr"].as_f64().unwrap(), at.lr, "{} step {step}", st.name);
            batches.push(at.batch);
        }
    }
    // By the definition: the ramp's step k starting at token x has batch floor(2 + 6 x / 2048)
    // (8 from 2,048 on), then 256 tokens per step are 8 x 32 and 4 x 64.
    let mut want = vec![];
    let mut x = 0u64;
    while x < 4096 {
        let b = if x >= 2048 { 8 } else { 2 + 6 * x / 2048 };
        want.push(b);
        x += b * 32;
    }
    want.extend(std::iter::repeat_n(8, 8)); // 2,048 tokens of 8 x 32
    want.extend(std::iter::repeat_n(4, 8)); // 2,048 tokens of 4 x 64
    assert_eq!(batches, want);
    let distinct: std::collections::BTreeSet<_> = want.iter().collect();
    assert!(
        distinct.len() >= 7,
        "the ramp walks every batch from 2 to 8: {distinct:?}"
    );
}
