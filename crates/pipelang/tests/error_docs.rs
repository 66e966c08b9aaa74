//! The pages in `docs/errors/` and the registry `pipelang::diag::CODES` stay in step: one page
//! per code and no other, each titled with its code, listed in the index with the registry's
//! name and severity. The pages are executable: the first ```pipe block must make the checker
//! report the page's code, and the fix (the second ```pipe block) must check without errors and
//! without that code, so an example cannot rot when the checker changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pipelang::check::check_with;
use pipelang::diag::{CODES, Severity};

/// Codes in the registry that `check()` does not emit in this build (I/O errors are printed by
/// the CLI with exit status 2; data files and hot reload belong to `pipe run`; `init` files to
/// the file pass of `pipe check`, tested in `crates/pipe/tests/runtime_init.rs`). Their pages
/// say so, and their examples must check clean.
const NOT_FROM_CHECK: &[&str] = &[
    "P0003", "P0330", "P0331", "P0332", "P0333", "P0334", "P0701", "P0702", "P0703", "P0801",
    "P0901", "P0902", "P0903", "P0904", "P0905",
];

fn errors_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("docs/errors")
}

fn page(code: &str) -> String {
    let path = errors_dir().join(format!("{code}.md"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read the page of {code}: {e}", path.display()))
}

/// A fenced ```pipe block: its text and the `--profile NAME` of its info string, if any.
struct Example {
    source: String,
    profile: Option<String>,
}

fn pipe_blocks(markdown: &str) -> Vec<Example> {
    let mut out = vec![];
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```pipe") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let profile = match (words.next(), words.next()) {
            (Some("--profile"), Some(name)) => Some(name.to_string()),
            (None, _) => None,
            _ => panic!("unexpected info string on a pipe block: `{line}`"),
        };
        let mut source = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            source.push_str(l);
            source.push('\n');
        }
        out.push(Example { source, profile });
    }
    out
}

fn codes_of(ex: &Example) -> (Vec<String>, bool) {
    let checked = check_with(&ex.source, ex.profile.as_deref());
    let codes = checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect();
    (codes, checked.has_errors())
}

#[test]
fn every_code_has_a_page_and_every_page_a_code() {
    let registry: BTreeSet<&str> = CODES.iter().map(|c| c.code).collect();
    assert_eq!(registry.len(), CODES.len(), "a code is registered twice");
    let mut pages = BTreeSet::new();
    for entry in std::fs::read_dir(errors_dir()).expect("docs/errors/ exists") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        let code = name
            .strip_suffix(".md")
            .unwrap_or_else(|| panic!("docs/errors/{name}: only .md pages belong here"));
        pages.insert(code.to_string());
    }
    let pages: BTreeSet<&str> = pages.iter().map(String::as_str).collect();
    let missing: Vec<_> = registry.difference(&pages).collect();
    let extra: Vec<_> = pages.difference(&registry).collect();
    assert!(missing.is_empty(), "codes without a page: {missing:?}");
    assert!(extra.is_empty(), "pages without a code: {extra:?}");
}

#[test]
fn every_page_is_titled_with_its_code_and_has_an_example() {
    for info in CODES {
        let text = page(info.code);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with('#') && first.contains(info.code) && first.contains(info.name),
            "docs/errors/{}.md: the first line must be a title naming `{}` and `{}`, found `{first}`",
            info.code,
            info.code,
            info.name
        );
        assert!(
            !pipe_blocks(&text).is_empty(),
            "docs/errors/{}.md has no ```pipe example",
            info.code
        );
    }
}

#[test]
fn the_index_lists_every_code_with_its_name_and_severity() {
    let index = std::fs::read_to_string(errors_dir().join("README.md")).expect("index exists");
    for info in CODES {
        let severity = match info.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Advice => "advice",
        };
        let row = index
            .lines()
            .find(|l| l.starts_with(&format!("| [{}]({}.md)", info.code, info.code)))
            .unwrap_or_else(|| panic!("docs/errors/README.md has no row for {}", info.code));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], format!("`{}`", info.name), "{}: name", info.code);
        assert_eq!(cells[3], severity, "{}: severity", info.code);
        assert_eq!(cells[4], info.summary, "{}: summary", info.code);
    }
}

#[test]
fn each_example_triggers_its_code_and_each_fix_removes_it() {
    let mut failures = vec![];
    for info in CODES {
        let code = info.code;
        let blocks = pipe_blocks(&page(code));
        let (codes, _) = codes_of(&blocks[0]);
        if NOT_FROM_CHECK.contains(&code) {
            if !codes.is_empty() {
                failures.push(format!(
                    "{code}: the example should check clean, got {codes:?}"
                ));
            }
        } else if !codes.iter().any(|c| c == code) {
            failures.push(format!("{code}: the example reports {codes:?}, not {code}"));
        }
        if let Some(fix) = blocks.get(1) {
            let (codes, errors) = codes_of(fix);
            if errors || codes.iter().any(|c| c == code) {
                failures.push(format!("{code}: the fix still reports {codes:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
