//! Byte spans, and the one place that turns them into lines and columns (for the edges:
//! CLI, JSON, LSP).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
    pub fn contains(&self, offset: usize) -> bool {
        self.start <= offset && offset <= self.end
    }
}

impl From<pest::Span<'_>> for Span {
    fn from(s: pest::Span<'_>) -> Self {
        Span::new(s.start(), s.end())
    }
}

/// Line starts of a source, for converting byte offsets to 0-based (line, column) pairs.
/// Columns are counted in characters (`col_chars`) or in UTF-16 code units (`col_utf16`, LSP).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 0-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        }
    }

    pub fn line_start(&self, line: usize) -> usize {
        self.starts[line.min(self.starts.len() - 1)]
    }

    pub fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// 0-based (line, column in characters).
    pub fn line_col_chars(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = clamp_to_char(source, offset);
        let line = self.line(offset);
        let col = source[self.starts[line]..offset].chars().count();
        (line, col)
    }

    /// 0-based (line, column in UTF-16 code units), as LSP counts.
    pub fn line_col_utf16(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = clamp_to_char(source, offset);
        let line = self.line(offset);
        let col = source[self.starts[line]..offset].encode_utf16().count();
        (line, col)
    }

    /// Byte offset of a 0-based (line, UTF-16 column); positions past a line's end clamp to it.
    pub fn offset_utf16(&self, source: &str, line: usize, col: usize) -> usize {
        if line >= self.starts.len() {
            return source.len();
        }
        let start = self.starts[line];
        let end = self.starts.get(line + 1).map_or(source.len(), |&e| e);
        let mut units = 0;
        for (i, ch) in source[start..end].char_indices() {
            if units >= col || ch == '\n' {
                return start + i;
            }
            units += ch.len_utf16();
        }
        end
    }
}

fn clamp_to_char(source: &str, offset: usize) -> usize {
    let mut o = offset.min(source.len());
    while !source.is_char_boundary(o) {
        o -= 1;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_and_utf16_units() {
        let src = "// é😀x\nab";
        let idx = LineIndex::new(src);
        let x = src.find('x').unwrap();
        assert_eq!(idx.line_col_chars(src, x), (0, 5));
        assert_eq!(idx.line_col_utf16(src, x), (0, 6));
        assert_eq!(idx.offset_utf16(src, 0, 6), x);
        let b = src.find('b').unwrap();
        assert_eq!(idx.line_col_chars(src, b), (1, 1));
        assert_eq!(idx.offset_utf16(src, 1, 99), src.len());
    }
}
