//! A RoPE scaling in an export: OLMo-core takes every run of `tiny_yarn.pipe` with the scaling
//! in its config (`olmo_core_real.rs` builds them with OLMo-core and compares the frequencies);
//! Megatron-LM (position interpolation and Llama 3.1's released bands only) and torchtitan
//! (Llama 3.1's only; both checked in their `*_real.rs`) refuse its YaRN stage with P0901 at
//! the `rope_scaling` that states it, never dropping it.

use pipelang::check::check_with;
use pipelang_engine::lower;
use pipelang_engine::runs::{Options, Target};

fn recipe() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/tiny_yarn.pipe"
    ))
    .unwrap()
}

#[test]
fn olmo_core_carries_the_scaling_in_each_run() {
    let src = recipe();
    let c = check_with(&src, None);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let l = lower(&p, &plan, &Options::default());
    assert!(l.unmappable.is_empty());
    let scaled: Vec<&str> = l
        .runs
        .iter()
        .filter(|r| !r.rope_scaling.is_none())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(scaled, ["extend.ctx_64", "extend.ctx_128"]);
    let cfg = pipelang_engine::olmo_core::config(&p, &l, 1, &Default::default());
    assert_eq!(cfg["rope_scaling"]["class"], "YaRNRoPEScalingConfig");
    assert_eq!(cfg["rope_scaling"]["beta_fast"], 32.0);
    assert_eq!(cfg["rope_scaling"]["beta_slow"], 1.0);
    assert_eq!(cfg["rope_scaling"]["old_context_len"], 32);
    let first = pipelang_engine::olmo_core::config(&p, &l, 0, &Default::default());
    assert!(first.get("rope_scaling").is_none());
}

#[test]
fn megatron_and_torchtitan_refuse_a_scaling_at_the_field() {
    let src = recipe();
    let c = check_with(&src, None);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    for target in [Target::Megatron, Target::Torchtitan] {
        let l = lower(
            &p,
            &plan,
            &Options {
                target,
                ..Default::default()
            },
        );
        assert_eq!(l.unmappable.len(), 1, "{target:?}");
        let d = &l.unmappable[0].diagnostic;
        assert_eq!(d.code.as_str(), "P0901");
        assert_eq!(l.unmappable[0].stage, "extend");
        let s = d.primary_span();
        assert_eq!(
            &src[s.start..s.end],
            "yarn(factor = 4, original = 32)",
            "{target:?}: {}",
            d.message
        );
        assert!(
            d.message.contains("rope_scaling = yarn(factor = 4"),
            "{}",
            d.message
        );
        // The help says why this engine cannot take it.
        let help = d.help.as_deref().unwrap_or_default();
        let why = match target {
            Target::Megatron => "no `--position-embedding-type yarn`",
            _ => "torchtitan takes `llama3` only",
        };
        assert!(help.contains(why), "{target:?}: {help}");
        // No run of the refused stage is exported.
        assert!(l.runs.iter().all(|r| r.stage != "extend"));
    }
}

/// What Megatron-LM cannot say is refused, not approximated: Llama 3.1's scaling with other
/// bands than megatron-core's fixed ones, and position interpolation by a fraction
/// (`--rotary-seq-len-interpolation-factor` is an int). The same recipe with the released
/// bands or a whole factor is exported (`megatron_real.rs` checks its frequencies).
#[test]
fn megatron_refuses_the_scalings_its_flags_cannot_state() {
    let recipe = |scaling: &str| {
        format!(
            "pipeline t {{ seed = 1, batch = 4, seq_len = 64 }}\n\
             model lm = decoder {{ vocab = 512, d_model = 64, layers = 2, heads = 2 }}\n\
             data web = text(\"corpus/*.jsonl\")\n\
             stage pre {{ train = [lm], budget = 2_560, data = web, lr = constant(1e-3) }}\n\
             stage long after pre {{\n  train = [lm]\n  budget = 65_536\n  seq_len = 64 -> 8K\n  \
             data = web\n  lr = constant(1e-3)\n  rope_scaling = none -> {scaling}\n}}\n"
        )
    };
    for (scaling, refused) in [
        (
            "llama3(factor = 8, low_freq = 1, high_freq = 4, original = 8K)",
            false,
        ),
        (
            "llama3(factor = 8, low_freq = 1, high_freq = 4, original = 4K)",
            true,
        ),
        (
            "llama3(factor = 8, low_freq = 2, high_freq = 4, original = 8K)",
            true,
        ),
        ("linear(factor = 2)", false),
        ("linear(factor = 1.5)", true),
    ] {
        let src = recipe(scaling);
        let c = check_with(&src, None);
        assert!(!c.has_errors(), "{scaling}: {:?}", c.diagnostics);
        let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
        let l = lower(
            &p,
            &plan,
            &Options {
                target: Target::Megatron,
                ..Default::default()
            },
        );
        assert_eq!(l.unmappable.len(), usize::from(refused), "{scaling}");
        if let Some(u) = l.unmappable.first() {
            let d = &u.diagnostic;
            let s = d.primary_span();
            assert_eq!(&src[s.start..s.end], scaling);
            assert!(
                d.help
                    .as_deref()
                    .unwrap_or("")
                    .contains("low_freq = 1, high_freq = 4"),
                "{:?}",
                d.help
            );
        }
    }
}
