//! One test per rule of `evaluate`, on a small three-stage pipeline: `one` and `two` share
//! the schedule `main` (`two` resumes it), `three` re-warms on its own schedule and hands
//! over a longer context and a larger RoPE base.

use super::*;
use crate::diag::Code;

const BASE: &str = r#"
pipeline t {
  seed    = 1
  batch   = 2
  seq_len = 16
}

model lm = decoder {
  vocab     = 512
  d_model   = 16
  layers    = 1
  heads     = 2
  rope_base = 10_000
}

data web = text("web/*.jsonl")
data hq  = text("hq/*.jsonl")

schedule main = wsd(peak = 1e-3, warmup = 10%, decay = 20%, min = 1e-4)

stage one {
  train  = [lm]
  budget = 3_200
  lr     = main
  data   = web
}

stage two after one {
  train  = [lm]
  budget = 1_600
  lr     = resume
  data   = hq
}

stage three after two {
  train     = [lm]
  budget    = 1_600
  lr        = cosine(peak = 5e-4, min = 1e-5)
  seq_len   = 16 -> 32
  rope_base = 10_000 -> 20_000
  mix {
    web = 50%
    hq  = 50%
  }
}
"#;

fn running(src: &str) -> (Plan, ir::Pipeline) {
    let checked = check::check_with(src, None);
    assert!(
        !checked.has_errors(),
        "test pipeline has errors: {:?}",
        checked.diagnostics
    );
    let plan = checked.plan().cloned().unwrap();
    (plan, checked.pipeline.unwrap())
}

fn progress(done: &[&str], running: Option<&str>) -> Progress {
    Progress {
        done: done.iter().map(|s| s.to_string()).collect(),
        running: running.map(str::to_string),
    }
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "`{from}` is not in the base pipeline");
    BASE.replacen(from, to, 1)
}

fn eval(new: &str, p: &Progress) -> Outcome {
    let (plan, pipeline) = running(BASE);
    evaluate(&plan, &pipeline, p, new, None)
}

fn accepted(new: &str, p: &Progress) -> Vec<String> {
    match eval(new, p) {
        Outcome::Accepted(a) => a.changes,
        Outcome::Rejected(d) => panic!("expected the edit to be accepted, got {d:#?}"),
    }
}

fn rejected(new: &str, p: &Progress) -> Vec<Diagnostic> {
    match eval(new, p) {
        Outcome::Rejected(d) => d,
        Outcome::Accepted(a) => panic!("expected a refusal, got {:?}", a.changes),
    }
}

/// The text under a diagnostic's primary label.
fn pointed<'a>(src: &'a str, d: &Diagnostic) -> &'a str {
    let s = d.primary_span();
    &src[s.start..s.end]
}

#[test]
fn an_unchanged_source_changes_nothing() {
    let changes = accepted(
        &format!("// a comment\n{BASE}"),
        &progress(&[], Some("one")),
    );
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn edit_to_a_pending_stage_is_accepted_and_described() {
    let new = edit("peak = 5e-4", "peak = 6e-4").replace("budget    = 1_600", "budget    = 3_200");
    let changes = accepted(&new, &progress(&["one"], Some("two")));
    assert_eq!(
        changes,
        [
            "three: lr start 5e-4 -> 6e-4, lr peak 5e-4 -> 6e-4, budget 1.6K -> 3.2K (steps 25 -> 50)"
        ]
    );
}

#[test]
fn new_stage_is_accepted() {
    let new = format!(
        "{BASE}\nstage four after three {{\n  train = [lm]\n  budget = 640\n  lr = cosine(peak = 1e-4, min = 1e-5)\n  data = web\n}}\n"
    );
    let changes = accepted(&new, &progress(&["one"], Some("two")));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].starts_with("four: new stage, budget 640 (10 steps), seq_len 32"),
        "{changes:?}"
    );
}

#[test]
fn removing_a_stage_that_has_not_started_is_accepted() {
    let start = BASE.find("stage three").unwrap();
    let new = &BASE[..start];
    let changes = accepted(new, &progress(&["one"], Some("two")));
    assert_eq!(changes, ["three: removed"]);
}

#[test]
fn edit_to_a_finished_stage_is_refused_at_the_edit() {
    let new = edit("budget = 3_200", "budget = 6_400");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert_eq!(pointed(&new, &d[0]), "6_400");
    assert!(
        d[0].message
            .contains("stage `one` has already run: its `budget` cannot change"),
        "{}",
        d[0].message
    );
    assert!(d[0].help.as_deref().unwrap().contains("undo this edit"));
}

#[test]
fn edit_to_the_running_stage_is_refused() {
    let new = edit("data   = hq", "data   = web");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert!(
        d[0].message.contains("stage `two` is running"),
        "{}",
        d[0].message
    );
    assert!(
        pointed(&new, &d[0]).contains("web"),
        "{}",
        pointed(&new, &d[0])
    );
}

#[test]
fn removing_a_started_stage_is_refused() {
    // `three` becomes a successor of `one`, so the file stays valid without `two`.
    let start = BASE.find("stage two").unwrap();
    let end = BASE.find("stage three").unwrap();
    let new = format!("{}{}", &BASE[..start], &BASE[end..])
        .replace("stage three after two", "stage three after one")
        .replace("lr        = cosine(peak = 5e-4, min = 1e-5)", "lr = resume");
    let d = rejected(&new, &progress(&["one", "two"], Some("three")));
    assert!(
        d.iter().any(|d| d
            .message
            .contains("stage `two` has already run and cannot be removed")),
        "{d:#?}"
    );
}

#[test]
fn budget_change_that_moves_a_resumed_schedule_is_refused() {
    // `two` resumes `main`: a longer `two` stretches `main`, whose warmup (10%) and decay
    // (20%) are shares of its span, so the LR `one` is running on would change.
    let new = edit(
        "budget = 1_600\n  lr     = resume",
        "budget = 3_200\n  lr     = resume",
    );
    let d = rejected(&new, &progress(&[], Some("one")));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert_eq!(pointed(&new, &d[0]), "3_200");
    assert!(
        d[0].message.contains("schedule `main`") && d[0].message.contains("stage `one` is running"),
        "{}",
        d[0].message
    );
    assert!(
        d[0].message.contains("its LR would change (step"),
        "{}",
        d[0].message
    );
    assert!(
        d[0].labels[1].message.contains("`one`"),
        "the stage that used the schedule is shown: {:?}",
        d[0].labels
    );
}

#[test]
fn budget_change_that_leaves_the_run_part_of_a_schedule_alone_is_accepted() {
    // With warmup and decay in tokens, a longer `two` moves only the decay, which starts
    // after `one` ends: `one` keeps its LR at every step.
    let base = BASE.replace("warmup = 10%, decay = 20%", "warmup = 320, decay = 800");
    let new = base.replace(
        "budget = 1_600\n  lr     = resume",
        "budget = 2_400\n  lr     = resume",
    );
    let (plan, pipeline) = running(&base);
    match evaluate(&plan, &pipeline, &progress(&[], Some("one")), &new, None) {
        Outcome::Accepted(a) => assert!(a.changes[0].starts_with("two: "), "{:?}", a.changes),
        Outcome::Rejected(d) => panic!("{d:#?}"),
    }
    // Once `two` runs, the same edit changes the running stage itself.
    let d = match evaluate(
        &plan,
        &pipeline,
        &progress(&["one"], Some("two")),
        &new,
        None,
    ) {
        Outcome::Rejected(d) => d,
        Outcome::Accepted(a) => panic!("{:?}", a.changes),
    };
    assert!(
        d[0].message.contains("stage `two` is running"),
        "{}",
        d[0].message
    );
}

#[test]
fn schedule_edit_that_bends_a_finished_stage_is_refused() {
    let new = edit("peak = 1e-3", "peak = 2e-3");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert!(d.iter().all(|d| d.code == Code::RELOAD_REFUSED));
    assert!(
        d.iter()
            .any(|x| x.message.contains("stage `one` has already run on")
                && pointed(&new, x).contains("2e-3")),
        "{d:#?}"
    );
}

#[test]
fn seq_len_hand_over_changed_under_a_finished_stage_is_refused() {
    // The default seq_len `one` ran with changes; `three`'s transition is kept consistent, so
    // the checker has nothing to say and only the comparison with what ran catches it.
    let new = edit("seq_len = 16\n", "seq_len = 32\n").replace("16 -> 32", "32 -> 64");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    let one = d
        .iter()
        .find(|d| d.message.contains("stage `one` has already run"))
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert_eq!(one.code, Code::RELOAD_REFUSED);
    assert!(
        one.message
            .contains("seq_len it ran with would change (16 -> 32)"),
        "{}",
        one.message
    );
    assert_eq!(pointed(&new, one), "32");
    assert_eq!(
        &new[one.primary_span().start - 10..one.primary_span().start],
        "seq_len = "
    );
}

#[test]
fn rope_base_hand_over_changed_under_a_finished_stage_is_refused() {
    let new = edit("rope_base = 10_000\n", "rope_base = 20_000\n")
        .replace("10_000 -> 20_000", "20_000 -> 40_000");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].message
            .contains("model `lm`: its `rope_base` cannot change")
            && d[0].message.contains("stage `one` has already run with it"),
        "{}",
        d[0].message
    );
    assert_eq!(pointed(&new, &d[0]), "20_000");
}

#[test]
fn transition_that_no_longer_matches_the_hand_over_is_a_check_error() {
    let new = edit("seq_len   = 16 -> 32", "seq_len   = 24 -> 32");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d[0].code, Code::TRANSITION, "{d:#?}");
}

#[test]
fn new_stage_that_would_run_before_a_started_one_is_refused() {
    let early = "stage zero {\n  train = [lm]\n  budget = 640\n  lr = cosine(peak = 1e-3, min = 1e-5)\n  data = web\n}\n";
    let at = BASE.find("stage one").unwrap();
    let new = format!("{}{early}\n{}", &BASE[..at], &BASE[at..]);
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert!(
        d.iter()
            .any(|x| x.message.contains("stage `zero` would run before")
                && pointed(&new, x) == "zero"),
        "{d:#?}"
    );
}

#[test]
fn syntax_error_is_rejected_with_the_check_code() {
    let new = edit("budget = 1_600", "budget = = 1_600");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d[0].code, Code::SYNTAX);
}

#[test]
fn at_a_boundary_the_next_stage_can_still_change() {
    // Refused while `two` runs; accepted once it has ended (the watcher re-evaluates there).
    let new = edit("data   = hq", "data   = web");
    rejected(&new, &progress(&["one"], Some("two")));
    // Here `two` is done, so only a stage after it could change; the edit touches `two`.
    rejected(&new, &progress(&["one", "two"], None));
    let new = edit("peak = 5e-4", "peak = 7e-4");
    let changes = accepted(&new, &progress(&["one", "two"], None));
    assert!(
        changes[0].starts_with("three: lr start 5e-4 -> 7e-4"),
        "{changes:?}"
    );
}

/// Every field the schema says reload compares is compared: a field added to the schema and
/// forgotten in `edits.rs` would let an edit to a started stage's model through.
#[test]
fn every_schema_field_is_compared() {
    use crate::schema::{self, Block, Reload};
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/kimi_vl.pipe"
    ))
    .unwrap();
    let p = crate::check::check(&src).pipeline.unwrap();
    let covered = |block: &Block, names: Vec<String>| {
        for f in block.fields {
            let name = match f.reload {
                Reload::Value => f.name,
                Reload::Within(other) => other,
                Reload::Applied => continue,
            };
            assert!(
                names.iter().any(|n| n == name),
                "reload does not compare `{}` of {}",
                f.name,
                block.what
            );
        }
    };
    let names =
        |fields: Vec<edits::Field>| -> Vec<String> { fields.into_iter().map(|f| f.name).collect() };
    covered(&schema::pipeline::BLOCK, names(edits::pipeline_fields(&p)));
    // Unset optional fields (a dense decoder's `experts`) are compared as `unset`.
    for block in schema::MODELS {
        let of_kind = p.models.iter().filter(|m| m.kind.name() == block.keyword);
        covered(
            block,
            of_kind
                .flat_map(|m| names(edits::model_fields(&p, m)))
                .collect(),
        );
    }
    for d in &p.data {
        covered(&schema::data::BLOCK, names(edits::data_fields(d)));
    }
    let kinds: std::collections::HashSet<&str> = p.models.iter().map(|m| m.kind.name()).collect();
    assert_eq!(
        kinds.len(),
        schema::MODELS.len(),
        "the reference has every model kind"
    );
    let st = p.stages.iter().find(|s| !s.phases.is_empty()).unwrap();
    covered(&schema::stage::BLOCK, names(edits::stage_fields(&p, st)));
    let phase = edits::phase_fields(&st.phases[0]);
    covered(
        &schema::phase::BLOCK,
        phase.iter().map(|(n, _)| n.to_string()).collect(),
    );
}

#[test]
fn optimizer_change_on_a_started_stage_is_refused() {
    let new = edit(
        "stage one {\n  train  = [lm]",
        "stage one {\n  train  = [lm]\n  optimizer = adamw(beta2 = 0.99)",
    );
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert!(
        d[0].message.contains("`optimizer` cannot change"),
        "{}",
        d[0].message
    );
    assert_eq!(pointed(&new, &d[0]), "adamw(beta2 = 0.99)");
}

#[test]
fn pipeline_optimizer_change_is_refused_once_a_stage_trained_with_it() {
    let new = edit(
        "  seq_len = 16\n}",
        "  seq_len = 16\n  optimizer = adamw(clip = 0.5)\n}",
    );
    let d = rejected(&new, &progress(&[], Some("one")));
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert!(d[0].message.contains("optimizer"), "{}", d[0].message);
    // Before any stage ran, the same edit is accepted.
    let changes = accepted(&new, &progress(&[], None));
    assert!(!changes.is_empty());
}

#[test]
fn optimizer_lr_scale_and_seed_of_a_stage_not_yet_run_are_accepted() {
    let new = edit(
        "stage one {\n  train  = [lm]",
        "stage one {\n  train  = [lm]\n  optimizer = adamw(weight_decay = 0)\n  seed = 7\n  lr_scale { lm = 0.5 }",
    );
    accepted(&new, &progress(&[], None));
}

/// Variants and soups follow the same rules: each variant is a stage of its own.
const VARIANTS: &str = r#"
pipeline t { seed = 1, batch = 2, seq_len = 16 }
model lm = decoder { vocab = 512, d_model = 16, layers = 1, heads = 2 }
data web = text("web/*.jsonl")
stage one { train = [lm], budget = 3_200, lr = constant(1e-3), data = web }
stage mid after one vary seed = [42, 43] { train = [lm], budget = 1_600, lr = constant(1e-4), data = web }
stage soup = average(mid)
"#;

fn eval_variants(new: &str, p: &Progress) -> Outcome {
    let (plan, pipeline) = running(VARIANTS);
    evaluate(&plan, &pipeline, p, new, None)
}

#[test]
fn a_started_variant_cannot_leave_the_list() {
    let new = VARIANTS.replace("[42, 43]", "[43, 44]");
    let Outcome::Rejected(d) = eval_variants(&new, &progress(&["one", "mid[42]"], Some("mid[43]")))
    else {
        panic!("dropping a finished variant was accepted");
    };
    assert!(
        d.iter().any(|d| d.code == Code::RELOAD_REFUSED
            && d.message
                .contains("stage `mid[42]` has already run and cannot be removed")),
        "{d:#?}"
    );
}

#[test]
fn a_variant_added_to_the_list_is_a_new_stage() {
    let new = VARIANTS.replace("[42, 43]", "[42, 43, 44]");
    match eval_variants(&new, &progress(&["one", "mid[42]"], Some("mid[43]"))) {
        Outcome::Accepted(a) => {
            assert!(
                a.changes
                    .iter()
                    .any(|c| c.starts_with("mid[44]: new stage")),
                "{:?}",
                a.changes
            );
            // The soup now averages three: it has not started, so that is accepted too.
            assert!(
                a.changes.iter().any(|c| c.starts_with("soup:")),
                "{:?}",
                a.changes
            );
        }
        Outcome::Rejected(d) => panic!("{d:#?}"),
    }
}

#[test]
fn the_group_edited_while_a_variant_runs_is_refused_for_that_variant() {
    let new = VARIANTS.replace("budget = 1_600", "budget = 3_200");
    let Outcome::Rejected(d) = eval_variants(&new, &progress(&["one"], Some("mid[42]"))) else {
        panic!("an edit to the running variant was accepted");
    };
    assert!(
        d.iter().any(|d| d
            .message
            .contains("stage `mid[42]` is running: its `budget` cannot change")),
        "{d:#?}"
    );
}

#[test]
fn the_inputs_of_a_finished_soup_cannot_change() {
    let new = VARIANTS.replace("average(mid)", "average(mid[42])");
    let done = ["one", "mid[42]", "mid[43]", "soup"];
    let Outcome::Rejected(d) = eval_variants(&new, &progress(&done, None)) else {
        panic!("an edit to a finished soup was accepted");
    };
    assert!(
        d.iter().any(|d| d
            .message
            .contains("stage `soup` has already run: its `average(...)` cannot change")),
        "{d:#?}"
    );
}

#[test]
fn rope_scaling_added_to_a_pending_stage_is_accepted_and_described() {
    let new = edit(
        "rope_base = 10_000 -> 20_000\n",
        "rope_base = 10_000 -> 20_000\n  rope_scaling = yarn(factor = 2, original = 16)\n",
    );
    let changes = accepted(&new, &progress(&["one"], Some("two")));
    assert_eq!(
        changes,
        ["three: rope_scaling none -> lm yarn(factor = 2, original = 16, alpha = 1, beta = 32)"]
    );
}

#[test]
fn rope_scaling_changed_under_a_finished_stage_is_refused() {
    let new = edit(
        "rope_base = 10_000\n",
        "rope_base = 10_000\n  rope_scaling = linear(factor = 2)\n",
    );
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert!(
        d.iter()
            .any(|d| d.message.contains("`rope_scaling` cannot change")),
        "{d:#?}"
    );
}

/// `three` branches from `two` at `at` tokens (32 a step: 800 is step 25 of 50).
fn with_branch(at: &str) -> String {
    edit(
        "stage three after two {",
        &format!("stage three after two @ {at} {{"),
    )
}

fn eval_from(base: &str, new: &str, p: &Progress) -> Outcome {
    let (plan, pipeline) = running(base);
    evaluate(&plan, &pipeline, p, new, None)
}

#[test]
fn a_branch_point_moved_inside_a_finished_parent_is_refused() {
    let base = with_branch("800");
    let new = base.replacen("after two @ 800", "after two @ 1_216", 1);
    let Outcome::Rejected(d) = eval_from(&base, &new, &progress(&["one", "two"], None)) else {
        panic!("moving the branch point of a finished parent must be refused");
    };
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].code, Code::RELOAD_REFUSED);
    assert_eq!(pointed(&new, &d[0]), "@ 1_216");
    assert!(
        d[0].message
            .contains("`three` would branch from `two` at step 38")
            && d[0]
                .message
                .contains("`two` has already run: only step 25 was kept"),
        "{}",
        d[0].message
    );
}

#[test]
fn a_branch_point_added_to_a_running_parent_is_refused() {
    let new = with_branch("800");
    let d = rejected(&new, &progress(&["one"], Some("two")));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(pointed(&new, &d[0]), "@ 800");
    assert!(
        d[0].message
            .contains("`two` is running: no step of it was kept for a branch"),
        "{}",
        d[0].message
    );
}

#[test]
fn a_branch_point_moved_before_its_parent_starts_is_accepted() {
    let base = with_branch("800");
    let new = base.replacen("after two @ 800", "after two @ 1_216", 1);
    let Outcome::Accepted(a) = eval_from(&base, &new, &progress(&["one"], None)) else {
        panic!("a branch point of a parent that has not started can move");
    };
    assert_eq!(
        a.changes,
        ["three: starts from `two` after step 25 -> `two` after step 38"]
    );
}

#[test]
fn an_unmoved_branch_point_of_a_finished_parent_is_accepted() {
    let base = with_branch("800");
    let new = base.replacen("peak = 5e-4", "peak = 6e-4", 1);
    let Outcome::Accepted(_) = eval_from(&base, &new, &progress(&["one", "two"], None)) else {
        panic!("an edit elsewhere in a branch whose point stays is accepted");
    };
}
