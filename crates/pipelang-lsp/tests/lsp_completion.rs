//! The field and block names that completion offers are the ones the checker accepts: each is
//! written into the block where it is offered, and `check()` must not call it unknown (P0103).
//! An invented name must be called unknown, so the test can tell.

use std::collections::BTreeSet;

use pipelang::schema::{Block, data, decoder, phase, pipeline, profile, projector, stage, vit};
use pipelang_lsp::{Document, complete};

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

/// Every block of the schema, with where it opens in the reference recipe and how to write an
/// entry of it there.
fn blocks() -> Vec<(&'static Block, &'static str, Entry)> {
    let field: Entry = Box::new(|n: &str| format!("\n  {n} = 1\n"));
    vec![
        (&pipeline::BLOCK, "pipeline kimi_vl {", field),
        (
            &decoder::BLOCK,
            "model llm = decoder {",
            Box::new(|n| format!("\n  {n} = 1\n")),
        ),
        (
            &vit::BLOCK,
            "model vit = vit {",
            Box::new(|n| format!("\n  {n} = 1\n")),
        ),
        (
            &projector::BLOCK,
            "model projector = projector(vit -> llm) {",
            Box::new(|n| format!("\n  {n} = 1\n")),
        ),
        (
            &data::BLOCK,
            "data ocr           = image_text(\"corpus/ocr/*.jsonl\")",
            Box::new(|n| format!(" {{ {n} = \"t.json\" }}")),
        ),
        (
            &stage::BLOCK,
            "stage text_pretrain {",
            Box::new(|n| format!("\n  {n} = 1\n")),
        ),
        (
            &phase::BLOCK,
            "phase ctx_32k  { budget = 50%",
            Box::new(|n| format!(", {n} = 1")),
        ),
        (
            &profile::BLOCK,
            "profile smoke {",
            Box::new(|n| format!("\n  {n} = 1\n")),
        ),
    ]
}

type Entry = Box<dyn Fn(&str) -> String>;

#[test]
fn offered_names_are_accepted_where_offered() {
    for (block, anchor, entry) in &blocks() {
        for name in block.names() {
            assert!(
                !rejected(anchor, name, entry),
                "`{name}` is in the {} table but the checker rejects it after {anchor:?}",
                block.keyword
            );
        }
        assert!(
            rejected(anchor, "no_such_field", entry),
            "the checker accepted an invented name after {anchor:?}"
        );
    }
    let block = |n: &str| format!("\n  {n} {{ }}\n");
    for name in stage::BLOCK.blocks {
        assert!(!rejected("stage text_pretrain {", name, block), "{name}");
    }
    let named = |n: &str| format!("\n  {n} text_pretrain {{ }}\n");
    for name in profile::BLOCK.blocks {
        assert!(!rejected("profile smoke {", name, named), "{name}");
    }
}

/// What completion offers at the start of a new entry written after `anchor` (which `open`s
/// the block when the recipe's item has none).
fn offered(anchor: &str, open: &str) -> BTreeSet<String> {
    let text = reference();
    let at = format!("{anchor}{open}\n  ");
    let edited = text.replacen(anchor, &at, 1);
    let offset = edited.find(&at).unwrap() + at.len();
    let doc = Document::new("file:///t.pipe".parse().unwrap(), 1, edited);
    complete(&doc, offset)
        .into_iter()
        .map(|i| i.label)
        .collect()
}

#[test]
fn completion_offers_exactly_the_accepted_fields() {
    for (block, anchor, _) in &blocks() {
        let (anchor, open) = match block.keyword {
            "data" => (*anchor, " {"),
            "phase" => ("phase ctx_32k  {", ""),
            _ => (*anchor, ""),
        };
        let mut want: BTreeSet<String> = block.names().map(String::from).collect();
        want.extend(block.blocks.iter().map(|b| b.to_string()));
        if block.scales {
            want.insert("scale".into());
        }
        assert_eq!(offered(anchor, open), want, "after {anchor:?}");
    }
}

#[test]
fn a_data_source_call_offers_its_fields_as_arguments() {
    let text = reference();
    let anchor = "image_text(\"corpus/caption/*.jsonl\"";
    let edited = text.replacen(anchor, &format!("{anchor}, "), 1);
    let offset = edited.find(anchor).unwrap() + anchor.len() + 2;
    let doc = Document::new("file:///t.pipe".parse().unwrap(), 1, edited);
    let got: BTreeSet<String> = complete(&doc, offset)
        .into_iter()
        .map(|i| i.label)
        .collect();
    let want: BTreeSet<String> = pipelang::schema::data::BLOCK
        .names()
        .map(String::from)
        .collect();
    assert!(
        want.contains("caption") && want.contains("column"),
        "{want:?}"
    );
    assert_eq!(got, want);
}

/// Completion at the end of `text` (the reference with `entry` added to its last stage).
fn offered_in_entry(entry: &str) -> BTreeSet<String> {
    let text = reference();
    let anchor = "phase ctx_32k  {";
    let edited = text.replacen(anchor, &format!("{anchor}\n  {entry}"), 1);
    let offset = edited.find(entry).unwrap() + entry.len();
    let doc = Document::new("file:///t.pipe".parse().unwrap(), 1, edited);
    complete(&doc, offset)
        .into_iter()
        .map(|i| i.label)
        .collect()
}

/// A value each RoPE scaling argument accepts (the band's upper edges above its lower ones).
fn sample(arg: &str) -> &'static str {
    match arg {
        "factor" => "2",
        "original" => "8K",
        "beta" | "high_freq" => "32",
        _ => "1",
    }
}

#[test]
fn rope_scaling_offers_the_schema_kinds_and_their_arguments() {
    let kinds: BTreeSet<String> = pipelang::schema::rope::names().map(String::from).collect();
    assert_eq!(offered_in_entry("rope_scaling = "), kinds);
    for k in &pipelang::schema::rope::KINDS {
        if k.args.is_empty() {
            continue;
        }
        let want: BTreeSet<String> = k.args.iter().map(|a| a.name.to_string()).collect();
        assert_eq!(
            offered_in_entry(&format!("rope_scaling = {}(", k.name)),
            want,
            "{}",
            k.name
        );
        // What is offered is accepted: every argument named, the check reports none unknown.
        let text = reference().replacen(
            "phase ctx_32k  {",
            &format!(
                "phase ctx_32k  {{\n  rope_scaling = {}({})",
                k.name,
                k.args
                    .iter()
                    .map(|a| format!("{} = {}", a.name, sample(a.name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            1,
        );
        let c = pipelang::check::check(&text);
        assert!(
            !c.diagnostics.iter().any(|d| d.code.as_str() == "P0207"),
            "{}: {:?}",
            k.name,
            c.diagnostics
        );
    }
}
