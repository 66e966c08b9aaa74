//! The editor reports what `pipe check` reports about the files a recipe names: a tokenizer
//! with more ids than the decoder's `vocab` (P0406, at the vocab line) and a tokenizer file
//! that is missing (P0701, at its path), through the real server, with the document's path
//! taken from its `file:` URI as the command line takes it from its argument.

mod lsp_support;

use lsp_support::Client;
use serde_json::Value;

/// A WordLevel tokenizer.json with `n` ids.
fn wordlevel(n: usize) -> String {
    let vocab: Vec<String> = (0..n).map(|i| format!("\"w{i}\": {i}")).collect();
    format!(
        r#"{{"version": "1.0", "added_tokens": [], "normalizer": null,
  "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null, "decoder": null,
  "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "w0"}}}}"#,
        vocab.join(", ")
    )
}

const RECIPE: &str = "pipeline t { seed = 1, batch = 4, seq_len = 32 }\n\
model lm = decoder { vocab = 512, d_model = 16, layers = 1, heads = 2 }\n\
data web = text(\"corpus/*.jsonl\", tokenizer = \"tokenizer.json\")\n\
stage s { train = [lm], budget = 1M, data = web, lr = constant(1e-3) }\n";

/// (code, 0-based start line) of each published diagnostic.
fn found(d: &Value) -> Vec<(String, u64)> {
    d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["range"]["start"]["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// What `pipe check` runs on the same file: `check()`, then the file pass.
fn cli_codes(path: &std::path::Path, text: &str) -> Vec<String> {
    let c = pipelang::check::check(text);
    let mut codes: Vec<String> = c.diagnostics.iter().map(|d| d.code.0.into()).collect();
    codes.extend(
        pipelang::check::files::check(c.pipeline.as_ref().unwrap(), path)
            .iter()
            .map(|d| d.code.0.to_string()),
    );
    codes.sort();
    codes
}

fn codes(d: &Value) -> Vec<String> {
    let mut c: Vec<String> = found(d).into_iter().map(|(c, _)| c).collect();
    c.sort();
    c
}

#[test]
fn tokenizer_files_are_checked_as_pipe_check_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recipe.pipe");
    std::fs::write(&path, RECIPE).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), wordlevel(1_000)).unwrap();
    let uri = format!("file://{}", path.display());
    let mut c = Client::start();

    let d = c.open(&uri, RECIPE);
    assert_eq!(found(&d), vec![("P0406".to_string(), 1)], "{d}");
    assert_eq!(codes(&d), cli_codes(&path, RECIPE));
    let msg = d["diagnostics"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("feeds it 1,005 token ids"),
        "1,000 ids + 5 specials: {msg}"
    );
    // An editor shows no plan of a recipe that cannot run.
    let plan = c.request(
        "pipelang/plan",
        serde_json::json!({ "textDocument": { "uri": uri } }),
    );
    assert!(plan["svg"].is_null() || plan["stale"] == true, "{plan}");

    // The file is gone: the next check of the document says so at the tokenizer's path.
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let d = c.change(&uri, 2, RECIPE);
    assert_eq!(found(&d), vec![("P0701".to_string(), 2)], "{d}");
    assert_eq!(codes(&d), cli_codes(&path, RECIPE));
    let msg = d["diagnostics"][0]["message"].as_str().unwrap();
    assert!(msg.contains("`tokenizer.json` not found"), "{msg}");

    // A tokenizer that fits: clean, in both.
    std::fs::write(dir.path().join("tokenizer.json"), wordlevel(200)).unwrap();
    let d = c.change(&uri, 3, RECIPE);
    assert_eq!(found(&d), vec![], "{d}");
    assert_eq!(cli_codes(&path, RECIPE), Vec::<String>::new());

    // A buffer that is no file yet has no folder to resolve paths in: no file checks.
    let d = c.open("untitled:Untitled-1", RECIPE);
    assert_eq!(found(&d), vec![], "{d}");
    c.shutdown();
}
