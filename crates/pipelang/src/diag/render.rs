//! Human output through miette: colour only when asked (on a TTY), plain and fixed-width for
//! snapshots and pipes.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use super::{Diagnostic, Severity};

/// One diagnostic as miette reads it, over `source` (`len` bytes long).
struct Report<'a, S> {
    diag: &'a Diagnostic,
    source: &'a S,
    len: usize,
}

/// Labels further apart than this many unshown lines get snippets of their own, the lines
/// between them left out; closer ones share one snippet (a gap of a line or two reads better
/// shown than elided).
const SHOWN_GAP: usize = 2;

/// The file as miette reads it, with two corrections:
/// - miette joins two labels' snippets when `line + line_count` of the first reaches the
///   second, but its `line_count` counts the lines from the top of the file, so past the
///   middle of a file every snippet was joined to the next, however far (`kimi_vl.pipe` showed
///   the 10 lines between a stage's name and its `lr`). Here `line_count` is the snippet's own
///   lines plus [`SHOWN_GAP`].
/// - miette finds a span's lines by scanning the source from its first byte, once per label:
///   a file with many diagnostics took time quadratic in its length (the check fuzzer spent
///   half its time there). Here miette reads a window of the span's lines (one more on each
///   side than the context it asks for), found in a table of line starts, and the answer is
///   moved back to the file's offsets and line numbers.
struct Eliding {
    name: String,
    text: String,
    /// The byte offset of each line's first byte, lines as miette counts them.
    line_starts: Vec<usize>,
}

impl Eliding {
    fn new(name: &str, text: &str) -> Eliding {
        // Where miette starts a line: after `\n`, after `\r\n`, and after a `\r` alone.
        let b = text.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(b.iter().enumerate().filter_map(|(i, &c)| {
                let ends = c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n'));
                ends.then_some(i + 1)
            }))
            .collect();
        Eliding {
            name: name.to_string(),
            text: text.to_string(),
            line_starts,
        }
    }

    /// The line that holds byte `at`.
    fn line_of(&self, at: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= at) - 1
    }
}

impl SourceCode for Eliding {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let len = self.text.len();
        let start = span.offset();
        let end = start.saturating_add(span.len());
        if end > len {
            return Err(MietteError::OutOfBounds);
        }
        let first = self.line_of(start).saturating_sub(before + 1);
        let ws = self.line_starts[first];
        let we = self
            .line_starts
            .get(self.line_of(end) + after + 2)
            .copied()
            .unwrap_or(len);
        let window = &self.text[ws..we];
        let c = window.read_span(
            &SourceSpan::new((start - ws).into(), span.len()),
            before,
            after,
        )?;
        Ok(snippet(&self.name, &*c, ws, first))
    }
}

/// What miette read (`c`, from a text that starts at byte `offset` and line `line` of the
/// file), with its offsets and lines the file's and `line_count` its own lines plus
/// [`SHOWN_GAP`].
fn snippet<'a>(
    name: &str,
    c: &(dyn SpanContents<'a> + 'a),
    offset: usize,
    line: usize,
) -> Box<dyn SpanContents<'a> + 'a> {
    let data = c.data();
    let lines = data.iter().filter(|&&b| b == b'\n').count() + usize::from(!data.ends_with(b"\n"));
    Box::new(MietteSpanContents::new_named(
        name.to_string(),
        data,
        SourceSpan::new((c.span().offset() + offset).into(), c.span().len()),
        c.line() + line,
        c.column(),
        lines + SHOWN_GAP,
    ))
}

impl<S> fmt::Debug for Report<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl<S> fmt::Display for Report<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl<S> std::error::Error for Report<'_, S> {}

impl<S: SourceCode> miette::Diagnostic for Report<'_, S> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code.as_str()))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Advice => miette::Severity::Advice,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.len;
        Some(Box::new(self.diag.labels.iter().enumerate().map(
            move |(i, l)| {
                let start = l.span.start.min(len);
                let end = l.span.end.clamp(start, len);
                let text = (!l.message.is_empty()).then(|| l.message.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, (start, end - start))
                } else {
                    LabeledSpan::new_with_span(text, (start, end - start))
                }
            },
        )))
    }
}

fn render(
    diags: &[Diagnostic],
    file: &str,
    source: &str,
    handler: GraphicalReportHandler,
) -> String {
    let named = Eliding::new(file, source);
    let mut out = String::new();
    for d in diags {
        let report = Report {
            diag: d,
            source: &named,
            len: source.len(),
        };
        let _ = handler.render_report(&mut out, &report);
    }
    out
}

/// Coloured when `color`, at the terminal's width (or 100 columns).
pub fn render_human(diags: &[Diagnostic], file: &str, source: &str, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let width = terminal_width().unwrap_or(100);
    render(
        diags,
        file,
        source,
        GraphicalReportHandler::new_themed(theme).with_width(width),
    )
}

/// No colour, 100 columns: stable text for snapshots and files.
pub fn render_human_plain(diags: &[Diagnostic], file: &str, source: &str) -> String {
    let handler =
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
    render(diags, file, source, handler)
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;
    use crate::syntax::Span;

    /// The reading [`Eliding`] replaced, kept as the oracle: miette's scan of the whole file,
    /// with the same `line_count`.
    struct WholeFile(String);

    impl SourceCode for WholeFile {
        fn read_span<'a>(
            &'a self,
            span: &SourceSpan,
            before: usize,
            after: usize,
        ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
            let c = self.0.as_str().read_span(span, before, after)?;
            Ok(snippet("f.pipe", &*c, 0, 0))
        }
    }

    fn both(diags: &[Diagnostic], src: &str) -> (String, String) {
        let handler = || {
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100)
        };
        let windowed = render(diags, "f.pipe", src, handler());
        let whole = WholeFile(src.to_string());
        let mut scanned = String::new();
        for diag in diags {
            let report = Report {
                diag,
                source: &whole,
                len: src.len(),
            };
            let _ = handler().render_report(&mut scanned, &report);
        }
        (windowed, scanned)
    }

    /// Every span of one to three labels over texts with `\n`, `\r\n` and lone `\r` line ends,
    /// empty lines, and spans at the first and last byte: the windowed reading renders what
    /// the whole-file scan rendered.
    #[test]
    fn the_window_renders_what_the_whole_file_scan_rendered() {
        let texts = [
            "a = 1\nb = 2\n\nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\nh = 8\n",
            "a = 1\r\nb = 2\r\n\r\nc = 3\r\nd = 4\r\ne = 5\rf = 6\n\ng = 7",
            "one line, no end",
            "\n\n\nx\n\n\n",
            "\r\r\nx\r\r\n\n\ry",
        ];
        let mut cases = 0;
        for src in texts {
            let n = src.len();
            let cuts: Vec<usize> = (0..=n).collect();
            for &a in &cuts {
                for &b in cuts.iter().filter(|&&b| b >= a).step_by(3) {
                    let far = Span::new(n.saturating_sub(1), n);
                    let near = Span::new(a / 2, a / 2 + 1);
                    let d = Diagnostic::new(Code::SYNTAX, "m")
                        .label(Span::new(a, b), "here")
                        .label(far, "far")
                        .label(near, "");
                    let one = Diagnostic::new(Code::SYNTAX, "m").label(Span::new(a, b), "x");
                    let (w, o) = both(&[d, one], src);
                    assert_eq!(w, o, "spans at {a}..{b} of {src:?}");
                    cases += 1;
                }
            }
        }
        assert!(cases > 300, "{cases}");
    }
}
