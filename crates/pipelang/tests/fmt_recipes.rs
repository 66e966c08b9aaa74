//! The formatter on the shipped recipes and the checker's fixtures: the recipes are already in
//! canonical layout, formatting is idempotent, keeps every comment, and changes no diagnostic.

use std::path::{Path, PathBuf};

use pipelang::fmt::{FormatError, format};

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pipe"))
            .collect();
    v.sort();
    assert!(!v.is_empty(), "no .pipe files in {dir}");
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Comment texts, in order, found the way an editor would (outside strings).
fn comments(src: &str) -> Vec<String> {
    let mut out = vec![];
    for line in src.lines() {
        let mut in_str = false;
        let b = line.as_bytes();
        for i in 0..b.len() {
            match b[i] {
                b'"' => in_str = !in_str,
                b'/' if !in_str && b.get(i + 1) == Some(&b'/') => {
                    out.push(line[i..].trim_end().to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

fn codes(src: &str) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = pipelang::check::check(src)
        .diagnostics
        .iter()
        .map(|d| d.code.0)
        .collect();
    c.sort();
    c
}

#[test]
fn shipped_recipes_are_formatted() {
    for p in files("pipelines") {
        let src = read(&p);
        let out = format(&src).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if out != src {
            let line = src
                .lines()
                .zip(out.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{} is not in canonical layout; first difference at line {}:\n  file: {:?}\n  fmt:  {:?}",
                p.display(),
                line + 1,
                src.lines().nth(line),
                out.lines().nth(line)
            );
        }
    }
}

#[test]
fn idempotent_and_faithful_on_every_fixture() {
    let mut formatted = 0;
    for p in files("pipelines")
        .into_iter()
        .chain(files("crates/pipelang/tests/ui"))
    {
        let src = read(&p);
        let once = match format(&src) {
            Ok(s) => s,
            Err(FormatError::Syntax { .. }) => {
                assert!(
                    !pipelang::syntax::parse(&src).errors.is_empty(),
                    "{}: refused but parses",
                    p.display()
                );
                continue;
            }
            Err(e) => panic!("{}: {e}", p.display()),
        };
        formatted += 1;
        let twice = format(&once).unwrap();
        assert_eq!(once, twice, "{}: formatting is not idempotent", p.display());
        let (mut a, mut b) = (comments(&src), comments(&once));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{}: comments changed", p.display());
        assert_eq!(
            codes(&src),
            codes(&once),
            "{}: diagnostics changed",
            p.display()
        );
    }
    assert!(formatted > 40, "only {formatted} fixtures formatted");
}

/// The reference recipe with its layout destroyed (indentation, alignment and comment columns
/// gone, spacing collapsed) formats back to itself exactly.
#[test]
fn reference_layout_is_rebuilt_from_scratch() {
    let path =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("pipelines/kimi_vl.pipe");
    let original = read(&path);
    let mut ugly = String::new();
    for line in original.lines() {
        let (code, comment) = match line.find("//") {
            Some(i) if line[..i].matches('"').count() % 2 == 0 => line.split_at(i),
            _ => (line, ""),
        };
        let mut code = code.split_whitespace().collect::<Vec<_>>().join(" ");
        code = code.replace(" = ", "=").replace(", ", " ,");
        if !code.is_empty() && !comment.is_empty() {
            code.push(' ');
        }
        // One space where there was indentation: at column 0 an item keyword starts an item.
        let indent = if line.starts_with(' ') { " " } else { "" };
        ugly += &format!("{indent}{code}{comment}\n");
    }
    assert_ne!(ugly, original);
    assert_eq!(format(&ugly).unwrap(), original);
}

#[test]
fn syntax_errors_are_refused_with_a_position() {
    let e = format("pipeline p {\n  seed = 1\n  batch 16\n}\n").unwrap_err();
    match e {
        FormatError::Syntax { line, .. } => assert_eq!(line, 3),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("line 3"), "{e}");
}

#[test]
fn comments_everywhere_survive() {
    let src = r#"// head

pipeline p { // after the brace
  seed = 1 // one
  // before batch
  batch = 2, seq_len = 8K // two on one line

  sample_data = "a//b" // slashes in a string are not a comment
  // last in the body
} // after the close
stage s {
  train = [a, // inside a list
    b] // after the list
  lr = x
    then y // a chain
}
// at the end"#;
    let out = format(src).unwrap();
    let (mut a, mut b) = (comments(src), comments(&out));
    a.sort();
    b.sort();
    assert_eq!(a, b, "\n{out}");
    assert_eq!(format(&out).unwrap(), out, "not idempotent:\n{out}");
    assert!(out.contains("  sample_data = \"a//b\""), "{out}");
    assert!(out.contains("\n  // before batch\n"), "{out}");
    assert!(out.contains("\n  // last in the body\n}"), "{out}");
    assert!(out.ends_with("// at the end\n"), "{out}");
}

/// The reference recipe with each line deleted in turn (many variants still parse): formatting
/// never panics, and whatever it formats stays idempotent with the same diagnostics.
#[test]
fn every_line_deletion_of_the_reference() {
    let path =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("pipelines/kimi_vl.pipe");
    let original = read(&path);
    let lines: Vec<&str> = original.lines().collect();
    let mut formatted = 0;
    for skip in 0..lines.len() {
        let src: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        match format(&src) {
            Ok(once) => {
                formatted += 1;
                assert_eq!(format(&once).unwrap(), once, "line {} deleted", skip + 1);
                assert_eq!(codes(&src), codes(&once), "line {} deleted", skip + 1);
            }
            Err(FormatError::Syntax { .. }) => {}
            Err(e) => panic!("line {} deleted: {e}", skip + 1),
        }
    }
    assert!(
        formatted > lines.len() / 2,
        "only {formatted} variants formatted"
    );
}

#[test]
fn budgets_in_steps_ratios_and_rest_round_trip() {
    let canonical = "pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text(\"corpus/*.jsonl\")
stage pre {
  train  = [lm]
  budget = 600 steps
  data   = web
  lr     = constant(1e-4)
  phase a { budget = 1/6 }
  phase b { budget = 100 steps, seq_len = 1K -> 2K }
  phase c { budget = rest }
}
";
    assert_eq!(format(canonical).unwrap(), canonical);
    let squashed = canonical
        .replace("budget = 1/6", "budget=1 / 6")
        .replace("budget = 600 steps", "budget=600 steps")
        .replace("budget = rest", "budget=rest");
    assert_ne!(squashed, canonical);
    assert_eq!(format(&squashed).unwrap(), canonical);
    assert!(codes(canonical).is_empty(), "{:?}", codes(canonical));
}
