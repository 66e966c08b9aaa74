//! Diagnostics: one type for every problem the checker, the planner, hot reload and the data
//! layer report. Spans are byte offsets; lines and columns appear only when rendering.

mod codes;
mod fix;
mod json;
mod render;

pub use codes::{CODES, Code, CodeInfo};
pub use fix::{Edit, Fix, apply as apply_fixes, insert_field, lay_out as lay_out_fixes};
pub use json::to_json;
pub use render::{render_human, render_human_plain};

use crate::syntax::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Advice,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Advice => "advice",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The first label is the primary one: the place to fix.
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// Exact repairs, best first; empty where the checker cannot know the intent.
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.info().severity,
            message: message.into(),
            labels: vec![],
            help: None,
            fixes: vec![],
        }
    }
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn fix(mut self, fix: impl Into<Option<Fix>>) -> Self {
        self.fixes.extend(fix.into());
        self
    }
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
    pub fn primary_span(&self) -> Span {
        self.labels.first().map_or(Span::default(), |l| l.span)
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Collects diagnostics; the checker keeps going after each one.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }
    pub fn error_count(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count()
    }
    /// Sorted by position, duplicates removed (a problem found both in the base pipeline and
    /// under a profile is reported once).
    pub fn finish(mut self) -> Vec<Diagnostic> {
        let mut seen = foldhash::HashSet::default();
        self.list
            .retain(|d| seen.insert((d.code, d.primary_span(), d.message.clone())));
        self.list
            .sort_by_key(|d| (d.primary_span().start, d.severity));
        self.list
    }
}
