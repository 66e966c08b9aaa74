//! `pipe run --engine olmo-core` end to end on this CPU: `pipelines/tiny_text.pipe` trained by
//! OLMo-core 3.0 under torchrun with two ranks (gloo). The steps OLMo-core logged, as pipe
//! wrote them into metrics.jsonl, follow the plan read back from `pipe plan --format json`:
//! LR within 1e-6 relative, seq_len, batch and RoPE base exactly; the loss falls in every
//! stage; weights flow (each stage starts near the loss its predecessor ended at); `pipe
//! report` reads the run; per source, the sequences OLMo-core drew follow each run's mixture;
//! killed with SIGKILL part-way, `--resume --watch` continues from OLMo-core's own checkpoint,
//! applies an edit to a later stage made while it trains, and completes. Needs the pinned
//! engines (scripts/install-engines.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use pipelang::plan::Plan;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The pinned engines' Python; missing is a failure, never a skip.
fn python() -> PathBuf {
    pipelang_engine::python::for_tests(&repo())
}

/// A hung engine fails the test instead of hanging the suite: past this, the process group is
/// killed and the engine's last log lines are shown. A guard, not a speed goal (a run here
/// takes minutes; see BENCHMARKS.md).
const HANG: std::time::Duration = std::time::Duration::from_secs(40 * 60);

fn spawn(args: &[&str], out: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .arg(out)
        .env("PIPE_ENGINE_PYTHON", python())
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// SIGKILL to the child's whole process group (pipe, torchrun and the ranks), then reaped.
fn kill_group(child: &mut std::process::Child) {
    // SAFETY: a plain syscall on the group this test created (`process_group(0)`).
    let r = unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0, "killpg: {}", std::io::Error::last_os_error());
    let _ = child.wait();
}

/// The newest engine log's tail, for a failure message.
fn engine_tail(out: &Path) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(out.join("engine/runs"))
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("engine.log")))
        .filter(|p| p.exists())
        .collect();
    logs.sort();
    let Some(last) = logs.last() else {
        return "(no engine log)".into();
    };
    let text = std::fs::read_to_string(last).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    format!(
        "{}:\n{}",
        last.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

/// Waits until the run has logged `n` steps; fails if it ends first or hangs past [`HANG`]
/// from `started`.
fn wait_for_lines(
    child: &mut std::process::Child,
    out: &Path,
    n: usize,
    started: std::time::Instant,
) {
    while metrics_lines(out) < n {
        ended_early(child, out);
        if started.elapsed() > HANG {
            kill_group(child);
            panic!("pipe run hung; the engine's log {}", engine_tail(out));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Fails with pipe's stderr and the engine's log if `child` has ended.
fn ended_early(child: &mut std::process::Child, out: &Path) {
    if let Some(s) = child.try_wait().unwrap() {
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!(
            "pipe run ended too early ({s}) at {} steps:\n{err}\nthe engine's log {}",
            metrics_lines(out),
            engine_tail(out)
        );
    }
}

/// Waits for `pipe` to finish (under [`HANG`]); returns its stderr.
fn finish(mut child: std::process::Child, out: &Path) -> (std::process::ExitStatus, String) {
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > HANG {
            kill_group(&mut child);
            panic!("pipe run hung; the engine's log {}", engine_tail(out));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    (status, reader.join().unwrap())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn metrics_lines(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
}

#[test]
fn tiny_text_on_olmo_core_follows_the_plan_through_a_kill_an_edit_and_a_stop() {
    // The recipe is copied, since the test edits it while it trains.
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("pipelines")).unwrap();
    let recipe = work.path().join("pipelines/tiny_text.pipe");
    let text = std::fs::read_to_string(repo().join("pipelines/tiny_text.pipe")).unwrap();
    std::fs::write(&recipe, &text).unwrap();
    let recipe_arg = recipe.display().to_string();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "run",
        recipe_arg.as_str(),
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
    let mut child = spawn(&args, out.path());
    wait_for_lines(&mut child, out.path(), 120, std::time::Instant::now());
    kill_group(&mut child);
    // Resumed with --watch; once the cooldown trains, the long-context stage (not started) is
    // edited: its RoPE base now grows to 80,000. The edit applies between runs.
    let mut child = spawn(
        &[&["run", "--resume", "--watch"], &args[1..]].concat(),
        out.path(),
    );
    let started = std::time::Instant::now();
    wait_for_lines(&mut child, out.path(), 170, started);
    let edited = text.replace(
        "rope_base = 10_000 -> 40_000",
        "rope_base = 10_000 -> 80_000",
    );
    assert_ne!(edited, text);
    std::fs::write(&recipe, &edited).unwrap();
    // Part-way through the long-context stage (so after the edit applied), SIGTERM to pipe
    // alone, as a scheduler's preemption sends it: the ranks checkpoint where they are and pipe
    // exits with status 5 and the command that continues.
    wait_for_lines(&mut child, out.path(), 215, started);
    // SAFETY: a signal to the child this test started.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let (status, log) = finish(child, out.path());
    assert_eq!(status.code(), Some(5), "a graceful stop exits 5:\n{log}");
    assert!(
        log.contains(
            "pretrain: 160 steps of 8 x 32 tokens on 2 process(es), from its checkpoint at step 100"
        ),
        "the resumed run continues pretrain from the engine's checkpoint:\n{log}"
    );
    assert!(
        log.contains("pipe run --watch: applied version 2"),
        "the edit is applied between runs:\n{log}"
    );
    assert!(log.contains("continue with: pipe run"), "{log}");
    assert!(out.path().join("pipeline.v2.pipe").exists());
    // Every step the stopped run logged is in its checkpoint: nothing is trained twice or lost.
    let stopped_at = metrics_lines(out.path()) as u64;
    let ckpt = std::fs::read_dir(
        out.path()
            .join("engine/runs/02-long_context.ctx_64/checkpoint"),
    )
    .unwrap()
    .filter_map(|e| {
        e.ok()?
            .file_name()
            .to_str()?
            .strip_prefix("step")?
            .parse::<u64>()
            .ok()
    })
    .max()
    .unwrap();
    assert_eq!(
        stopped_at,
        200 + ckpt,
        "steps logged when stopped, against the checkpoint"
    );
    // Continued from the checkpoint the ranks saved when they stopped.
    let (status, log) = finish(
        spawn(&[&["run", "--resume"], &args[1..]].concat(), out.path()),
        out.path(),
    );
    assert!(status.success(), "the last --resume failed:\n{log}");
    assert!(log.contains("resuming the run stopped by SIGTERM"), "{log}");
    let continued = format!("from its checkpoint at step {ckpt}");
    assert!(
        log.contains(&continued),
        "the stopped run continues where it stopped ({continued}):\n{log}"
    );
    let planned = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["plan", recipe_arg.as_str(), "--format", "json"])
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
    // The edit reached the engine: the long-context stage ran to the new RoPE base.
    let top = rows
        .iter()
        .filter(|r| r["stage"] == "long_context")
        .map(|r| r["rope_base"]["lm"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(
        top, 80_000.0,
        "the long-context stage ran with the edited RoPE base"
    );
    // Per source, the sequences OLMo-core drew over each run (as the driver counted them from
    // the batches' instance indices) follow the run's mixture; and the run's mixture is within
    // its piece bound of the plan's per-step shares.
    let mut runs: Vec<PathBuf> = std::fs::read_dir(out.path().join("engine/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    assert!(!runs.is_empty());
    for dir in runs {
        let cfg: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let stage = cfg["stage"].as_str().unwrap();
        let si = plan.stage_index(stage).unwrap();
        let first = cfg["first_step"].as_u64().unwrap();
        let steps = first..first + cfg["steps"].as_u64().unwrap();
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|r| r["stage"] == stage && steps.contains(&r["step"].as_u64().unwrap()))
            .collect();
        let total: u64 = mine.iter().map(|r| r["batch"].as_u64().unwrap()).sum();
        for src in cfg["data"]["sources"].as_array().unwrap() {
            let name = src["name"].as_str().unwrap();
            let share = src["share"].as_f64().unwrap();
            let drawn: u64 = mine
                .iter()
                .map(|r| r["sources"][name].as_u64().unwrap_or(0))
                .sum();
            let seen = drawn as f64 / total as f64;
            assert!(
                (seen - share).abs() <= 0.05,
                "{}: OLMo-core drew {seen:.3} of its sequences from `{name}`, the run says {share}",
                dir.display()
            );
            let bound = steps
                .clone()
                .map(|k| (plan.step(si, k).mix.get(name).copied().unwrap_or(0.0) - share).abs())
                .fold(0.0, f64::max);
            let planned = steps
                .clone()
                .map(|k| plan.step(si, k).mix.get(name).copied().unwrap_or(0.0))
                .sum::<f64>()
                / steps.clone().count() as f64;
            assert!(
                (seen - planned).abs() <= bound + 0.05,
                "{}: `{name}` drawn {seen:.3}, the plan's mean share {planned:.3} (piece bound \
                 {bound:.3})",
                dir.display()
            );
        }
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
    // run.ron records every engine run: done, whole, and how often each was launched (pretrain
    // killed once, the first long-context run stopped once).
    let rec = pipelang_runtime::record::RunRecord::load(&out.path().join("run.ron")).unwrap();
    let tries: Vec<(&str, u32)> = rec
        .engine_runs
        .iter()
        .map(|r| (r.name.as_str(), r.tries))
        .collect();
    assert_eq!(
        tries,
        [
            ("pretrain", 2),
            ("cooldown", 1),
            ("long_context.ctx_64", 2),
            ("long_context.ctx_128", 1)
        ]
    );
    for r in &rec.engine_runs {
        assert_eq!(
            r.status,
            pipelang_runtime::record::Status::Done,
            "{}",
            r.name
        );
        assert_eq!(r.step, r.steps, "{}", r.name);
    }
    // The configs and the driver stay in the run directory, rerunnable by hand.
    assert!(out.path().join("engine/driver.py").exists());
    assert!(
        out.path()
            .join("engine/runs/00-pretrain/config.json")
            .exists()
    );
}
