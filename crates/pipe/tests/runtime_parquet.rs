//! Parquet text sources end to end: `pipe check --data` counts them and points at a missing or
//! non-string column; training on them, killed with SIGKILL and resumed, ends bit-identical to
//! an uninterrupted run (the cursor is file, row group, row).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use pipelang_test_support::parquet as parquet_fixture;

fn pipe(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
    c.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Three files of four row groups, a null row in each group.
fn corpus(dir: &Path) -> (u64, u64) {
    std::fs::create_dir_all(dir.join("fineweb")).unwrap();
    let (mut docs, mut tokens) = (0, 0);
    for f in 0..3 {
        let groups: Vec<Vec<Option<String>>> = (0..4)
            .map(|g| {
                (0..12)
                    .map(|r| {
                        (r != 5)
                            .then(|| format!("file {f} group {g} row {r}: {}", "la ".repeat(r + g)))
                    })
                    .collect()
            })
            .collect();
        for t in groups.iter().flatten().flatten() {
            docs += 1;
            tokens += t.len() as u64 + 1;
        }
        parquet_fixture::write(&dir.join(format!("fineweb/{f:05}.parquet")), &groups);
    }
    (docs, tokens)
}

fn recipe(data: &str) -> String {
    format!(
        "pipeline t {{ seed = 3, batch = 4, seq_len = 32 }}\n\
         model lm = decoder {{ vocab = 300, d_model = 32, layers = 1, heads = 2 }}\n\
         {data}\n\
         stage s {{ train = [lm], budget = 7_680, data = web, \
         lr = cosine(peak = 3e-3, warmup = 10%, min = 3e-4) }}\n"
    )
}

fn json_out(c: &mut Command) -> (i32, serde_json::Value) {
    let o = c.output().unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

#[test]
fn check_data_counts_rows_and_locates_a_missing_or_non_string_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (docs, tokens) = corpus(d);
    std::fs::write(
        d.join("p.pipe"),
        recipe("data web = text(\"fineweb/*.parquet\")"),
    )
    .unwrap();
    let (code, v) = json_out(&mut pipe(
        &["check", "p.pipe", "--data", "--format", "json"],
        d,
    ));
    assert_eq!(code, 0, "{v}");
    let src = &v["data"][0]["report"]["sources"][0];
    assert_eq!(src["files"], 3);
    assert_eq!(src["documents"], docs, "null rows are no documents");
    assert_eq!(src["tokens"], tokens);

    for (column, says) in [
        ("body", "column `body` does not exist"),
        ("n", "column `n` is INT64, not a string column"),
    ] {
        let src = recipe(&format!(
            "data web = text(\"fineweb/*.parquet\", column = \"{column}\")"
        ));
        std::fs::write(d.join("p.pipe"), &src).unwrap();
        let (code, v) = json_out(&mut pipe(
            &["check", "p.pipe", "--data", "--format", "json"],
            d,
        ));
        assert_eq!(code, 1, "{v}");
        let diag = v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["code"] == "P0701")
            .unwrap_or_else(|| panic!("no P0701 in {v}"));
        let msg = diag["message"].as_str().unwrap();
        assert!(msg.contains(says), "{msg}");
        assert!(msg.contains("00000.parquet"), "{msg}");
        // Located at the glob of the declaration.
        let line = src
            .lines()
            .position(|l| l.contains("fineweb/*.parquet"))
            .unwrap()
            + 1;
        assert_eq!(diag["labels"][0]["line"], line as u64, "{diag}");
    }
}

fn final_hash(out: &Path) -> String {
    common::model_hash(&out.join("checkpoints/s/final.safetensors"))
}

#[test]
fn training_on_parquet_killed_and_resumed_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    std::fs::write(
        d.join("p.pipe"),
        recipe("data web = text(\"fineweb/*.parquet\")"),
    )
    .unwrap();
    let run = |out: &str| {
        pipe(
            &["run", "p.pipe", "--out", out, "--checkpoint-every", "7"],
            d,
        )
    };
    let o = run("clean").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Any step must work: the kill step is drawn from the clock (60 steps in all).
    let kill_at = common::any_step(5, 50);
    let killed = d.join("killed");
    let mut child = run("killed").spawn().unwrap();
    common::wait_for_steps(&mut child, &killed, kill_at);
    child.kill().unwrap();
    child.wait().unwrap();
    let o = pipe(&["run", "p.pipe", "--out", "killed", "--resume"], d)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        final_hash(&d.join("clean")),
        final_hash(&killed),
        "killed at {kill_at}"
    );
    assert_eq!(
        common::steps_logged(&d.join("clean")),
        common::steps_logged(&killed)
    );
}
