//! `pipe run --watch` end to end: a three-stage pipeline trains while the test edits its file.
//! During stage 1 the LR peak and budget of stage 2 change (accepted, applied at the boundary);
//! during stage 2 an edit to stage 1 is refused (P0801) and a syntax error is rejected (P0001);
//! the run completes on the accepted version, which `metrics.jsonl` and `run.ron` show.
//!
//! No fixed sleeps: every step waits, with a timeout, for what the run writes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipelang_runtime::record::{RunRecord, Status};

// 32 tokens per step (batch 2 x 16): `first` is 800 steps, `second` 400 (then 600),
// `third` 800. Long enough that each edit is seen while the stage it targets is running.
const PIPELINE: &str = r#"
pipeline watched {
  seed    = 3
  batch   = 2
  seq_len = 16
}

model lm = decoder {
  vocab     = 512
  d_model   = 16
  layers    = 1
  heads     = 2
  rope_base = 10_000
}

data web = text("corpus/*.jsonl")

stage first {
  train  = [lm]
  budget = 25_600
  lr     = cosine(peak = 3e-3, min = 3e-4)
  data   = web
}

stage second after first {
  train  = [lm]
  budget = 12_800
  lr     = cosine(peak = 2e-3, min = 1e-4)
  data   = web
}

stage third after second {
  train  = [lm]
  budget = 25_600
  lr     = cosine(peak = 1e-3, min = 1e-5)
  data   = web
}
"#;

fn corpus(dir: &Path) {
    let words = [
        "the",
        "model",
        "reads",
        "a",
        "long",
        "text",
        "about",
        "stages",
        "and",
        "schedules",
        "while",
        "data",
        "flows",
        "through",
        "every",
        "step",
        "of",
        "training",
    ];
    let mut x: u64 = 12345;
    let mut out = String::new();
    for _ in 0..400 {
        let mut line = vec![];
        for _ in 0..40 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            line.push(words[(x >> 33) as usize % words.len()]);
        }
        out.push_str(&format!("{{\"text\": \"{}\"}}\n", line.join(" ")));
    }
    std::fs::create_dir_all(dir.join("corpus")).unwrap();
    std::fs::write(dir.join("corpus/web.jsonl"), out).unwrap();
}

/// Saves like an editor that writes a new file and renames it over the old one.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("pipe.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        // The last line may be half-written while the run goes on.
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn ran(out: &Path, stage: &str) -> bool {
    metrics(out).iter().any(|m| m["stage"] == stage)
}

struct Run {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Run {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls `cond` until it holds; fails with the run's stderr after `secs`.
    fn wait_for(&mut self, what: &str, secs: u64, cond: impl Fn(&Run) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                // One last look: the condition may have become true as the run ended.
                if cond(self) {
                    return;
                }
                panic!("the run exited ({status}) before {what}\n{}", self.stderr());
            }
            if start.elapsed() > Duration::from_secs(secs) {
                let _ = self.child.kill();
                panic!("timed out waiting for {what}\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_applies_safe_edits_between_stages() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let file = dir.path().join("watched.pipe");
    let out = dir.path().join("run");
    std::fs::write(&file, PIPELINE).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--watch",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut run = Run { child, stderr };

    // 1. During `first`: stage 2 gets a higher LR peak and a larger budget (truncate + write).
    run.wait_for("stage `first` to start", 60, |_| ran(&out, "first"));
    let v2 = PIPELINE.replace("peak = 2e-3", "peak = 4e-3").replacen(
        "budget = 12_800",
        "budget = 19_200",
        1,
    );
    std::fs::write(&file, &v2).unwrap();
    run.wait_for("the edit to be accepted", 20, |r| {
        r.stderr().contains("edit accepted")
    });
    assert!(
        !ran(&out, "second"),
        "the edit must be seen while `first` runs (the machine is too slow for this test's \
         stage lengths)\n{}",
        run.stderr()
    );
    let err = run.stderr();
    assert!(
        err.contains("second: lr start 2e-3 -> 4e-3, lr peak 2e-3 -> 4e-3, budget 12.8K -> 19.2K (steps 400 -> 600)"),
        "{err}"
    );

    // 2. During `second`: an edit to the finished `first` is refused (saved by rename).
    run.wait_for("stage `second` to start", 60, |_| ran(&out, "second"));
    save_by_rename(&file, &v2.replace("budget = 25_600", "budget = 32_000"));
    run.wait_for("the refusal", 20, |r| r.stderr().contains("P0801"));
    let err = run.stderr();
    assert!(
        err.contains("stage `first` has already run: its `budget` cannot change"),
        "{err}"
    );

    // 3. A syntax error is reported and the run goes on.
    save_by_rename(&file, &v2.replace("budget = 19_200", "budget = = 19_200"));
    run.wait_for("the syntax error", 20, |r| r.stderr().contains("P0001"));
    let status = {
        let start = Instant::now();
        loop {
            if let Some(s) = run.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the run did not finish\n{}",
                run.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let err = run.stderr();
    assert!(status.success(), "{status}\n{err}");
    assert!(
        err.contains("the run goes on with its current plan"),
        "{err}"
    );

    // Stage 2 ran with the new values, every other stage as first planned.
    let m = metrics(&out);
    let of = |stage: &str| -> Vec<&serde_json::Value> {
        m.iter().filter(|l| l["stage"] == stage).collect()
    };
    assert_eq!(of("first").len(), 800);
    assert_eq!(of("second").len(), 600, "the new budget of `second`");
    assert_eq!(of("third").len(), 800);
    let lr0 = of("second")[0]["lr"].as_f64().unwrap();
    assert!(
        (lr0 - 4e-3).abs() < 1e-9,
        "`second` starts at the new peak: {lr0}"
    );
    assert!((of("first")[0]["lr"].as_f64().unwrap() - 3e-3).abs() < 1e-9);
    let steps: Vec<u64> = m
        .iter()
        .map(|l| l["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (0..2200).collect::<Vec<u64>>(),
        "global steps run on without gaps"
    );

    // The applied version is recorded and saved; the refused and broken ones are not.
    let record = RunRecord::load(&out.join("run.ron")).unwrap();
    assert!(record.stages.iter().all(|s| s.status == Status::Done));
    assert_eq!(record.versions.len(), 2, "{:#?}", record.versions);
    let v = &record.versions[1];
    assert_eq!(v.source_file, "pipeline.v2.pipe");
    assert_eq!(v.from_stage.as_deref(), Some("second"));
    assert_eq!(v.global_step, 800);
    assert_eq!(
        v.source_hash,
        pipelang_runtime::record::sha256(v2.as_bytes())
    );
    assert!(
        v.changes[0].starts_with("second: lr start 2e-3 -> 4e-3"),
        "{:?}",
        v.changes
    );
    assert_eq!(
        std::fs::read_to_string(out.join("pipeline.v2.pipe")).unwrap(),
        v2
    );
    assert_eq!(
        std::fs::read_to_string(out.join("pipeline.v1.pipe")).unwrap(),
        PIPELINE
    );

    // `--resume` never goes on silently with the last applied version: the (now broken) file
    // differs from it, so the resume is refused with the file's errors and writes nothing...
    let resume = || {
        Command::new(env!("CARGO_BIN_EXE_pipe"))
            .args([
                "run",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--resume",
            ])
            .output()
            .unwrap()
    };
    let refused = resume();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("differs from pipeline.v2.pipe"), "{err}");
    assert!(err.contains("P0001"), "{err}");
    assert_eq!(
        RunRecord::load(&out.join("run.ron"))
            .unwrap()
            .versions
            .len(),
        2
    );
    // ...and with the file back at the applied version it continues (here: nothing left).
    std::fs::write(&file, &v2).unwrap();
    let resumed = resume();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
}
