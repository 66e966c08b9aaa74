//! `pipe run --engine olmo-core` end to end on this CPU: `pipelines/tiny_text.pipe` trained by
//! OLMo-core 3.0 under torchrun with two ranks (gloo). The steps OLMo-core logged, as pipe
//! wrote them into metrics.jsonl, follow the plan read back from `pipe plan --format json`:
//! LR within 1e-6 relative, seq_len, batch and RoPE base exactly; the loss falls in every
//! stage; weights flow (each stage starts near the loss its predecessor ended at); `pipe
//! report` reads the run; killed with SIGKILL part-way, `--resume` continues from OLMo-core's
//! own checkpoint and completes. Needs the pinned engines (scripts/install-engines.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use pipelang::plan::Plan;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn python() -> PathBuf {
    let p = std::env::var_os("PIPE_ENGINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/engines/bin/python"));
    assert!(
        p.exists(),
        "{} not found: install the pinned engines with scripts/install-engines.sh \
         (or set PIPE_ENGINE_PYTHON)",
        p.display()
    );
    p
}

fn pipe(args: &[&str], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .arg(out)
        .env("PIPE_ENGINE_PYTHON", python())
        .current_dir(repo())
        .output()
        .unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn metrics_lines(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
}

// Ignored by default: OLMo-core 3.0 on gloo (CPU, 2 ranks) intermittently stops making progress
// right after saving a checkpoint ("Checkpoint for step 100 saved successfully", then nothing),
// seen in 2 of 4 runs on the loaded 2-core machine; a hung run would hang the suite. Run it with
// `cargo test -p pipe --test engine_olmo_core -- --ignored`.
#[test]
#[ignore = "OLMo-core on gloo can stall after a checkpoint save; run with --ignored"]
fn tiny_text_on_olmo_core_follows_the_plan_through_a_sigkill() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "pipelines/tiny_text.pipe",
        "--engine",
        "olmo-core",
        "--nproc",
        "2",
        "--ramp-pieces",
        "1",
        "--out",
    ];
    // Killed with SIGKILL (pipe, torchrun and both ranks: the whole process group) once
    // pretrain is past its checkpoint at step 100.
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .arg(out.path())
        .env("PIPE_ENGINE_PYTHON", python())
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    while metrics_lines(out.path()) < 120 {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("pipe run ended before it was killed: {s}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let killed = Command::new("kill")
        .args(["-KILL", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();
    let run = pipe(&[&["run", "--resume"], &args[1..]].concat(), out.path());
    assert!(
        run.status.success(),
        "pipe run --engine olmo-core --resume failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.contains(
            "pretrain: 160 steps of 8 x 32 tokens on 2 process(es), from its checkpoint at step 100"
        ),
        "the resumed run continues pretrain from the engine's checkpoint:\n{log}"
    );
    let planned = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["plan", "pipelines/tiny_text.pipe", "--format", "json"])
        .current_dir(repo())
        .output()
        .unwrap();
    let plan = Plan::from_json(&String::from_utf8(planned.stdout).unwrap()).unwrap();
    let rows: Vec<Value> = std::fs::read_to_string(out.path().join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as u64, plan.total_steps, "one line per step");
    let mut last_loss: Option<f64> = None;
    for (si, st) in plan.stages.iter().enumerate() {
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|r| r["stage"] == st.name.as_str())
            .collect();
        assert_eq!(mine.len() as u64, st.steps, "{}", st.name);
        for r in &mine {
            let k = r["step"].as_u64().unwrap();
            let want = plan.step(si, k);
            let lr = r["lr"].as_f64().unwrap();
            assert!(
                (lr - want.lr).abs() <= 1e-6 * want.lr.abs(),
                "{} step {k}: OLMo-core ran lr {lr}, the plan says {}",
                st.name,
                want.lr
            );
            assert_eq!(
                r["seq_len"].as_u64().unwrap(),
                want.seq_len,
                "{} step {k}",
                st.name
            );
            assert_eq!(
                r["batch"].as_u64().unwrap(),
                want.batch,
                "{} step {k}",
                st.name
            );
            assert_eq!(
                r["rope_base"]["lm"].as_f64().unwrap(),
                want.rope_base["lm"],
                "{} step {k}: RoPE base",
                st.name
            );
        }
        let losses: Vec<f64> = mine.iter().map(|r| r["loss"].as_f64().unwrap()).collect();
        let tenth = (losses.len() / 10).max(1);
        let (first, last) = (
            mean(&losses[..tenth]),
            mean(&losses[losses.len() - tenth..]),
        );
        assert!(
            last < first,
            "{}: the loss did not fall ({first} -> {last})",
            st.name
        );
        if let Some(prev) = last_loss {
            // A fresh model starts near ln(512) = 6.2; a stage that got its predecessor's
            // weights starts near where that one ended.
            assert!(
                (losses[0] - prev).abs() < 0.5,
                "{}: starts at {} but its predecessor ended at {prev}",
                st.name,
                losses[0]
            );
        }
        last_loss = Some(mean(&losses[losses.len() - tenth..]));
    }
    // The run directory is a pipelang run: `pipe report` reads it.
    let report = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .arg("report")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let text = String::from_utf8_lossy(&report.stdout);
    for st in &plan.stages {
        assert!(text.contains(&st.name), "report lacks {}:\n{text}", st.name);
    }
    // The configs and the driver stay in the run directory, rerunnable by hand.
    assert!(out.path().join("engine/driver.py").exists());
    assert!(
        out.path()
            .join("engine/runs/00-pretrain/config.json")
            .exists()
    );
}
