//! The torchtitan export against torchtitan 0.3.0 itself: `pipelang_titan.py --check` loads
//! every exported run module through torchtitan's own ConfigManager, builds the model on the
//! meta device, and steps the LR container built by torchtitan's build path (our LR class in
//! `lr_scheduler`) as `Trainer.train_step` steps it. The decoder's parameter count must be
//! pipelang's, the RoPE theta, seq_len and batch the plan's, frozen models without trainable
//! parameters, every hand-over's checkpoint options as docs/engines.md says, and every step's
//! LR the plan's within 1e-6 relative.

use std::path::PathBuf;
use std::process::Command;

use pipelang::check::check_with;
use pipelang_engine::parallel::Layout;
use pipelang_engine::runs::{Init, Options, Skip, Target};
use pipelang_engine::torchtitan;

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

fn check(file: &str, profile: Option<&str>, skip: Vec<Skip>) {
    let src = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    let c = check_with(&src, profile);
    let (p, plan) = (c.pipeline.unwrap(), c.plan.unwrap());
    let opts = Options {
        target: Target::Torchtitan,
        skip,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    assert!(l.unmappable.is_empty(), "{:?}", l.unmappable);
    assert!(torchtitan::refusals(&p, &plan, &l).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = torchtitan::files(&p, &plan, &l, &Layout::default());
    pipelang_engine::olmo_core::write(dir.path(), &files).unwrap();
    let modules: Vec<String> = (0..l.runs.len())
        .map(|i| torchtitan::module(i, &l.runs[i]))
        .collect();
    let out = dir.path().join("check.jsonl");
    let run = Command::new(python())
        .current_dir(dir.path())
        .env("PYTHONPATH", dir.path())
        .arg("pipelang_titan.py")
        .arg("--check")
        .arg(&out)
        .args(&modules)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "pipelang_titan.py --check failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), l.runs.len());
    let mut steps = 0;
    for (i, (line, r)) in lines.iter().zip(&l.runs).enumerate() {
        let name = &r.name;
        assert_eq!(
            line["decoder_params"], r.model.params,
            "{name}: decoder parameters"
        );
        assert_eq!(
            line["rope_theta"].as_f64().unwrap(),
            r.rope_base,
            "{name}: RoPE"
        );
        assert_eq!(line["seq_len"], r.seq_len, "{name}: seq_len");
        assert_eq!(line["global_batch"], r.batch, "{name}: batch");
        let st = &plan.stages[r.stage_index];
        let frozen = |m: &str| st.freeze.iter().any(|f| f == m);
        let trainable = |g: &str| line["trainable"][g].as_u64().unwrap();
        let total = |g: &str| line["groups"][g].as_u64().unwrap();
        assert_eq!(
            trainable("decoder"),
            if frozen(&r.model.name) {
                0
            } else {
                r.model.params
            },
            "{name}: trainable decoder"
        );
        if line["vision_params"].as_u64().unwrap() > 0 {
            for (g, kind) in [("vit", "vit"), ("projector", "projector")] {
                let m = st.train.iter().chain(&st.freeze).find(|n| {
                    p.model_id(n)
                        .is_some_and(|id| p.models[id].kind.name() == kind)
                });
                let want = match m {
                    Some(m) if !frozen(m) => total(g),
                    _ => 0,
                };
                assert!(total(g) > 0, "{name}: no {g} parameters");
                assert_eq!(trainable(g), want, "{name}: trainable {g}");
            }
        }
        // Hand-overs: absolute paths, the optimizer where the plan carries it, this run's own
        // counters, and the optimizer saved where a later run loads it.
        let dump = line["dump_folder"].as_str().unwrap();
        assert!(dump.starts_with('/') && dump.ends_with(&torchtitan::run_dir(i, r)));
        match &r.init {
            Init::Fresh if r.given.is_empty() => {
                assert!(line["initial_load_path"].is_null(), "{name}")
            }
            _ => {
                let path = line["initial_load_path"].as_str().unwrap();
                assert!(path.starts_with('/'), "{name}: {path}");
            }
        }
        let model_only = line["initial_load_model_only"].as_bool().unwrap();
        if !model_only {
            assert_eq!(
                line["exclude_from_loading"],
                serde_json::json!(["lr_scheduler", "dataloader", "train_state"])
            );
        }
        let loaded_with_optimizer = lines.iter().zip(&l.runs).any(|(x, y)| {
            !x["initial_load_model_only"].as_bool().unwrap()
                && matches!(&y.init, Init::From { run, .. } if run == name)
        });
        if loaded_with_optimizer {
            assert!(!line["last_save_model_only"].as_bool().unwrap(), "{name}");
        }
        let lrs = line["lrs"].as_array().unwrap();
        assert_eq!(lrs.len() as u64, r.steps);
        for (k, lr) in lrs.iter().enumerate() {
            let got = lr.as_f64().unwrap();
            let want = plan.lr_at(r.stage_index, r.first_step + k as u64);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{name} step {k}: torchtitan sets {got}, the plan says {want}"
            );
        }
        steps += lrs.len() as u64;
    }
    let skipped: u64 = plan
        .stages
        .iter()
        .filter(|s| opts.skip.iter().any(|k| k.stage == s.name))
        .map(|s| s.steps)
        .sum();
    assert_eq!(steps + skipped, plan.total_steps);
}

#[test]
fn torchtitan_loads_every_run_of_tiny_text() {
    check("tiny_text.pipe", None, vec![]);
}

#[test]
fn torchtitan_loads_every_run_of_kimi_vl_smoke_with_vit_coca_skipped() {
    check(
        "kimi_vl.pipe",
        Some("smoke"),
        vec![Skip {
            stage: "vit_coca".into(),
            weights: Some("/weights/vit_coca".into()),
        }],
    );
}
