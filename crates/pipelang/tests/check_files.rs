//! The file-aware pass (`check::files`): tokenizer files found where `pipe run` looks for them,
//! counted, and held against the decoders they feed.

use std::path::Path;

use pipelang::check::{check, files};
use pipelang::syntax::LineIndex;

/// A WordLevel tokenizer.json with `n` entries (ids 0..n) and one added token already in it.
pub fn wordlevel(n: usize) -> String {
    let vocab: Vec<String> = (0..n).map(|i| format!("\"w{i}\": {i}")).collect();
    format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [{{"id": 0, "content": "w0", "single_word": false, "lstrip": false,
    "rstrip": false, "normalized": false, "special": true}}],
  "normalizer": null, "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null,
  "decoder": null,
  "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "w0"}}}}"#,
        vocab.join(", ")
    )
}

const SRC: &str = "pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text(\"corpus/*.jsonl\", tokenizer = \"tok/tokenizer.json\")
stage pre { train = [lm], budget = 1B, data = web, lr = constant(1e-4) }
";

fn line_of(src: &str, d: &pipelang::diag::Diagnostic) -> usize {
    LineIndex::new(src)
        .line_col_chars(src, d.primary_span().start)
        .0
        + 1
}

#[test]
fn a_tokenizer_file_larger_than_vocab_is_reported_at_the_vocab_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tok")).unwrap();
    std::fs::write(dir.path().join("tok/tokenizer.json"), wordlevel(1_000)).unwrap();
    assert_eq!(files::hf_base_vocab(&wordlevel(1_000)).unwrap(), 1_000);
    let checked = check(SRC);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let file = dir.path().join("t.pipe");
    let diags = files::check(checked.pipeline.as_ref().unwrap(), &file);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d.code.as_str(), "P0406");
    assert_eq!(line_of(SRC, d), 2);
    assert!(d.message.contains("1,005"), "{}", d.message);
    assert_eq!(d.fixes[0].edits[0].text, "1024");
    // A vocab that fits: nothing to say.
    let fits = SRC.replace("vocab = 512", "vocab = 1005");
    let diags = files::check(check(&fits).pipeline.as_ref().unwrap(), &file);
    assert!(diags.is_empty(), "{diags:?}");
}

/// The plan is resolved on demand; an error the file-aware pass adds afterwards (as the
/// language server adds it) takes the plan away, whether it was asked for before or not.
#[test]
fn an_error_from_the_files_takes_the_plan_away() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tok")).unwrap();
    std::fs::write(dir.path().join("tok/tokenizer.json"), wordlevel(1_000)).unwrap();
    let file = dir.path().join("t.pipe");
    for asked_before in [false, true] {
        let mut checked = check(SRC);
        if asked_before {
            assert_eq!(checked.plan().unwrap().stages[0].name, "pre");
        }
        let diags = files::check(checked.pipeline.as_ref().unwrap(), &file);
        checked.diagnostics.extend(diags);
        assert!(checked.has_errors());
        assert!(checked.plan().is_none(), "a plan beside P0406");
        assert!(checked.into_plan().is_none());
    }
    // Without the error, the owned plan is the one `plan()` gives.
    let checked = check(SRC);
    let json = serde_json::to_string(checked.plan().unwrap()).unwrap();
    assert_eq!(
        serde_json::to_string(&checked.into_plan().unwrap()).unwrap(),
        json
    );
}

#[test]
fn a_missing_tokenizer_file_is_reported_at_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let checked = check(SRC);
    let diags = files::check(
        checked.pipeline.as_ref().unwrap(),
        &dir.path().join("t.pipe"),
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code.as_str(), "P0701");
    assert_eq!(line_of(SRC, &diags[0]), 3);
    let at = diags[0].primary_span();
    assert_eq!(&SRC[at.start..at.end], "\"tok/tokenizer.json\"");
}

#[test]
fn paths_resolve_under_data_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/tok")).unwrap();
    std::fs::write(dir.path().join("root/tok/tokenizer.json"), wordlevel(100)).unwrap();
    let src = SRC.replace("seq_len = 1K }", "seq_len = 1K, data_root = \"root\" }");
    let checked = check(&src);
    let p = checked.pipeline.as_ref().unwrap();
    let file = dir.path().join("t.pipe");
    assert_eq!(files::data_root(&file, p), dir.path().join("root"));
    assert!(files::check(p, &file).is_empty());
    assert!(!Path::new(&files::data_root(&file, p)).join("nope").exists());
}

/// The language server's cache: an unchanged tokenizer file is counted once however many edits
/// check it again; a rewritten one (another size) is read again and its new count is used; a
/// removed one is reported, not served from the cache.
#[test]
fn tokenizer_files_are_counted_again_only_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tok")).unwrap();
    let tok = dir.path().join("tok/tokenizer.json");
    std::fs::write(&tok, wordlevel(1_000)).unwrap();
    let checked = check(SRC);
    let p = checked.pipeline.as_ref().unwrap();
    let file = dir.path().join("t.pipe");
    let mut counts = files::TokenizerCounts::default();
    let codes = |d: Vec<pipelang::diag::Diagnostic>| -> Vec<&'static str> {
        d.iter().map(|d| d.code.as_str()).collect()
    };
    for _ in 0..5 {
        assert_eq!(
            codes(files::check_counted(p, &file, &mut counts)),
            ["P0406"]
        );
    }
    assert_eq!(counts.reads, 1);
    std::fs::write(&tok, wordlevel(200)).unwrap();
    assert!(files::check_counted(p, &file, &mut counts).is_empty());
    assert_eq!(counts.reads, 2);
    std::fs::remove_file(&tok).unwrap();
    assert_eq!(
        codes(files::check_counted(p, &file, &mut counts)),
        ["P0701"]
    );
    assert_eq!(counts.reads, 2);
}

/// A safetensors file of one tensor `w` of `dtype` and 4 elements, written by hand: 8 bytes of
/// header length, the JSON header, the data.
fn one_tensor(dtype: &str, bytes_each: usize) -> Vec<u8> {
    let n = 4 * bytes_each;
    let json = format!(r#"{{"w":{{"dtype":"{dtype}","shape":[4],"data_offsets":[0,{n}]}}}}"#);
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json.as_bytes());
    out.extend(std::iter::repeat_n(0u8, n));
    out
}

/// The language server's cache of `init` headers: an unchanged file is read once however
/// many edits check it again; a rewritten one (another size) is read again and its new
/// header decides; a removed one is reported, not served from the cache.
#[test]
fn init_headers_are_read_again_only_when_they_change() {
    use pipelang::check::init_file;
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("w.safetensors");
    std::fs::write(&st, one_tensor("F32", 4)).unwrap();
    let src = "pipeline t { seed = 1, batch = 4, seq_len = 32 }\n\
model lm = decoder { vocab = 300, d_model = 16, layers = 1, heads = 2, init = \"w.safetensors\" }\n\
data web = text(\"corpus/*.jsonl\")\n\
stage s { train = [lm], budget = 1M, data = web, lr = constant(1e-3) }\n";
    let checked = check(src);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let p = checked.pipeline.as_ref().unwrap();
    let file = dir.path().join("t.pipe");
    let mut headers = init_file::Headers::default();
    let mut codes = || -> Vec<&'static str> {
        init_file::check_cached(p, &file, &|_| None, &mut headers)
            .iter()
            .map(|d| d.code.as_str())
            .collect()
    };
    for _ in 0..5 {
        assert!(codes().is_empty());
    }
    std::fs::write(&st, one_tensor("I64", 8)).unwrap();
    assert_eq!(codes(), ["P0334"]);
    std::fs::remove_file(&st).unwrap();
    assert_eq!(codes(), ["P0330"]);
    assert_eq!(headers.reads, 2);
}
