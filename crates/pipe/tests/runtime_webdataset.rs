//! WebDataset image-text sources end to end: `pipe check --data` counts the samples of a brace
//! range of tar shards, warns about the bad ones (no caption, no image, an image that does not
//! decode) and locates a truncated shard; a vision stage trained on them, killed with SIGKILL
//! and resumed, ends bit-identical to an uninterrupted run (the cursor is shard, byte, sample).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use pipelang_test_support::tar as tar_fixture;

fn pipe(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
    c.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Four shards of six samples, images in PNG, JPEG and (one) WebP; shard 1 holds a sample
/// without a caption, one without an image and one whose image does not decode. Captions are in `.txt` and in `.json` (`caption`).
fn shards(dir: &Path) {
    std::fs::create_dir_all(dir.join("laion")).unwrap();
    for shard in 0..4u32 {
        let mut entries = vec![];
        for k in 0..6u32 {
            let key = format!("{shard:02}{k:04}");
            let caption = format!("shard {shard} sample {k}{}", " la".repeat(k as usize));
            let image = match (shard, k) {
                (1, 2) => None,
                (1, 3) => Some(("png", b"\x89PNG but not really".to_vec())),
                (3, 0) => Some(("webp", tar_fixture::webp(16, 16, 30))),
                (_, k) if k % 2 == 0 => Some(("png", tar_fixture::png(16, 16, shard * 10 + k))),
                _ => Some(("jpg", tar_fixture::jpeg(24, 16, shard * 10 + k))),
            };
            if let Some((ext, bytes)) = image {
                entries.push((format!("{key}.{ext}"), bytes));
            }
            if (shard, k) != (1, 1) {
                entries.push((format!("{key}.txt"), caption.clone().into_bytes()));
                let json = serde_json::json!({ "caption": format!("alt {caption}"), "w": 16 });
                entries.push((format!("{key}.json"), json.to_string().into_bytes()));
            }
        }
        tar_fixture::write(&dir.join(format!("laion/{shard:05}.tar")), &entries);
    }
}

fn recipe(data: &str) -> String {
    format!(
        "pipeline w {{ seed = 5, batch = 4, seq_len = 64 }}\n\
         model vit = vit {{ patch = 4, d_model = 32, layers = 1, heads = 2, max_image_side = 16 }}\n\
         model proj = projector(vit -> lm) {{ pixel_shuffle = 2 }}\n\
         model lm = decoder {{ vocab = 300, d_model = 32, layers = 1, heads = 2 }}\n\
         {data}\n\
         stage align {{ train = [vit, proj, lm], budget = 12_800, data = laion, \
         lr = cosine(peak = 3e-3, warmup = 10%, min = 3e-4) }}\n"
    )
}

const TXT: &str = "data laion = image_text(\"laion/{00000..00003}.tar\")";

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

fn diagnostic<'v>(v: &'v serde_json::Value, code: &str) -> &'v serde_json::Value {
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {v}"))
}

#[test]
fn check_data_counts_samples_reports_bad_ones_and_locates_a_truncated_shard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let src = recipe(TXT);
    std::fs::write(d.join("w.pipe"), &src).unwrap();
    let (code, v) = json_out(&mut pipe(
        &["check", "w.pipe", "--data", "--format", "json"],
        d,
    ));
    assert_eq!(code, 0, "{v}");
    let row = &v["data"][0]["report"]["sources"][0];
    assert_eq!(row["files"], 4);
    assert_eq!(row["documents"], 21, "{row}");
    assert_eq!(row["images"], 21);
    assert_eq!(row["bad_samples"], 3);
    let warn = diagnostic(&v, "P0703");
    let msg = warn["message"].as_str().unwrap();
    assert!(msg.contains("3 of 24 samples are skipped"), "{msg}");
    assert!(
        msg.contains("00001.tar, sample 2 (`010001`): no caption"),
        "{msg}"
    );
    assert!(msg.contains("sample 3 (`010002`): no image"), "{msg}");
    assert!(msg.contains("`010003.png` cannot be decoded"), "{msg}");
    let glob_line = src.lines().position(|l| l.contains("laion/{")).unwrap() + 1;
    assert_eq!(warn["labels"][0]["line"], glob_line as u64);

    // The same shards with the captions of the .json: the sample without a .txt has none
    // there either; "alt " adds four bytes to each of the 21 captions.
    let tokens = row["tokens"].as_u64().unwrap();
    let src_json =
        recipe("data laion = image_text(\"laion/{00000..00003}.tar\") { caption = \"caption\" }");
    std::fs::write(d.join("w.pipe"), &src_json).unwrap();
    let (code, v) = json_out(&mut pipe(
        &["check", "w.pipe", "--data", "--format", "json"],
        d,
    ));
    assert_eq!(code, 0, "{v}");
    let row = &v["data"][0]["report"]["sources"][0];
    assert_eq!(
        (row["documents"].as_u64(), row["tokens"].as_u64()),
        (Some(21), Some(tokens + 4 * 21))
    );

    // A shard cut short is an error at the glob naming the shard and the byte.
    std::fs::write(d.join("w.pipe"), &src).unwrap();
    let p = d.join("laion/00002.tar");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (code, v) = json_out(&mut pipe(
        &["check", "w.pipe", "--data", "--format", "json"],
        d,
    ));
    assert_eq!(code, 1, "{v}");
    let err = diagnostic(&v, "P0701");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("00002.tar: byte") && msg.contains("truncated"),
        "{msg}"
    );
    assert_eq!(err["labels"][0]["line"], glob_line as u64);

    // And `pipe run` stops at it with the same words, once it gets there.
    let o = pipe(&["run", "w.pipe", "--out", "run"], d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("00002.tar: byte") && err.contains("truncated"),
        "{err}"
    );
}

fn final_hash(out: &Path) -> String {
    common::model_hash(&out.join("checkpoints/align/final.safetensors"))
}

#[test]
fn a_vision_stage_on_tar_shards_killed_and_resumed_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    std::fs::write(d.join("w.pipe"), recipe(TXT)).unwrap();
    let run = |out: &str| {
        pipe(
            &["run", "w.pipe", "--out", out, "--checkpoint-every", "7"],
            d,
        )
    };
    let o = run("clean").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The bad samples are said at the stage's end and recorded in the source's cursor.
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        out.contains("laion:") && out.contains("bad samples skipped"),
        "{out}"
    );
    let ron = std::fs::read_to_string(d.join("clean/run.ron")).unwrap();
    assert!(ron.contains("bad_samples:"), "{ron}");

    // 50 steps in all; the kill step is drawn from the clock: any step must work.
    let kill_at = common::any_step(5, 40);
    let killed = d.join("killed");
    let mut child = run("killed").spawn().unwrap();
    common::wait_for_steps(&mut child, &killed, kill_at);
    child.kill().unwrap();
    child.wait().unwrap();
    let o = pipe(&["run", "w.pipe", "--out", "killed", "--resume"], d)
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
    let resumed = std::fs::read_to_string(killed.join("run.ron")).unwrap();
    let bad = |r: &str| {
        r.lines()
            .filter(|l| l.contains("bad_samples:"))
            .map(str::trim)
            .last()
            .map(String::from)
    };
    assert_eq!(bad(&ron), bad(&resumed));
}

#[test]
fn prepare_data_names_an_image_source_it_cannot_tokenise_where_it_is_declared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let src = recipe(TXT);
    std::fs::write(d.join("w.pipe"), &src).unwrap();
    let o = pipe(
        &[
            "prepare-data",
            "w.pipe",
            "--format",
            "olmo-core",
            "--out",
            "prep",
        ],
        d,
    )
    .output()
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = src
        .lines()
        .position(|l| l.starts_with("data laion"))
        .unwrap()
        + 1;
    assert!(
        out.contains(&format!("w.pipe:{line}:6: data source `laion` (image_text data) skipped: an image source has no engine token files")),
        "{out}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("prep/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["skipped"][0]["name"], "laion", "{m}");
}
