//! The field and block names that completion offers are the ones the checker accepts: each is
//! written into the block where it is offered, and `check()` must not call it unknown (P0103).
//! An invented name must be called unknown, so the test can tell.

use pipelang_lsp::*;

fn reference() -> String {
    std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap()
}

fn unknown_field_reported(text: &str, name: &str) -> bool {
    pipelang::check::check(text)
        .diagnostics
        .iter()
        .any(|d| d.code.0 == "P0103" && d.message.contains(&format!("`{name}`")))
}

/// Writes `entry(name)` after `anchor` and says whether the checker calls `name` unknown.
fn rejected(anchor: &str, name: &str, entry: impl Fn(&str) -> String) -> bool {
    let text = reference();
    assert!(
        text.contains(anchor),
        "{anchor:?} is not in the reference recipe"
    );
    let edited = text.replacen(anchor, &format!("{anchor}{}", entry(name)), 1);
    unknown_field_reported(&edited, name)
}

#[test]
fn offered_names_are_accepted_where_offered() {
    let field = |n: &str| format!("\n  {n} = 1\n");
    type Case<'a> = (&'a str, &'a [&'a str], Box<dyn Fn(&str) -> String>);
    let cases: Vec<Case> = vec![
        ("pipeline kimi_vl {", PIPELINE_FIELDS, Box::new(field)),
        ("model llm = decoder {", DECODER_FIELDS, Box::new(field)),
        ("model vit = vit {", VIT_FIELDS, Box::new(field)),
        (
            "model projector = projector(vit -> llm) {",
            PROJECTOR_FIELDS,
            Box::new(field),
        ),
        (
            "stage text_pretrain {",
            pipelang::check::STAGE_FIELDS,
            Box::new(field),
        ),
        (
            "stage text_pretrain {",
            STAGE_BLOCKS,
            Box::new(|n: &str| format!("\n  {n} {{ }}\n")),
        ),
        (
            "phase ctx_32k  { budget = 50%",
            pipelang::check::PHASE_FIELDS,
            Box::new(|n: &str| format!(", {n} = 1")),
        ),
        ("profile smoke {", PROFILE_FIELDS, Box::new(field)),
        (
            "profile smoke {",
            &["model", "stage"],
            Box::new(|n: &str| format!("\n  {n} text_pretrain {{ }}\n")),
        ),
        (
            "data ocr           = image_text(\"corpus/ocr/*.jsonl\")",
            DATA_FIELDS,
            Box::new(|n: &str| format!(" {{ {n} = \"t.json\" }}")),
        ),
    ];
    for (anchor, names, entry) in &cases {
        for name in names.iter() {
            assert!(
                !rejected(anchor, name, entry),
                "`{name}` is offered after {anchor:?} but the checker rejects it"
            );
        }
        assert!(
            rejected(anchor, "no_such_field", entry),
            "the checker accepted an invented name after {anchor:?}"
        );
    }
    assert!(PROFILE_BLOCKS.contains(&"scale"));
}
