//! The export against OLMo-core itself: the driver builds each run's model with OLMo-core's
//! own config classes on CPU and steps OLMo-core's scheduler through every step of the run as
//! its trainer does. The parameter count must be pipelang's, the RoPE theta the plan's, and
//! every step's LR the plan's within 1e-6 relative.

use std::path::PathBuf;
use std::process::Command;

use pipelang::check::check_with;
use pipelang_engine::olmo_core;
use pipelang_engine::runs::Options;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The pinned engines' Python; missing is a failure, never a skip.
fn python() -> PathBuf {
    pipelang_engine::python::for_tests(&root())
}

fn exported(file: &str, profile: Option<&str>, opts: &Options) -> (tempfile::TempDir, Vec<String>) {
    let src = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    exported_src(&src, file, profile, opts)
}

fn exported_src(
    src: &str,
    file: &str,
    profile: Option<&str>,
    opts: &Options,
) -> (tempfile::TempDir, Vec<String>) {
    let c = check_with(src, profile);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let l = pipelang_engine::lower(&p, &plan, opts);
    assert!(
        l.unmappable.is_empty(),
        "OLMo-core takes every stage of {file}"
    );
    let dir = tempfile::tempdir().unwrap();
    let files = olmo_core::files(&p, &plan, &l, &Default::default());
    olmo_core::write(dir.path(), &files).unwrap();
    let configs = files
        .iter()
        .filter(|(f, _)| f.ends_with("config.json"))
        .map(|(f, _)| f.display().to_string())
        .collect();
    (dir, configs)
}

#[test]
fn olmo_core_builds_every_run_and_steps_the_plans_lr() {
    let (dir, configs) = exported("tiny_text.pipe", None, &Options::default());
    check_runs(&dir, &configs);
}

/// Grouped-query and multi-query attention, QK-norm, a tied head, a stated FFN width, and a
/// mixture of experts with a shared expert and a dense first layer, built by OLMo-core with
/// pipelang's parameter count. (OLMo-core's MoE layers run on CUDA only; building them and
/// stepping the LR does not need it.)
#[test]
fn olmo_core_builds_the_modern_decoders_with_pipelangs_parameter_count() {
    let (dir, configs) = exported("tiny_modern.pipe", None, &Options::default());
    assert!(!configs.is_empty());
    check_runs(&dir, &configs);
}

/// Every run's model built by OLMo-core with pipelang's parameter count and RoPE base, and its
/// scheduler stepped through every step at the plan's LR.
fn check_runs(dir: &tempfile::TempDir, configs: &[String]) {
    let out = dir.path().join("check.jsonl");
    let run = Command::new(python())
        .current_dir(dir.path())
        .arg("driver.py")
        .arg("--check")
        .arg(&out)
        .args(configs)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "driver --check failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plan: pipelang::plan::Plan = pipelang::plan::Plan::from_json(
        &std::fs::read_to_string(dir.path().join("plan.json")).unwrap(),
    )
    .unwrap();
    let lines = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), configs.len());
    let mut steps = 0;
    for (line, cfg) in lines.iter().zip(configs) {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(cfg)).unwrap()).unwrap();
        let name = cfg["run"].as_str().unwrap();
        assert_eq!(line["run"], cfg["run"]);
        assert_eq!(
            line["params"], cfg["model"]["params"],
            "{name}: parameter count"
        );
        assert_eq!(
            line["rope_theta"].as_f64().unwrap(),
            cfg["rope_base"].as_f64().unwrap(),
            "{name}: RoPE base"
        );
        let stage = plan.stage_index(cfg["stage"].as_str().unwrap()).unwrap();
        let first = cfg["first_step"].as_u64().unwrap();
        // The cosines OLMo-core's attention rotates with (its frequencies and YaRN's factor)
        // against pipelang's, at positions 1 and 7.
        let model = cfg["model"]["name"].as_str().unwrap();
        let rope = plan.step(stage, first).rope(model).unwrap();
        let head = (cfg["model"]["d_model"].as_u64().unwrap()
            / cfg["model"]["heads"].as_u64().unwrap()) as usize;
        let (freqs, m) = (rope.inv_freqs(head), rope.attention_factor());
        for (row, pos) in line["rope_cos"].as_array().unwrap().iter().zip([1.0, 7.0]) {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), freqs.len(), "{name}");
            for (i, (got, f)) in row.iter().zip(&freqs).enumerate() {
                let want = (pos * f).cos() * m;
                let got = got.as_f64().unwrap();
                assert!(
                    (got - want).abs() < 2e-5,
                    "{name}: pair {i} at {pos}: OLMo-core {got}, pipelang {want} ({})",
                    line["rope_scaling"]
                );
            }
        }
        let lrs = line["lrs"].as_array().unwrap();
        assert_eq!(lrs.len() as u64, cfg["steps"].as_u64().unwrap());
        for (k, lr) in lrs.iter().enumerate() {
            let got = lr.as_f64().unwrap();
            let want = plan.lr_at(stage, first + k as u64);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{name} step {k}: OLMo-core sets {got}, the plan says {want}"
            );
        }
        steps += lrs.len();
    }
    // Every step of every stage exported, once.
    let mut stages: Vec<usize> = configs
        .iter()
        .map(|c| {
            let cfg: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.path().join(c)).unwrap())
                    .unwrap();
            plan.stage_index(cfg["stage"].as_str().unwrap()).unwrap()
        })
        .collect();
    stages.dedup();
    let planned: u64 = stages.iter().map(|&i| plan.stages[i].steps).sum();
    assert_eq!(steps as u64, planned);
}

/// Every RoPE scaling mapped onto OLMo-core's own classes (YaRN, Llama 3's stepwise, position
/// interpolation): the model OLMo-core builds rotates with pipelang's frequencies.
#[test]
fn olmo_core_rotates_with_pipelangs_scaled_frequencies() {
    let src = std::fs::read_to_string(root().join("pipelines/tiny_yarn.pipe")).unwrap();
    for scaling in [
        "yarn(factor = 4, original = 32)",
        "llama3(factor = 4, low_freq = 1, high_freq = 4, original = 32)",
        "linear(factor = 4)",
    ] {
        let s = src.replace("yarn(factor = 4, original = 32)", scaling);
        let (dir, configs) = exported_src(&s, "tiny_yarn.pipe", None, &Options::default());
        let scaled = configs
            .iter()
            .filter(|c| {
                std::fs::read_to_string(dir.path().join(c))
                    .unwrap()
                    .contains("RoPEScalingConfig")
            })
            .count();
        assert_eq!(scaled, 2, "{scaling}: both phases of `extend` scaled");
        check_runs(&dir, &configs);
    }
}
