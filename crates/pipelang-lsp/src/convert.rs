//! Byte spans <-> LSP positions (UTF-16 columns), and checker diagnostics -> LSP diagnostics.

use lsp_types as lsp;

use pipelang::diag::{self, Severity};
use pipelang::syntax::{LineIndex, Span};

/// A source with its line index: every position conversion goes through it.
pub struct Text<'a> {
    pub src: &'a str,
    pub index: &'a LineIndex,
}

impl Text<'_> {
    pub fn position(&self, offset: usize) -> lsp::Position {
        let (line, col) = self.index.line_col_utf16(self.src, offset);
        lsp::Position::new(line as u32, col as u32)
    }

    pub fn range(&self, span: Span) -> lsp::Range {
        lsp::Range::new(self.position(span.start), self.position(span.end))
    }

    /// The byte offset of a position; positions past a line's end or the file's end clamp.
    pub fn offset(&self, p: lsp::Position) -> usize {
        self.index
            .offset_utf16(self.src, p.line as usize, p.character as usize)
            .min(self.src.len())
    }

    /// The text of the 0-based `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.index.line_start(line);
        let end = if line + 1 < self.index.line_count() {
            self.index.line_start(line + 1)
        } else {
            self.src.len()
        };
        self.src[start..end].trim_end_matches(['\n', '\r'])
    }
}

/// Same code, message and spans as `pipe check`: the first label is the range, every label
/// (the primary one too, for its message) is related information, and the help is appended.
pub fn diagnostic(text: &Text, uri: &lsp::Uri, d: &diag::Diagnostic) -> lsp::Diagnostic {
    let severity = match d.severity {
        Severity::Error => lsp::DiagnosticSeverity::ERROR,
        Severity::Warning => lsp::DiagnosticSeverity::WARNING,
        Severity::Advice => lsp::DiagnosticSeverity::INFORMATION,
    };
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message = format!("{message}\nhelp: {help}");
    }
    let related: Vec<lsp::DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter(|l| !l.message.is_empty())
        .map(|l| lsp::DiagnosticRelatedInformation {
            location: lsp::Location::new(uri.clone(), text.range(l.span)),
            message: l.message.clone(),
        })
        .collect();
    lsp::Diagnostic {
        range: text.range(d.primary_span()),
        severity: Some(severity),
        code: Some(lsp::NumberOrString::String(d.code.0.to_string())),
        code_description: None,
        source: Some("pipe".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: (d.code == diag::Code::UNUSED).then(|| vec![lsp::DiagnosticTag::UNNECESSARY]),
        data: None,
    }
}
