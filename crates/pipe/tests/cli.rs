//! The `pipe` binary as a user runs it: exit codes, JSON shapes, plots on disk.

use std::process::Command;

fn pipe(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_exit_codes() {
    assert_eq!(pipe(&["check", "pipelines/kimi_vl.pipe"]).0, 0);
    assert_eq!(pipe(&["check", "crates/pipelang/tests/ui/cycle.pipe"]).0, 1);
    let (code, _, err) = pipe(&["check", "does/not/exist.pipe"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read `does/not/exist.pipe`"), "{err}");
    assert_eq!(pipe(&["check"]).0, 2, "usage errors exit with 2");
    // Warnings pass unless denied.
    assert_eq!(
        pipe(&["check", "crates/pipelang/tests/ui/unused_items.pipe"]).0,
        0
    );
    assert_eq!(
        pipe(&[
            "check",
            "crates/pipelang/tests/ui/unused_items.pipe",
            "--deny-warnings"
        ])
        .0,
        1
    );
}

#[test]
fn check_json_has_documented_fields() {
    let (code, out, _) = pipe(&[
        "check",
        "crates/pipelang/tests/ui/rope_transition_mismatch.pipe",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "P0504");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["file"],
        "crates/pipelang/tests/ui/rope_transition_mismatch.pipe"
    );
    // `100_000` in `  rope_base = 100_000 -> 800_000` on line 10.
    assert_eq!(d["line"], 10);
    assert_eq!(d["column"], 15);
    assert_eq!(d["end_line"], 10);
    assert_eq!(d["end_column"], 22);
    assert_eq!(d["labels"].as_array().unwrap().len(), 2);
    assert_eq!(
        d["labels"][1]["line"], 2,
        "the related label points at the declared rope_base"
    );
    assert!(d["help"].as_str().unwrap().contains("50000"));
    assert!(d["message"].as_str().unwrap().contains("100000"));
}

#[test]
fn json_columns_count_characters() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("u.pipe");
    std::fs::write(
        &f,
        "pipeline t { batch = 4, seq_len = 1K }\nmodel m = decoder { vocab = 8, d_model = 8, layers = 1, heads = 2 }\ndata d = text(\"é😀\", tokenizer = 5)\nstage s { train = [m], budget = 1M, data = d, lr = constant(1e-3) }\n",
    )
    .unwrap();
    let (_, out, _) = pipe(&["check", f.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "P0201")
        .expect("a type error");
    assert_eq!(d["line"], 3);
    // `5` is the 33rd character of the line (the emoji is one character, two UTF-16 units).
    assert_eq!(d["column"], 33);
    assert_eq!(d["end_column"], 34);
}

#[test]
fn plan_json_and_at_queries() {
    let (code, out, _) = pipe(&[
        "plan",
        "pipelines/kimi_vl.pipe",
        "--format",
        "json",
        "--profile",
        "smoke",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let st = &v["stages"][3];
    assert_eq!(st["name"], "joint_pretrain");
    for key in [
        "phases",
        "steps",
        "tokens",
        "tokens_per_step",
        "seq_len",
        "rope_base",
        "lr",
        "mix",
    ] {
        assert!(!st[key].is_null(), "missing {key}");
    }
    assert_eq!(st["lr"]["peak"], 4e-4);
    assert_eq!(st["mix"]["start"]["web_text"], 1.0);
    assert!((st["mix"]["end"]["web_text"].as_f64().unwrap() - 0.6).abs() < 1e-12);
    let (code, out, _) = pipe(&[
        "plan",
        "pipelines/kimi_vl.pipe",
        "--profile",
        "smoke",
        "--format",
        "json",
        "--at",
        "joint_long_context.ctx_128k@end",
    ]);
    assert_eq!(code, 0);
    let at: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "stage",
        "phase",
        "step",
        "tokens",
        "lr",
        "seq_len",
        "rope_base",
        "mix",
    ] {
        assert!(!at[key].is_null(), "missing {key}");
    }
    assert_eq!(at["seq_len"], 512);
    // 800,000 at full scale; the smoke profile scales RoPE bases by 1/256 with the contexts.
    assert_eq!(at["rope_base"]["llm"], 3125.0);
    let (code, _, err) = pipe(&["plan", "pipelines/kimi_vl.pipe", "--at", "nope@1"]);
    assert_eq!(code, 2);
    assert!(err.contains("no stage `nope`"));
}

#[test]
fn plan_of_a_broken_pipeline_is_refused() {
    let (code, _, err) = pipe(&["plan", "crates/pipelang/tests/ui/cycle.pipe"]);
    assert_eq!(code, 1);
    assert!(err.contains("P0301"));
}

#[test]
fn plots_are_written_and_not_trivial() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("plan.png");
    let svg = dir.path().join("plan.svg");
    assert_eq!(
        pipe(&[
            "plan",
            "pipelines/kimi_vl.pipe",
            "--plot",
            png.to_str().unwrap()
        ])
        .0,
        0
    );
    assert_eq!(
        pipe(&[
            "plan",
            "pipelines/kimi_vl.pipe",
            "--plot",
            svg.to_str().unwrap()
        ])
        .0,
        0
    );
    let img = image::open(&png).unwrap().to_rgb8();
    // The figure's height follows its lanes and label rows; its width is fixed.
    assert_eq!(img.width(), 1600);
    assert!(img.height() > 1000, "{}", img.height());
    // A blank figure compresses to almost nothing; ours has curves, bands and text.
    assert!(std::fs::metadata(&png).unwrap().len() > 30_000);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    // Every panel, by its caption; the legends' titles; every stage; every source in use.
    for needle in [
        "learning rate",
        "data mixture (stacked shares), a row per lane",
        "sequence length (log scale)",
        "RoPE base (log scale) and scaling, per decoder",
        "batch: sequences per step",
        "tokens per step",
        "sources",
        "decoders",
        "curves by lane",
        "stages in parallel lanes",
        "vit_coca (2T)",
        "text_pretrain (5.2T)",
        "vit_align* (100B)", // widened to stay visible
        "joint_long_context (300B)",
        "web_text",
        "hq_multimodal",
        "long_video",
        "caption_decoder",
        "<polyline",
    ] {
        assert!(text.contains(needle), "svg lacks {needle}");
    }
    // Ticks as the recipe writes them: lengths 1,024-based, RoPE bases 1,000-based (plotters
    // writes each text on a line of its own).
    for tick in ["4K", "8K", "32K", "128K", "50K", "800K"] {
        assert!(
            text.contains(&format!("\n{tick}\n")),
            "svg lacks the tick {tick}"
        );
    }
    for wrong in ["10000", "1M", "131072"] {
        assert!(
            !text.contains(&format!("\n{wrong}\n")),
            "svg has the tick {wrong}"
        );
    }
    let ron_path = dir.path().join("plan.ron");
    assert_eq!(
        pipe(&[
            "plan",
            "pipelines/kimi_vl.pipe",
            "--emit-ron",
            ron_path.to_str().unwrap()
        ])
        .0,
        0
    );
    let ron_text = std::fs::read_to_string(&ron_path).unwrap();
    assert!(ron_text.contains("joint_cooldown"));
}

#[test]
fn check_reports_an_unreadable_file_in_the_format_asked_for() {
    let (code, out, _) = pipe(&[
        "check",
        "no/such.pipe",
        "pipelines/kimi_vl.pipe",
        "--format",
        "json",
    ]);
    assert_eq!(code, 2, "an unreadable file is an I/O problem");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    let d = &v["diagnostics"];
    // The reference's own entries are its notes (P0510, advice); the one error is the I/O one.
    let errors: Vec<_> = d
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["severity"] != "advice")
        .collect();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(d[0]["file"], "no/such.pipe");
    assert_eq!(d[0]["severity"], "error");
    assert!(
        d[0]["message"].as_str().unwrap().contains("cannot read"),
        "{v}"
    );
}
