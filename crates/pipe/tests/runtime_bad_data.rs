//! Bad data stops `pipe run` with an error that names the file (and line), and never leaves a
//! corrupt run directory behind.

use std::path::Path;
use std::process::Command;

fn pipeline(dir: &Path, glob: &str) -> std::path::PathBuf {
    let f = dir.join("p.pipe");
    std::fs::write(
        &f,
        format!(
            "pipeline bad {{ batch = 2, seq_len = 16 }}\nmodel lm = decoder {{ vocab = 300, d_model = 16, layers = 1, heads = 2 }}\ndata web = text(\"{glob}\")\nstage s {{ train = [lm], budget = 1_024, data = web, lr = constant(1e-3) }}\n"
        ),
    )
    .unwrap();
    f
}

fn run(file: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn a_glob_matching_nothing_is_located_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let f = pipeline(dir.path(), "missing/*.jsonl");
    let out = dir.path().join("run");
    let (code, err) = run(&f, &out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("P0701") && err.contains("missing/*.jsonl"),
        "{err}"
    );
    assert!(
        err.contains("p.pipe:3"),
        "the error points at the data declaration: {err}"
    );
    assert!(
        !out.exists(),
        "nothing may be written before the data is known good"
    );
}

#[test]
fn an_empty_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/empty.jsonl"), "").unwrap();
    let f = pipeline(dir.path(), "d/*.jsonl");
    let (code, err) = run(&f, &dir.path().join("run"));
    assert_eq!(code, 1);
    assert!(err.contains("empty.jsonl"), "{err}");
    assert!(!dir.path().join("run").exists());
}

#[test]
fn an_unreadable_file_is_named() {
    // Tests run as root in CI, where permission bits do not stop reads: bytes that are not
    // UTF-8 text make the file unreadable as a corpus instead.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(
        dir.path().join("d/binary.jsonl"),
        [0xff, 0xfe, 0x00, 0x9c, b'\n'],
    )
    .unwrap();
    let f = pipeline(dir.path(), "d/*.jsonl");
    let (code, err) = run(&f, &dir.path().join("run"));
    assert_ne!(code, 0);
    assert!(err.contains("binary.jsonl"), "{err}");
}

#[test]
fn a_malformed_line_is_located_and_the_run_directory_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!(
            "{{\"text\": \"document number {i} about red circles and blue squares\"}}\n"
        ));
    }
    text.push_str("{\"text\": broken\n");
    std::fs::write(dir.path().join("d/a.jsonl"), text).unwrap();
    let f = pipeline(dir.path(), "d/*.jsonl");
    let out = dir.path().join("run");
    let (code, err) = run(&f, &out);
    assert_ne!(code, 0);
    assert!(
        err.contains("a.jsonl:4"),
        "the error names the file and line: {err}"
    );
    // What was written is whole: the record parses and names the stage.
    let record = pipelang_runtime::record::RunRecord::load(&out.join("run.ron")).unwrap();
    assert_eq!(record.stages[0].name, "s");
}
