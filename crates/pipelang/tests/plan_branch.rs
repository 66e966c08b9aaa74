//! Branch points (`after STAGE @ POSITION`) planned as SmolLM2 runs them (Allal et al. 2025,
//! section 4.5: the long-context stage starts from a checkpoint taken before the end of stage
//! 4). Every expected value is computed here by hand from the recipe's numbers.

use pipelang::check::check;
use pipelang::plan::Plan;
use pipelang::plan::picture::Timeline;

/// 1,024 sequences of 2K tokens: 2,097,152 tokens per step.
const STEP: f64 = 1024.0 * 2048.0;

fn smollm2(branch: &str, long_seq: &str) -> String {
    format!(
        r#"
pipeline smol {{ seed = 1, batch = 1024, seq_len = 2K }}
model lm = decoder {{ vocab = 49_152, d_model = 2048, layers = 24, heads = 32, rope_base = 10_000 }}
data web = text("web/*.jsonl")
data long = text("long/*.jsonl")
stage stage4 {{
  train  = [lm]
  budget = 1T
  data   = web
  lr     = wsd(peak = 5e-4, warmup = 2_000 steps, decay = 10%)
  phase main {{ budget = 95% }}
  phase tail {{ budget = rest, seq_len = 2K -> 4K }}
}}
stage long_context after stage4 @ {branch} {{
  train     = [lm]
  budget    = 100B
  data      = long
  seq_len   = {long_seq}
  rope_base = 10_000 -> 130_000
  lr        = linear(to = 0)
}}
"#
    )
}

fn plan(src: &str) -> Plan {
    let c = check(src);
    assert!(
        c.diagnostics.is_empty(),
        "{:#?}",
        c.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>()
    );
    c.into_plan().expect("plans")
}

#[test]
fn a_branch_at_925b_of_1t_starts_at_the_nearest_step() {
    let p = plan(&smollm2("925B", "2K -> 8K"));
    let b = p.stage("long_context").unwrap().branch.clone().unwrap();
    // 925e9 / 2,097,152 = 441,074.37 steps: the nearest boundary is after 441,074 steps.
    assert_eq!(b.parent, "stage4");
    assert_eq!(b.step, 441_074);
    assert_eq!(b.tokens, 441_074.0 * STEP);
    // Written from the end, the same point: 1T - 75B.
    let q = plan(&smollm2("end - 75B", "2K -> 8K"));
    assert_eq!(q.stage("long_context").unwrap().branch, Some(b.clone()));
    // And in steps.
    let r = plan(&smollm2("441_074 steps", "2K -> 8K"));
    assert_eq!(r.stage("long_context").unwrap().branch, Some(b));
}

#[test]
fn the_branch_inherits_the_seq_len_at_the_branch_point_not_at_the_parent_end() {
    // At 925B stage4 is in `main` (2K); its end is at 4K. `2K -> 8K` is right; `4K -> 8K`
    // would state the end's value.
    let c = check(&smollm2("925B", "4K -> 8K"));
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["P0504"], "{:#?}", c.diagnostics);
    assert!(
        c.diagnostics[0].message.contains("inherits 2K"),
        "{}",
        c.diagnostics[0].message
    );
    // A branch in the tail inherits 4K.
    let p = plan(&smollm2("end - 10B", "4K -> 8K"));
    assert_eq!(p.stage("long_context").unwrap().seq_len, 8192);
}

#[test]
fn the_branch_decays_from_the_lr_at_the_branch_point() {
    let p = plan(&smollm2("925B", "2K -> 8K"));
    let at = 441_074.0 * STEP;
    // wsd over 1T: the decay is the last 10%, from 900B, linear from 5e-4 to 0 (min defaults
    // to 0) over 100B; the stage's steps fall at 2,097,152-token strides.
    let steps4 = p.stage("stage4").unwrap().steps;
    let span = p.schedules[p.stage("stage4").unwrap().run].span;
    assert_eq!(span, 1e12);
    let decay_start = 0.9 * span;
    let expected = 5e-4 * (1.0 - (at - decay_start) / (span - decay_start));
    let li = p.stage_index("long_context").unwrap();
    let got = p.lr_at(li, 0);
    assert!(
        (got - expected).abs() <= 1e-12,
        "{got} != {expected} ({steps4} steps)"
    );
    // The parent goes on past the branch point with its own LR: at its last step it is near 0.
    let si = p.stage_index("stage4").unwrap();
    assert!(p.lr_at(si, steps4 - 1) < 1e-6);
}

#[test]
fn the_picture_starts_the_branch_at_its_point_in_a_lane_of_its_own() {
    let p = plan(&smollm2("925B", "2K -> 8K"));
    let t = Timeline::new(&p);
    let parent = t.slots[p.stage_index("stage4").unwrap()];
    let branch = t.slots[p.stage_index("long_context").unwrap()];
    assert_eq!(parent.start, 0.0);
    assert_eq!(branch.start, 441_074.0 * STEP);
    assert_eq!(branch.end, 441_074.0 * STEP + 100e9);
    // Overlapping the rest of stage4, in another lane; stage4 stays on the trunk.
    assert_eq!(parent.lane, 0);
    assert_eq!(branch.lane, 1);
    assert_eq!(t.lanes, 2);
}

#[test]
fn the_plan_table_says_where_the_branch_starts() {
    let p = plan(&smollm2("925B", "2K -> 8K"));
    let text = pipelang::plan::table::render(&p);
    assert!(
        text.contains("branch long_context: from stage4 after step 441,074 (token 925B), beside the rest of stage4"),
        "{text}"
    );
}

#[test]
fn a_branch_point_is_in_the_plan_json() {
    let p = plan(&smollm2("925B", "2K -> 8K"));
    let json = serde_json::to_value(&p).unwrap();
    let b = &json["stages"][1]["branch"];
    assert_eq!(b["parent"], "stage4");
    assert_eq!(b["step"], 441_074);
    // A stage without a branch has no `branch` key (older plans read back unchanged).
    assert!(json["stages"][0].get("branch").is_none());
}
