//! Human output through miette: colour only when asked (on a TTY), plain and fixed-width for
//! snapshots and pipes.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    NamedSource, SourceCode, SourceSpan, SpanContents,
};

use super::{Diagnostic, Severity};

struct Report<'a> {
    diag: &'a Diagnostic,
    source: &'a Eliding,
}

/// Labels further apart than this many unshown lines get snippets of their own, the lines
/// between them left out; closer ones share one snippet (a gap of a line or two reads better
/// shown than elided).
const SHOWN_GAP: usize = 2;

/// The file as miette reads it, with one correction: miette joins two labels' snippets when
/// `line + line_count` of the first reaches the second, but its `line_count` counts the lines
/// from the top of the file, so past the middle of a file every snippet was joined to the
/// next, however far (`kimi_vl.pipe` showed the 10 lines between a stage's name and its
/// `lr`). Here `line_count` is the snippet's own lines plus [`SHOWN_GAP`].
struct Eliding(NamedSource<String>);

impl SourceCode for Eliding {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let c = self.0.read_span(span, before, after)?;
        let data = c.data();
        let lines =
            data.iter().filter(|&&b| b == b'\n').count() + usize::from(!data.ends_with(b"\n"));
        let name = c.name().unwrap_or_default().to_string();
        Ok(Box::new(MietteSpanContents::new_named(
            name,
            data,
            *c.span(),
            c.line(),
            c.column(),
            lines + SHOWN_GAP,
        )))
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
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
        let len = self.source.0.inner().len();
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
    let named = Eliding(NamedSource::new(file, source.to_string()));
    let mut out = String::new();
    for d in diags {
        let report = Report {
            diag: d,
            source: &named,
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
