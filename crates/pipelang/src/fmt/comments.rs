//! Comments, recovered from the source text: the syntax tree has none (the grammar treats them
//! as whitespace), so the formatter finds them here and places them back by position.

use crate::syntax::{LineIndex, Span};

#[derive(Debug, Clone)]
pub struct Comment {
    /// From `//` to the end of its line, trailing whitespace excluded.
    pub span: Span,
    /// Nothing but whitespace before it on its line.
    pub own_line: bool,
    /// 0-based source line.
    pub line: usize,
}

/// Every `//` comment of a source, in order. A `//` inside a string is not one: strings cannot
/// span lines, so a string ends at its closing quote or at the end of its line.
pub fn scan(source: &str, index: &LineIndex) -> Vec<Comment> {
    let bytes = source.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += 1;
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                let end = start + source[start..i].trim_end().len();
                let line = index.line(start);
                let own_line = source[index.line_start(line)..start].trim().is_empty();
                out.push(Comment {
                    span: Span::new(start, end),
                    own_line,
                    line,
                });
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashes_in_strings_are_not_comments() {
        let src = "data a = text(\"x//y\") // real\n  // own\n";
        let c = scan(src, &LineIndex::new(src));
        assert_eq!(c.len(), 2);
        assert_eq!(&src[c[0].span.start..c[0].span.end], "// real");
        assert!(!c[0].own_line);
        assert!(c[1].own_line);
        assert_eq!(c[1].line, 1);
    }
}
