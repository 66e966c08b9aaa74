//! RoPE scaling: the frequencies of `plan::rope` against the closed forms of the papers, worked
//! out by hand here, and the scaling carried through the walk into `Plan::step`, the table,
//! `--at`, the JSON and a profile.

use std::f64::consts::PI;

use pipelang::check::check_with;
use pipelang::plan::rope::{Rope, RopeScaling, yarn_band};
use pipelang::plan::{Plan, table};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 + 1e-9 * b.abs(), "{a} != {b}");
}

/// `base^(-2i/d)`, the unscaled frequency of pair `i`.
fn plain(base: f64, i: usize, d: usize) -> f64 {
    base.powf(-(2.0 * i as f64) / d as f64)
}

#[test]
fn linear_divides_every_frequency() {
    let r = Rope {
        base: 10_000.0,
        scaling: RopeScaling::Linear { factor: 4.0 },
    };
    let f = r.inv_freqs(64);
    assert_eq!(f.len(), 32);
    for (i, x) in f.iter().enumerate() {
        close(*x, plain(10_000.0, i, 64) / 4.0);
    }
    close(r.attention_factor(), 1.0);
}

/// DeepSeek-V3's YaRN (§4.3: s = 40, original 4K, beta 32, alpha 1) on a 128-wide head of base
/// 10,000. The pair whose wavelength fits r rotations into 4,096 tokens is
/// d(r) = 128 ln(4096 / (2 pi r)) / (2 ln 10000):
/// d(32) = 128 ln(20.3718) / 18.42068 = 128 x 3.01415 / 18.42068 = 20.94, floor 20;
/// d(1)  = 128 ln(651.899) / 18.42068 = 128 x 6.47990 / 18.42068 = 45.03, ceil 46.
/// Pairs up to 20 keep their frequency, from 46 on they are divided by 40, and in between the
/// ramp (i - 20) / 26 blends the two; queries and keys are scaled by 0.1 ln 40 + 1 = 1.368888.
#[test]
fn yarn_matches_the_closed_form() {
    let s = RopeScaling::Yarn {
        factor: 40.0,
        original: 4096,
        alpha: 1.0,
        beta: 32.0,
    };
    let r = Rope {
        base: 10_000.0,
        scaling: s,
    };
    assert_eq!(yarn_band(10_000.0, 128, 4096, 1.0, 32.0), (20.0, 46.0));
    let f = r.inv_freqs(128);
    assert_eq!(f.len(), 64);
    for i in [0, 10, 20] {
        close(f[i], plain(10_000.0, i, 128));
    }
    for i in [46, 50, 63] {
        close(f[i], plain(10_000.0, i, 128) / 40.0);
    }
    // i = 33: ramp (33 - 20) / 26 = 0.5, so f (0.5 + 0.5 / 40) = 0.5125 f.
    close(f[33], 0.5125 * plain(10_000.0, 33, 128));
    // i = 21: ramp 1/26.
    let g = 1.0 / 26.0;
    close(f[21], plain(10_000.0, 21, 128) * (1.0 - g + g / 40.0));
    close(r.attention_factor(), 1.368_887_945_411_393_6);
    // The paper's own criterion holds at the ends: a kept pair makes more than beta = 32
    // rotations over the original context, a fully divided one fewer than alpha = 1.
    let rotations = |i: usize| 4096.0 * plain(10_000.0, i, 128) / (2.0 * PI);
    assert!(rotations(20) > 32.0 && rotations(46) < 1.0);
}

/// Llama 3.1 (released config: factor 8, low_freq 1, high_freq 4, original 8192) on a
/// 128-wide head of base 500,000. Wavelength w_i = 2 pi 500000^(i/64); the thresholds are
/// 8192 / 4 = 2048 (below: kept) and 8192 / 1 = 8192 (above: divided by 8).
/// w = 2048 at i = 64 ln(2048 / 2 pi) / ln 500000 = 64 x 5.78673 / 13.12236 = 28.22;
/// w = 8192 at i = 64 ln(8192 / 2 pi) / ln 500000 = 64 x 7.17303 / 13.12236 = 34.98.
#[test]
fn llama3_matches_the_closed_form() {
    let r = Rope {
        base: 500_000.0,
        scaling: RopeScaling::Llama3 {
            factor: 8.0,
            low_freq: 1.0,
            high_freq: 4.0,
            original: 8192,
        },
    };
    let f = r.inv_freqs(128);
    for i in [0, 15, 28] {
        close(f[i], plain(500_000.0, i, 128));
    }
    for i in [35, 40, 63] {
        close(f[i], plain(500_000.0, i, 128) / 8.0);
    }
    // i = 30: w = 2 pi 500000^(30/64) = 2948.5..., smooth = (8192 / w - 1) / 3.
    let w = 2.0 * PI * 500_000f64.powf(30.0 / 64.0);
    assert!((w - 2948.5).abs() < 1.0, "{w}");
    let smooth = (8192.0 / w - 1.0) / 3.0;
    close(
        f[30],
        (1.0 - smooth) * plain(500_000.0, 30, 128) / 8.0 + smooth * plain(500_000.0, 30, 128),
    );
    // In the band the result lies between the divided and the kept frequency: 0.6437 f.
    assert!((f[30] / plain(500_000.0, 30, 128) - 0.6437).abs() < 1e-3);
    close(r.attention_factor(), 1.0);
}

const RECIPE: &str = r#"
pipeline t { seed = 1, batch = 4, seq_len = 4K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4, rope_base = 500_000 }
data web = text("corpus/*.jsonl")
stage pre {
  train  = [lm]
  budget = 4096 steps
  data   = web
  lr     = constant(1e-4)
}
stage long after pre {
  train  = [lm]
  budget = 200 steps
  data   = web
  lr     = resume
  phase ctx16 {
    budget       = 100 steps
    seq_len      = 4K -> 16K
    rope_scaling = none -> yarn(factor = 8, original = 4K)
  }
  phase ctx32 { budget = 100 steps, seq_len = 16K -> 32K }
}
stage after_long after long {
  train  = [lm]
  budget = 10 steps
  data   = web
  lr     = resume
}
profile small {
  scale seq_len by 1/16
}
"#;

fn plan(profile: Option<&str>) -> Plan {
    let c = check_with(RECIPE, profile);
    assert!(
        c.diagnostics.is_empty(),
        "{:?}",
        c.diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
    c.into_plan().expect("plans")
}

const YARN: RopeScaling = RopeScaling::Yarn {
    factor: 8.0,
    original: 4096,
    alpha: 1.0,
    beta: 32.0,
};

#[test]
fn the_step_carries_the_scaling_from_the_phase_that_sets_it_on() {
    let p = plan(None);
    let pre = p.stage_index("pre").unwrap();
    let long = p.stage_index("long").unwrap();
    let after = p.stage_index("after_long").unwrap();
    // Before the extension: no scaling, the model's base.
    let s = p.step(pre, 4095);
    assert!(s.rope_scaling.is_empty());
    assert_eq!(s.rope("lm"), Some(Rope::plain(500_000.0)));
    // Both phases of `long` (the second inherits the first's), and the stage after it.
    for (stage, step, seq) in [(long, 0, 16384), (long, 99, 16384), (long, 100, 32768)] {
        let s = p.step(stage, step);
        assert_eq!(s.seq_len, seq);
        assert_eq!(
            s.rope("lm"),
            Some(Rope {
                base: 500_000.0,
                scaling: YARN
            })
        );
    }
    assert_eq!(p.step(after, 0).rope_scaling.get("lm"), Some(&YARN));
    // The table's rope column and `--at`.
    let t = table::render(&p);
    assert!(t.contains("lm 500000 yarn x8 from 4K"), "{t}");
    let at = table::render_point(&p.step(long, 150));
    assert!(
        at.contains("rope_scaling lm yarn(factor = 8, original = 4K, alpha = 1, beta = 32)"),
        "{at}"
    );
    // JSON: the phase's, the step's, and back.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["stages"][1]["phases"][0]["rope_scaling"]["lm"]["yarn"]["factor"],
        8.0
    );
    assert!(json["stages"][0]["phases"][0].get("rope_scaling").is_none());
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back.step(long, 0).rope_scaling.get("lm"), Some(&YARN));
    let step = serde_json::to_value(p.step(long, 0)).unwrap();
    assert_eq!(step["rope_scaling"]["lm"]["yarn"]["original"], 4096);
}

#[test]
fn a_profile_scales_original_with_the_lengths() {
    let p = plan(Some("small"));
    let long = p.stage_index("long").unwrap();
    let s = p.step(long, 0);
    assert_eq!(s.seq_len, 1024);
    assert_eq!(
        s.rope_scaling.get("lm"),
        Some(&RopeScaling::Yarn {
            factor: 8.0,
            original: 256,
            alpha: 1.0,
            beta: 32.0
        })
    );
}

#[test]
fn fmt_keeps_the_scaling() {
    let formatted = pipelang::fmt::format(RECIPE).unwrap();
    assert!(
        formatted.contains("rope_scaling = none -> yarn(factor = 8, original = 4K)"),
        "{formatted}"
    );
    assert_eq!(pipelang::fmt::format(&formatted).unwrap(), formatted);
    let a = plan(None);
    let b = check_with(&formatted, None).into_plan().unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn a_decoder_states_its_scaling_and_a_stage_replaces_it() {
    let src = RECIPE.replace(
        "rope_base = 500_000 }",
        "rope_base = 500_000, rope_scaling = linear(factor = 2) }",
    );
    // `none -> ...` no longer starts from what `pre` hands over.
    let c = check_with(&src, None);
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["P0504"]);
    let src = src.replace("none -> yarn", "linear(factor = 2) -> yarn");
    let p = check_with(&src, None).into_plan().unwrap();
    assert_eq!(
        p.step(0, 0).rope_scaling.get("lm"),
        Some(&RopeScaling::Linear { factor: 2.0 })
    );
    assert_eq!(p.step(1, 0).rope_scaling.get("lm"), Some(&YARN));
}
