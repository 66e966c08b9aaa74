//! The language server's message handling, in process, through the same `handle_request` and
//! `handle_notification` that `pipe lsp`'s loop calls. Two kinds of input:
//!
//! - a JSON array of JSON-RPC messages (input starting with `[`): each element is sent as it
//!   is, so malformed params, unknown methods and requests on closed files are exercised;
//! - otherwise a document and a script: the bytes up to the first NUL are the text (opened,
//!   then every request at fuzzed positions); each 3 bytes after it are one operation (which
//!   request, line, character), edits included. Without a NUL, every request runs at positions
//!   spread over the text, so a plain `.pipe` file is a useful seed.
//!
//! The handlers turn a panic into an error response ("hit a bug"); that response, or the
//! matching `window/showMessage`, fails the target, as does a response to the wrong id.

use lsp_server::{Message, Notification, Request, RequestId, Response};
use pipelang_lsp::{Server, handle_notification, handle_request};
use serde_json::{Value, json};

const URI: &str = "file:///fuzz/recipe.pipe";
/// Operations per input, so that a long script cannot make one execution slow.
const MAX_OPS: usize = 64;

pub fn run(data: &[u8]) {
    let mut s = Session::default();
    if data.first() == Some(&b'[') {
        if let Ok(msgs) = serde_json::from_slice::<Vec<Value>>(data) {
            for m in msgs.into_iter().take(MAX_OPS) {
                if let Ok(m) = serde_json::from_value::<Message>(m) {
                    s.send(m);
                }
            }
        }
        return;
    }
    let (text, script) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let mut text = String::from_utf8_lossy(text).into_owned();
    s.open(&text);
    match script {
        Some(script) => {
            for op in script.chunks_exact(3).take(MAX_OPS) {
                s.op(&mut text, op[0], coord(op[1]), coord(op[2]));
            }
        }
        None => {
            let points = positions(&text, 12);
            for &(line, ch) in &points {
                for op in 0..POSITIONED {
                    s.op(&mut text, op, line, ch);
                }
            }
            s.whole_file();
            // Half-typed: the first half of the file, then the server's answers again.
            let half = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            text.truncate(half);
            s.change(&text);
            for &(line, ch) in points.iter().step_by(3) {
                for op in 0..POSITIONED {
                    s.op(&mut text, op, line, ch);
                }
            }
            s.whole_file();
            s.notify(
                "textDocument/didClose",
                json!({ "textDocument": { "uri": URI } }),
            );
            s.request("textDocument/hover", position_params(0, 0));
        }
    }
}

/// A fuzzed coordinate: mostly small, sometimes past any line's end or far out of range.
fn coord(b: u8) -> u32 {
    match b {
        0..=239 => u32::from(b),
        240..=247 => 1000 + u32::from(b),
        _ => u32::MAX - u32::from(255 - b),
    }
}

/// `n` (line, UTF-16 character) positions spread over `text`, on character boundaries.
fn positions(text: &str, n: usize) -> Vec<(u32, u32)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = vec![(0, 0)];
    for k in 1..=n {
        let Some(&(at, _)) = chars.get(chars.len() * k / (n + 1)) else {
            break;
        };
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = text[..at].matches('\n').count() as u32;
        let ch = text[line_start..at].encode_utf16().count() as u32;
        out.push((line, ch));
    }
    let lines = text.lines().count() as u32;
    out.push((lines, 0));
    out
}

/// Operations below this take a position; the rest are whole-file ones or edits.
const POSITIONED: u8 = 7;

fn position_params(line: u32, ch: u32) -> Value {
    json!({ "textDocument": { "uri": URI }, "position": { "line": line, "character": ch } })
}

#[derive(Default)]
struct Session {
    server: Server,
    next_id: i32,
    version: i32,
    /// The last diagnostics published for the document, for code actions.
    diagnostics: Value,
}

impl Session {
    fn open(&mut self, text: &str) {
        self.version = 1;
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": {
                "uri": URI, "languageId": "pipelang", "version": 1, "text": text } }),
        );
    }

    fn change(&mut self, text: &str) {
        self.version += 1;
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": URI, "version": self.version },
                    "contentChanges": [{ "text": text }] }),
        );
    }

    fn op(&mut self, text: &mut String, op: u8, line: u32, ch: u32) {
        let pos = position_params(line, ch);
        let range = json!({ "start": { "line": line.min(ch), "character": 0 },
                            "end": { "line": line.max(ch), "character": ch } });
        match op % 14 {
            0 => self.request("textDocument/hover", pos),
            1 => self.request("textDocument/definition", pos),
            2 => self.request(
                "textDocument/references",
                json!({ "textDocument": { "uri": URI }, "position": pos["position"],
                        "context": { "includeDeclaration": ch % 2 == 0 } }),
            ),
            3 => self.request("textDocument/prepareRename", pos),
            4 => {
                let names = ["renamed", "stage", "", "a b", "_x9", "é"];
                let mut p = pos;
                p["newName"] = json!(names[(line as usize + ch as usize) % names.len()]);
                self.request("textDocument/rename", p)
            }
            5 => self.request("textDocument/completion", pos),
            6 => self.request(
                "pipelang/plan",
                json!({ "textDocument": { "uri": URI }, "position": pos["position"] }),
            ),
            7 => self.request(
                "textDocument/inlayHint",
                json!({ "textDocument": { "uri": URI }, "range": range }),
            ),
            8 => self.request(
                "textDocument/codeAction",
                json!({ "textDocument": { "uri": URI }, "range": range,
                        "context": { "diagnostics": self.diagnostics.clone() } }),
            ),
            9 => self.whole_file(),
            // Edits: delete or insert at a fuzzed place, then the server checks the new text.
            10 | 11 => {
                let at = floor_char(text, (line as usize * 31 + ch as usize) % (text.len() + 1));
                if op % 14 == 10 {
                    let end = floor_char(text, (at + ch as usize % 16).min(text.len()));
                    text.replace_range(at..end, "");
                } else {
                    let pieces = ["{", "}", "\n", "=", " then ", "é", "😀", "\"", "//", "0"];
                    text.insert_str(at, pieces[line as usize % pieces.len()]);
                }
                let t = text.clone();
                self.change(&t);
            }
            12 => {
                self.notify(
                    "textDocument/didClose",
                    json!({ "textDocument": { "uri": URI } }),
                );
                let t = text.clone();
                self.open(&t);
            }
            // Params of the wrong shape for the method.
            _ => self.request(
                "textDocument/hover",
                json!({ "textDocument": line, "position": [ch] }),
            ),
        }
    }

    fn whole_file(&mut self) {
        let doc = json!({ "textDocument": { "uri": URI } });
        self.request("textDocument/documentSymbol", doc.clone());
        let mut f = doc.clone();
        f["options"] = json!({ "tabSize": 2, "insertSpaces": true });
        self.request("textDocument/formatting", f);
        let all = json!({ "start": { "line": 0, "character": 0 },
                          "end": { "line": u32::MAX, "character": 0 } });
        let mut h = doc.clone();
        h["range"] = all.clone();
        self.request("textDocument/inlayHint", h);
        let mut a = doc.clone();
        a["range"] = all;
        a["context"] = json!({ "diagnostics": self.diagnostics.clone() });
        self.request("textDocument/codeAction", a);
        self.request("pipelang/plan", doc);
    }

    fn request(&mut self, method: &str, params: Value) {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.send(Message::Request(Request {
            id,
            method: method.into(),
            params,
        }));
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(Message::Notification(Notification {
            method: method.into(),
            params,
        }));
    }

    fn send(&mut self, m: Message) {
        match m {
            Message::Request(r) => {
                let id = r.id.clone();
                let method = r.method.clone();
                let resp: Response = handle_request(&mut self.server, r);
                assert_eq!(resp.id, id, "{method}: answered with another id");
                if let Some(e) = &resp.error {
                    assert!(!e.message.contains("hit a bug"), "{method}: {}", e.message);
                }
            }
            Message::Notification(n) => {
                let method = n.method.clone();
                if let Some(out) = handle_notification(&mut self.server, n) {
                    assert!(
                        out.method != "window/showMessage",
                        "{method}: {}",
                        out.params
                    );
                    if out.params["uri"] == URI {
                        self.diagnostics = out.params["diagnostics"].clone();
                    }
                }
            }
            Message::Response(_) => {}
        }
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
