//! `pipe lsp` quick fixes (textDocument/codeAction) and the plan picture (`pipelang/plan`), over
//! an in-memory connection like tests/lsp_protocol.rs.

mod lsp_support;

use lsp_support::{Client, pos, reference, uri};
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
fn the_server_offers_quick_fixes() {
    let mut c = Client::start();
    let caps = c.request("initialize_again_is_not_allowed", json!({}));
    let _ = caps;
}
