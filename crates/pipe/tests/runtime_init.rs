//! `init = "PATH"`: a checkpoint the runtime wrote, read back as a model's starting weights
//! (the round trip), and `pipe check`'s header check of names, shapes and dtypes against the
//! parameters the runtime builds, on real safetensors files.

mod common;

use std::path::Path;

use common::{model_hash, pipe, run_to_end, write_pipeline_text};

/// `first` on `web`, `second` on `hq` with its own schedule: `second` depends on `first` only
/// through the weights it starts from.
fn pipeline(second_after: &str, init: &str) -> String {
    format!(
        r#"
pipeline init_test {{
  seed        = 11
  batch       = 4
  seq_len     = 32
  sample_data = "SAMPLE"
}}
model lm = decoder {{ vocab = 300, d_model = 32, layers = 1, heads = 2 {init} }}
data web = text("corpus/text/*.jsonl")
data hq  = text("corpus/text_hq/*.jsonl")
stage first {{
  train  = [lm]
  budget = 2_048          // 16 steps
  lr     = constant(2e-3)
  data   = web
}}
stage second {second_after} {{
  train  = [lm]
  budget = 1_024          // 8 steps
  lr     = constant(1e-3)
  data   = hq
}}
"#
    )
}

/// Only `second`, starting from `init`.
fn from_init(init: &str) -> String {
    let full = pipeline("", &format!(", init = \"{init}\""));
    // Drop `first`: `second` is the only stage, and its weights can only come from `init`.
    let start = full.find("stage first").unwrap();
    let end = full.find("stage second").unwrap();
    format!("{}{}", &full[..start], &full[end..])
        .replace("data web = text(\"corpus/text/*.jsonl\")\n", "")
}

/// `pipe check` on `text`: its exit status and standard error.
fn check(dir: &Path, text: &str) -> (bool, String) {
    let f = write_pipeline_text(dir, "check.pipe", text);
    let o = pipe(&["check", f.to_str().unwrap()]).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_checkpoint_the_runtime_wrote_is_the_start_of_a_model_with_init() {
    let dir = tempfile::tempdir().unwrap();
    // Run 1: both stages, `second` after `first`.
    let chained = write_pipeline_text(dir.path(), "chained.pipe", &pipeline("after first", ""));
    let one = dir.path().join("one");
    run_to_end(&chained, &one);
    let ck = one.join("checkpoints/first/final.safetensors");

    // Run 2: `second` alone, its model starting from run 1's checkpoint of `first`.
    let text = from_init(ck.to_str().unwrap());
    let (ok, err) = check(dir.path(), &text);
    assert!(ok, "{err}");
    let alone = write_pipeline_text(dir.path(), "alone.pipe", &text);
    let two = dir.path().join("two");
    run_to_end(&alone, &two);
    // Same data, seed and schedule: `second` ends with the same bits only if it started from
    // exactly the weights `first` handed over in run 1.
    assert_eq!(
        model_hash(&one.join("checkpoints/second/final.safetensors")),
        model_hash(&two.join("checkpoints/second/final.safetensors"))
    );
    // A relative path resolves from the pipeline file's folder.
    std::fs::copy(&ck, dir.path().join("base.safetensors")).unwrap();
    let (ok, err) = check(dir.path(), &from_init("base.safetensors"));
    assert!(ok, "{err}");
}

/// Writes a safetensors file of `tensors` (name, dtype, shape), zeros.
fn write_st(path: &Path, tensors: &[(&str, safetensors::Dtype, Vec<usize>)]) {
    let data: Vec<(String, Vec<u8>, safetensors::Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|(n, d, s)| {
            let bytes = s.iter().product::<usize>() * d.bitsize() / 8;
            (n.to_string(), vec![0u8; bytes], *d, s.clone())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(n, b, d, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn init_files_are_checked_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A real checkpoint of this model, to edit.
    let chained = write_pipeline_text(d, "chained.pipe", &pipeline("after first", ""));
    run_to_end(&chained, &d.join("one"));
    let ck = d.join("one/checkpoints/first/final.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.starts_with("model/lm/"))
        .map(|n| n.to_string())
        .collect();
    let shape_of = |n: &str| st.tensor(n).unwrap().shape().to_vec();
    let vocab_param = names
        .iter()
        .find(|n| shape_of(n).first() == Some(&300))
        .expect("a parameter with the vocabulary as its first dimension")
        .clone();

    let expect = |init: &str, code: &str, words: &[&str]| {
        let (ok, err) = check(d, &from_init(init));
        assert!(!ok, "{init}: {err}");
        assert!(err.contains(code), "{init}: expected {code}: {err}");
        for w in words {
            assert!(err.contains(w), "{init}: expected `{w}` in {err}");
        }
    };
    expect("nowhere.safetensors", "P0330", &["does not exist"]);
    std::fs::create_dir_all(d.join("empty_folder")).unwrap();
    expect("empty_folder", "P0330", &["model.safetensors.index.json"]);
    std::fs::write(
        d.join("garbage.safetensors"),
        b"this is not a tensor file at all",
    )
    .unwrap();
    expect("garbage.safetensors", "P0331", &["not a safetensors file"]);

    // Hugging Face names: reported with the naming that is expected.
    write_st(
        &d.join("hf.safetensors"),
        &[(
            "model.embed_tokens.weight",
            safetensors::Dtype::F32,
            vec![300, 32],
        )],
    );
    expect(
        "hf.safetensors",
        "P0332",
        &["pipelang's own", "model.embed_tokens.weight"],
    );

    // The same names and shapes but one tensor with the vocabulary of another model.
    let edited = |dtype_of: &dyn Fn(&str) -> safetensors::Dtype,
                  shape: &dyn Fn(&str) -> Vec<usize>| {
        names
            .iter()
            .map(|n| (n.as_str(), dtype_of(n), shape(n)))
            .collect::<Vec<_>>()
    };
    let wider = edited(&|_| safetensors::Dtype::F32, &|n| {
        let mut s = shape_of(n);
        if n == vocab_param {
            s[0] = 512;
        }
        s
    });
    write_st(&d.join("wide.safetensors"), &wider);
    expect(
        "wide.safetensors",
        "P0333",
        &["[512", "[300", "`vocab = 300`"],
    );

    let ints = edited(
        &|n| {
            if n == vocab_param {
                safetensors::Dtype::I64
            } else {
                safetensors::Dtype::F32
            }
        },
        &|n| shape_of(n),
    );
    write_st(&d.join("ints.safetensors"), &ints);
    expect("ints.safetensors", "P0334", &["I64"]);

    // bf16 weights of the right shapes are read (as f32).
    let halves = edited(&|_| safetensors::Dtype::BF16, &|n| shape_of(n));
    write_st(&d.join("bf16.safetensors"), &halves);
    let (ok, err) = check(d, &from_init("bf16.safetensors"));
    assert!(ok, "{err}");
}
