//! An in-memory LSP client for the protocol tests: it runs `pipe lsp`'s loop on a thread over
//! `Connection::memory()`, waits for each response by id (with a timeout), and on shutdown
//! fails if any message is left unanswered or unread.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    conn: Connection,
    server: Option<JoinHandle<()>>,
    next_id: i32,
    /// Notifications received while waiting for a response.
    pending: VecDeque<Notification>,
}

pub fn uri(name: &str) -> String {
    format!("file:///tmp/pipe-test/{name}")
}

pub fn reference() -> String {
    std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap()
}

/// 0-based (line, UTF-16 column) of the `nth` occurrence of `needle`, plus `delta` characters.
pub fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> Value {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {needle:?} #{nth}"))
        .0;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..at].matches('\n').count();
    let col = text[line_start..at].encode_utf16().count() + delta;
    json!({ "line": line, "character": col })
}

impl Client {
    pub fn start() -> Client {
        let (server, client) = Connection::memory();
        let handle = std::thread::spawn(move || {
            pipelang_lsp::run(&server).expect("server loop failed");
        });
        let mut c = Client {
            conn: client,
            server: Some(handle),
            next_id: 0,
            pending: VecDeque::new(),
        };
        let init = c.request(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": {} }),
        );
        let caps = &init["capabilities"];
        for cap in [
            "hoverProvider",
            "definitionProvider",
            "referencesProvider",
            "renameProvider",
            "completionProvider",
            "documentSymbolProvider",
            "documentFormattingProvider",
            "inlayHintProvider",
            "codeActionProvider",
        ] {
            assert!(
                !caps[cap].is_null(),
                "initialize result lacks {cap}: {init}"
            );
        }
        assert_eq!(caps["textDocumentSync"], json!(1), "full sync");
        c.notify("initialized", json!({}));
        c
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification::new(
                method.into(),
                params,
            )))
            .unwrap();
    }

    /// Sends a request and returns its result; panics on an error response, on a response
    /// to another id, or when none arrives in time.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        match self.request_raw(method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method} answered with an error: {e}"),
        }
    }

    pub fn request_raw(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.conn
            .sender
            .send(Message::Request(Request::new(
                id.clone(),
                method.into(),
                params,
            )))
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.conn.receiver.recv_timeout(left) {
                Ok(Message::Response(r)) => {
                    assert_eq!(
                        r.id, id,
                        "response to the wrong request while waiting for {method}"
                    );
                    return match r.error {
                        Some(e) => Err(serde_json::to_value(e).unwrap()),
                        None => Ok(r.result.unwrap_or(Value::Null)),
                    };
                }
                Ok(Message::Notification(n)) => self.pending.push_back(n),
                Ok(Message::Request(r)) => panic!("unexpected server request {}", r.method),
                Err(_) => panic!("no response to {method} within {TIMEOUT:?}"),
            }
        }
    }

    /// The next publishDiagnostics for `uri`.
    pub fn diagnostics(&mut self, uri: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|n| is_diags_for(n, uri)) {
            return self.pending.remove(i).unwrap().params;
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.conn.receiver.recv_timeout(left) {
                Ok(Message::Notification(n)) if is_diags_for(&n, uri) => return n.params,
                Ok(Message::Notification(n)) => self.pending.push_back(n),
                Ok(other) => panic!("unexpected message while waiting for diagnostics: {other:?}"),
                Err(_) => panic!("no diagnostics for {uri} within {TIMEOUT:?}"),
            }
        }
    }

    pub fn open(&mut self, uri: &str, text: &str) -> Value {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "pipe", "version": 1, "text": text } }),
        );
        self.diagnostics(uri)
    }

    pub fn change(&mut self, uri: &str, version: i32, text: &str) -> Value {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
        self.diagnostics(uri)
    }

    pub fn at(&mut self, method: &str, uri: &str, position: Value) -> Value {
        self.request(
            method,
            json!({ "textDocument": { "uri": uri }, "position": position }),
        )
    }

    /// shutdown + exit; the server thread must end, and nothing may be left unread.
    pub fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.is_null());
        self.notify("exit", Value::Null);
        let handle = self.server.take().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "server did not exit after shutdown + exit"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.join().expect("server thread panicked");
        let unexpected: Vec<Message> = self.conn.receiver.try_iter().collect();
        assert!(
            unexpected
                .iter()
                .all(|m| matches!(m, Message::Notification(_))),
            "messages left after shutdown: {unexpected:?}"
        );
    }
}

fn is_diags_for(n: &Notification, uri: &str) -> bool {
    n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri
}

/// The published errors and warnings (severity 1 and 2): notes such as the reference's P0510
/// (severity 3, information) are left out.
pub fn problems(published: &serde_json::Value) -> Vec<serde_json::Value> {
    published["diagnostics"]
        .as_array()
        .expect("a diagnostics array")
        .iter()
        .filter(|d| d["severity"].as_u64().is_none_or(|s| s <= 2))
        .cloned()
        .collect()
}
