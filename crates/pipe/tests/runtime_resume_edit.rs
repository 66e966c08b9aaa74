//! `--resume` of a run whose pipeline file was edited while it was stopped: the edit is judged
//! by the hot-reload rules at the run's progress, then applied as a new version (what changed is
//! said and `pipeline.vN.pipe` saved) or refused with the rules' diagnostic. Never silently the
//! old version.

mod common;

use std::path::{Path, PathBuf};

use common::{PIPELINE, pipe, steps_once, wait_for_steps, write_pipeline_text};
use pipelang_runtime::record::RunRecord;

struct Stopped {
    _dir: tempfile::TempDir,
    file: PathBuf,
    out: PathBuf,
    /// Steps of `first` done when it stopped.
    step: u64,
}

/// A run of the two-stage pipeline stopped by SIGTERM part-way through `first`.
fn stopped_in_first() -> Stopped {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline_text(dir.path(), "edit.pipe", PIPELINE);
    let out = dir.path().join("run");
    let mut child = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--checkpoint-every",
        "1000",
    ])
    .spawn()
    .unwrap();
    wait_for_steps(&mut child, &out, 10);
    // SAFETY: kill(2) on the PID of a child this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(5));
    let rec = record(&out);
    let first = rec.stage("first").unwrap();
    assert!(first.step > 0 && first.step < first.steps, "{first:?}");
    Stopped {
        _dir: dir,
        file,
        out,
        step: first.step,
    }
}

fn record(out: &Path) -> RunRecord {
    RunRecord::load(&out.join("run.ron")).unwrap()
}

fn resume(s: &Stopped) -> (Option<i32>, String) {
    let o = pipe(&[
        "run",
        s.file.to_str().unwrap(),
        "--out",
        s.out.to_str().unwrap(),
        "--resume",
    ])
    .output()
    .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn edit(s: &Stopped, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(&s.file).unwrap();
    assert!(text.contains(from), "the fixture holds `{from}`");
    let new = text.replacen(from, to, 1);
    std::fs::write(&s.file, &new).unwrap();
    new
}

#[test]
fn an_edit_to_a_stage_not_started_is_applied_and_said() {
    let s = stopped_in_first();
    // `second` has not started: it reads `web` instead of `hq`. (Its budget could not change:
    // `lr = resume` shares one cosine with `first`, whose LR would change with it.)
    let v2 = edit(&s, "data   = hq", "data   = web");
    let (code, err) = resume(&s);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("differs from pipeline.v1.pipe, the version the run last applied"),
        "{err}"
    );
    assert!(
        err.contains("applied version 2 (pipeline.v2.pipe) from stage `first`"),
        "{err}"
    );
    assert!(err.contains("\n  second: "), "the change is listed: {err}");

    let rec = record(&s.out);
    assert_eq!(rec.versions.len(), 2);
    let v = &rec.versions[1];
    assert_eq!(v.source_file, "pipeline.v2.pipe");
    assert_eq!(
        v.global_step, s.step,
        "it takes effect where `first` stopped"
    );
    assert!(
        v.changes.iter().any(|c| c.starts_with("second:")),
        "{:?}",
        v.changes
    );
    assert_eq!(
        std::fs::read_to_string(s.out.join("pipeline.v2.pipe")).unwrap(),
        v2
    );
    assert_eq!(steps_once(&s.out), 80);
    let lines = std::fs::read_to_string(s.out.join("metrics.jsonl")).unwrap();
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["stage"] == "second" {
            let sources: Vec<&String> = v["sources"].as_object().unwrap().keys().collect();
            assert_eq!(sources, ["web"], "`second` reads the new source: {l}");
        }
    }

    // Resumed again with the same file: nothing differs, nothing new is recorded.
    let (code, err) = resume(&s);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("differs"), "{err}");
    assert_eq!(record(&s.out).versions.len(), 2);
}

#[test]
fn an_edit_to_the_stopped_stage_is_refused_with_the_rules_diagnostic() {
    let s = stopped_in_first();
    let before = std::fs::read_to_string(s.out.join("run.ron")).unwrap();
    let original = std::fs::read_to_string(&s.file).unwrap();
    // `first` is part-way: its schedule cannot change any more.
    edit(&s, "peak = 3e-3", "peak = 5e-3");
    let (code, err) = resume(&s);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("hot-reload rules refuse the edit"), "{err}");
    assert!(err.contains("P0801"), "the rule's diagnostic: {err}");
    assert!(
        err.contains("edit.pipe"),
        "located in the edited file: {err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(
        std::fs::read_to_string(s.out.join("run.ron")).unwrap(),
        before,
        "the record is untouched"
    );
    assert!(!s.out.join("pipeline.v2.pipe").exists());

    // Reverted, the run resumes with its one version.
    std::fs::write(&s.file, original).unwrap();
    let (code, err) = resume(&s);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(record(&s.out).versions.len(), 1);
    assert_eq!(steps_once(&s.out), 80);
}

#[test]
fn an_edit_that_plans_the_same_continues_and_says_so() {
    let s = stopped_in_first();
    edit(
        &s,
        "stage second after first {",
        "// the hq pass\nstage second after first {",
    );
    let (code, err) = resume(&s);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("but plans the same: continuing"), "{err}");
    assert_eq!(record(&s.out).versions.len(), 1);
}

#[test]
fn a_broken_edit_is_refused_with_its_errors() {
    let s = stopped_in_first();
    edit(&s, "data   = hq", "data   = hqq");
    let (code, err) = resume(&s);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("hqq"), "{err}");
    assert!(!s.out.join("pipeline.v2.pipe").exists());
}
