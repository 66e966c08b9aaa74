//! The hand-written fast parser and the pest parser agree: on every `.pipe` file in the repo
//! and on thousands of mutations of them, either the fast path declines (and pest finds a
//! syntax error) or both give the same tree, byte spans included. A valid file the fast path
//! declines is a failure too: it would silently lose the speed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

fn pipe_files(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            pipe_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "pipe") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
}

fn corpus() -> Vec<(String, String)> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut out = vec![];
    for d in ["pipelines", "crates", "bench", "docs"] {
        pipe_files(&root.join(d), &mut out);
    }
    assert!(out.len() >= 60, "expected the recipes and UI fixtures");
    out
}

/// Returns whether the fast path took the file.
fn agree(name: &str, src: &str) -> bool {
    let slow = pipelang::syntax::parse_recovering(src);
    match pipelang::syntax::parse_fast(src) {
        Some(fast) => {
            assert!(
                slow.errors.is_empty(),
                "{name}: the fast path accepted a file pest rejects: {:?}\n---\n{src}",
                slow.errors
            );
            let (f, s) = (format!("{fast:#?}"), format!("{slow:#?}"));
            if f != s {
                let line = f
                    .lines()
                    .zip(s.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                let ctx = |t: &str| {
                    t.lines()
                        .skip(line.saturating_sub(8))
                        .take(12)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                panic!(
                    "{name}: trees differ\n--- fast\n{}\n--- pest\n{}\n---\n{src}",
                    ctx(&f),
                    ctx(&s)
                );
            }
            true
        }
        None => {
            assert!(
                !slow.errors.is_empty(),
                "{name}: a file without syntax errors was declined by the fast path\n---\n{src}"
            );
            false
        }
    }
}

#[test]
fn every_file_in_the_repo() {
    let mut fast = 0;
    for (name, src) in corpus() {
        fast += agree(&name, &src) as usize;
    }
    assert!(fast >= 40, "only {fast} files took the fast path");
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "=",
    "->",
    ",",
    "/",
    "%",
    "then",
    "after",
    "rest",
    "ramp",
    "stage",
    "model",
    "phase",
    "mix",
    "scale",
    "by",
    "0",
    "-1",
    "1e400",
    "8K",
    "5.2T",
    "40%",
    "1_000",
    "3e-4",
    "2000 steps",
    "2000  steps",
    "\"",
    "\"x\"",
    "//",
    "// c\n",
    "\n",
    " ",
    "\t",
    "é",
    "x",
    "_",
    "1/256",
    "a -> b",
    "then x",
];

#[test]
fn token_mutations() {
    let files = corpus();
    let mut rng = StdRng::seed_from_u64(3);
    let (mut fast, mut total) = (0, 0);
    for round in 0..4000 {
        let (name, src) = &files[round % files.len()];
        let words: Vec<&str> = src
            .split_inclusive(|c: char| c.is_whitespace() || "{}()[],=".contains(c))
            .collect();
        let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        for _ in 0..rng.random_range(1..3) {
            let i = rng.random_range(0..w.len());
            match rng.random_range(0..4) {
                0 => {
                    w.remove(i);
                }
                1 => w.insert(i, TOKENS[rng.random_range(0..TOKENS.len())].to_string()),
                2 => w[i] = TOKENS[rng.random_range(0..TOKENS.len())].to_string(),
                // Whitespace and comments keep a file valid: the spans must still agree.
                _ => w.insert(
                    i,
                    [" ", "\n", "\t", " // note\n", "\r\n"][rng.random_range(0..5)].to_string(),
                ),
            }
        }
        total += 1;
        fast += agree(name, &w.concat()) as usize;
    }
    // Both branches must be exercised for the comparison to mean anything.
    assert!(
        fast > total / 10 && fast < total,
        "{fast} of {total} took the fast path"
    );
}

#[test]
fn byte_mutations() {
    let files = corpus();
    let mut rng = StdRng::seed_from_u64(5);
    for round in 0..3000 {
        let (name, src) = &files[round % files.len()];
        let mut b = src.clone().into_bytes();
        let i = rng.random_range(0..b.len().max(1));
        match rng.random_range(0..3) {
            0 if !b.is_empty() => {
                b.remove(i);
            }
            1 => b.insert(i.min(b.len()), rng.random_range(b' '..=b'~')),
            _ if !b.is_empty() => b[i] = rng.random_range(b' '..=b'~'),
            _ => {}
        }
        agree(name, &String::from_utf8_lossy(&b));
    }
}

#[test]
fn deep_nesting_falls_back_to_pest() {
    let deep = format!("schedule s = {}1{}\n", "[".repeat(200), "]".repeat(200));
    assert!(pipelang::syntax::parse_fast(&deep).is_none());
    let _ = pipelang::syntax::parse(&deep);
}
