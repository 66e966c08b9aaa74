//! `pipelines/llama3_long_context.pipe` planned: the numbers of "The Llama 3 Herd of Models"
//! (§3.4) and of Llama 3.1's released RoPE scaling, every expected value computed here by hand.

use pipelang::check::check_with;
use pipelang::plan::Plan;
use pipelang::plan::rope::{Rope, RopeScaling};

fn recipe() -> Plan {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/llama3_long_context.pipe"
    );
    let c = check_with(&std::fs::read_to_string(path).unwrap(), None);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    c.into_plan().unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-15 + 1e-9 * b.abs(), "{a} != {b}");
}

fn ceil_div(a: f64, b: f64) -> u64 {
    (a / b).ceil() as u64
}

// §3.4.1: 4M tokens in sequences of 4,096 (976.5625, rounded to 977), then 8M in sequences of
// 8,192 (977 again), then 16M (1,953.125, so 1,953).
const TPS_4M: f64 = 977.0 * 4096.0;
const TPS_8M: f64 = 977.0 * 8192.0;
const TPS_16M: f64 = 1953.0 * 8192.0;

/// Steps of each pre-training phase: 252M, then up to 2.87T, then the rest of 15.6T.
fn pretrain_steps() -> [u64; 3] {
    [
        ceil_div(252e6, TPS_4M),
        ceil_div(2.87e12 - 252e6, TPS_8M),
        ceil_div(15.6e12 - 2.87e12, TPS_16M),
    ]
}

#[test]
fn pretraining_doubles_the_batch_twice() {
    let p = recipe();
    let st = p.stage("pretrain").unwrap();
    let got: Vec<(u64, u64, u64)> = st
        .phases
        .iter()
        .map(|ph| (ph.batch, ph.seq_len, ph.steps))
        .collect();
    let [a, b, c] = pretrain_steps();
    assert_eq!(got, [(977, 4096, a), (977, 8192, b), (1953, 8192, c)]);
    // 252M / 4,001,792 = 62.97; 2,869.748B / 8,003,584 = 358,557.9; 12.73T / 15,998,976 =
    // 795,675.9: about 1.15M steps of pre-training.
    assert_eq!((a, b, c), (63, 358_558, 795_676));
}

/// The position (tokens into the schedule's span) where step `k` of the span starts, through
/// pre-training and then the long-context stages: a phase starts at its declared budget's
/// position (252M, 2.87T, 15.6T, then sixths of 800B), its steps at whole steps from there.
fn position(k: u64) -> f64 {
    let [a, b, c] = pretrain_steps();
    let mut phases = vec![(0.0, a, TPS_4M), (252e6, b, TPS_8M), (2.87e12, c, TPS_16M)];
    let lc = [
        (1024, 16),
        (512, 32),
        (341, 48),
        (256, 64),
        (170, 96),
        (128, 128),
    ];
    for (i, (batch, k)) in lc.into_iter().enumerate() {
        let tps = (batch * k * 1024) as f64;
        let start = 15.6e12 + i as f64 * 800e9 / 6.0;
        phases.push((start, ceil_div(800e9 / 6.0, tps), tps));
    }
    let mut left = k;
    for (start, n, tps) in phases {
        if left < n {
            return start + left as f64 * tps;
        }
        left -= n;
    }
    panic!("step {k} is past the long-context stages")
}

#[test]
fn the_cosine_warms_up_over_8000_steps_and_reaches_its_floor_at_step_1_2m() {
    let p = recipe();
    let pre = p.stage_index("pretrain").unwrap();
    let lc = p.stage_index("long_context").unwrap();
    let (peak, min) = (8e-5, 8e-7);
    let w = position(8000);
    let h = position(1_200_000);
    // The warm-up crosses the first batch change: step 63 is 63 steps of 4M into 8,000.
    close(p.lr_at(pre, 63), peak * position(63) / w);
    close(p.lr_at(pre, 8000), peak);
    // At the second batch change (2.87T): on the cosine between the warm-up and step 1.2M.
    let [a, b, _] = pretrain_steps();
    let x = position(a + b);
    let cos = min + (peak - min) / 2.0 * (1.0 + (std::f64::consts::PI * (x - w) / (h - w)).cos());
    close(p.lr_at(pre, a + b), cos);
    // Step 1.2M falls in the long-context stages, which then hold the floor.
    let pre_steps = p.stages[pre].steps;
    assert!(pre_steps < 1_200_000 && 1_200_000 < pre_steps + p.stages[lc].steps);
    close(p.lr_at(lc, p.stages[lc].steps - 1), min);
    // §3.4.3: the anneal starts from what the cosine hands over and decays linearly to 0.
    let an = p.stage_index("anneal").unwrap();
    let st = &p.stages[an];
    assert_eq!(st.steps, 20);
    close(p.lr_at(an, 0), min);
    close(p.lr_at(an, 10), min * 0.5);
}

#[test]
fn six_long_context_stages_of_a_sixth_of_800b() {
    let p = recipe();
    let st = p.stage("long_context").unwrap();
    let lens: Vec<u64> = st.phases.iter().map(|ph| ph.seq_len).collect();
    assert_eq!(lens, [16, 32, 48, 64, 96, 128].map(|k| k * 1024));
    for ph in &st.phases {
        close(ph.tokens, 800e9 / 6.0);
        assert_eq!(
            ph.steps,
            ceil_div(800e9 / 6.0, (ph.batch * ph.seq_len) as f64)
        );
    }
}

#[test]
fn llama_3_1_scaling_from_the_long_context_stages_on() {
    let p = recipe();
    let llama31 = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq: 1.0,
        high_freq: 4.0,
        original: 8192,
    };
    let pre = p.stage_index("pretrain").unwrap();
    let lc = p.stage_index("long_context").unwrap();
    let an = p.stage_index("anneal").unwrap();
    assert_eq!(p.step(pre, 1000).rope("llm"), Some(Rope::plain(500_000.0)));
    for (stage, step) in [(lc, 0), (lc, p.stages[lc].steps - 1), (an, 19)] {
        assert_eq!(
            p.step(stage, step).rope("llm"),
            Some(Rope {
                base: 500_000.0,
                scaling: llama31
            })
        );
    }
    // The 405B's heads are 16,384 / 128 = 128 wide. Wavelengths 2 pi 500000^(i/64): pair 40's
    // (2 pi x 500000^0.625 = 234,000) is above 8,192, so divided by 8; pair 20's
    // (2 pi x 500000^0.3125 = 382) is below 8,192 / 4 = 2,048, so kept.
    let f = p.step(lc, 0).rope("llm").unwrap().inv_freqs(128);
    close(f[40], 500_000f64.powf(-80.0 / 128.0) / 8.0);
    close(f[20], 500_000f64.powf(-40.0 / 128.0));
}
