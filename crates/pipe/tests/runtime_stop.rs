//! SIGTERM and SIGINT stop `pipe run` at the next step boundary with a checkpoint, exit 5 and
//! the command that continues; `--resume` then ends with the weights of an uninterrupted run.
//! A second signal stops at once. Checkpoints are also taken by wall time, and only the last
//! few of a running stage are kept.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;

use common::{final_hashes, pipe, steps_once, wait_for_steps, write_pipeline, write_pipeline_text};
use pipelang_runtime::record::{RunRecord, Status};

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the PID of a child this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn record(out: &Path) -> RunRecord {
    RunRecord::load(&out.join("run.ron")).unwrap()
}

/// Lines of the child's stderr as they come, so a test can act on one while it runs.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn clean_run(dir: &Path, file: &Path) -> std::path::PathBuf {
    let clean = dir.join("clean");
    let o = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    clean
}

/// Runs the pipeline with checkpoints only at stage ends, sends `sig` once `at` steps are
/// logged, and checks the stop; then resumes and compares with an uninterrupted run.
fn stop_and_resume(sig: i32, name: &str, at: usize, stage: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let clean = clean_run(dir.path(), &file);

    let out = dir.path().join("stopped");
    let o = out.to_str().unwrap();
    let run = ["run", f, "--out", o, "--checkpoint-every", "1000"];
    let mut child = pipe(&run).spawn().unwrap();
    wait_for_steps(&mut child, &out, at);
    signal(&child, sig);
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(5), "{err}");
    assert!(err.contains(&format!("{name} received")), "{err}");
    assert!(
        err.contains(&format!("stopped by {name} after step")),
        "{err}"
    );
    assert!(
        err.contains(&format!("continue with: pipe run {f} --out {o} --resume")),
        "{err}"
    );

    // The stop is recorded, with the checkpoint written for it part-way through the stage.
    let rec = record(&out);
    let stopped = rec.stopped.clone().expect("run.ron records the stop");
    assert_eq!(
        (stopped.cause.as_str(), stopped.stage.as_str()),
        (name, stage)
    );
    let r = rec.stage(stage).unwrap();
    assert_eq!(r.status, Status::Running);
    assert!(r.step > 0 && r.step < r.steps, "stopped part-way: {r:?}");
    assert_eq!(stopped.step, r.step);
    let ck = stopped.checkpoint.clone().unwrap();
    assert_eq!(
        ck,
        format!("checkpoints/{stage}/step-{:08}.safetensors", r.step)
    );
    assert!(out.join(&ck).exists());
    assert!(err.contains(&ck), "the message names the checkpoint: {err}");

    let resumed = pipe(&["run", f, "--out", o, "--resume"]).output().unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "resume failed: {err}");
    assert!(
        err.contains(&format!("resuming the run stopped by {name}")),
        "{err}"
    );
    assert!(record(&out).stopped.is_none(), "the resume clears the stop");
    assert_eq!(final_hashes(&clean), final_hashes(&out));
    assert_eq!(steps_once(&out), 80, "every step logged once");
}

#[test]
fn sigterm_mid_stage_then_resume_is_bit_identical() {
    stop_and_resume(libc::SIGTERM, "SIGTERM", 15, "first");
}

#[test]
fn sigint_mid_stage_then_resume_is_bit_identical() {
    stop_and_resume(libc::SIGINT, "SIGINT", 52, "second");
}

/// Steps slow enough (a tenth of a second and more) that a second signal sent as soon as the
/// first is announced arrives while the step is still running.
const SLOW: &str = r#"
pipeline slow {
  seed        = 11
  batch       = 4
  seq_len     = 128
  sample_data = "SAMPLE"
}
model lm = decoder { vocab = 300, d_model = 64, layers = 2, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage only {
  train  = [lm]
  budget = 10_240
  lr     = constant(1e-3)
  data   = web
}
"#;

#[test]
fn a_second_signal_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline_text(dir.path(), "slow.pipe", SLOW);
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let mut child = pipe(&["run", file.to_str().unwrap(), "--out", o])
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_steps(&mut child, &out, 2);
    signal(&child, libc::SIGTERM);
    let announced = lines.iter().any(|l| l.contains("SIGTERM received"));
    assert!(announced, "the first signal is announced");
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    // 128 + SIGTERM, as a shell reports a process the signal ended (a graceful stop is 5).
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(
        record(&out).stopped.is_none(),
        "no graceful stop was recorded"
    );
    // Nothing half-written: the run resumes (from the stage's start) and finishes.
    let resumed = pipe(&["run", file.to_str().unwrap(), "--out", o, "--resume"])
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(steps_once(&out), 20);
}

#[test]
fn checkpoints_by_wall_time_keep_the_last_three() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let clean = clean_run(dir.path(), &file);
    let out = dir.path().join("wall");
    let o = out.to_str().unwrap();
    // A few microseconds: every step is past the interval, so every step checkpoints.
    let mut child = pipe(&[
        "run",
        f,
        "--out",
        o,
        "--checkpoint-every",
        "1000",
        "--checkpoint-minutes",
        "0.0000001",
    ])
    .spawn()
    .unwrap();
    wait_for_steps(&mut child, &out, 20);
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(5));

    let rec = record(&out);
    let r = rec.stage("first").unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(out.join("checkpoints/first"))
        .unwrap()
        .map(|e| {
            format!(
                "checkpoints/first/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    on_disk.sort();
    let mut kept: Vec<String> = r.earlier.iter().map(|k| k.checkpoint.clone()).collect();
    kept.push(r.checkpoint.clone().unwrap());
    assert_eq!(on_disk, kept, "the record names exactly the files kept");
    let steps: Vec<u64> = r.earlier.iter().map(|k| k.step).chain([r.step]).collect();
    assert_eq!(
        steps,
        [r.step - 2, r.step - 1, r.step],
        "the last three, one per step"
    );
    assert!(r.earlier.iter().all(|k| k.loader.is_some()));

    let resumed = pipe(&["run", f, "--out", o, "--resume"]).output().unwrap();
    assert!(resumed.status.success());
    assert_eq!(final_hashes(&clean), final_hashes(&out));
    // Once a stage ends only its final checkpoint stays.
    for stage in ["first", "second"] {
        let names: Vec<_> = std::fs::read_dir(out.join("checkpoints").join(stage))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["final.safetensors"], "{stage}");
        assert!(record(&out).stage(stage).unwrap().earlier.is_empty());
    }
}
