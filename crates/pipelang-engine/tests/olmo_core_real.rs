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

/// The pinned engines' Python; a test that needs it fails (never skips) without it.
fn python() -> PathBuf {
    let p = std::env::var_os("PIPE_ENGINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/engines/bin/python"));
    assert!(
        p.exists(),
        "{} not found: install the pinned engines with scripts/install-engines.sh \
         (or set PIPE_ENGINE_PYTHON)",
        p.display()
    );
    p
}

fn exported(file: &str, profile: Option<&str>, opts: &Options) -> (tempfile::TempDir, Vec<String>) {
    let src = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    let c = check_with(&src, profile);
    let (p, plan) = (c.pipeline.unwrap(), c.plan.unwrap());
    let l = pipelang_engine::lower(&p, &plan, opts);
    assert!(l.unmappable.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let files = olmo_core::files(&p, &plan, &l);
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
    let out = dir.path().join("check.jsonl");
    let run = Command::new(python())
        .current_dir(dir.path())
        .arg("driver.py")
        .arg("--check")
        .arg(&out)
        .args(&configs)
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
    for (line, cfg) in lines.iter().zip(&configs) {
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
    assert_eq!(steps as u64, plan.total_steps);
}
