//! No input makes the checker panic: thousands of byte-level and token-level mutations of the
//! reference recipe are checked, and each must come back with diagnostics, not a crash.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    "resume",
    "stage",
    "model",
    "data",
    "phase",
    "mix",
    "profile",
    "scale",
    "by",
    "0",
    "-1",
    "1e400",
    "8K",
    "5.2T",
    "40%",
    "\"",
    "//",
    "\n",
    "é",
    "😀",
    "budget",
    "lr",
    "seq_len",
    "rope_base",
    "train",
    "freeze",
    "2000 steps",
];

fn reference() -> String {
    std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap()
}

fn check_one(src: &str) {
    let c = pipelang::check::check(src);
    for d in &c.diagnostics {
        // Spans must stay inside the source so that every renderer can show them.
        for l in &d.labels {
            assert!(
                l.span.start <= l.span.end && l.span.end <= src.len(),
                "span out of range: {d:?}"
            );
        }
    }
    // Rendering must not panic either.
    let _ = pipelang::diag::render_human_plain(&c.diagnostics, "fuzz.pipe", src);
    let _ = pipelang::diag::to_json(&c.diagnostics, "fuzz.pipe", src);
}

#[test]
fn byte_mutations_never_panic() {
    let base = reference().into_bytes();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..1500 {
        let mut b = base.clone();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => {
                    b.remove(i);
                }
                1 => b.insert(i, rng.random()),
                _ => b[i] = rng.random(),
            }
        }
        check_one(&String::from_utf8_lossy(&b));
    }
}

#[test]
fn token_mutations_never_panic() {
    let base = reference();
    let words: Vec<&str> = base
        .split_inclusive(|c: char| c.is_whitespace() || "{}()[],=".contains(c))
        .collect();
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..1500 {
        let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..w.len());
            match rng.random_range(0..4) {
                0 => {
                    w.remove(i);
                }
                1 => w.insert(i, TOKENS[rng.random_range(0..TOKENS.len())].to_string()),
                2 => w[i] = TOKENS[rng.random_range(0..TOKENS.len())].to_string(),
                _ => {
                    let j = rng.random_range(0..w.len());
                    w.swap(i, j);
                }
            }
        }
        check_one(&w.concat());
    }
}

/// Lines whose deletion leaves a valid recipe with a defensible meaning: the field is optional
/// and its default is sound (or the line only states the default).
const OPTIONAL: &[(&str, &str)] = &[
    ("seed", "the default seed"),
    ("pixel_shuffle", "1, no spatial merge: a valid projector"),
    (
        "seq_len = 4K",
        "the ViT stage then inherits the pipeline's 8K",
    ),
    ("loss    = next_token", "next_token is the default loss"),
    (
        "rope_base = 50_000 -> 800_000",
        "a context extension may keep its RoPE base (Llama 3 did)",
    ),
];

#[test]
fn line_mutations_are_reported() {
    // Deleting any single line that carries meaning must not go unnoticed. Blank lines,
    // comments, optional fields (above) and the profile block (which only shrinks the recipe)
    // are exempt.
    let base = reference();
    let lines: Vec<&str> = base.lines().collect();
    let profile_start = lines
        .iter()
        .position(|l| l.starts_with("profile "))
        .unwrap();
    let mut silent = vec![];
    for i in 0..profile_start {
        let t = lines[i].trim();
        if t.is_empty()
            || t.starts_with("//")
            || t == "}"
            || OPTIONAL.iter().any(|(p, _)| t.starts_with(p))
        {
            continue;
        }
        let mutated: String = lines
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        if pipelang::check::check(&mutated).diagnostics.is_empty() {
            silent.push(format!("{}: {}", i + 1, lines[i]));
        }
    }
    assert!(
        silent.is_empty(),
        "deleting these lines went unreported:\n{}",
        silent.join("\n")
    );
}

/// Half-typed text with many `{` never closed: each one used to make every enclosing block
/// try the lines after it again (2^n parses; the fuzzer found a page that took 16 s). Now one
/// parse, one error at the end of the file, pointing at the innermost `{`.
/// `fuzz/regressions/parse/stray-comma-in-nested-unclosed-blocks-exponential`, reduced: a body
/// that failed at a stray comma (`10%,,rest =`, where no entry could start) made every
/// enclosing unclosed block retry as an error entry, 2^depth parses of the lines after it.
#[test]
fn a_stray_comma_inside_nested_unclosed_blocks_parses_once() {
    let mut src = String::from("stage pre {\n");
    for _ in 0..40 {
        src += "  phase b { {\n";
    }
    src += "  lr = wsd(peak = 1e-2, decay = 10%,,rest = ";
    let file = pipelang::syntax::parse(&src);
    let comma = src.find(",,").unwrap() + 1;
    assert!(
        file.errors.iter().any(|e| e.span.start == comma),
        "the stray comma is an error of its own: {:?}",
        file.errors
    );
    // One error per line's second `{`, none per open block: each block stays a block.
    let braces = file.errors.iter().filter(|e| e.found == "`{`").count();
    assert_eq!(braces, 40, "{:?}", file.errors);
    check_one(&src);
}

#[test]
fn many_unclosed_blocks_parse_once() {
    let mut src = String::from("stage s {\n");
    for i in 0..40 {
        src += &format!("  b{i} {{\n  x = 1\n");
    }
    let file = pipelang::syntax::parse(&src);
    assert_eq!(file.errors.len(), 1, "{:?}", file.errors);
    let e = &file.errors[0];
    assert_eq!(e.found, "end of file");
    assert_eq!(e.span.start, src.len());
    let (note, text) = e.note.as_ref().unwrap();
    assert_eq!(&src[note.start..note.end], "{");
    assert_eq!(note.start, src.rfind('{').unwrap());
    assert!(text.contains("never closed"), "{text}");
    check_one(&src);
}
