//! The Megatron export against megatron-core itself: `megatron_lr.py` drives megatron-core's
//! `OptimizerParamScheduler` through every iteration of every exported run, with each run's
//! own flags (read from its train.sh) and each hand-over done as Megatron-LM core_v0.16.1 does
//! it (checkpoint saved and loaded, parameter groups with their stored bounds, override
//! flags). Every iteration's LR must be the plan's within 1e-6 relative, or within the bound
//! the export reported for that run (positions rounded to whole samples), and every run must
//! take exactly its planned iterations.

use std::path::PathBuf;
use std::process::Command;

use pipelang::check::check_with;
use pipelang_engine::megatron;
use pipelang_engine::parallel::Layout;
use pipelang_engine::runs::{Options, Target};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The pinned engines' Python; missing is a failure, never a skip.
fn python() -> PathBuf {
    pipelang_engine::python::for_tests(&root())
}

/// Writes the Megatron export of `file` and runs the harness on it with `extra` arguments.
fn harness(file: &str, extra: &[&str]) -> std::process::Output {
    let src = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    let c = check_with(&src, None);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Megatron,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let x = megatron::export(&p, &plan, &l);
    let dir = tempfile::tempdir().unwrap();
    let files = megatron::files(&p, &plan, &l, &x, &Layout::default());
    pipelang_engine::olmo_core::write(dir.path(), &files).unwrap();
    Command::new(python())
        .arg(root().join("crates/pipelang-engine/tests/megatron_lr.py"))
        .arg(dir.path())
        .arg(dir.path().join("lrs.jsonl"))
        .args(extra)
        .output()
        .unwrap()
}

/// Megatron-LM #118 in megatron-core's own code: without `--override-opt-param-scheduler` the
/// first resumed run fails `load_state_dict`'s assertion (its cumulative `--train-samples`, the
/// weight-decay horizon, differs from the checkpoint's), so the flag the export writes is needed.
#[test]
fn without_the_override_flag_megatron_core_refuses_the_resume() {
    let out = harness(
        "tiny_text.pipe",
        &["--drop", "--override-opt-param-scheduler"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("do not match"), "{err}");
}

struct Checked {
    runs: usize,
    iterations: u64,
    exact: usize,
    worst: f64,
}

fn check(file: &str, profile: Option<&str>, language_only: bool) -> Checked {
    let src = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    check_source(file, &src, profile, language_only)
}

fn check_source(file: &str, src: &str, profile: Option<&str>, language_only: bool) -> Checked {
    let c = check_with(src, profile);
    assert!(!c.has_errors(), "{file}: {:#?}", c.diagnostics);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Megatron,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let x = megatron::export(&p, &plan, &l);
    assert!(!x.refused(), "{file}: {:#?}", x.diagnostics);
    let dir = tempfile::tempdir().unwrap();
    let files = megatron::files(&p, &plan, &l, &x, &Layout::default());
    pipelang_engine::olmo_core::write(dir.path(), &files).unwrap();
    let out = dir.path().join("lrs.jsonl");
    let harness = root().join("crates/pipelang-engine/tests/megatron_lr.py");
    let res = Command::new(python())
        .arg(&harness)
        .arg(dir.path())
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "megatron_lr.py failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), l.runs.len());
    let mut done = Checked {
        runs: 0,
        iterations: 0,
        exact: 0,
        worst: 0.0,
    };
    for ((line, run), m) in lines.iter().zip(&l.runs).zip(&x.runs) {
        assert_eq!(line["run"], run.name.as_str());
        assert_eq!(
            line["start_iteration"], m.i0,
            "{}: iteration loaded",
            run.name
        );
        assert_eq!(line["start_samples"], m.n0, "{}: samples loaded", run.name);
        // megatron-core's rotary frequencies (float32) against pipelang's, at the integer
        // `--rotary-base` the export writes (its rounding is reported separately).
        let mut rope = plan
            .step(run.stage_index, run.first_step)
            .rope(&run.model.name)
            .unwrap();
        rope.base = m.rotary_base as f64;
        let want = rope.inv_freqs((run.model.d_model / run.model.heads) as usize);
        let got = line["rope_freqs"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{}: RoPE pairs", run.name);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let g = g.as_f64().unwrap();
            assert!(
                (g - w).abs() <= 1e-6 * w.abs() + 1e-12,
                "{}: pair {i}: megatron-core {g}, pipelang {w} ({:?})",
                run.name,
                run.rope_scaling
            );
        }
        let lrs = line["lrs"].as_array().unwrap();
        assert_eq!(lrs.len() as u64, run.steps, "{}: iterations", run.name);
        let vision = matches!(m.entry, megatron::Entry::Multimodal { .. });
        if language_only
            && vision
            && plan.stages[run.stage_index]
                .freeze
                .contains(&run.model.name)
        {
            continue;
        }
        let bound = m.lr.max_rel_error.max(1e-6) * (1.0 + 1e-9);
        let mut worst: f64 = 0.0;
        for (k, lr) in lrs.iter().enumerate() {
            let got = lr.as_f64().unwrap();
            let want = plan.lr_at(run.stage_index, run.first_step + k as u64);
            let err = if got == want {
                0.0
            } else {
                (got - want).abs() / want.abs()
            };
            assert!(
                err <= bound,
                "{} iteration {k}: megatron-core sets {got}, the plan says {want} ({err:e} > {bound:e})",
                run.name
            );
            worst = worst.max(err);
        }
        done.runs += 1;
        done.iterations += run.steps;
        if m.lr.max_rel_error <= 1e-6 {
            done.exact += 1;
        }
        done.worst = done.worst.max(worst);
    }
    done
}

#[test]
fn megatron_core_steps_every_run_of_tiny_text_at_the_plans_lr() {
    let c = check("tiny_text.pipe", None, false);
    // tiny_text's positions are whole samples: every run is exact.
    assert_eq!(c.exact, c.runs);
    assert!(c.worst <= 1e-6, "{}", c.worst);
    assert_eq!(c.iterations, 296, "every planned step, once");
}

#[test]
fn megatron_core_steps_kimi_vl_language_stages_within_the_reported_bound() {
    let c = check("kimi_vl.pipe", Some("smoke"), true);
    eprintln!(
        "kimi_vl smoke: {} runs, {} iterations, {} exact, worst {:e}",
        c.runs, c.iterations, c.exact, c.worst
    );
    assert!(c.runs > 0);
}

/// RoPE scalings megatron-core takes, switched on in a later stage at 8K: Llama 3.1's (the released
/// bands, which megatron-core fixes) through `--use-rope-scaling --rope-scaling-factor`, and
/// position interpolation by a whole factor through `--rotary-seq-len-interpolation-factor`;
/// megatron-core's own `RotaryEmbedding`, built from each run's flags, rotates with pipelang's
/// frequencies in every pair.
#[test]
fn megatron_core_scales_rope_as_the_plan_says() {
    for scaling in [
        "llama3(factor = 8, low_freq = 1, high_freq = 4, original = 8K)",
        "linear(factor = 2)",
    ] {
        let src = format!(
            "pipeline t {{ seed = 1, batch = 4, seq_len = 64 }}\n\
             model lm = decoder {{ vocab = 512, d_model = 64, layers = 2, heads = 2, rope_base = 500_000 }}\n\
             data web = text(\"corpus/*.jsonl\")\n\
             stage pre {{ train = [lm], budget = 2_560, data = web, lr = cosine(peak = 1e-3, warmup = 10%, min = 1e-4) }}\n\
             stage long after pre {{\n  train = [lm]\n  budget = 65_536\n  seq_len = 64 -> 8K\n  data = web\n  \
             lr = rewarmup(to = 1e-3, over = 1 steps) then cosine(min = 1e-4)\n  \
             rope_scaling = none -> {scaling}\n}}\n"
        );
        let done = check_source(scaling, &src, None, false);
        assert_eq!(done.runs, 2, "{scaling}");
    }
}
