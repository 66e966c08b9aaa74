//! The parser on any text: it never panics, every span lies inside the source, and the
//! hand-written fast path and the pest parser agree (the fast path takes only files pest
//! accepts, and then builds the same tree, spans included).

pub fn run(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let slow = pipelang::syntax::parse_recovering(src);
    for e in &slow.errors {
        assert!(
            e.span.start <= e.span.end && e.span.end <= src.len(),
            "syntax error span {:?} outside a source of {} bytes",
            e.span,
            src.len()
        );
    }
    if let Some(fast) = pipelang::syntax::parse_fast(src) {
        assert!(
            slow.errors.is_empty(),
            "the fast path accepted a file the pest parser rejects: {:?}",
            slow.errors
        );
        assert_eq!(
            format!("{fast:?}"),
            format!("{slow:?}"),
            "the fast path and the pest parser built different trees"
        );
    }
}
