//! The checker on any text: it never panics, every label's span lies inside the source, and
//! both renderers (the terminal's and `--format json`) take every diagnostic.

pub fn run(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let c = pipelang::check::check(src);
    for d in &c.diagnostics {
        for l in &d.labels {
            assert!(
                l.span.start <= l.span.end && l.span.end <= src.len(),
                "{}: label span {:?} outside a source of {} bytes",
                d.code.0,
                l.span,
                src.len()
            );
        }
    }
    // Resolving the plan is on demand; ask for it, so that it is fuzzed with the check.
    if c.plan().is_some() {
        assert!(!c.has_errors(), "a plan was built for a file with errors");
    }
    let _ = pipelang::diag::render_human_plain(&c.diagnostics, "fuzz.pipe", src);
    let _ = pipelang::diag::to_json(&c.diagnostics, "fuzz.pipe", src);
}
