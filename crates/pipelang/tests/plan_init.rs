//! `init = "PATH"` in the plan, as Qwen2.5-VL starts (Bai et al. 2025, section 2.2.1: the
//! first stage trains only the ViT, the language model a pretrained Qwen2.5 LLM): a frozen
//! model with `init` needs no earlier stage, and the plan says where each model starts.

use pipelang::check::check;

const QWEN_VL: &str = r#"
pipeline qwen_vl { seed = 1, batch = 4, seq_len = 8K }
model vit  = vit { patch = 14, d_model = 1280, layers = 32, heads = 16 }
model llm  = decoder { vocab = 151_936, d_model = 3584, layers = 28, heads = 28, kv_heads = 4, ffn = 18_944, init = "qwen2.5-7b/" }
model proj = projector(vit -> llm) { pixel_shuffle = 2 }
data caps = image_text("caps/*.jsonl")
data web  = text("web/*.jsonl")
stage vit_align {
  train  = [vit, proj]
  freeze = [llm]
  budget = 1.5T
  data   = caps
  lr     = constant(2e-4)
}
stage joint after vit_align {
  train  = [vit, proj, llm]
  budget = 2T
  mix { caps = 50%, web = 50% }
  lr     = constant(1e-5)
}
"#;

#[test]
fn a_frozen_llm_with_init_needs_no_earlier_stage() {
    let c = check(QWEN_VL);
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert!(codes.is_empty(), "{codes:?}");
    let p = c.into_plan().unwrap();
    let from = |stage: &str, model: &str| {
        let w = p
            .stage(stage)
            .unwrap()
            .weights_from
            .iter()
            .find(|w| w.model == model)
            .unwrap()
            .clone();
        (w.from, w.init)
    };
    // vit_align: the ViT and projector fresh, the LLM from its file.
    assert_eq!(from("vit_align", "vit"), (None, None));
    assert_eq!(from("vit_align", "llm"), (None, Some("qwen2.5-7b/".into())));
    // joint: the ViT from vit_align; the LLM, frozen there, was trained by no stage, so it
    // still starts from its file (a frozen stage passes on what it received).
    assert_eq!(from("joint", "llm"), (None, Some("qwen2.5-7b/".into())));
    assert_eq!(from("joint", "vit"), (Some("vit_align".into()), None));
}

#[test]
fn without_init_the_frozen_llm_is_untrained() {
    let c = check(&QWEN_VL.replace(", init = \"qwen2.5-7b/\"", ""));
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["P0305"]);
}

#[test]
fn init_is_a_string() {
    let c = check(&QWEN_VL.replace("init = \"qwen2.5-7b/\"", "init = qwen"));
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert!(codes.contains(&"P0201"), "{codes:?}");
}
