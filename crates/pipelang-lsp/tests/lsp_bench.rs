//! Server time for diagnostics after an edit of the reference recipe (check + plan + LSP
//! conversion, as `Document::analysis_time` measures it), and the wall time of the whole
//! didChange handler. Prints the medians; run with
//!   cargo test --test lsp_bench -- --ignored --nocapture

use std::time::{Duration, Instant};

use lsp_types::{
    DidChangeTextDocumentParams, DidOpenTextDocumentParams, TextDocumentContentChangeEvent,
    TextDocumentItem, Uri, VersionedTextDocumentIdentifier,
};
use pipelang_lsp::Server;

#[test]
#[ignore = "benchmark: run explicitly"]
fn diagnostics_after_an_edit() {
    let text = std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap();
    let uri: Uri = "file:///bench/kimi_vl.pipe".parse().unwrap();
    let mut server = Server::default();
    server.did_open(DidOpenTextDocumentParams {
        text_document: TextDocumentItem::new(uri.clone(), "pipe".into(), 1, text.clone()),
    });
    let edits = 200usize;
    let mut analysis = vec![];
    let mut handler = vec![];
    for v in 0..edits as i32 {
        // Alternate a budget, as typing would: every version is a different, valid recipe.
        let edited = text.replacen(
            "budget = 5.2T",
            &format!("budget = {}.{}T", 5 + v % 3, v % 10),
            1,
        );
        let started = Instant::now();
        let published = server.did_change(DidChangeTextDocumentParams {
            text_document: VersionedTextDocumentIdentifier::new(uri.clone(), v + 2),
            content_changes: vec![TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: edited,
            }],
        });
        handler.push(started.elapsed());
        // Notes (the reference's P0510) are information; no error or warning may appear.
        assert!(
            published
                .unwrap()
                .diagnostics
                .iter()
                .all(|d| d.severity == Some(lsp_types::DiagnosticSeverity::INFORMATION))
        );
        analysis.push(server.documents[&uri].analysis_time);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let p95 = |v: &Vec<Duration>| v[v.len() * 95 / 100];
    let (ma, mh) = (median(&mut analysis), median(&mut handler));
    println!(
        "kimi_vl.pipe, {edits} edits: diagnostics (check + plan + convert) median {:.3} ms, p95 {:.3} ms; didChange handler median {:.3} ms, p95 {:.3} ms",
        ma.as_secs_f64() * 1e3,
        p95(&analysis).as_secs_f64() * 1e3,
        mh.as_secs_f64() * 1e3,
        p95(&handler).as_secs_f64() * 1e3,
    );
    assert!(
        ma < Duration::from_millis(20),
        "over the 20 ms budget: {ma:?}"
    );
}
