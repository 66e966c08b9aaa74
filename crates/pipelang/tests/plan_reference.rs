//! The planner on the reference recipe, at full scale and with the smoke profile. Every
//! expected value is computed here by hand from the recipe's numbers, not by the code.

use pipelang::check::check_with;
use pipelang::plan::{Plan, PointQuery};

fn reference(profile: Option<&str>) -> Plan {
    let src = std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap();
    check_with(&src, profile)
        .into_plan()
        .expect("the reference plans")
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 + 1e-9 * b.abs(), "{a} != {b}");
}

fn ceil_div(a: f64, b: f64) -> u64 {
    (a / b).ceil() as u64
}

#[test]
fn execution_order_is_topological_then_written() {
    let p = reference(None);
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "vit_coca",
            "text_pretrain",
            "vit_align",
            "joint_pretrain",
            "joint_cooldown",
            "joint_long_context"
        ]
    );
}

#[test]
fn steps_per_stage_and_phase_at_full_scale() {
    let p = reference(None);
    let tps8k = 512.0 * 8192.0;
    assert_eq!(
        p.stage("vit_coca").unwrap().steps,
        ceil_div(2.0e12, 512.0 * 4096.0)
    );
    assert_eq!(
        p.stage("text_pretrain").unwrap().steps,
        ceil_div(5.2e12, tps8k)
    );
    assert_eq!(p.stage("vit_align").unwrap().steps, ceil_div(0.1e12, tps8k));
    assert_eq!(
        p.stage("joint_pretrain").unwrap().steps,
        ceil_div(1.4e12, tps8k)
    );
    assert_eq!(
        p.stage("joint_cooldown").unwrap().steps,
        ceil_div(0.6e12, tps8k)
    );
    let long = p.stage("joint_long_context").unwrap();
    assert_eq!(long.phases[0].steps, ceil_div(0.15e12, 512.0 * 32768.0));
    assert_eq!(long.phases[1].steps, ceil_div(0.15e12, 512.0 * 131072.0));
    assert_eq!(long.steps, long.phases[0].steps + long.phases[1].steps);
    assert_eq!(p.stage("text_pretrain").unwrap().tokens_per_step, 4_194_304);
}

#[test]
fn lr_at_the_hand_overs_at_full_scale() {
    let p = reference(None);
    // llm_lr spans text_pretrain + joint_pretrain = 6.6T; warmup 20B; decay over the last 10%.
    let span = 6.6e12;
    let decay_start = span - 0.1 * span;
    let tp = p.stage_index("text_pretrain").unwrap();
    assert_eq!(p.lr_at(tp, 0), 0.0);
    let tps = 512.0 * 8192.0;
    close(p.lr_at(tp, 1000), 4e-4 * (1000.0 * tps) / 20e9);
    close(p.stages[tp].lr.end, 4e-4); // 5.2T < decay start (5.94T)
    let jp = p.stage_index("joint_pretrain").unwrap();
    close(p.stages[jp].lr.start, 4e-4);
    close(p.stages[jp].lr.end, 4e-5);
    // Resumed: step k of joint_pretrain sits at 5.2T + k x tps of the span.
    let k = 200_000u64;
    let pos = 5.2e12 + k as f64 * tps;
    close(
        p.lr_at(jp, k),
        4e-4 + (4e-5 - 4e-4) * (pos - decay_start) / (span - decay_start),
    );
    assert!(p.stages[jp].schedule.resumed);

    // The cooldown re-warms from the hand-over LR (4e-5) to 2e-4 over 5B, then a cosine to 1e-5
    // over the rest of its 0.9T span (cooldown 0.6T + long context 0.3T).
    let jc = p.stage_index("joint_cooldown").unwrap();
    close(p.stages[jc].lr.start, 4e-5);
    close(p.stages[jc].lr.peak, 2e-4);
    let cos = |pos: f64| {
        1e-5 + (2e-4 - 1e-5) * (1.0 + (std::f64::consts::PI * (pos - 5e9) / (0.9e12 - 5e9)).cos())
            / 2.0
    };
    close(p.stages[jc].lr.end, cos(0.6e12));
    close(p.lr_at(jc, 100), 4e-5 + (2e-4 - 4e-5) * (100.0 * tps) / 5e9);
    // The long-context stage resumes the cooldown's schedule where it stopped.
    let jl = p.stage_index("joint_long_context").unwrap();
    close(p.stages[jl].lr.start, cos(0.6e12));
    close(p.stages[jl].lr.end, 1e-5);
    assert!(p.stages[jl].schedule.resumed);
    assert_eq!(p.stages[jl].schedule.name, "joint_cooldown");
}

#[test]
fn rope_and_seq_len_per_phase() {
    let p = reference(None);
    let long = p.stage("joint_long_context").unwrap();
    assert_eq!(long.phases[0].seq_len, 32 * 1024);
    assert_eq!(long.phases[1].seq_len, 128 * 1024);
    assert_eq!(long.phases[0].rope_base["llm"], 800_000.0);
    assert_eq!(long.phases[1].rope_base["llm"], 800_000.0);
    assert_eq!(
        p.stage("joint_cooldown").unwrap().rope_base["llm"],
        50_000.0
    );
    assert_eq!(p.stage("vit_coca").unwrap().seq_len, 4096);
}

#[test]
fn mixture_in_the_middle_of_the_ramp() {
    let p = reference(None);
    let jp = p.stage_index("joint_pretrain").unwrap();
    let q: PointQuery = "joint_pretrain@50%".parse().unwrap();
    let at = p.query(&q).unwrap();
    // The step starting at or before 0.7T into the stage.
    let tps: f64 = 512.0 * 8192.0;
    let step = (0.7e12 / tps).floor() as u64;
    assert_eq!(at.step, step);
    let f = step as f64 * tps / 1.4e12;
    let mm = 0.4 * f;
    close(at.mix["image_text"], 0.5 * mm);
    close(at.mix["interleaved"], 0.3 * mm);
    close(at.mix["ocr"], 0.2 * mm);
    close(at.mix["web_text"], 1.0 - mm);
    let shares = p.mix_at(jp, step);
    close(shares.iter().sum::<f64>(), 1.0);
    // Nested groups multiply: long 25% x long_text 40%.
    let at = p
        .query(&"joint_long_context.ctx_128k@end".parse().unwrap())
        .unwrap();
    close(at.mix["long_text"], 0.25 * 0.4);
    close(at.mix["hq_text"], 0.75 * 0.6);
    assert_eq!(at.seq_len, 131072);
}

#[test]
fn smoke_profile_steps_and_values() {
    let p = reference(Some("smoke"));
    assert_eq!(p.profile.as_deref(), Some("smoke"));
    // seq_len 8K/256 = 32 and 4K/256 = 16, batch 16; tokens x 5e-7.
    assert_eq!(
        p.stage("vit_coca").unwrap().steps,
        ceil_div(1.0e6, 16.0 * 16.0)
    );
    assert_eq!(
        p.stage("text_pretrain").unwrap().steps,
        ceil_div(2.6e6, 16.0 * 32.0)
    );
    assert_eq!(
        p.stage("vit_align").unwrap().steps,
        ceil_div(0.05e6, 16.0 * 32.0)
    );
    assert_eq!(
        p.stage("joint_pretrain").unwrap().steps,
        ceil_div(0.7e6, 16.0 * 32.0)
    );
    assert_eq!(
        p.stage("joint_cooldown").unwrap().steps,
        ceil_div(0.3e6, 16.0 * 32.0)
    );
    let long = p.stage("joint_long_context").unwrap();
    // The profile gives the long phases batches of 4 and 1: 512 tokens per step throughout.
    assert_eq!(long.phases[0].batch, 4);
    assert_eq!(long.phases[1].batch, 1);
    assert_eq!(long.phases[0].steps, ceil_div(0.075e6, 4.0 * 128.0));
    assert_eq!(long.phases[1].steps, ceil_div(0.075e6, 1.0 * 512.0));
    assert_eq!(long.phases[0].seq_len, 128);
    assert_eq!(long.phases[1].seq_len, 512);
    // Warmup 20B x 5e-7 = 10K tokens: step 10 of text_pretrain is at 5,120 tokens.
    let tp = p.stage_index("text_pretrain").unwrap();
    close(p.lr_at(tp, 10), 4e-4 * 5120.0 / 10e3);
    let jc = p.stage_index("joint_cooldown").unwrap();
    close(p.stages[jc].lr.start, 4e-5);
    // Re-warm-up over 5B x 5e-7 = 2.5K tokens.
    close(p.lr_at(jc, 2), 4e-5 + (2e-4 - 4e-5) * 1024.0 / 2.5e3);
}

#[test]
fn point_queries_take_steps_tokens_shares_and_end() {
    let p = reference(Some("smoke"));
    let a = p.query(&"text_pretrain@1200".parse().unwrap()).unwrap();
    assert_eq!(a.step, 1200);
    assert_eq!(a.tokens, 1200.0 * 512.0);
    let b = p.query(&"text_pretrain@10K".parse().unwrap()).unwrap();
    assert_eq!(b.step, (10_000.0f64 / 512.0).floor() as u64);
    let c = p.query(&"text_pretrain@end".parse().unwrap()).unwrap();
    assert_eq!(c.step, p.stage("text_pretrain").unwrap().steps - 1);
    let d = p
        .query(&"joint_long_context.ctx_128k@0".parse().unwrap())
        .unwrap();
    assert_eq!(
        d.step,
        p.stage("joint_long_context").unwrap().phases[1].first_step
    );
    assert_eq!(d.phase.as_deref(), Some("ctx_128k"));
    assert!(p.query(&"nope@1".parse().unwrap()).is_err());
    assert!(p.query(&"text_pretrain@99999999".parse().unwrap()).is_err());
    assert!("text_pretrain".parse::<PointQuery>().is_err());
}

#[test]
fn smoke_scales_rope_bases_with_the_contexts() {
    // `scale rope_base by 1/256` next to `scale seq_len by 1/256`: every base, the model's and
    // both sides of the stage transition, shrinks by the same factor as the contexts.
    let p = reference(Some("smoke"));
    let long = p.stage("joint_long_context").unwrap();
    assert_eq!(long.phases[0].seq_len, 128);
    assert_eq!(long.phases[1].seq_len, 512);
    assert_eq!(long.phases[0].rope_base["llm"], 800_000.0 / 256.0);
    assert_eq!(long.phases[1].rope_base["llm"], 3125.0);
    assert_eq!(
        p.stage("joint_cooldown").unwrap().rope_base["llm"],
        50_000.0 / 256.0
    );
    assert_eq!(
        p.stage("vit_coca").unwrap().rope_base["caption_decoder"],
        10_000.0 / 256.0
    );
}
