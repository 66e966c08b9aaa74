//! `pipe fmt` as a user runs it: --check reports, a write formats, a broken file is left as it is.

#[test]
fn cli_fmt_check_and_write() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.pipe");
    std::fs::write(&f, "pipeline p {\nseed=1\n    batch   =  2 // b\n}\n").unwrap();
    let pipe = env!("CARGO_BIN_EXE_pipe");
    let check = std::process::Command::new(pipe)
        .args(["fmt", "--check"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stderr).contains("not formatted"));
    let write = std::process::Command::new(pipe)
        .arg("fmt")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        write.status.success(),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "pipeline p {\n  seed  = 1\n  batch = 2                            // b\n}\n"
    );
    let again = std::process::Command::new(pipe)
        .args(["fmt", "--check"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(again.status.success());

    let broken = "pipeline p {\n  seed = 1\n  batch 16\n}\n";
    std::fs::write(&f, broken).unwrap();
    let bad = std::process::Command::new(pipe)
        .arg("fmt")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("cannot format") && err.contains("line 3"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), broken);
}
