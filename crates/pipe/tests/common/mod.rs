//! What the `pipe run` tests share: the two-stage pipeline they train, the binary, and the
//! readings of a run directory they compare.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Two stages of 40 steps each, the second continuing the first's schedule.
pub const PIPELINE: &str = r#"
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

pub fn sample_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("sample_data/kimi_vl")
}

/// Writes `text` (with `SAMPLE` standing for the shipped sample data) as `name` in `dir`.
pub fn write_pipeline_text(dir: &Path, name: &str, text: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, text.replace("SAMPLE", sample_dir().to_str().unwrap())).unwrap();
    f
}

pub fn write_pipeline(dir: &Path) -> PathBuf {
    write_pipeline_text(dir, "resume.pipe", PIPELINE)
}

pub fn pipe(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// `pipe run FILE --out OUT` to the end; a failure shows the run's standard error.
pub fn run_to_end(file: &Path, out: &Path) {
    let o = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        o.status.success(),
        "pipe run {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A hash of the model tensors (names and bytes) of one checkpoint file.
pub fn model_hash(file: &Path) -> String {
    let bytes = std::fs::read(file).unwrap();
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
}

/// The model hashes of the final checkpoints of `stages`.
pub fn final_hashes_of(out: &Path, stages: &[&str]) -> Vec<String> {
    stages
        .iter()
        .map(|s| model_hash(&out.join(format!("checkpoints/{s}/final.safetensors"))))
        .collect()
}

pub fn final_hashes(out: &Path) -> Vec<String> {
    final_hashes_of(out, &["first", "second"])
}

pub fn steps_logged(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until `out` has logged `n` steps (or the child ended, or two minutes passed).
/// A step in `first..first + count` that differs from run to run (the wall clock's
/// nanoseconds and the process id): a kill at any step must resume bit-identically, so each run
/// tries another one, and a failure prints the step it drew.
pub fn any_step(first: usize, count: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    first + (nanos + std::process::id() as usize) % count
}

pub fn wait_for_steps(child: &mut std::process::Child, out: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while steps_logged(out) < n && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every (stage, step) of `metrics.jsonl`, asserting that none is logged twice.
pub fn steps_once(out: &Path) -> usize {
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let mut seen = std::collections::HashSet::new();
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let key = (v["stage"].to_string(), v["step"].as_u64().unwrap());
        assert!(seen.insert(key.clone()), "step {key:?} logged twice");
    }
    seen.len()
}
