//! What `pipe check` accepts, `pipe run` runs: failures known before step 1 are reported by
//! `pipe check` at the line that causes them (or by `pipe check --data` where they need the
//! data), and `pipe run` stops on them before writing anything.

use std::path::Path;
use std::process::Command;

fn pipe(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A WordLevel tokenizer.json with `n` ids.
fn wordlevel(n: usize) -> String {
    let vocab: Vec<String> = (0..n).map(|i| format!("\"w{i}\": {i}")).collect();
    format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": null, "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null,
  "decoder": null,
  "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "w0"}}}}"#,
        vocab.join(", ")
    )
}

/// `docs` JSONL documents of `words` words each under `dir/corpus/`.
fn corpus(dir: &Path, name: &str, docs: usize, words: usize) {
    std::fs::create_dir_all(dir.join("corpus")).unwrap();
    let mut s = String::new();
    for d in 0..docs {
        let text: Vec<String> = (0..words).map(|w| format!("w{}", (d + w) % 50)).collect();
        s.push_str(&format!("{{\"text\": \"{}\"}}\n", text.join(" ")));
    }
    std::fs::write(dir.join("corpus").join(name), s).unwrap();
}

fn recipe(vocab: u64, data: &str, budget: &str) -> String {
    format!(
        "pipeline t {{ seed = 1, batch = 4, seq_len = 32 }}\n\
         model lm = decoder {{ vocab = {vocab}, d_model = 16, layers = 1, heads = 2 }}\n\
         {data}\n\
         stage s {{ train = [lm], budget = {budget}, data = web, lr = constant(1e-3) }}\n"
    )
}

fn json_line(err_or_out: &str, code: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(err_or_out).expect("JSON output parses");
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {v}"))
        .clone()
}

/// `pipe run` stops with exit 1 and leaves no run directory.
fn run_writes_nothing(dir: &Path, code: &str) {
    let out = dir.join("run");
    let (status, _, err) = pipe(&["run", "p.pipe", "--out", out.to_str().unwrap()], dir);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains(code), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!out.exists(), "pipe run wrote {}", out.display());
}

#[test]
fn byte_tokens_need_261_ids_at_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), "a.jsonl", 50, 20);
    let src = recipe(256, "data web = text(\"corpus/*.jsonl\")", "1_024");
    std::fs::write(dir.path().join("p.pipe"), &src).unwrap();
    let (status, out, _) = pipe(&["check", "p.pipe", "--format", "json"], dir.path());
    assert_eq!(status, 1);
    let d = json_line(&out, "P0406");
    assert_eq!(d["line"], 2, "{d}");
    assert!(d["message"].as_str().unwrap().contains("261"), "{d}");
    run_writes_nothing(dir.path(), "P0406");
    // The fix the diagnostic offers makes the pipeline check clean.
    let (status, _, err) = pipe(&["check", "p.pipe", "--fix"], dir.path());
    assert_eq!(status, 0, "{err}");
    let fixed = std::fs::read_to_string(dir.path().join("p.pipe")).unwrap();
    assert!(fixed.contains("vocab = 320"), "{fixed}");
}

#[test]
fn a_tokenizer_of_1000_ids_does_not_fit_vocab_512_at_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), "a.jsonl", 50, 20);
    std::fs::write(dir.path().join("tokenizer.json"), wordlevel(1_000)).unwrap();
    let src = recipe(
        512,
        "data web = text(\"corpus/*.jsonl\", tokenizer = \"tokenizer.json\")",
        "1_024",
    );
    std::fs::write(dir.path().join("p.pipe"), &src).unwrap();
    let (status, out, _) = pipe(&["check", "p.pipe", "--format", "json"], dir.path());
    assert_eq!(status, 1, "{out}");
    let d = json_line(&out, "P0406");
    assert_eq!(d["line"], 2, "{d}");
    assert!(d["message"].as_str().unwrap().contains("1,005"), "{d}");
    run_writes_nothing(dir.path(), "P0406");
    // A missing tokenizer file is located at its path, in check and in run.
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let (status, out, _) = pipe(&["check", "p.pipe", "--format", "json"], dir.path());
    assert_eq!(status, 1);
    assert_eq!(json_line(&out, "P0701")["line"], 3);
    run_writes_nothing(dir.path(), "P0701");
}

#[test]
fn check_data_counts_tokens_and_warns_past_four_epochs() {
    let dir = tempfile::tempdir().unwrap();
    // 100 documents of 4 words "wN" (2-3 bytes) + spaces: about 2K byte tokens.
    corpus(dir.path(), "a.jsonl", 100, 4);
    let src = recipe(512, "data web = text(\"corpus/*.jsonl\")", "40_960");
    std::fs::write(dir.path().join("p.pipe"), &src).unwrap();
    // Without --data nothing reads the corpus.
    assert_eq!(pipe(&["check", "p.pipe"], dir.path()).0, 0);
    let (status, out, err) = pipe(&["check", "p.pipe", "--data"], dir.path());
    assert_eq!(status, 0, "warnings only: {err}");
    assert!(err.contains("P0702"), "{err}");
    assert!(out.contains("web"), "the table: {out}");
    let (_, out, _) = pipe(
        &["check", "p.pipe", "--data", "--format", "json"],
        dir.path(),
    );
    let w = json_line(&out, "P0702");
    assert_eq!(w["severity"], "warning");
    assert_eq!(w["line"], 4, "at the stage's data entry: {w}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let report = &v["data"][0]["report"];
    let tokens = report["sources"][0]["tokens"].as_u64().unwrap();
    assert_eq!(report["sources"][0]["documents"], 100);
    let epochs = report["stages"][0]["sources"][0]["epochs"]
        .as_f64()
        .unwrap();
    assert!((epochs - 40_960.0 / tokens as f64).abs() < 1e-6, "{report}");
    assert!(epochs > 15.0, "{report}");
    assert!(report["mb_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn check_data_reports_empty_globs_and_bad_records_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), "a.jsonl", 10, 400);
    std::fs::write(
        dir.path().join("corpus/b.jsonl"),
        "{\"text\": \"fine\"}\n{\"txt\": \"no text field\"}\n",
    )
    .unwrap();
    let src = recipe(
        512,
        "data web = text(\"corpus/*.jsonl\",\n  \"nothing/*.jsonl\")",
        "1_024",
    );
    std::fs::write(dir.path().join("p.pipe"), &src).unwrap();
    let (status, out, _) = pipe(
        &["check", "p.pipe", "--data", "--format", "json"],
        dir.path(),
    );
    assert_eq!(status, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let errors: Vec<&serde_json::Value> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "P0701")
        .collect();
    assert_eq!(errors.len(), 2, "{v}");
    let glob = errors
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("matches no files"))
        .expect("the empty glob");
    assert_eq!(
        (glob["line"].as_u64(), glob["column"].as_u64()),
        (Some(4), Some(3))
    );
    let bad = errors
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("b.jsonl:2:"))
        .expect("the bad record, with file and line");
    assert_eq!(bad["line"], 3, "at the glob that matched it: {bad}");
    // `pipe run` stops on the same glob before writing anything.
    run_writes_nothing(dir.path(), "P0701");
}

/// One stage feeding one decoder through a tokenizer file and through bytes: each source's ids
/// are held to `vocab` (P0406 at the vocab line), and the mixture itself is refused at the
/// source that brings the second tokenizer (P0407), in check and in run.
#[test]
fn mixed_tokenizers_in_one_stage_fail_at_the_source_line() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), "a.jsonl", 50, 20);
    std::fs::write(dir.path().join("tokenizer.json"), wordlevel(1_000)).unwrap();
    let src = "pipeline t { seed = 1, batch = 4, seq_len = 32 }\n\
model lm = decoder { vocab = 512, d_model = 16, layers = 1, heads = 2 }\n\
data web  = text(\"corpus/*.jsonl\", tokenizer = \"tokenizer.json\")\n\
data code = text(\"corpus/*.jsonl\")\n\
stage s {\n\
  train  = [lm]\n\
  budget = 1_024\n\
  mix {\n\
    web  = 50%\n\
    code = 50%\n\
  }\n\
  lr     = constant(1e-3)\n\
}\n";
    std::fs::write(dir.path().join("p.pipe"), src).unwrap();
    let (status, out, _) = pipe(&["check", "p.pipe", "--format", "json"], dir.path());
    assert_eq!(status, 1, "{out}");
    let too_small = json_line(&out, "P0406");
    assert_eq!(too_small["line"], 2, "{too_small}");
    assert!(
        too_small["message"]
            .as_str()
            .unwrap()
            .contains("`web` feeds it 1,005"),
        "{too_small}"
    );
    let mixed = json_line(&out, "P0407");
    assert_eq!(
        mixed["line"], 10,
        "at the `code` entry of the mixture: {mixed}"
    );
    let msg = mixed["message"].as_str().unwrap();
    assert!(
        msg.contains("`web` through `tokenizer.json`")
            && msg.contains("`code` through the byte tokenizer"),
        "{msg}"
    );
    run_writes_nothing(dir.path(), "P0407");

    // Ids that fit do not make the mixture sound.
    std::fs::write(dir.path().join("tokenizer.json"), wordlevel(200)).unwrap();
    let (status, out, _) = pipe(&["check", "p.pipe", "--format", "json"], dir.path());
    assert_eq!(status, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["P0407"], "{out}");
    run_writes_nothing(dir.path(), "P0407");
}
