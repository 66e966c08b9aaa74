//! LR schedules of published recipes, written as the papers state them: `until`, a cosine
//! `horizon`, a segment that starts from the hand-over LR, and exponential decay. Every expected
//! value is computed here by hand from the papers' numbers, not by the code.

use pipelang::check::check;
use pipelang::plan::Plan;

const PI: f64 = std::f64::consts::PI;

fn plan(src: &str) -> Plan {
    let c = check(src);
    assert!(
        c.diagnostics.is_empty(),
        "{:#?}",
        c.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>()
    );
    c.into_plan().expect("plans")
}

fn recipe(name: &str) -> Plan {
    let path = format!("{}/../../pipelines/{name}", env!("CARGO_MANIFEST_DIR"));
    plan(&std::fs::read_to_string(path).unwrap())
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-15 + 1e-9 * b.abs(), "{a} != {b}");
}

/// The LR of `stage`'s schedule at token position `pos` of the schedule's span.
fn lr(p: &Plan, stage: &str, pos: f64) -> f64 {
    let st = &p.stages[p.stage_index(stage).unwrap()];
    p.schedules[st.run].curve.at(pos)
}

/// DeepSeek-V3's batch ramp (section 4.2), by its definition, one step at a time: a step's
/// batch is 3,072 + 12,288 x (its first token / 469B), rounded down, and 15,360 from 469B on;
/// each step is its batch x 4,096 tokens. Returns the first token of every step up to `until`.
fn deepseek_steps(until: f64) -> Vec<(f64, u64)> {
    let mut out = vec![];
    let mut x = 0.0f64;
    while x < until {
        let b = if x >= 469e9 {
            15_360
        } else {
            (3072.0 + 12_288.0 * x / 469e9).floor() as u64
        };
        out.push((x, b));
        x += (b * 4096) as f64;
    }
    out
}

#[test]
fn deepseek_v3_batch_ramp_steps_and_batches() {
    let p = recipe("deepseek_v3.pipe");
    let pre = p.stage_index("pretrain").unwrap();
    let st = &p.stages[pre];
    let ramp = deepseek_steps(469e9);
    // Under the ramp: about (469B / (12,288 x 4,096)) ln(15,360 / 3,072) = 9,318.2 x 1.6094 =
    // 14,997 steps in the continuous limit; whole sequences make it a few more.
    let n = ramp.len() as u64;
    assert!((14_990..15_010).contains(&n), "{n} steps under the ramp");
    for (k, &(x, b)) in ramp.iter().enumerate() {
        let at = p.step(pre, k as u64);
        assert_eq!(at.batch, b, "step {k}");
        assert_eq!(at.tokens, x, "step {k}");
        assert_eq!(at.tokens_per_step, b * 4096);
    }
    assert_eq!(ramp[0].1, 3072);
    // The first step past 469B trains 15,360 sequences, and so does every later one.
    let first_after = p.step(pre, n);
    assert_eq!(first_after.batch, 15_360);
    assert!(first_after.tokens >= 469e9);
    assert_eq!(p.step(pre, st.steps - 1).batch, 15_360);
    // The whole stage: the ramp's steps, then whole steps of 15,360 x 4,096 to 14.8T.
    let after_ramp = first_after.tokens;
    let rest = ((14.8e12 - after_ramp) / (15_360.0 * 4096.0)).ceil() as u64;
    assert_eq!(st.steps, n + rest);
    // The plan shows the ramp: the phase's first and last batch.
    assert_eq!(st.phases[0].batch, 3072);
    assert_eq!(st.phases[0].batch_end, Some(15_360));
    // `--at` by tokens finds the step whose start is at or before the position.
    let q: pipelang::plan::PointQuery = "pretrain@100B".parse().unwrap();
    let at = p.query(&q).unwrap();
    let want = ramp.iter().rposition(|&(x, _)| x <= 100e9).unwrap() as u64;
    assert_eq!(at.step, want);
}

#[test]
fn deepseek_v3_constant_until_10t_then_cosine_over_4_3t() {
    // DeepSeek-V3 (section 4.2): 0 -> 2.2e-4 over the first 2K steps, constant until 10T
    // tokens, cosine to 2.2e-5 over 4.3T, 2.2e-5 for 333B, 7.3e-6 for the last 167B.
    let p = recipe("deepseek_v3.pipe");
    // The warm-up is the first 2,000 steps, which fall inside the batch ramp: it ends where
    // step 2,000 starts, counted step by step.
    let steps = deepseek_steps(469e9);
    let warmup = steps[2000].0;
    // Batches 3,072 .. about 3,072 + 12,288 x 30B / 469B: between 2,000 steps of the first and
    // of the ramp's end batch.
    assert!(warmup > 2000.0 * 3072.0 * 4096.0 && warmup < 2000.0 * 15_360.0 * 4096.0);
    let pre = p.stage_index("pretrain").unwrap();
    close(p.step(pre, 2000).lr, 2.2e-4);
    close(p.step(pre, 1000).lr, 2.2e-4 * steps[1000].0 / warmup);
    close(lr(&p, "pretrain", 0.0), 0.0);
    close(lr(&p, "pretrain", warmup / 2.0), 1.1e-4);
    close(lr(&p, "pretrain", warmup), 2.2e-4);
    close(lr(&p, "pretrain", 5e12), 2.2e-4);
    close(lr(&p, "pretrain", 10e12), 2.2e-4);
    // Half-way through the cosine: min + (peak - min)(1 + cos(pi / 2)) / 2.
    close(
        lr(&p, "pretrain", 12.15e12),
        2.2e-5 + (2.2e-4 - 2.2e-5) / 2.0,
    );
    let q = 1.0 / 4.3;
    close(
        lr(&p, "pretrain", 11e12),
        2.2e-5 + (2.2e-4 - 2.2e-5) * (1.0 + (PI * q).cos()) / 2.0,
    );
    close(lr(&p, "pretrain", 14.3e12), 2.2e-5);
    close(lr(&p, "pretrain", 14.5e12), 2.2e-5);
    close(lr(&p, "pretrain", 14.7e12), 7.3e-6);
    let pre = p.stage_index("pretrain").unwrap();
    close(p.stages[pre].lr.end, 7.3e-6);
    // The context extension continues at the final 7.3e-6 (section 4.3).
    let lc = p.stage_index("long_context").unwrap();
    close(p.stages[lc].lr.start, 7.3e-6);
    close(p.stages[lc].lr.end, 7.3e-6);
}

/// OLMo 2 7B (OLMo 2 report, section 4.1 and table 3): peak 3e-4, 2,000 warm-up steps of
/// 1,024 x 4,096 tokens, cosine to 10% of the peak with a 5T horizon, stage 1 stopped at 3.9T;
/// stage 2 decays linearly from wherever stage 1 ended to 0.
const OLMO2: &str = r#"
pipeline olmo2 { seed = 1, batch = 1024, seq_len = 4K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text("corpus/*.jsonl")
stage stage1 {
  train  = [lm]
  budget = 3.9T
  data   = web
  lr     = cosine(peak = 3e-4, warmup = 2000 steps, horizon = 5T, min = 3e-5)
}
stage stage2 after stage1 {
  train  = [lm]
  budget = 50B
  data   = web
  lr     = linear(to = 0)
}
"#;

#[test]
fn olmo2_cosine_with_a_5t_horizon_cut_at_3_9t_then_linear_from_the_handover() {
    let p = plan(OLMO2);
    let w = 2000.0 * 1024.0 * 4096.0; // 8,388,608,000 tokens of warm-up
    let cos = |t: f64| {
        let q = (t - w) / (5e12 - w);
        3e-5 + (3e-4 - 3e-5) * (1.0 + (PI * q).cos()) / 2.0
    };
    close(lr(&p, "stage1", w / 2.0), 1.5e-4);
    close(lr(&p, "stage1", w), 3e-4);
    // At 1.95T: q = (1.95T - w) / (5T - w) = 0.388975, cos(pi q) = 0.341766,
    // LR = 3e-5 + 2.7e-4 x 1.341766 / 2 = 2.1114e-4.
    let mid = lr(&p, "stage1", 1.95e12);
    close(mid, cos(1.95e12));
    assert!((mid - 2.1114e-4).abs() < 1e-8, "{mid}");
    // Fitted to the 3.9T span instead, q would be 0.498922 and the LR 1.6546e-4: 22% low.
    let fitted = 3e-5 + 2.7e-4 * (1.0 + (PI * (1.95e12 - w) / (3.9e12 - w)).cos()) / 2.0;
    assert!((fitted - 1.6546e-4).abs() < 1e-8, "{fitted}");
    // Stage 1 ends before the horizon: the LR has not reached the minimum.
    let s1 = p.stage_index("stage1").unwrap();
    let handover = cos(3.9e12); // q = 0.779630, 6.1081e-5
    assert!((handover - 6.1081e-5).abs() < 1e-9, "{handover}");
    close(p.stages[s1].lr.end, handover);
    // Stage 2 starts from the hand-over LR and falls linearly to 0 over its 50B tokens.
    let s2 = p.stage_index("stage2").unwrap();
    close(p.stages[s2].lr.start, handover);
    close(lr(&p, "stage2", 25e9), handover / 2.0);
    close(lr(&p, "stage2", 50e9), 0.0);
}

#[test]
fn a_cosine_that_runs_past_its_horizon_holds_the_minimum() {
    let p = plan(
        r#"
pipeline t { seed = 1, batch = 1024, seq_len = 4K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text("corpus/*.jsonl")
stage pre { train = [lm], budget = 6T, data = web, lr = cosine(peak = 3e-4, horizon = 5T, min = 3e-5) }
"#,
    );
    close(lr(&p, "pre", 2.5e12), 3e-5 + 2.7e-4 / 2.0);
    close(lr(&p, "pre", 5e12), 3e-5);
    close(lr(&p, "pre", 5.5e12), 3e-5);
    close(lr(&p, "pre", 6e12), 3e-5);
}

/// MiniCPM (section 4.2, "WSD"): after the stable phase the LR halves every T = 5,000 steps,
/// f(s - S) = 0.5^((s - S) / T). Peak 0.01, batch 4M tokens (1,024 x 4,096).
#[test]
fn minicpm_exponential_decay_halves_every_5000_steps() {
    let tps = 1024.0 * 4096.0;
    let h = 5000.0 * tps; // 20,971,520,000 tokens
    let src = |lr: &str| {
        format!(
            r#"
pipeline minicpm {{ seed = 1, batch = 1024, seq_len = 4K }}
model lm = decoder {{ vocab = 512, d_model = 64, layers = 2, heads = 4 }}
data web = text("corpus/*.jsonl")
stage pre {{ train = [lm], budget = 1T, data = web, lr = {lr} }}
"#
        )
    };
    // As a `wsd` decay shape: warm-up 1% (10B), stable, decay over the last 10% (100B) from 900B.
    let p = plan(&src(
        "wsd(peak = 1e-2, warmup = 1%, decay = 10%, shape = exponential(half_life = 5000 steps))",
    ));
    close(lr(&p, "pre", 5e9), 5e-3);
    close(lr(&p, "pre", 900e9), 1e-2);
    close(lr(&p, "pre", 900e9 + h), 5e-3);
    close(lr(&p, "pre", 900e9 + 2.0 * h), 2.5e-3);
    // min 0: it never stops halving; at the end 100B / h = 4.768 half-lives.
    close(lr(&p, "pre", 1e12), 1e-2 * 0.5f64.powf(100e9 / h));

    // As a segment of its own after a constant `until` 900B, never below `min = 1e-3`, reached
    // after log2(10) = 3.3219 half-lives (69.67B tokens).
    let p = plan(&src(
        "constant(1e-2, until = 900B) then exponential(half_life = 5000 steps, min = 1e-3)",
    ));
    close(lr(&p, "pre", 900e9), 1e-2);
    close(lr(&p, "pre", 900e9 + h), 5e-3);
    close(lr(&p, "pre", 900e9 + 3.0 * h), 1.25e-3);
    close(lr(&p, "pre", 900e9 + h * 10f64.log2()), 1e-3);
    close(lr(&p, "pre", 990e9), 1e-3);
    close(lr(&p, "pre", 1e12), 1e-3);
}

#[test]
fn until_takes_shares_and_steps_of_the_span() {
    let tps = 1024.0 * 4096.0;
    let src = |until: &str| {
        format!(
            r#"
pipeline t {{ seed = 1, batch = 1024, seq_len = 4K }}
model lm = decoder {{ vocab = 512, d_model = 64, layers = 2, heads = 4 }}
data web = text("corpus/*.jsonl")
stage pre {{
  train  = [lm]
  budget = 1T
  data   = web
  lr     = linear(from = 0, to = 1e-3, over = 100 steps)
           then constant(1e-3, until = {until})
           then linear(to = 0)
}}
"#
        )
    };
    // `until = 60%`: the constant ends at 600B whatever the warmup; the last linear starts from
    // the LR where it starts (1e-3) and reaches 0 at the end of the span.
    let p = plan(&src("60%"));
    close(lr(&p, "pre", 50.0 * tps), 5e-4);
    close(lr(&p, "pre", 600e9), 1e-3);
    close(lr(&p, "pre", 800e9), 5e-4);
    // `until = 100000 steps`: at 100,000 x tps tokens.
    let p = plan(&src("100000 steps"));
    let end = 100_000.0 * tps;
    close(lr(&p, "pre", end), 1e-3);
    close(lr(&p, "pre", (end + 1e12) / 2.0), 5e-4);
}

/// Llama 3 405B (Llama 3 paper, section 3.4.1): tokens per step as the paper states them, 4M at
/// a 4,096 context for the first 252M tokens, 8M at 8,192 up to 2.87T, then 16M; the LR warms
/// up linearly to 8e-5 over 8,000 steps, across the first batch change.
const LLAMA3: &str = r#"
pipeline llama3 { seed = 1, batch = 1, seq_len = 4K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text("corpus/*.jsonl")
stage pretrain {
  train  = [lm]
  budget = 15.6T
  data   = web
  lr     = cosine(peak = 8e-5, warmup = 8000 steps, min = 8e-7)
  phase tokens_4m  { budget = 252M, batch_tokens = 4M }
  phase tokens_8m  { budget = 2_869_748_000_000, batch_tokens = 8M, seq_len = 4K -> 8K }
  phase tokens_16m { budget = 12.73T, batch_tokens = 16M }
}
"#;

#[test]
fn llama3_batch_tokens_per_phase_and_an_8000_step_warmup_across_the_change() {
    let p = plan(LLAMA3);
    let st = &p.stages[0];
    // 4M / 4,096 = 976.56 -> 977 sequences (4,001,792 tokens, +0.045%: no warning); 8M / 8,192
    // -> 977 (8,003,584); 16M / 8,192 = 1,953.1 -> 1,953 (15,998,976).
    let b: Vec<(u64, u64)> = st.phases.iter().map(|ph| (ph.batch, ph.seq_len)).collect();
    assert_eq!(b, vec![(977, 4096), (977, 8192), (1953, 8192)]);
    // The first phase: ceil(252M / 4,001,792) = 63 steps.
    assert_eq!(st.phases[0].steps, 63);
    assert_eq!(
        st.phases[1].steps,
        (2_869_748_000_000f64 / 8_003_584.0).ceil() as u64
    );
    assert_eq!(
        st.phases[2].steps,
        (12.73e12f64 / 15_998_976.0).ceil() as u64
    );
    // Step k >= 63 starts at 252M + (k - 63) x 8,003,584 tokens.
    let pos = |k: u64| 252e6 + (k - 63) as f64 * 8_003_584.0;
    assert_eq!(p.step(0, 8000).tokens, pos(8000));
    // The warm-up ends where step 8,000 starts: the peak there, linear before it.
    close(p.step(0, 8000).lr, 8e-5);
    close(p.step(0, 4000).lr, 8e-5 * pos(4000) / pos(8000));
    close(p.step(0, 63).lr, 8e-5 * 252e6 / pos(8000));
    assert!(p.step(0, 8001).lr < 8e-5);
    // Counted at the first phase's 4,001,792 tokens per step, 8,000 steps would end at token
    // 32.0B, inside step 4,031 of this run (its start is at or before it): the peak would come
    // about 4,000 steps early.
    let early: f64 = 8000.0 * 4_001_792.0;
    assert_eq!(((early - 252e6) / 8_003_584.0).floor() as u64 + 63, 4031);
    assert!(p.step(0, 4031).lr < 8e-5 * 0.51);
}

/// P0510: a resume that stretches a cosine says how much it moves the earlier stage's end LR,
/// with the values computed by hand; a horizon fixes the shape and the note goes away.
#[test]
fn a_resume_that_stretches_the_curve_gets_a_note_with_both_lrs() {
    let recipe = |lr: &str| {
        format!(
            "pipeline t {{ seed = 1, batch = 4, seq_len = 1K }}\n\
             model lm = decoder {{ vocab = 512, d_model = 64, layers = 2, heads = 4 }}\n\
             data web = text(\"corpus/*.jsonl\")\n\
             stage pre {{ train = [lm], budget = 100M, data = web, lr = {lr} }}\n\
             stage long after pre {{ train = [lm], budget = 100M, data = web, lr = resume }}\n"
        )
    };
    let c = pipelang::check::check(&recipe("cosine(peak = 1e-3, warmup = 1M, min = 1e-5)"));
    let notes: Vec<_> = c
        .diagnostics
        .iter()
        .filter(|d| d.code.as_str() == "P0510")
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", c.diagnostics);
    // The cosine runs from 1M to 200M; `pre` ends at 100M: p = 99/199.
    let p = 99.0f64 / 199.0;
    let with = 1e-5 + (1e-3 - 1e-5) * (1.0 + (std::f64::consts::PI * p).cos()) / 2.0;
    assert!((with - 5.089e-4).abs() < 1e-7, "{with}");
    let labels: Vec<&str> = notes[0].labels.iter().map(|l| l.message.as_str()).collect();
    assert!(
        labels.contains(&"`pre` now trains at LR 5.089e-4 at its end (1e-5 without `long`)"),
        "{labels:?}"
    );
    let fixed = pipelang::check::check(&recipe(
        "cosine(peak = 1e-3, warmup = 1M, min = 1e-5, horizon = 100M)",
    ));
    assert!(fixed.diagnostics.is_empty(), "{:?}", fixed.diagnostics);
    assert!(fixed.plan().is_some());
}
