//! The watcher without training: edits are queued as they are saved, and a queued version is
//! evaluated again and applied (saved, recorded) only at a stage boundary.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipelang::reload::Progress;
use pipelang_runtime::record::{RunRecord, StageRecord, Status, Version};
use pipelang_runtime::setup;
use pipelang_runtime::watch::{Log, Queued, Target, Watch};

const BASE: &str = r#"
pipeline t {
  seed    = 1
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

stage one {
  train  = [lm]
  budget = 3_200
  lr     = cosine(peak = 1e-3, min = 1e-4)
  data   = web
}

stage two after one {
  train  = [lm]
  budget = 1_600
  lr     = cosine(peak = 5e-4, min = 1e-5)
  data   = web
}
"#;

struct Setup {
    dir: tempfile::TempDir,
    file: std::path::PathBuf,
    record: RunRecord,
    messages: Arc<Mutex<Vec<String>>>,
    watch: Watch,
    prep: Arc<pipelang_runtime::Prepared>,
}

fn record(done: &[&str]) -> RunRecord {
    let stage = |name: &str| StageRecord {
        name: name.into(),
        status: if done.contains(&name) {
            Status::Done
        } else {
            Status::Pending
        },
        step: 0,
        steps: 100,
        tokens: 3200.0,
        checkpoint: None,
        loader: None,
        loss_first_tenth: None,
        loss_last_tenth: None,
        evals: Default::default(),
        wall_s: 0.0,
        phases: vec![],
        earlier: vec![],
    };
    RunRecord {
        pipeline: "t".into(),
        profile: None,
        seed: 1,
        source_hash: String::new(),
        plan_hash: String::new(),
        stages: vec![stage("one"), stage("two")],
        cursors: Default::default(),
        versions: vec![Version {
            source_hash: String::new(),
            source_file: "pipeline.v1.pipe".into(),
            from_stage: None,
            global_step: 0,
            changes: vec![],
        }],
        stopped: None,
        engine_runs: vec![],
    }
}

/// A watcher started while `one` runs.
fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("corpus")).unwrap();
    std::fs::write(
        dir.path().join("corpus/a.jsonl"),
        "{\"text\": \"some words to read\"}\n".repeat(20),
    )
    .unwrap();
    let file = dir.path().join("t.pipe");
    std::fs::write(&file, BASE).unwrap();
    let prep = Arc::new(setup::prepare(&file, None, BASE.to_string()).unwrap());
    let messages = Arc::new(Mutex::new(vec![]));
    let sink = messages.clone();
    let log: Log = Arc::new(move |m| sink.lock().unwrap().push(m));
    let target = Target {
        file: file.clone(),
        profile: None,
        out: dir.path().join("run"),
        color: false,
    };
    std::fs::create_dir_all(&target.out).unwrap();
    let progress = Progress {
        done: vec![],
        running: Some("one".into()),
    };
    let watch = Watch::start(target, &prep, progress, log).unwrap();
    Setup {
        dir,
        file,
        record: record(&[]),
        messages,
        watch,
        prep,
    }
}

fn wait_queued(w: &Watch, text: &str) -> Queued {
    let t0 = Instant::now();
    loop {
        if let Some(q) = w.queued().filter(|q| q.source == text) {
            return q;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never queued");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn log_has(s: &Setup, needle: &str) -> bool {
    s.messages
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.contains(needle))
}

fn saved(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("run").join(name)).ok()
}

#[test]
fn queued_edit_is_applied_and_recorded_at_the_boundary() {
    let mut s = start();
    let first = BASE.replace("peak = 5e-4", "peak = 6e-4");
    std::fs::write(&s.file, &first).unwrap();
    wait_queued(&s.watch, &first);
    // A later accepted edit replaces the queued one.
    let v2 = BASE.replace("peak = 5e-4", "peak = 7e-4");
    std::fs::write(&s.file, &v2).unwrap();
    let q = wait_queued(&s.watch, &v2);
    assert_eq!(
        q.changes,
        ["two: lr start 5e-4 -> 7e-4, lr peak 5e-4 -> 7e-4"]
    );
    assert!(log_has(&s, "edit accepted, applies when `one` ends"));

    s.record.stages[0].status = Status::Done;
    let new = s.watch.boundary(&s.prep, &mut s.record).expect("applied");
    assert!((new.plan.stage("two").unwrap().lr.peak - 7e-4).abs() < 1e-12);
    assert_eq!(s.record.versions.len(), 2);
    let v = &s.record.versions[1];
    assert_eq!(v.source_file, "pipeline.v2.pipe");
    assert_eq!(v.from_stage.as_deref(), Some("two"));
    assert_eq!(v.global_step, 100);
    assert_eq!(v.changes, q.changes);
    assert_eq!(
        saved(s.dir.path(), "pipeline.v2.pipe").as_deref(),
        Some(v2.as_str())
    );
    assert!(s.watch.queued().is_none(), "applied once");
    assert!(s.watch.boundary(&new, &mut s.record).is_none());
}

#[test]
fn queued_edit_is_evaluated_again_at_the_boundary() {
    let mut s = start();
    let edited = BASE.replace("budget = 1_600", "budget = 3_200");
    std::fs::write(&s.file, &edited).unwrap();
    wait_queued(&s.watch, &edited);
    // By the boundary `two` has finished too (a resumed run): the edit now touches it.
    s.record = record(&["one", "two"]);
    assert!(s.watch.boundary(&s.prep, &mut s.record).is_none());
    assert_eq!(s.record.versions.len(), 1, "nothing recorded");
    assert!(saved(s.dir.path(), "pipeline.v2.pipe").is_none());
    assert!(log_has(&s, "P0801"));
    assert!(log_has(&s, "no longer safe"));
}

#[test]
fn rejected_edit_keeps_the_queued_version_and_a_revert_drops_it() {
    let s = start();
    let edited = BASE.replace("peak = 5e-4", "peak = 6e-4");
    std::fs::write(&s.file, &edited).unwrap();
    wait_queued(&s.watch, &edited);
    std::fs::write(
        &s.file,
        edited.replace("budget = 1_600", "budget = = 1_600"),
    )
    .unwrap();
    let t0 = Instant::now();
    while !log_has(&s, "P0001") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "syntax error never reported"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(log_has(
        &s,
        "the edit accepted earlier still applies when `one` ends"
    ));
    assert_eq!(s.watch.queued().unwrap().source, edited);
    std::fs::write(&s.file, BASE).unwrap();
    while s.watch.queued().is_some() {
        assert!(t0.elapsed() < Duration::from_secs(10), "revert never seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(log_has(
        &s,
        "the edit does not change the plan; the edit queued earlier is dropped"
    ));
}
