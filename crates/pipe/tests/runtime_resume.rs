//! A run killed with SIGKILL at a random step and resumed ends with weights bit-identical to
//! an uninterrupted run; a resume never sees a half-written checkpoint or record.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
pipeline resume_test {
  seed        = 11
  batch       = 4
  seq_len     = 32
  sample_data = "SAMPLE"
}
model lm = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
data hq  = text("corpus/text_hq/*.jsonl")
stage first {
  train  = [lm]
  budget = 5_120          // 40 steps
  lr     = cosine(peak = 3e-3, warmup = 10%, min = 3e-4)
  mix { web = 70%, hq = 30% }
}
stage second after first {
  train  = [lm]
  budget = 5_120
  lr     = resume
  data   = hq
}
"#;

fn write_pipeline(dir: &Path) -> PathBuf {
    let sample =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("sample_data/kimi_vl");
    let f = dir.join("resume.pipe");
    std::fs::write(&f, PIPELINE.replace("SAMPLE", sample.to_str().unwrap())).unwrap();
    f
}

fn pipe(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn final_hashes(out: &Path) -> Vec<String> {
    ["first", "second"]
        .iter()
        .map(|s| {
            let bytes =
                std::fs::read(out.join(format!("checkpoints/{s}/final.safetensors"))).unwrap();
            let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let mut names: Vec<String> = t
                .names()
                .into_iter()
                .filter(|n| n.starts_with("model/"))
                .map(|n| n.to_string())
                .collect();
            names.sort();
            let mut all = vec![];
            for n in names {
                all.extend_from_slice(n.as_bytes());
                all.extend_from_slice(t.tensor(&n).unwrap().data());
            }
            pipelang_runtime::record::sha256(&all)
        })
        .collect()
}

fn steps_logged(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

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
    let deadline = Instant::now() + Duration::from_secs(120);
    while steps_logged(&killed) < kill_at && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
    // The kill step is drawn from the clock: any step must work.
    let kill_at =
        5 + (Instant::now().elapsed().subsec_nanos() as usize + std::process::id() as usize) % 60;
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
    let deadline = Instant::now() + Duration::from_secs(120);
    while steps_logged(&out) < 3 && Instant::now() < deadline {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
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
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let mut seen = std::collections::HashSet::new();
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let key = (v["stage"].to_string(), v["step"].as_u64().unwrap());
        assert!(seen.insert(key.clone()), "step {key:?} logged twice");
    }
    assert_eq!(seen.len(), 80, "every step of both stages logged once");
}
