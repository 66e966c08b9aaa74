//! UI tests: every `tests/ui/*.pipe` fixture is checked and its rendered diagnostics (no
//! colour, 100 columns) are compared with the snapshot in `tests/snapshots/`.
//! Update snapshots with `cargo insta review` (or INSTA_UPDATE=always).

use pipelang::check::check;
use pipelang::diag::render_human_plain;

#[test]
fn ui_fixtures() {
    insta::glob!("ui/*.pipe", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let name = format!("tests/ui/{}", path.file_name().unwrap().to_string_lossy());
        let checked = check(&source);
        assert!(
            !checked.diagnostics.is_empty(),
            "{name}: an invalid fixture must produce at least one diagnostic"
        );
        let codes: Vec<&str> = checked
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        let rendered = render_human_plain(&checked.diagnostics, &name, &source);
        insta::assert_snapshot!(format!("codes: {}\n\n{}", codes.join(", "), rendered));
    });
}
