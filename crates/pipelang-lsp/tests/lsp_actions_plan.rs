//! `pipe lsp` quick fixes (textDocument/codeAction) and the plan picture (`pipelang/plan`), over
//! an in-memory connection like tests/lsp_protocol.rs.

mod lsp_support;

use lsp_support::{Client, pos, problems, reference, uri};
use serde_json::{Value, json};

/// Applies a WorkspaceEdit's edits for `u` to `text` (UTF-16 columns; the recipes are ASCII).
fn apply(text: &str, edit: &Value, u: &str) -> String {
    let mut edits: Vec<&Value> = edit["changes"][u].as_array().unwrap().iter().collect();
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let col = p["character"].as_u64().unwrap() as usize;
        text.split_inclusive('\n')
            .take(line)
            .map(str::len)
            .sum::<usize>()
            + col
    };
    edits.sort_by_key(|e| std::cmp::Reverse(offset(&e["range"]["start"])));
    let mut out = text.to_string();
    for e in edits {
        let (a, b) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
        out.replace_range(a..b, e["newText"].as_str().unwrap());
    }
    out
}

fn actions(c: &mut Client, u: &str, diag: &Value) -> Vec<Value> {
    let r = c.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": u },
            "range": diag["range"],
            "context": { "diagnostics": [diag] },
        }),
    );
    r.as_array().unwrap().clone()
}

#[test]
fn a_misspelt_name_has_a_quick_fix_that_makes_the_file_clean() {
    let mut c = Client::start();
    let u = uri("quickfix.pipe");
    let good = reference();
    // `llmm`, not `lmm`: close enough to `llm` for a did-you-mean.
    let broken = good.replacen("train  = [llm]", "train  = [llmm]", 1);
    let d = c.open(&u, &broken);
    let diag = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "P0101")
        .expect("an undeclared name")
        .clone();
    let acts = actions(&mut c, &u, &diag);
    assert_eq!(acts.len(), 1, "{acts:?}");
    let a = &acts[0];
    assert_eq!(a["title"], "change to `llm`");
    assert_eq!(a["kind"], "quickfix");
    assert_eq!(a["isPreferred"], true);
    assert_eq!(a["diagnostics"][0]["code"], "P0101");
    let edit = &a["edit"]["changes"][&u][0];
    assert_eq!(edit["range"]["start"], pos(&broken, "llmm", 0, 0));
    assert_eq!(edit["newText"], "llm");
    let fixed = apply(&broken, &a["edit"], &u);
    assert_eq!(fixed, good);
    let d = c.change(&u, 2, &fixed);
    assert_eq!(problems(&d), Vec::<Value>::new());

    // No fix where nothing is wrong, and none when the client asks only for refactorings.
    let clean = c.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": u },
            "range": { "start": pos(&good, "llm", 0, 0), "end": pos(&good, "llm", 0, 3) },
            "context": { "diagnostics": [] },
        }),
    );
    assert_eq!(clean, json!([]));
    c.change(&u, 3, &broken);
    let only = c.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": u },
            "range": diag["range"],
            "context": { "diagnostics": [diag], "only": ["refactor"] },
        }),
    );
    assert_eq!(only, json!([]));
    c.shutdown();
}

#[test]
fn a_transitions_left_side_is_fixed_to_the_inherited_value() {
    let mut c = Client::start();
    let u = uri("transition.pipe");
    let good = reference();
    let broken = good.replacen(
        "rope_base = 50_000 -> 800_000",
        "rope_base = 60_000 -> 800_000",
        1,
    );
    assert_ne!(broken, good);
    let d = c.open(&u, &broken);
    let diag = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "P0504")
        .expect("a transition mismatch")
        .clone();
    let acts = actions(&mut c, &u, &diag);
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(acts[0]["title"], "start from the inherited 50000");
    let fixed = apply(&broken, &acts[0]["edit"], &u);
    assert!(fixed.contains("rope_base = 50000 -> 800_000"));
    let d = c.change(&u, 2, &fixed);
    assert_eq!(problems(&d), Vec::<Value>::new());
    c.shutdown();
}

#[test]
fn the_plan_request_draws_the_plan_and_highlights_the_stage_under_the_cursor() {
    let mut c = Client::start();
    let u = uri("plan.pipe");
    let good = reference();
    c.open(&u, &good);
    let at = pos(&good, "budget = 1.4T", 0, 0);
    let r = c.request(
        "pipelang/plan",
        json!({ "textDocument": { "uri": u }, "position": at }),
    );
    assert_eq!(r["version"], 1);
    assert_eq!(r["stale"], false);
    assert_eq!(r["stage"], "joint_pretrain");
    assert_eq!(r["message"], Value::Null);
    let svg = r["svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert!(svg.ends_with("</svg>"));
    assert_eq!(
        svg.matches(r#"<g class="stage"#).count(),
        6,
        "one band per stage"
    );
    assert_eq!(
        svg.matches(r#"<g class="stage current" data-stage="joint_pretrain" data-lane="0">"#)
            .count(),
        1
    );
    // The ViT branch runs beside text pre-training, in a lane of its own.
    assert!(svg.contains(r#"<g class="stage" data-stage="vit_coca" data-lane="1">"#));
    assert!(svg.contains(r#"<g class="stage" data-stage="text_pretrain" data-lane="0">"#));
    for panel in [
        "learning rate",
        "data mixture",
        "seq_len",
        "RoPE base",
        "batch",
    ] {
        assert!(
            svg.contains(&format!(r#"data-panel="{panel}""#)),
            "no {panel} panel"
        );
    }
    for source in [
        "web_text",
        "image_text",
        "interleaved",
        "ocr",
        "hq_text",
        "long_text",
    ] {
        assert!(
            svg.contains(&format!(r#"data-series="{source}""#)),
            "no {source} in the mixture"
        );
    }

    // Outside every stage: nothing highlighted.
    let r = c.request(
        "pipelang/plan",
        json!({ "textDocument": { "uri": u }, "position": { "line": 0, "character": 0 } }),
    );
    assert_eq!(r["stage"], Value::Null);
    assert!(!r["svg"].as_str().unwrap().contains("stage current"));

    // While the file has errors: the last good plan, said to be so, and inlay hints stay.
    let broken = good.replacen("train  = [llm]", "train  = [lmm]", 1);
    c.change(&u, 2, &broken);
    let r = c.request(
        "pipelang/plan",
        json!({ "textDocument": { "uri": u }, "position": at }),
    );
    assert_eq!(r["version"], 2);
    assert_eq!(r["stale"], true);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("last version without errors"),
        "{r}"
    );
    assert!(r["svg"].as_str().unwrap().contains("joint_pretrain"));
    let hints = c.request(
        "textDocument/inlayHint",
        json!({
            "textDocument": { "uri": u },
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 400, "character": 0 } },
        }),
    );
    assert_eq!(hints.as_array().unwrap().len(), 6, "{hints}");
    c.shutdown();
}

#[test]
fn the_plan_of_a_file_that_never_checked_clean_says_why_it_is_missing() {
    let mut c = Client::start();
    let u = uri("never.pipe");
    let broken = reference().replacen("train  = [llm]", "train  = [lmm]", 1);
    c.open(&u, &broken);
    let r = c.request("pipelang/plan", json!({ "textDocument": { "uri": u } }));
    assert_eq!(r["svg"], Value::Null);
    assert!(r["message"].as_str().unwrap().contains("error(s)"), "{r}");
    let hints = c.request(
        "textDocument/inlayHint",
        json!({
            "textDocument": { "uri": u },
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 400, "character": 0 } },
        }),
    );
    assert_eq!(hints, Value::Null);
    let err = c
        .request_raw(
            "pipelang/plan",
            json!({ "textDocument": { "uri": uri("not-open.pipe") } }),
        )
        .unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("is not open"),
        "{err}"
    );
    c.shutdown();
}
