//! Variants and soups, planned by hand: an OLMo-2-like recipe with three mid-training
//! variants from one pre-training checkpoint, averaged, then a short anneal after the soup.

use pipelang::check::check;
use pipelang::plan::Plan;

const OLMO2_LIKE: &str = r#"
pipeline olmo2_like { seed = 7, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text("web/*.jsonl")
data math = text("math/*.jsonl")
stage pretrain { train = [lm], budget = 400M, data = web, lr = cosine(peak = 3e-4, warmup = 4M) }
stage mid after pretrain vary seed = [42, 42069, 666] {
  train = [lm], budget = 100M, lr = linear(from = 3e-4, to = 0)
  mix { web = 50%, math = 50% }
}
stage soup = average(mid)
stage tail after soup { train = [lm], budget = 8M, data = math, lr = constant(1e-5) }
"#;

fn plan(src: &str) -> Plan {
    let c = check(src);
    assert!(
        c.diagnostics.iter().all(|d| !d.is_error()),
        "{:#?}",
        c.diagnostics
    );
    c.into_plan().expect("plans")
}

#[test]
fn variants_expand_one_stage_per_seed_in_parallel() {
    let p = plan(OLMO2_LIKE);
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pretrain",
            "mid[42]",
            "mid[42069]",
            "mid[666]",
            "soup",
            "tail"
        ]
    );
    for (name, seed) in [("mid[42]", 42), ("mid[42069]", 42069), ("mid[666]", 666)] {
        let s = p.stage(name).unwrap();
        assert_eq!(s.seed, Some(seed));
        assert_eq!(s.after, ["pretrain"]);
        assert_eq!(s.variant.as_ref().unwrap().group, "mid");
        assert_eq!(s.weights_from[0].from.as_deref(), Some("pretrain"));
        // 100M tokens at 4 x 1024 tokens per step.
        assert_eq!(s.steps, (100e6_f64 / 4096.0).ceil() as u64);
        assert_eq!(s.file_name(), format!("mid-{seed}"));
    }
}

#[test]
fn totals_separate_sequential_tokens_from_compute() {
    let p = plan(OLMO2_LIKE);
    // Compute: every stage's tokens, the three variants each.
    assert_eq!(p.total_tokens, 400e6 + 3.0 * 100e6 + 8e6);
    // Wall clock: pre-training, one variant (they run side by side), the soup (none), the tail.
    assert_eq!(p.sequential_tokens, 400e6 + 100e6 + 8e6);
    let steps = |t: f64| (t / 4096.0).ceil() as u64;
    assert_eq!(p.total_steps, steps(400e6) + 3 * steps(100e6) + steps(8e6));
    assert_eq!(p.sequential_steps, steps(400e6) + steps(100e6) + steps(8e6));
}

#[test]
fn the_soup_has_no_steps_and_hands_its_weights_on() {
    let p = plan(OLMO2_LIKE);
    let soup = p.stage("soup").unwrap();
    assert_eq!(soup.steps, 0);
    assert!(soup.phases.is_empty());
    assert_eq!(soup.after, ["mid[42]", "mid[42069]", "mid[666]"]);
    let w: Vec<(&str, f64)> = soup
        .average
        .iter()
        .map(|a| (a.stage.as_str(), a.weight))
        .collect();
    assert_eq!(
        w,
        [
            ("mid[42]", 1.0 / 3.0),
            ("mid[42069]", 1.0 / 3.0),
            ("mid[666]", 1.0 / 3.0)
        ]
    );
    assert_eq!(soup.train, ["lm"]);
    // Each variant decays to 0: the soup holds that LR.
    assert_eq!(soup.lr.end, 0.0);
    let tail = p.stage("tail").unwrap();
    assert_eq!(tail.weights_from[0].from.as_deref(), Some("soup"));
    assert_eq!(tail.seq_len, 1024);
}

#[test]
fn a_step_of_each_variant_is_planned_on_its_own_branch() {
    let p = plan(OLMO2_LIKE);
    for name in ["mid[42]", "mid[666]"] {
        let i = p.stages.iter().position(|s| s.name == name).unwrap();
        let half = p.stages[i].steps / 2;
        let st = p.step(i, half);
        // linear(3e-4 -> 0) at the middle of the stage's tokens.
        let tokens = half as f64 * 4096.0;
        let want = 3e-4 * (1.0 - tokens / 100e6);
        assert!((st.lr - want).abs() < 1e-12, "{name}: {} != {want}", st.lr);
        let mix = p.mix_at(i, half);
        assert!((mix[pipelang::check::ir::DataId::new(1)] - 0.5).abs() < 1e-12);
    }
}

#[test]
fn weighted_soup_of_two_named_variants() {
    let src = OLMO2_LIKE.replace("average(mid)", "average(mid[42] = 60%, mid[666] = 40%)");
    let p = plan(&src);
    let soup = p.stage("soup").unwrap();
    let w: Vec<(&str, f64)> = soup
        .average
        .iter()
        .map(|a| (a.stage.as_str(), a.weight))
        .collect();
    assert_eq!(w, [("mid[42]", 0.6), ("mid[666]", 0.4)]);
}

#[test]
fn after_a_group_means_after_all_of_its_variants() {
    let src = OLMO2_LIKE
        .replace("stage soup = average(mid)\n", "")
        .replace("after soup", "after mid")
        .replace(
            "data = math, lr",
            "data = math, weights { lm = pretrain }, lr",
        );
    let c = check(&src);
    let p = c.into_plan().expect("plans");
    assert_eq!(
        p.stage("tail").unwrap().after,
        ["mid[42]", "mid[42069]", "mid[666]"]
    );
}

#[test]
fn one_variant_is_named_with_its_key_where_a_stage_is_due() {
    let src = OLMO2_LIKE
        .replace("stage soup = average(mid)\n", "")
        .replace("after soup", "after mid")
        .replace(
            "data = math, lr",
            "data = math, weights { lm = mid[666] }, lr",
        );
    let p = plan(&src);
    let tail = p.stage("tail").unwrap();
    assert_eq!(tail.weights_from[0].from.as_deref(), Some("mid[666]"));
}

/// The OLMo 2 recipe: every number below is the recipe's, computed here by hand.
#[test]
fn olmo2_recipe_plans_three_parallel_mid_training_runs_and_their_soup() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/olmo2.pipe"
    ))
    .unwrap();
    let p = plan(&src);
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["pretrain", "mid[42]", "mid[42069]", "mid[666]", "soup"]
    );
    let tps: f64 = 1024.0 * 4096.0; // 4,194,304 tokens per step (Table 3)
    let pre = p.stage("pretrain").unwrap();
    // Stage 1 is the released checkpoint's 928,646 steps: 928,646 x 4,194,304 =
    // 3,774,873,600,000 (900,000 steps) + 120,150,032,384 (28,646) = 3,895,023,632,384 tokens.
    let t1 = 3_895_023_632_384.0;
    assert_eq!(928_646.0 * tps, t1);
    assert_eq!(pre.steps, 928_646);
    // The cosine for 5T stopped there: min + (peak - min)(1 + cos(pi p))/2 at
    // p = (t1 - warmup) / (5T - warmup), the warm-up being 2,000 x 4,194,304 = 8,388,608,000
    // tokens: p = 3,886,635,024,384 / 4,991,611,392,000 = 0.778633, cos(pi p) = -0.767769,
    // LR = 3e-5 + 2.7e-4 x 0.232231 / 2 = 6.1351e-5.
    let w = 2000.0 * tps;
    let frac = (t1 - w) / (5e12 - w);
    let want = 3e-5 + (3e-4 - 3e-5) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0;
    assert!(
        (pre.lr.end - want).abs() < 1e-12,
        "{} != {want}",
        pre.lr.end
    );
    assert!((pre.lr.end - 6.1351e-5).abs() < 1e-9, "{}", pre.lr.end);
    // The released stage-2 configs start at 6.1499e-5 (the cosine near step 928,000):
    // (6.1499 - 6.1351) / 6.1499 = 0.24% above the hand-over.
    assert!(((6.1499e-5 - pre.lr.end) / 6.1499e-5).abs() < 3e-3);
    // Table 10's PT Mix: 100 - (2.1 + 1.5 + 0.5 + 0.3 + 0.3 + 0.1) = 95.2% DCLM.
    assert!((pre.mix.start["dclm"] - 0.952).abs() < 1e-12);
    for seed in [42u64, 42069, 666] {
        let m = p.stage(&format!("mid[{seed}]")).unwrap();
        assert_eq!(m.seed, Some(seed));
        // 50e9 / 4,194,304 = 11,920.93: 11,921 steps.
        assert_eq!(m.steps, 11_921);
        assert_eq!(m.weights_from[0].from.as_deref(), Some("pretrain"));
        // Each run decays linearly from stage 1's last LR to 0.
        assert!((m.lr.start - pre.lr.end).abs() < 1e-15);
        assert_eq!(m.lr.end, 0.0);
        // Table 13, 50B mix: Dolmino Math 20.8%; DCLM the rest,
        // 100 - (16.6 + 2.45 + 5.85 + 7.11 + 20.8) = 47.19% (the table prints 47.2).
        assert!((m.mix.start["math"] - 0.208).abs() < 1e-12);
        assert!((m.mix.start["dclm_hq"] - 0.4719).abs() < 1e-12);
    }
    let soup = p.stage("soup").unwrap();
    assert_eq!(soup.steps, 0);
    assert_eq!(soup.average.len(), 3);
    // Compute: 3,895,023,632,384 + 3 x 50B = 4,045,023,632,384 (the 4.05T of section 2.3);
    // the critical path has one run: 3,895,023,632,384 + 50B = 3,945,023,632,384.
    assert_eq!(p.total_tokens, 4_045_023_632_384.0);
    assert_eq!(p.sequential_tokens, 3_945_023_632_384.0);
}

#[test]
fn a_variant_is_queried_by_its_name_and_a_soup_is_not() {
    let p = plan(OLMO2_LIKE);
    let q: pipelang::plan::PointQuery = "mid[666]@50%".parse().unwrap();
    let st = p.query(&q).unwrap();
    assert_eq!(st.stage, "mid[666]");
    assert_eq!(st.step, p.stage("mid[666]").unwrap().steps / 2);
    let q: pipelang::plan::PointQuery = "soup@0".parse().unwrap();
    let e = p.query(&q).unwrap_err();
    assert!(e.contains("is a soup") && e.contains("mid[42]"), "{e}");
    // The JSON carries both totals and reads back.
    let json = serde_json::to_string(&p).unwrap();
    let back = Plan::from_json(&json).unwrap();
    assert_eq!(back.sequential_tokens, p.sequential_tokens);
    assert_eq!(
        back.stage("soup").unwrap().average,
        p.stage("soup").unwrap().average
    );
    assert_eq!(
        back.stage("mid[42]").unwrap().variant.as_ref().unwrap().key,
        "42"
    );
}
