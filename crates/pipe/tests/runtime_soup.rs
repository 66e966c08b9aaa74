//! `pipe run` on variants and a soup: the variants train side by side from the same parent
//! (each with its own seed, so their weights differ), the soup's checkpoint is the element-wise
//! mean of their final weights (read back from the safetensors files), and the stage after the
//! soup trains from it. The soup is added by an edit and computed by `--resume` in a second
//! process, from the checkpoints the first one wrote.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const PIPELINE: &str = r#"
pipeline soup_test {
  seed        = 5
  batch       = 2
  seq_len     = 32
  sample_data = "SAMPLE"
}
model lm = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage pre { train = [lm], budget = 6 steps, lr = constant(1e-3), data = web }
stage mid after pre vary seed = [1, 2, 3] {
  train = [lm], budget = 4 steps, lr = linear(from = 1e-3, to = 0), data = web
}
stage soup = average(mid[1] = 50%, mid[2] = 25%, mid[3] = 25%)
stage tail after soup { train = [lm], budget = 3 steps, lr = constant(1e-4), data = web }
"#;

fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(k, _)| k.starts_with("model/"))
        .map(|(k, v)| {
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{k}");
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (k, (v.shape().to_vec(), vals))
        })
        .collect()
}

fn run(file: &Path, out: &Path, resume: bool) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
    c.arg("run").arg(file).arg("--out").arg(out);
    if resume {
        c.arg("--resume");
    }
    c.output().unwrap()
}

#[test]
fn the_soup_is_the_weighted_mean_of_its_variants() {
    let dir = tempfile::tempdir().unwrap();
    let sample =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("sample_data/kimi_vl");
    let src = PIPELINE.replace("SAMPLE", sample.to_str().unwrap());
    let file = dir.path().join("soup.pipe");
    std::fs::write(&file, &src).unwrap();
    let out = dir.path().join("run");
    let cut = src.find("stage soup").unwrap();
    std::fs::write(&file, &src[..cut]).unwrap();
    let r = run(&file, &out, false);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!out.join("checkpoints/soup").exists());
    std::fs::write(&file, &src).unwrap();
    let r = run(&file, &out, true);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let log = String::from_utf8_lossy(&r.stderr).to_string() + &String::from_utf8_lossy(&r.stdout);
    assert!(
        log.contains("stage soup: the average of mid[1], mid[2], mid[3]"),
        "{log}"
    );
    let ck = |stage: &str| tensors(&out.join(format!("checkpoints/{stage}/final.safetensors")));
    let (m1, m2, m3, soup) = (ck("mid-1"), ck("mid-2"), ck("mid-3"), ck("soup"));
    assert!(!soup.is_empty());
    assert_eq!(
        soup.keys().collect::<Vec<_>>(),
        m1.keys().collect::<Vec<_>>()
    );
    let mut differ = false;
    for (k, (shape, s)) in &soup {
        let (a, b, c) = (&m1[k].1, &m2[k].1, &m3[k].1);
        assert_eq!(shape, &m1[k].0, "{k}");
        for i in 0..s.len() {
            let want = 0.5 * a[i] as f64 + 0.25 * b[i] as f64 + 0.25 * c[i] as f64;
            // The mean is taken in f64 and stored in f32: one rounding.
            assert!(
                (s[i] as f64 - want).abs() <= f32::EPSILON as f64 * want.abs().max(1e-30),
                "{k}[{i}]: {} != {want}",
                s[i]
            );
        }
        differ |= a != b;
    }
    // Another seed, another data order: the variants' weights differ.
    assert!(differ, "the variants trained to the same weights");
    // The soup has no optimizer state; the stage after it trained from its weights.
    let bytes = std::fs::read(out.join("checkpoints/soup/final.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.names().iter().all(|n| n.starts_with("model/")));
    assert!(out.join("checkpoints/tail/final.safetensors").exists());
    let record = std::fs::read_to_string(out.join("run.ron")).unwrap();
    assert!(record.contains("\"mid[2]\""), "{record}");

    // Resumed once more, the finished run has nothing left to do and keeps the soup as it is.
    let before = std::fs::read(out.join("checkpoints/soup/final.safetensors")).unwrap();
    let again = run(&file, &out, true);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let after = std::fs::read(out.join("checkpoints/soup/final.safetensors")).unwrap();
    assert_eq!(before, after);
}
