//! The formatter's contract (crates/pipelang/src/fmt): it refuses only files with syntax
//! errors; what it formats, formatting again leaves unchanged, with the same comments and the
//! same diagnostic codes as the original. An internal error (output that does not parse back,
//! a lost comment) is a bug.

use pipelang::fmt::{FormatError, format};

fn codes(src: &str) -> Vec<&'static str> {
    let mut c: Vec<_> = pipelang::check::check(src)
        .diagnostics
        .iter()
        .map(|d| d.code.0)
        .collect();
    c.sort();
    c
}

pub fn run(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let once = match format(src) {
        Ok(out) => out,
        Err(FormatError::Syntax { .. }) => {
            assert!(
                !pipelang::syntax::parse(src).errors.is_empty(),
                "refused as a syntax error, but the file parses"
            );
            return;
        }
        Err(e @ FormatError::Internal(_)) => panic!("{e}"),
    };
    let twice = format(&once).unwrap_or_else(|e| panic!("formatted text does not format: {e}"));
    assert_eq!(once, twice, "formatting is not idempotent");
    assert_eq!(
        codes(src),
        codes(&once),
        "formatting changed the diagnostics"
    );
}
