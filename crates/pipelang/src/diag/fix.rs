//! Machine-applicable fixes: where the checker knows the exact repair (a misspelt name, the
//! value a transition must start from, a missing `after` edge or field), the diagnostic carries
//! it as text edits. Editors offer them as quick fixes; `pipe check --fix` applies them.

use crate::syntax::Span;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edit {
    /// Bytes to replace; an empty span inserts at its start.
    pub span: Span,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fix {
    /// What the fix does, as a quick-fix title ("change to `llm`").
    pub message: String,
    pub edits: Vec<Edit>,
    /// A field to add to the block whose braces span this: the checker knows the field but not
    /// the layout, so `lay_out` turns it into `edits` once the source is at hand.
    pub add_field: Option<(Span, String)>,
}

impl Fix {
    pub fn replace(message: impl Into<String>, span: Span, text: impl Into<String>) -> Fix {
        Fix {
            message: message.into(),
            edits: vec![Edit {
                span,
                text: text.into(),
            }],
            add_field: None,
        }
    }

    pub fn insert(message: impl Into<String>, at: usize, text: impl Into<String>) -> Fix {
        Fix::replace(message, Span::new(at, at), text)
    }

    /// Adds `field` to the block `body` (its braces included); see `lay_out`.
    pub fn add_field(body: Span, field: &str) -> Fix {
        Fix {
            message: format!("add `{field}`"),
            edits: vec![],
            add_field: Some((body, field.to_string())),
        }
    }

    /// The fix that renames `span` to the did-you-mean suggestion.
    pub fn rename(span: Span, to: &str) -> Fix {
        Fix::replace(format!("change to `{to}`"), span, to)
    }
}

/// Adds `field` (e.g. `budget = 1T`) to the block whose braces span `body`, in the block's own
/// layout: on its line for a one-line block, on a new line indented like its entries otherwise.
pub fn insert_field(source: &str, body: Span, field: &str) -> Option<Fix> {
    let block = source.get(body.start..body.end)?;
    if !block.starts_with('{') || !block.ends_with('}') {
        return None;
    }
    let close = body.end - 1;
    let inner = &block[1..block.len() - 1];
    let message = format!("add `{field}`");
    if inner.trim().is_empty() {
        return Some(Fix::replace(
            message,
            Span::new(body.start + 1, close),
            format!(" {field} "),
        ));
    }
    let last = body.start + 1 + inner.trim_end().len();
    if !inner.contains('\n') {
        let sep = if inner.trim_end().ends_with(',') {
            " "
        } else {
            ", "
        };
        return Some(Fix::insert(message, last, format!("{sep}{field}")));
    }
    // The indentation of the first entry: the block's entries share it in canonical layout.
    let first_line = inner.lines().skip(1).find(|l| !l.trim().is_empty())?;
    let indent = &first_line[..first_line.len() - first_line.trim_start().len()];
    Some(Fix::insert(message, last, format!("\n{indent}{field}")))
}

/// Turns every `add_field` into edits for `source` (dropping the fix where the block is not
/// where its span says, which only a bug could cause).
pub fn lay_out(source: &str, fixes: &mut Vec<Fix>) {
    fixes.retain_mut(|f| match f.add_field.take() {
        None => true,
        Some((body, field)) => match insert_field(source, body, &field) {
            Some(laid) => {
                f.edits = laid.edits;
                true
            }
            None => false,
        },
    });
}

/// Applies the first fix of each diagnostic, skipping any that overlaps an edit already taken
/// (a later round of checking offers it again if it still applies). Returns the new text and
/// how many fixes were applied.
pub fn apply<'a>(source: &str, fixes: impl IntoIterator<Item = &'a Fix>) -> (String, usize) {
    let mut taken: Vec<&Edit> = vec![];
    let mut applied = 0;
    for fix in fixes {
        let overlaps = fix.edits.iter().any(|e| {
            e.span.end > source.len()
                || taken.iter().any(|t| {
                    e.span.start < t.span.end && t.span.start < e.span.end
                        || e.span.start == t.span.start
                })
        });
        if overlaps || fix.edits.is_empty() {
            continue;
        }
        taken.extend(&fix.edits);
        applied += 1;
    }
    taken.sort_by_key(|e| (e.span.start, e.span.end));
    let mut out = String::with_capacity(source.len());
    let mut at = 0;
    for e in taken {
        out.push_str(&source[at..e.span.start]);
        out.push_str(&e.text);
        at = e.span.end;
    }
    out.push_str(&source[at..]);
    (out, applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(src: &str) -> Span {
        Span::new(src.find('{').unwrap(), src.rfind('}').unwrap() + 1)
    }

    #[test]
    fn inserts_fields_in_the_blocks_layout() {
        let one = "pipeline t { seed = 1, batch = 4 }";
        let f = insert_field(one, body(one), "seq_len = 1K").unwrap();
        assert_eq!(
            apply(one, [&f]).0,
            "pipeline t { seed = 1, batch = 4, seq_len = 1K }"
        );
        let many = "stage s {\n  train = [lm]\n  data  = web\n}\n";
        let f = insert_field(many, body(many), "budget = 1T").unwrap();
        assert_eq!(
            apply(many, [&f]).0,
            "stage s {\n  train = [lm]\n  data  = web\n  budget = 1T\n}\n"
        );
        let empty = "stage s {}";
        let f = insert_field(empty, body(empty), "budget = 1T").unwrap();
        assert_eq!(apply(empty, [&f]).0, "stage s { budget = 1T }");
    }

    #[test]
    fn overlapping_fixes_are_left_for_a_later_round() {
        let src = "abc";
        let a = Fix::replace("a", Span::new(0, 2), "x");
        let b = Fix::replace("b", Span::new(1, 3), "y");
        let c = Fix::insert("c", 3, "!");
        assert_eq!(apply(src, [&a, &b, &c]), ("xc!".to_string(), 2));
    }
}
