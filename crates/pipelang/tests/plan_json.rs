//! `pipe plan --format json` is a complete plan: read back, it answers every step as the plan
//! it came from (LR, mixture, phase, seq_len, RoPE), and its curves carry every piece.

use pipelang::check::check_with;
use pipelang::plan::Plan;

fn plans() -> Vec<(String, Plan)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines");
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "pipe") {
            let src = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            for profile in [None, Some("smoke")] {
                let c = check_with(&src, profile);
                if let Some(p) = c.into_plan() {
                    out.push((format!("{name} {profile:?}"), p));
                }
            }
        }
    }
    assert!(out.len() >= 4, "the recipes in pipelines/ plan");
    out
}

#[test]
fn the_json_reads_back_into_the_same_plan() {
    for (name, plan) in plans() {
        let json = serde_json::to_string_pretty(&plan).unwrap();
        let back = Plan::from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(serde_json::to_string_pretty(&back).unwrap(), json, "{name}");
        assert_eq!(back.hash(), plan.hash(), "{name}");
        for (i, st) in plan.stages.iter().enumerate() {
            // Every step of small stages, a spread of steps of full-scale ones.
            let stride = (st.steps / 997).max(1);
            let mut step = 0;
            while step < st.steps {
                let (a, b) = (plan.step(i, step), back.step(i, step));
                assert_eq!(a.lr.to_bits(), b.lr.to_bits(), "{name} {} @{step}", st.name);
                assert_eq!(a.shares, b.shares, "{name} {} @{step}", st.name);
                assert_eq!(
                    (a.phase, a.seq_len, a.batch, a.rope_base),
                    (b.phase, b.seq_len, b.batch, b.rope_base)
                );
                step += stride;
            }
        }
    }
}

#[test]
fn each_schedule_carries_its_pieces_in_the_json() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/tiny_text.pipe"
    ))
    .unwrap();
    let plan = check_with(&src, None).into_plan().unwrap();
    let v: serde_json::Value = serde_json::to_value(&plan).unwrap();
    let main = &v["schedules"][0];
    assert_eq!(main["name"], "main");
    // wsd over pretrain (40,960 tokens): warm-up 5%, hold, decay the last 20%.
    let pieces = main["curve"]["pieces"].as_array().unwrap();
    let kinds: Vec<&str> = pieces
        .iter()
        .map(|p| p["shape"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["linear", "linear", "linear"]);
    assert_eq!(pieces[0]["end"], 2048.0);
    assert_eq!(pieces[2]["start"], 40960.0 * 0.8);
    assert_eq!(pieces[2]["shape"]["from"], 3e-3);
    assert_eq!(pieces[2]["shape"]["to"], 3e-4);
    // The cooldown's inline schedule: re-warm-up from the hand-over, then a cosine.
    let cool = &v["schedules"][1]["curve"]["pieces"];
    assert_eq!(cool[1]["shape"]["kind"], "cosine");
    // The mixture as written: a ramp and a rest.
    let mix = &v["stages"][0]["mixture"]["nodes"];
    assert_eq!(mix[0]["weight"], "rest");
    assert_eq!(mix[1]["weight"]["ramp"][0], 0.1);
}

#[test]
fn a_plan_json_that_is_not_one_is_an_error_not_a_panic() {
    assert!(Plan::from_json("{\"pipeline\": 3}").is_err());
    assert!(Plan::from_json("").is_err());
}

#[test]
fn optimizer_lr_scale_and_seed_travel_in_the_json() {
    let src = "pipeline t { seed = 1, batch = 4, seq_len = 1K, optimizer = adamw(beta2 = 0.99, clip = 0.5) }
model llm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
model draft = decoder { vocab = 512, d_model = 32, layers = 1, heads = 2 }
data web = text(\"corpus/*.jsonl\")
stage big {
  train  = [llm]
  budget = 1_024_000
  data   = web
  lr     = constant(1e-4)
}
stage both after big {
  train     = [llm, draft]
  budget    = 1_024_000
  data      = web
  lr        = constant(1e-4)
  optimizer = adamw(weight_decay = 0, eps = 1e-6)
  seed      = 7
  lr_scale { draft = 0.25 }
}
";
    let c = check_with(src, None);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let plan = c.into_plan().unwrap();
    let v: serde_json::Value = serde_json::to_value(&plan).unwrap();
    // The pipeline's settings: two written, the rest the schema's defaults.
    assert_eq!(
        v["optimizer"],
        serde_json::json!({"beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1, "clip": 0.5})
    );
    assert_eq!(v["stages"][0]["optimizer"], v["optimizer"]);
    assert!(v["stages"][0].get("seed").is_none());
    // The stage's own arguments replace the pipeline's, the others stay.
    assert_eq!(
        v["stages"][1]["optimizer"],
        serde_json::json!({"beta1": 0.9, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.0, "clip": 0.5})
    );
    assert_eq!(v["stages"][1]["seed"], 7);
    assert_eq!(
        v["stages"][1]["lr_scale"],
        serde_json::json!({"draft": 0.25})
    );
    let back = Plan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap();
    assert_eq!(back.stages[1].optimizer, plan.stages[1].optimizer);
    assert_eq!(back.stages[1].lr_factor("draft"), 0.25);
    assert_eq!(back.stages[1].lr_factor("llm"), 1.0);
    assert_eq!(back.stages[1].seed, Some(7));
    assert_eq!(back.hash(), plan.hash());
    // `pipe plan` prints each schedule's span and stages, the pipeline's optimizer in full
    // and the stage's where they differ.
    let table = pipelang::plan::table::render(&plan);
    // 250 steps of 4 x 1,024 tokens each.
    assert!(
        table.contains("schedule big: span 1.02M tokens, stages big"),
        "{table}"
    );
    assert!(
        table.contains("schedule both: span 1.02M tokens, stages both"),
        "{table}"
    );
    assert!(
        table.contains("optimizer: adamw(beta1 = 0.9, beta2 = 0.99, eps = 1e-8, weight_decay = 0.1, clip = 0.5)"),
        "{table}"
    );
    assert!(
        table.contains("  both: optimizer adamw(beta1 = 0.9, beta2 = 0.99, eps = 1e-6, weight_decay = 0, clip = 0.5), lr_scale draft 0.25, seed 7"),
        "{table}"
    );
}
