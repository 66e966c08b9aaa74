//! Golden files of the Megatron export: every launch script and blend of the reference recipe
//! (full scale and its smoke profile) and of tiny_text, with the diagnostics the export
//! reports. `plan.json` and `export.json` are left out (the plan has its own goldens; the
//! fitted LR is in each script's flags and header).

use pipelang::check::check_with;
use pipelang_engine::megatron;
use pipelang_engine::parallel::Layout;
use pipelang_engine::runs::{Options, Target};

fn golden(file: &str, profile: Option<&str>, layout: &Layout) -> String {
    let path = format!("{}/../../pipelines/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).unwrap();
    let c = check_with(&src, profile);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Megatron,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let x = megatron::export(&p, &plan, &l);
    let mut out = String::new();
    for u in &l.unmappable {
        out += &format!(
            "[{}] {}\n",
            u.diagnostic.code.as_str(),
            u.diagnostic.message
        );
    }
    for d in pipelang_engine::parallel::check(&p, &plan, &l, layout)
        .iter()
        .chain(&x.diagnostics)
    {
        let s = d.labels[0].span;
        out += &format!(
            "[{}] {} (at `{}`)\n",
            d.code.as_str(),
            d.message,
            &src[s.start..s.end].lines().next().unwrap_or("")
        );
    }
    for (f, text) in megatron::files(&p, &plan, &l, &x, layout) {
        if f.extension().is_some_and(|e| e == "json") {
            continue;
        }
        out += &format!("\n==> {} <==\n{text}", f.display());
    }
    out
}

#[test]
fn kimi_vl_full_scale_on_64_nodes() {
    // 512 GPUs: tensor parallel 2 (16 heads), expert parallel 8 (64 experts), data parallel
    // 256 x micro-batch 2 = the batch of 512 (27 layers allow no pipeline split but 3 or 9).
    let layout = Layout {
        nodes: 64,
        gpus_per_node: 8,
        tp: 2,
        pp: 1,
        ep: 8,
        micro_batch: 2,
    };
    insta::assert_snapshot!(
        "megatron_kimi_vl_full",
        golden("kimi_vl.pipe", None, &layout)
    );
}

#[test]
fn kimi_vl_smoke() {
    insta::assert_snapshot!(
        "megatron_kimi_vl_smoke",
        golden("kimi_vl.pipe", Some("smoke"), &Layout::default())
    );
}

#[test]
fn tiny_text() {
    insta::assert_snapshot!(
        "megatron_tiny_text",
        golden("tiny_text.pipe", None, &Layout::default())
    );
}

/// Grouped-query and multi-query attention, QK-norm, a tied head, a stated FFN width, a shared
/// expert and a dense first layer, in Megatron's flags.
#[test]
fn tiny_modern() {
    insta::assert_snapshot!(
        "megatron_tiny_modern",
        golden("tiny_modern.pipe", None, &Layout::default())
    );
}
