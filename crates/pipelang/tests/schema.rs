//! The field tables of `docs/language.md` are the schema's: each block's table follows a
//! `<!-- fields: KEYWORD -->` line and must read exactly as `Block::docs_table` writes it.
//! `PIPELANG_BLESS=1 cargo test --test schema` rewrites them.

use pipelang::schema::BLOCKS;

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/language.md");

/// The byte range of the table after `marker`.
fn table(docs: &str, marker: &str) -> Option<std::ops::Range<usize>> {
    let start = docs.find(marker)? + marker.len() + 1;
    let len: usize = docs[start..]
        .split_inclusive('\n')
        .take_while(|l| l.starts_with('|'))
        .map(str::len)
        .sum();
    Some(start..start + len)
}

#[test]
fn docs_tables_are_the_schema() {
    let mut docs = std::fs::read_to_string(DOCS).unwrap();
    let bless = std::env::var_os("PIPELANG_BLESS").is_some();
    let mut wrong = vec![];
    for block in BLOCKS {
        let marker = format!("<!-- fields: {} -->", block.keyword);
        let Some(range) = table(&docs, &marker) else {
            wrong.push(format!("docs/language.md has no `{marker}` line"));
            continue;
        };
        let want = block.docs_table();
        if docs[range.clone()] != want {
            if bless {
                docs.replace_range(range, &want);
            } else {
                wrong.push(format!(
                    "the table after `{marker}` is not the schema's; it should read:\n{want}"
                ));
            }
        }
    }
    // The RoPE scalings and their arguments (`schema::rope`).
    for (marker, want) in [
        (
            "<!-- rope scalings -->",
            pipelang::schema::rope::docs_table(),
        ),
        (
            "<!-- rope scaling arguments -->",
            pipelang::schema::rope::args_table(),
        ),
    ] {
        let Some(range) = table(&docs, marker) else {
            wrong.push(format!("docs/language.md has no `{marker}` line"));
            continue;
        };
        if docs[range.clone()] != want {
            if bless {
                docs.replace_range(range, &want);
            } else {
                wrong.push(format!(
                    "the table after `{marker}` is not the schema's; it should read:\n{want}"
                ));
            }
        }
    }
    if bless {
        std::fs::write(DOCS, &docs).unwrap();
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_field_is_in_one_table_per_block() {
    for block in BLOCKS {
        let mut names: Vec<&str> = block.names().collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            block.fields.len(),
            "{} repeats a field",
            block.keyword
        );
    }
}
