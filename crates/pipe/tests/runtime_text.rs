//! `pipe run` end to end on the text-only recipe `pipelines/tiny_text.pipe`: the loss falls in
//! every stage, the logged LR is the planner's at every step, the realised mixture follows the
//! plan, and RoPE base and sequence length change exactly at the transitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tiny_text_trains_as_planned() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["run", "pipelines/tiny_text.pipe", "--out"])
        .arg(out.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(run.status.success());
    // `pipe report` prints the run's table again: the same stage and phase rows.
    let report = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .arg("report")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(report.status.success());
    let rows_of = |text: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(text)
            .lines()
            .filter(|l| {
                ["pretrain ", "cooldown ", "long_context ", "  ."]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| l.to_string())
            .collect()
    };
    let (printed, reported) = (rows_of(&run.stdout), rows_of(&report.stdout));
    assert_eq!(printed.len(), 5, "{}", String::from_utf8_lossy(&run.stdout));
    assert_eq!(printed, reported);
    let rows = metrics(out.path());
    let src = std::fs::read_to_string(repo().join("pipelines/tiny_text.pipe")).unwrap();
    let plan = pipelang::check::check(&src).into_plan().unwrap();
    assert_eq!(
        rows.len() as u64,
        plan.total_steps,
        "one metrics line per step"
    );

    for (si, st) in plan.stages.iter().enumerate() {
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|r| r["stage"] == st.name.as_str())
            .collect();
        assert_eq!(mine.len() as u64, st.steps, "{}", st.name);
        // The loss falls: mean of the first tenth against the last tenth.
        let tenth = (mine.len() / 10).max(1);
        let mean = |v: &[&Value]| {
            v.iter().map(|r| r["loss"].as_f64().unwrap()).sum::<f64>() / v.len() as f64
        };
        let (first, last) = (mean(&mine[..tenth]), mean(&mine[mine.len() - tenth..]));
        assert!(
            last < first,
            "{}: loss did not fall ({first} -> {last})",
            st.name
        );
        let mut planned: BTreeMap<String, f64> = BTreeMap::new();
        let mut realised: BTreeMap<String, f64> = BTreeMap::new();
        for r in &mine {
            let step = r["step"].as_u64().unwrap();
            // The runtime logs the planner's LR, bit for bit.
            assert_eq!(
                r["lr"].as_f64().unwrap(),
                plan.lr_at(si, step),
                "{} step {step}",
                st.name
            );
            let point = plan.step(si, step);
            assert_eq!(
                r["seq_len"].as_u64().unwrap(),
                point.seq_len,
                "{} step {step}",
                st.name
            );
            assert_eq!(
                r["rope_base"]["lm"].as_f64().unwrap(),
                point.rope_base["lm"],
                "{} step {step}",
                st.name
            );
            let batch = point.batch as f64;
            for (name, share) in &point.mix {
                *planned.entry(name.clone()).or_default() += share * batch;
            }
            for (name, n) in r["sources"].as_object().unwrap() {
                *realised.entry(name.clone()).or_default() += n.as_f64().unwrap();
            }
        }
        let total: f64 = planned.values().sum();
        for (name, p) in &planned {
            let got = realised.get(name).copied().unwrap_or(0.0);
            assert!(
                (got - p).abs() / total <= 0.02,
                "{}: {name} realised {got}, planned {p:.1}",
                st.name
            );
        }
    }
    // Transitions take effect exactly where the plan puts them.
    let long: Vec<&Value> = rows
        .iter()
        .filter(|r| r["stage"] == "long_context")
        .collect();
    let first_128 = long.iter().position(|r| r["seq_len"] == 128).unwrap();
    assert_eq!(
        first_128 as u64,
        plan.stage("long_context").unwrap().phases[1].first_step
    );
    assert!(long[..first_128].iter().all(|r| r["seq_len"] == 64));
    assert!(long.iter().all(|r| r["rope_base"]["lm"] == 40_000.0));
    assert!(
        rows.iter()
            .filter(|r| r["stage"] != "long_context")
            .all(|r| r["rope_base"]["lm"] == 10_000.0)
    );

    // The context-extension stage records its loss per phase (the context differs between
    // them): the means of each phase's first and last tenth of steps, and it falls in both.
    let rec = pipelang_runtime::record::RunRecord::load(&out.path().join("run.ron")).unwrap();
    let lc = rec.stage("long_context").unwrap();
    let planned = &plan.stage("long_context").unwrap().phases;
    assert_eq!(lc.phases.len(), planned.len());
    for (ph, pp) in lc.phases.iter().zip(planned) {
        let steps = &long[pp.first_step as usize..(pp.first_step + pp.steps) as usize];
        let tenth = (steps.len() / 10).max(1);
        let mean = |v: &[&Value]| {
            v.iter().map(|r| r["loss"].as_f64().unwrap()).sum::<f64>() / v.len() as f64
        };
        let (first, last) = (mean(&steps[..tenth]), mean(&steps[steps.len() - tenth..]));
        assert_eq!(ph.seq_len, pp.seq_len);
        assert!(
            (ph.loss_first_tenth.unwrap() - first).abs() < 1e-9,
            "{}",
            ph.name
        );
        assert!(
            (ph.loss_last_tenth.unwrap() - last).abs() < 1e-9,
            "{}",
            ph.name
        );
        assert!(
            last < first,
            "{}: loss did not fall ({first} -> {last})",
            ph.name
        );
    }

    // Held-out long stories at the final context (128): the stage that grows the context
    // lowers the loss on them, one measure taken before and after.
    let (before, after) = (lc.evals["long_loss_start"], lc.evals["long_loss_end"]);
    assert!(after < before, "held-out long loss {before} -> {after}");
    assert!(rec.stage("pretrain").unwrap().evals.is_empty());

    let record = std::fs::read_to_string(out.path().join("run.ron")).unwrap();
    assert!(record.contains("status: Done"));
    for st in ["pretrain", "cooldown", "long_context"] {
        assert!(
            out.path()
                .join(format!("checkpoints/{st}/final.safetensors"))
                .exists()
        );
    }
}
