//! The planner on whatever checks clean: every stage's steps are walked through the same
//! queries the training loop, `pipe plan --at` and the editor use, at a bounded number of
//! points (the ends, every phase and batch-run boundary, and evenly spaced steps between), so
//! a recipe of millions of steps costs the same as a small one. Each step's state must be
//! finite and in order, and the plan must survive its own JSON.

use pipelang::plan::{Plan, PointQuery};

/// Evenly spaced steps per stage, on top of the boundaries.
const SAMPLES: u64 = 32;
/// Batch runs (a ramp has one per batch size) looked at per phase, from each end.
const RUNS: usize = 8;

pub fn run(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let c = pipelang::check::check(src);
    let Some(plan) = c.plan() else {
        return;
    };
    let _ = pipelang::plan::table::render(plan);
    let json = serde_json::to_string(plan).expect("a plan serialises");
    let back = Plan::from_json(&json).expect("a plan reads back from its own JSON");
    assert_eq!(back.total_steps, plan.total_steps);
    let mut global = 0u64;
    for (si, st) in plan.stages.iter().enumerate() {
        if st.is_soup() {
            // An average of other stages: no steps, nothing to ask about, one state.
            assert!(
                st.steps == 0 && st.phases.is_empty(),
                "soup `{}` has steps",
                st.name
            );
            let q: PointQuery = format!("{}@0", st.name).parse().unwrap();
            assert!(plan.query(&q).is_err(), "a step of soup `{}`", st.name);
            let s = plan.step(si, 0);
            assert!(s.lr.is_finite() && s.lr >= 0.0);
            continue;
        }
        walk(plan, si, global);
        global += st.steps;
        for point in ["0", "end", "50%", "0%", "100%"] {
            let q: PointQuery = format!("{}@{point}", st.name).parse().unwrap();
            plan.query(&q)
                .unwrap_or_else(|e| panic!("{}@{point}: {e}", st.name));
        }
        for ph in &st.phases {
            if let Some(name) = &ph.name {
                for point in ["0", "end", "50%"] {
                    let q: PointQuery = format!("{}.{name}@{point}", st.name).parse().unwrap();
                    plan.query(&q)
                        .unwrap_or_else(|e| panic!("{}.{name}@{point}: {e}", st.name));
                }
            }
        }
    }
    assert_eq!(
        global, plan.total_steps,
        "stage steps do not add up to the total"
    );
}

fn walk(plan: &Plan, si: usize, global: u64) {
    let st = &plan.stages[si];
    assert!(st.steps > 0, "stage `{}` plans no steps", st.name);
    let last = st.steps - 1;
    let mut steps = vec![0, 1, last, last + 1, u64::MAX];
    for ph in &st.phases {
        steps.extend([ph.first_step, ph.first_step + ph.steps.saturating_sub(1)]);
        let n = ph.runs.len();
        for r in ph
            .runs
            .iter()
            .take(RUNS)
            .chain(ph.runs.iter().skip(n.saturating_sub(RUNS)))
        {
            let at = ph.first_step + r.first_step;
            steps.extend([at.saturating_sub(1), at]);
        }
    }
    steps.extend((0..SAMPLES).map(|k| last / SAMPLES * k));
    steps.sort_unstable();
    steps.dedup();
    let mut prev_tokens = f64::NEG_INFINITY;
    for step in steps {
        let s = plan.step(si, step);
        let at = step.min(last);
        assert_eq!(s.step, at, "{}: step {step}", st.name);
        assert_eq!(s.global_step, global + at, "{}: step {step}", st.name);
        assert!(s.lr.is_finite(), "{}: step {step}: LR {}", st.name, s.lr);
        assert!(
            s.tokens.is_finite(),
            "{}: step {step}: tokens {}",
            st.name,
            s.tokens
        );
        assert!(
            s.tokens >= prev_tokens,
            "{}: step {step} starts at {} tokens, before the step before it ({prev_tokens})",
            st.name,
            s.tokens
        );
        prev_tokens = s.tokens;
        assert!(
            s.batch > 0 && s.seq_len > 0,
            "{}: step {step}: {s:?}",
            st.name
        );
        for (name, share) in &s.mix {
            assert!(
                share.is_finite() && *share >= 0.0,
                "{}: step {step}: {name} = {share}",
                st.name
            );
        }
        let _ = pipelang::plan::table::render_point(&s);
    }
}
