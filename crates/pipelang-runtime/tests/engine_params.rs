//! The parameter count the engine exports carry (`pipelang_engine::runs::ModelDims::params`,
//! which OLMo-core's build is checked against) is the count of the model the candle runtime
//! builds from the same declaration: dense and MoE decoders, grouped and multi-query attention,
//! QK-norm, tied heads, stated FFN widths, shared experts, dense first layers, GELU.

use pipelang::check::check_with;
use pipelang_engine::{Options, Target};
use pipelang_runtime::build;
use pipelang_runtime::model::Kernels;

fn count(file: &str, profile: Option<&str>) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let src = std::fs::read_to_string(root.join("pipelines").join(file)).unwrap();
    let c = check_with(&src, profile);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    // Megatron's lowering takes every decoder (MoE and GELU ones too).
    let l = pipelang_engine::lower(
        &p,
        &plan,
        &Options {
            target: Target::Megatron,
            ..Options::default()
        },
    );
    let mut seen = vec![];
    for r in &l.runs {
        if seen.contains(&r.model.name) {
            continue;
        }
        seen.push(r.model.name.clone());
        let id = p.model_id(&r.model.name).unwrap();
        let slot = build::build(
            &p,
            id,
            0,
            None,
            false,
            Kernels::Reference,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let built: usize = build::tensors(&slot.vars)
            .values()
            .map(|t| t.elem_count())
            .sum();
        assert_eq!(
            r.model.params as usize, built,
            "{file}: decoder `{}`: the export says {} parameters, the runtime builds {built}",
            r.model.name, r.model.params
        );
    }
    seen.len()
}

#[test]
fn tiny_text_decoder() {
    assert_eq!(count("tiny_text.pipe", None), 1);
}

#[test]
fn modern_dense_and_moe_decoders() {
    assert_eq!(count("tiny_modern.pipe", None), 2);
}

#[test]
fn kimi_vl_smoke_decoders() {
    assert!(count("kimi_vl.pipe", Some("smoke")) >= 1);
}
