//! Budgets in steps, phase shares as ratios and `rest`: every expected value is computed here
//! by hand from the recipe's numbers (a step is batch x seq_len tokens).

use pipelang::check::check;
use pipelang::plan::Plan;

const HEAD: &str = "pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text(\"corpus/*.jsonl\")
";

fn plan(stage: &str) -> Plan {
    let src = format!("{HEAD}{stage}");
    let c = check(&src);
    let errors: Vec<_> = c.diagnostics.iter().map(|d| &d.message).collect();
    assert!(errors.is_empty(), "{errors:?}");
    c.into_plan().expect("plans")
}

fn stage(body: &str) -> String {
    format!("stage pre {{\n  train = [lm]\n  data = web\n  lr = constant(1e-4)\n{body}\n}}\n")
}

#[test]
fn a_stage_budget_in_steps_trains_that_many_steps() {
    let p = plan(&stage("  budget = 1000 steps"));
    let s = &p.stages[0];
    assert_eq!(s.steps, 1000);
    // 1000 steps of 4 x 1,024 tokens.
    assert_eq!(s.tokens, 4_096_000.0);
    assert_eq!(s.trained_tokens, 4_096_000.0);
    assert_eq!(p.schedules[0].span, 4_096_000.0);
    assert_eq!(p.total_tokens, 4_096_000.0);
}

#[test]
fn six_phases_of_a_sixth_add_up_exactly() {
    // 6 x 100 steps of 4,096 tokens.
    let phases: String = (0..6)
        .map(|i| format!("  phase p{i} {{ budget = 1/6 }}\n"))
        .collect();
    let p = plan(&stage(&format!("  budget = 2_457_600\n{phases}")));
    let s = &p.stages[0];
    assert_eq!(s.phases.len(), 6);
    for (i, ph) in s.phases.iter().enumerate() {
        assert!((ph.tokens - 409_600.0).abs() < 1e-6, "{}", ph.tokens);
        assert_eq!(ph.steps, 100);
        assert_eq!(ph.first_step, 100 * i as u64);
    }
    assert_eq!(s.steps, 600);
}

#[test]
fn rest_takes_what_the_other_phases_leave_in_its_own_seq_len() {
    let p = plan(&stage(
        "  budget = 4_096_000
  phase a { budget = 30% }
  phase b { budget = 200 steps }
  phase c { budget = rest, seq_len = 1K -> 2K }",
    ));
    let s = &p.stages[0];
    // a: 30% of 4,096,000 = 1,228,800 tokens = 300 steps of 4,096.
    assert_eq!((s.phases[0].tokens, s.phases[0].steps), (1_228_800.0, 300));
    // b: 200 steps of 4,096 = 819,200 tokens.
    assert_eq!((s.phases[1].tokens, s.phases[1].steps), (819_200.0, 200));
    // c: 4,096,000 - 2,048,000 = 2,048,000 tokens in steps of 4 x 2,048 = 250 steps.
    assert_eq!(s.phases[2].tokens, 2_048_000.0);
    assert_eq!(s.phases[2].steps, 250);
    assert_eq!(s.phases[2].start_tokens, 2_048_000.0);
    assert_eq!(s.steps, 750);
    assert_eq!(s.tokens, 4_096_000.0);
    let at = p.step(0, 500);
    assert_eq!(
        (at.phase.as_deref(), at.seq_len, at.batch),
        (Some("c"), 2048, 4)
    );
    assert_eq!(at.tokens, 2_048_000.0);
}

#[test]
fn steps_under_a_batch_ramp_count_each_step_where_it_falls() {
    // batch(r) = floor(2 + 4 r / 40,960) = floor(2 + r / 10,240), steps of batch x 1,024:
    //   b = 2 at r = 0, 2048, 4096, 6144, 8192            (5 steps, to 10,240)
    //   b = 3 at r = 10240, 13312, 16384, 19456           (4 steps, to 22,528)
    //   b = 4 at r = 22528, 26624                          (2 steps, to 30,720)
    //   b = 5 at r = 30720, 35840                          (2 steps, to 40,960)
    //   b = 6 after the ramp: 7 more steps of 6,144 tokens (to 83,968)
    let p = plan(&stage(
        "  budget = 20 steps\n  batch = ramp(2 -> 6, over = 40_960)",
    ));
    let s = &p.stages[0];
    assert_eq!(s.steps, 20);
    assert_eq!(s.tokens, 83_968.0);
    let runs: Vec<(u64, f64, u64)> = s.phases[0]
        .runs
        .iter()
        .map(|r| (r.first_step, r.start, r.batch))
        .collect();
    assert_eq!(
        runs,
        [
            (0, 0.0, 2),
            (5, 10_240.0, 3),
            (9, 22_528.0, 4),
            (11, 30_720.0, 5),
            (13, 40_960.0, 6)
        ]
    );
    let at = p.step(0, 10);
    assert_eq!((at.batch, at.tokens), (4, 26_624.0));
    assert_eq!(p.schedules[0].span, 83_968.0);
}

#[test]
fn phases_in_steps_with_batch_tokens_follow_each_phase_seq_len() {
    // batch_tokens = 8,192: 8 sequences of 1K, then 4 of 2K.
    let p = plan(&stage(
        "  budget = 150 steps
  batch_tokens = 8192
  phase a { budget = 100 steps }
  phase b { budget = rest, seq_len = 1K -> 2K }",
    ));
    let s = &p.stages[0];
    assert_eq!((s.phases[0].batch, s.phases[0].steps), (8, 100));
    assert_eq!(s.phases[0].tokens, 819_200.0);
    // rest: 150 - 100 = 50 steps of 4 x 2,048.
    assert_eq!((s.phases[1].batch, s.phases[1].steps), (4, 50));
    assert_eq!(s.phases[1].tokens, 409_600.0);
    assert_eq!(s.tokens, 1_228_800.0);
    assert_eq!(s.steps, 150);
}

#[test]
fn shares_of_a_budget_in_steps_are_shares_of_its_steps() {
    let p = plan(&stage(
        "  budget = 600 steps
  phase a { budget = 1/6 }
  phase b { budget = 50%, seq_len = 1K -> 2K }
  phase c { budget = rest }",
    ));
    let s = &p.stages[0];
    let steps: Vec<u64> = s.phases.iter().map(|ph| ph.steps).collect();
    // 600 / 6 = 100, 50% of 600 = 300, rest = 200.
    assert_eq!(steps, [100, 300, 200]);
    // 100 x 4,096 + 300 x 8,192 + 200 x 8,192 tokens.
    assert_eq!(s.tokens, 409_600.0 + 2_457_600.0 + 1_638_400.0);
}

#[test]
fn a_later_stage_starts_where_a_budget_in_steps_ends() {
    let p = plan(&format!(
        "{}stage two after pre {{\n  train = [lm]\n  data = web\n  budget = 40_960\n  lr = resume\n}}\n",
        stage("  budget = 10 steps")
    ));
    // pre: 10 x 4,096 = 40,960 tokens; the resumed schedule spans both stages.
    assert_eq!(p.stages[1].schedule.offset, 40_960.0);
    assert_eq!(p.schedules[0].span, 81_920.0);
    assert_eq!(p.stages[1].global_start, 40_960.0);
}
