//! The LR OLMo-core sets, by a port of its formulas (ComposableScheduler, and the driver's
//! pipelang_curve), equals the plan's at every step of every run.

use pipelang::check::check_with;
use pipelang_engine::olmo_core::lr::Scheduler;
use pipelang_engine::runs::Options;

fn check_all(file: &str, profile: Option<&str>, opts: Options) -> (usize, usize) {
    let path = format!("{}/../../pipelines/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).unwrap();
    let c = check_with(&src, profile);
    let plan = c.plan().cloned().unwrap();
    let l = pipelang_engine::lower(c.pipeline.as_ref().unwrap(), &plan, &opts);
    let mut kinds = (0, 0);
    for r in &l.runs {
        let s = Scheduler::of(r);
        match s {
            Scheduler::Composable { .. } => kinds.0 += 1,
            Scheduler::Curve { .. } => kinds.1 += 1,
        }
        let stride = (r.steps / 5000).max(1);
        let mut k = 0;
        while k < r.steps {
            let want = plan.lr_at(r.stage_index, r.first_step + k);
            let got = s.at_step(r, k);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-30),
                "{} step {k}: engine {got} plan {want}",
                r.name
            );
            k += stride;
        }
    }
    kinds
}

#[test]
fn tiny_text_every_step() {
    let (composable, curve) = check_all("tiny_text.pipe", None, Options::default());
    // pretrain's pieces and the cooldown fit ComposableScheduler; long_context enters the
    // cooldown's cosine part-way, so its runs use the driver's curve scheduler.
    assert_eq!((composable, curve), (11, 2));
}

#[test]
fn kimi_vl_text_pretrain() {
    check_all("kimi_vl.pipe", None, Options::default());
    check_all("kimi_vl.pipe", Some("smoke"), Options::default());
}

#[test]
fn other_recipes() {
    for f in ["deepseek_v3.pipe", "llama3_long_context.pipe"] {
        check_all(f, None, Options::default());
        check_all(
            f,
            None,
            Options {
                ramp_pieces: Some(3),
                ..Options::default()
            },
        );
    }
}
