//! The layout every picture of a plan shares (`plan::picture`), on the recipes of `pipelines/`
//! and on small pipelines written here. Expected positions are the recipes' budgets added by hand.

use pipelang::check::check;
use pipelang::plan::Plan;
use pipelang::plan::picture::{Axis, Timeline};

fn recipe(name: &str) -> Plan {
    let path = format!("{}/../../pipelines/{name}.pipe", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap();
    check(&src).into_plan().expect("the recipe plans")
}

fn slot<'a>(p: &Plan, t: &'a Timeline, name: &str) -> &'a pipelang::plan::picture::Slot {
    &t.slots[p.stage_index(name).unwrap()]
}

#[test]
fn the_vit_branch_runs_beside_text_pretraining() {
    let p = recipe("kimi_vl");
    let t = Timeline::new(&p);
    assert_eq!(t.lanes, 2);
    let vit = slot(&p, &t, "vit_coca");
    let text = slot(&p, &t, "text_pretrain");
    // Both start at 0: neither runs after the other.
    assert_eq!((vit.start, vit.end, vit.lane), (0.0, 2.0e12, 1));
    assert_eq!((text.start, text.end, text.lane), (0.0, 5.2e12, 0));
    // vit_align waits for both (after vit_coca, text_pretrain): it starts at 5.2T.
    let align = slot(&p, &t, "vit_align");
    assert_eq!((align.start, align.lane), (5.2e12, 0));
    let joint = slot(&p, &t, "joint_pretrain");
    assert!((joint.start - 5.3e12).abs() < 1.0);
    // 5.2 + 0.1 + 1.4 + 0.6 + 0.3: the longest path, not the 9.6T of all stages.
    assert!((t.length - 7.6e12).abs() < 1.0, "{}", t.length);
    assert!((p.total_tokens - 9.6e12).abs() < 1.0);
}

#[test]
fn a_chain_is_one_lane_end_to_end() {
    let p = recipe("llama3_long_context");
    let t = Timeline::new(&p);
    assert_eq!(t.lanes, 1);
    let mut at = 0.0;
    for (s, st) in t.slots.iter().zip(&p.stages) {
        assert_eq!(s.start, at, "{}", st.name);
        at += st.tokens;
    }
    assert_eq!(t.length, at);
}

#[test]
fn three_branches_from_one_stage_take_three_lanes() {
    let src = r#"
pipeline soup {
  seed    = 1
  batch   = 8
  seq_len = 64
}
model llm = decoder {
  vocab   = 512
  d_model = 64
  layers  = 2
  heads   = 4
}
data web = text("corpus/text/*.jsonl")
stage base {
  train  = [llm]
  budget = 1M
  data   = web
  lr     = cosine(peak = 1e-3, warmup = 1%, min = 1e-5)
}
stage a after base {
  train  = [llm]
  budget = 100K
  data   = web
  lr     = cosine(peak = 1e-4, warmup = 1%, min = 1e-5)
}
stage b after base {
  train  = [llm]
  budget = 200K
  data   = web
  lr     = cosine(peak = 1e-4, warmup = 1%, min = 1e-5)
}
stage c after base {
  train  = [llm]
  budget = 100K
  data   = web
  lr     = cosine(peak = 1e-4, warmup = 1%, min = 1e-5)
}
"#;
    let checked = check(src);
    let p = checked
        .plan()
        .unwrap_or_else(|| panic!("{:?}", checked.diagnostics));
    let t = Timeline::new(&p);
    assert_eq!(t.lanes, 3);
    let lanes: Vec<usize> = ["base", "a", "b", "c"]
        .iter()
        .map(|n| slot(&p, &t, n).lane)
        .collect();
    // b is the longest, so it continues base's lane; a and c each get one of their own.
    assert_eq!(lanes, [0, 1, 0, 2]);
    for n in ["a", "b", "c"] {
        assert_eq!(slot(&p, &t, n).start, 1e6);
    }
    assert_eq!(t.length, 1.2e6);
}

#[test]
fn a_short_anneal_keeps_a_visible_width() {
    let p = recipe("llama3_long_context");
    let t = Timeline::new(&p);
    let axis = Axis::new(&t, 0.04);
    let anneal = slot(&p, &t, "anneal");
    // 41,943,040 tokens of 16.44T: 2.6e-6 of the width on a linear axis.
    let share = axis.at(anneal.end) - axis.at(anneal.start);
    assert!((share - 0.04).abs() < 1e-9, "{share}");
    assert!(axis.is_widened(anneal.start, anneal.end));
    let pretrain = slot(&p, &t, "pretrain");
    assert!(!axis.is_widened(pretrain.start, pretrain.end));
    // The other stretches keep their proportions between themselves.
    let lc = slot(&p, &t, "long_context");
    let (w_pre, w_lc) = (
        axis.at(pretrain.end) - axis.at(pretrain.start),
        axis.at(lc.end) - axis.at(lc.start),
    );
    assert!((w_pre / w_lc - 15.6 / 0.8).abs() < 1e-6, "{}", w_pre / w_lc);
    assert_eq!(axis.at(0.0), 0.0);
    assert!((axis.at(t.length) - 1.0).abs() < 1e-12);
    assert_eq!(axis.boundaries().len(), 4);
}
