//! `pipe prepare-data` as a user runs it, and its files read back by the engines' own code
//! (megatron-core's `IndexedDataset`, OLMo-core's `NumpyFSLDataset` and
//! `iter_document_indices`, from the pinned venv in `.tools/engines`): token for token what
//! pipelang's tokenizers give for the same documents, with the same boundaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use pipelang_runtime::data::Tokenizer;

use pipelang_test_support::parquet as parquet_fixture;

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

/// The pinned engines' Python; missing is a failure, never a skip.
fn engine_python() -> PathBuf {
    pipelang_engine::python::for_tests(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

fn read_back(script: &str, out: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/engines")
        .join(script);
    let o = Command::new(engine_python())
        .arg(&script)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("the reader prints JSON")
}

/// A WordLevel tokenizer.json with `n` words `w0..`.
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

/// The documents of each source, as pipelang's tokenizer reads them (tokens then EOS), in
/// file order: what every engine must read back.
struct Corpus {
    dir: tempfile::TempDir,
    web: Vec<Vec<u32>>,
    words: Vec<Vec<u32>>,
    big: Vec<Vec<u32>>,
}

fn jsonl(docs: &[String]) -> String {
    docs.iter()
        .map(|d| serde_json::json!({ "text": d }).to_string() + "\n")
        .collect()
}

fn doc(t: &Tokenizer, text: &str) -> Vec<u32> {
    let mut ids = t.encode(text).unwrap();
    ids.push(t.specials().eod);
    ids
}

fn corpus() -> Corpus {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["web", "books", "words", "big"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let bytes = Tokenizer::Bytes;
    // Bytes: two JSONL files (unicode, a blank line skipped as training skips it) and a plain
    // text file, one document of its lines.
    let a: Vec<String> = (0..40)
        .map(|i| format!("document {i}: héllo wörld {}", "ab".repeat(i % 7)))
        .collect();
    let b = vec!["ünïcode ✓".to_string(), "x".into()];
    std::fs::write(d.join("web/a.jsonl"), jsonl(&a).replace("\n{", "\n\n{")).unwrap();
    std::fs::write(d.join("web/b.jsonl"), jsonl(&b)).unwrap();
    std::fs::write(d.join("books/c.txt"), "line one\n\n  line two\r\nlast").unwrap();
    // The files of a source in path order, whatever glob found them (as training reads them).
    let mut web = vec![bytes.encode("line one\n  line two\nlast\n").unwrap()];
    web[0].push(bytes.specials().eod);
    web.extend(a.iter().chain(&b).map(|t| doc(&bytes, t)));

    // A small HF tokenizer (uint16) and one past 65,536 ids (uint32 / int32).
    std::fs::write(d.join("small.json"), wordlevel(100)).unwrap();
    std::fs::write(d.join("big.json"), wordlevel(70_000)).unwrap();
    let small = Tokenizer::from_hf_file(&d.join("small.json")).unwrap();
    let big_t = Tokenizer::from_hf_file(&d.join("big.json")).unwrap();
    let w: Vec<String> = (0..300)
        .map(|i| {
            (0..(i % 13 + 1))
                .map(|k| format!("w{}", (i * 7 + k) % 120))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    std::fs::write(d.join("words/w.jsonl"), jsonl(&w)).unwrap();
    // And a Parquet file of two row groups with a null row: its rows follow w.jsonl's records.
    let rows: Vec<Option<String>> = (0..30)
        .map(|i| (i != 4).then(|| format!("w{} w{}", i, 99 - i)))
        .collect();
    parquet_fixture::write(
        &d.join("words/x.parquet"),
        &[rows[..10].to_vec(), rows[10..].to_vec()],
    );
    let g: Vec<String> = (0..50)
        .map(|i| format!("w{} w{} w69999", 65_000 + i * 17, i))
        .collect();
    std::fs::write(d.join("big/g.jsonl"), jsonl(&g)).unwrap();
    std::fs::write(
        d.join("p.pipe"),
        "pipeline t { seed = 1, batch = 4, seq_len = 32 }\n\
         model a = decoder { vocab = 70016, d_model = 16, layers = 1, heads = 2 }\n\
         model b = decoder { vocab = 70016, d_model = 16, layers = 1, heads = 2 }\n\
         model c = decoder { vocab = 70016, d_model = 16, layers = 1, heads = 2 }\n\
         data web = text(\"web/*.jsonl\", \"books/*.txt\")\n\
         data words = text(\"words/*.jsonl\", \"words/*.parquet\", tokenizer = \"small.json\")\n\
         data big = text(\"big/*.jsonl\", tokenizer = \"big.json\")\n\
         // One decoder per tokenizer: a decoder fed through two would be P0407.\n\
         stage sa { train = [a], budget = 1_024, lr = constant(1e-3), data = web }\n\
         stage sb { train = [b], budget = 1_024, lr = constant(1e-3), data = words }\n\
         stage sc { train = [c], budget = 1_024, lr = constant(1e-3), data = big }\n",
    )
    .unwrap();
    Corpus {
        web,
        words: w
            .iter()
            .chain(rows.iter().flatten())
            .map(|t| doc(&small, t))
            .collect(),
        big: g.iter().map(|t| doc(&big_t, t)).collect(),
        dir,
    }
}

fn prepare(dir: &Path, format: &str) -> String {
    let (status, out, err) = pipe(
        &[
            "prepare-data",
            "p.pipe",
            "--format",
            format,
            "--out",
            "prep",
        ],
        dir,
    );
    assert_eq!(status, 0, "{out}\n{err}");
    err
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("prep/manifest.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn megatron_core_reads_every_document_back() {
    let c = corpus();
    let d = c.dir.path();
    prepare(d, "megatron");
    let m = manifest(d);
    let back = read_back("read_megatron.py", &d.join("prep"));
    for (name, docs, dtype) in [
        ("web", &c.web, "uint16"),
        ("words", &c.words, "uint16"),
        ("big", &c.big, "int32"),
    ] {
        let got: Vec<Vec<u32>> = back[name]["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(ids)
            .collect();
        assert_eq!(&got, docs, "source {name}");
        assert_eq!(back[name]["dtypes"], serde_json::json!([dtype]), "{name}");
        let src = m["sources"].as_array().unwrap();
        let s = src.iter().find(|s| s["name"] == name).unwrap();
        assert_eq!(s["documents"], docs.len() as u64);
        assert_eq!(
            s["tokens"],
            docs.iter().map(|x| x.len() as u64).sum::<u64>()
        );
        assert_eq!(s["dtype"], dtype);
    }
    // One shard per input file: web has two JSONL files and a text file.
    assert_eq!(m["sources"][0]["shards"].as_array().unwrap().len(), 3);
}

#[test]
fn olmo_core_reads_the_same_tokens_and_boundaries() {
    let c = corpus();
    let d = c.dir.path();
    prepare(d, "olmo-core");
    let m = manifest(d);
    let back = read_back("read_olmo_core.py", &d.join("prep"));
    for (name, docs, dtype) in [
        ("web", &c.web, "uint16"),
        ("words", &c.words, "uint16"),
        ("big", &c.big, "uint32"),
    ] {
        let s = m["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap();
        assert_eq!(s["dtype"], dtype);
        let stream: Vec<u32> = docs.iter().flatten().copied().collect();
        let b = &back[name];
        assert_eq!(ids(&b["stream"]), stream, "source {name}");
        // Boundaries per file, from the EOS tokens in the array and from the metadata file,
        // against the documents' lengths in that file.
        let mut expected_files: Vec<Vec<(u64, u64)>> = vec![];
        let mut k = 0;
        for shard in s["shards"].as_array().unwrap() {
            let n = shard["documents"].as_u64().unwrap() as usize;
            let mut start = 0u64;
            let mut spans = vec![];
            for doc in &docs[k..k + n] {
                spans.push((start, start + doc.len() as u64));
                start += doc.len() as u64;
            }
            k += n;
            expected_files.push(spans);
        }
        assert_eq!(k, docs.len());
        for key in ["from_array", "from_metadata"] {
            let got: Vec<Vec<(u64, u64)>> = b[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    f.as_array()
                        .unwrap()
                        .iter()
                        .map(|se| (se[0].as_u64().unwrap(), se[1].as_u64().unwrap()))
                        .collect()
                })
                .collect();
            assert_eq!(got, expected_files, "{name}: {key}");
        }
        // Instances of 7 tokens, each file cut on its own, with the document lengths
        // OLMo-core computes from EOS.
        let mut expected_chunks = vec![];
        let mut k = 0;
        for spans in &expected_files {
            let file: Vec<u32> = docs[k..k + spans.len()].iter().flatten().copied().collect();
            k += spans.len();
            for ch in file.chunks_exact(7) {
                expected_chunks.push(ch.to_vec());
            }
        }
        let chunks = b["chunks"].as_array().unwrap();
        let got: Vec<Vec<u32>> = chunks.iter().map(|c| ids(&c["input_ids"])).collect();
        assert_eq!(got, expected_chunks, "{name}");
        let eos = s["eos"].as_u64().unwrap() as u32;
        for (c, ch) in chunks.iter().zip(&expected_chunks) {
            let mut lens = vec![];
            let mut run = 0;
            for &t in ch {
                run += 1;
                if t == eos {
                    lens.push(run);
                    run = 0;
                }
            }
            if run > 0 {
                lens.push(run);
            }
            assert_eq!(ids(&c["doc_lens"]), lens, "{name}");
        }
    }
}

/// Every file under `prep/`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_rerun_after_an_interruption_skips_finished_shards_and_rebuilds_the_rest() {
    let c = corpus();
    let d = c.dir.path();
    prepare(d, "megatron");
    let whole = snapshot(&d.join("prep"));
    let err = prepare(d, "megatron");
    assert!(err.contains("skipped 6 shard(s)"), "{err}");
    assert!(err.contains("tokenised 0 shard(s)"), "{err}");
    assert_eq!(snapshot(&d.join("prep")), whole);

    // What a kill leaves: a shard whose record was never written over a half-written file,
    // a temporary file, no manifest.
    let web = d.join("prep/web");
    std::fs::remove_file(web.join("part-00001.done.json")).unwrap();
    std::fs::write(web.join("part-00001.bin"), b"half").unwrap();
    std::fs::write(web.join(".part-00002.idx.tmp999"), b"partial").unwrap();
    std::fs::remove_file(d.join("prep/manifest.json")).unwrap();
    let err = prepare(d, "megatron");
    assert!(err.contains("skipped 5 shard(s)"), "{err}");
    assert!(err.contains("tokenised 1 shard(s)"), "{err}");
    assert_eq!(
        snapshot(&d.join("prep")),
        whole,
        "the same files as one clean run"
    );

    // An input that changed is tokenised again; so is every shard of another format.
    std::fs::write(d.join("web/b.jsonl"), jsonl(&["changed".into()])).unwrap();
    let err = prepare(d, "megatron");
    assert!(err.contains("tokenised 1 shard(s)"), "{err}");
    let m = manifest(d);
    assert_eq!(m["sources"][0]["shards"][2]["documents"], 1);
}

#[test]
fn check_data_reads_the_manifest_while_the_files_hash_the_same() {
    let c = corpus();
    let d = c.dir.path();
    prepare(d, "olmo-core");
    let counted = pipe(&["check", "p.pipe", "--data", "--format", "json"], d);
    let read = pipe(
        &[
            "check",
            "p.pipe",
            "--data",
            "--prepared",
            "prep",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!((counted.0, read.0), (0, 0), "{}\n{}", counted.2, read.2);
    let rows = |s: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        v["data"][0]["report"]["sources"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (a, b) = (rows(&counted.1), rows(&read.1));
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["prepared"], false);
        assert_eq!(y["prepared"], true, "{y}");
        for k in ["files", "bytes", "documents", "tokens"] {
            assert_eq!(x[k], y[k], "{}: {k}", x["name"]);
        }
    }
    // A file edited since: that source is tokenised again, the others are still read.
    std::fs::write(d.join("words/w.jsonl"), jsonl(&["w1 w2".into()])).unwrap();
    let again = pipe(
        &[
            "check",
            "p.pipe",
            "--data",
            "--prepared",
            "prep",
            "--format",
            "json",
        ],
        d,
    );
    let rows = rows(&again.1);
    let words = rows.iter().find(|r| r["name"] == "words").unwrap();
    assert_eq!(words["prepared"], false);
    // The one record left in w.jsonl and the 29 non-null rows of x.parquet.
    assert_eq!(words["documents"], 1 + 29);
    assert_eq!(rows.iter().filter(|r| r["prepared"] == true).count(), 2);
}

#[test]
fn a_bad_record_is_located_and_the_other_shards_are_kept() {
    let c = corpus();
    let d = c.dir.path();
    std::fs::write(d.join("web/b.jsonl"), "{\"text\": \"ok\"}\n{\"text\": 5}\n").unwrap();
    let (status, _, err) = pipe(
        &[
            "prepare-data",
            "p.pipe",
            "--format",
            "olmo-core",
            "--out",
            "prep",
        ],
        d,
    );
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("b.jsonl:2"), "{err}");
    assert!(err.contains("data source `web`"), "{err}");
    assert!(!d.join("prep/manifest.json").exists());
    assert!(d.join("prep/web/part-00000.done.json").exists());
    assert!(!d.join("prep/web/part-00002.done.json").exists());
}
