//! A run killed with SIGKILL at a random step and resumed ends with weights bit-identical to
//! an uninterrupted run; a resume never sees a half-written checkpoint or record.

mod common;

use std::path::Path;

use common::{final_hashes, pipe, steps_logged, steps_once, wait_for_steps, write_pipeline};

/// Runs the pipeline clean, then again killed (SIGKILL) once `kill_at` steps are logged, then
/// resumes the killed run; both must end with the same weights and one metrics line per step.
fn kill_and_resume(kill_at: usize, checkpoint_every: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let clean = dir.path().join("clean");
    let run = |out: &Path| {
        let out = out.to_str().unwrap().to_string();
        pipe(&[
            "run",
            f,
            "--out",
            &out,
            "--checkpoint-every",
            checkpoint_every,
        ])
    };
    assert!(run(&clean).status().unwrap().success());

    let killed = dir.path().join("killed");
    let mut child = run(&killed).spawn().unwrap();
    wait_for_steps(&mut child, &killed, kill_at);
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let out = pipe(&["run", f, "--out", killed.to_str().unwrap(), "--resume"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        final_hashes(&clean),
        final_hashes(&killed),
        "killed at step {kill_at}"
    );
    assert_eq!(
        steps_logged(&clean),
        steps_logged(&killed),
        "metrics hold each step once (killed at step {kill_at})"
    );
}

#[test]
fn sigkill_then_resume_is_bit_identical() {
    let kill_at = common::any_step(5, 60);
    kill_and_resume(kill_at, "7");
}

#[test]
fn a_stage_killed_before_its_first_checkpoint_logs_each_step_once() {
    // With checkpoints only at stage ends, a kill anywhere in the second stage (steps 41-80)
    // resumes that stage from its start: the lines it had logged must not stay twice.
    kill_and_resume(45, "1000");
}

#[test]
fn a_finished_run_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let out = dir.path().join("run");
    assert!(
        pipe(&[
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap()
        ])
        .status()
        .unwrap()
        .success()
    );
    let o = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
}

#[test]
fn a_second_process_on_a_live_run_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let mut first = pipe(&["run", f, "--out", o, "--checkpoint-every", "7"])
        .spawn()
        .unwrap();
    wait_for_steps(&mut first, &out, 3);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended early"
    );
    for args in [vec!["--resume"], vec![]] {
        let mut a = vec!["run", f, "--out", o];
        a.extend(args.iter());
        let second = pipe(&a).output().unwrap();
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(!second.status.success(), "a second run was let in: {err}");
        if args.is_empty() {
            // A new run into a directory that holds one is refused before the lock is asked.
            assert!(err.contains("already holds a run"), "{err}");
        } else {
            assert_eq!(second.status.code(), Some(4), "{err}");
            assert!(err.contains(&format!("process {}", first.id())), "{err}");
        }
    }
    assert!(first.wait().unwrap().success());
    assert_eq!(
        steps_once(&out),
        80,
        "every step of both stages logged once"
    );
}
