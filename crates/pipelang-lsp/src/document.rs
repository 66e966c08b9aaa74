//! One open document: its text and everything derived from it, recomputed on each change
//! (full sync: a recipe is a few hundred lines and checks in well under a millisecond).

use std::time::{Duration, Instant};

use lsp_types as lsp;

use super::convert::{self, Text};
use super::names::Names;
use pipelang::check::{self, Checked};
use pipelang::plan::Plan;
use pipelang::syntax::LineIndex;

pub struct Document {
    pub uri: lsp::Uri,
    pub version: i32,
    pub text: String,
    pub index: LineIndex,
    pub checked: Checked,
    pub names: Names,
    pub diagnostics: Vec<lsp::Diagnostic>,
    /// Server time to check, plan and convert the diagnostics of this version.
    pub analysis_time: Duration,
    /// The plan panel's last picture of this version, by highlighted stage and staleness: the
    /// panel asks again on every cursor move, and most moves stay in one stage.
    pub(crate) plan_svg: std::cell::RefCell<Option<(Option<String>, bool, String)>>,
}

/// What the server has read from the files its documents name (tokenizer files, `init`
/// headers), kept across edits while those files are unchanged.
#[derive(Default)]
pub struct FileReads {
    pub tokenizers: check::files::TokenizerCounts,
    pub headers: check::init_file::Headers,
}

impl Document {
    pub fn new(uri: lsp::Uri, version: i32, text: String) -> Document {
        Self::with_files(uri, version, text, &mut FileReads::default())
    }

    /// [`Document::new`], with the files the server has already read.
    pub fn with_files(
        uri: lsp::Uri,
        version: i32,
        text: String,
        reads: &mut FileReads,
    ) -> Document {
        let started = Instant::now();
        let index = LineIndex::new(&text);
        let mut checked = check::check(&text);
        // The files the pipeline names (tokenizers), read as `pipe check` reads them, so that
        // the editor and the command line report the same problems.
        if let (Some(p), Some(path)) = (&checked.pipeline, file_path(&uri)) {
            let mut files = check::files::check_counted(p, &path, &mut reads.tokenizers);
            // `init` files: there, safetensors, floats. Their shapes need the runtime's layout,
            // which the server does not link (`pipe check` checks them).
            files.extend(check::init_file::check_cached(
                p,
                &path,
                &|_| None,
                &mut reads.headers,
            ));
            if !files.is_empty() {
                checked.diagnostics.extend(files);
                checked
                    .diagnostics
                    .sort_by_key(|d| (d.primary_span().start, d.severity));
            }
        }
        let names = Names::new(&checked.file);
        let t = Text {
            src: &text,
            index: &index,
        };
        let diagnostics = checked
            .diagnostics
            .iter()
            .map(|d| convert::diagnostic(&t, &uri, d))
            .collect();
        // Resolved now, not at the first request: the server keeps every sound version's plan
        // (for when the file has errors), and the trace reports it with the check.
        let _ = checked.plan();
        let analysis_time = started.elapsed();
        Document {
            uri,
            version,
            text,
            index,
            checked,
            names,
            diagnostics,
            analysis_time,
            plan_svg: Default::default(),
        }
    }

    /// `None` while the file has errors: plans are made of sound pipelines.
    pub fn plan(&self) -> Option<&Plan> {
        self.checked.plan()
    }

    pub fn text(&self) -> Text<'_> {
        Text {
            src: &self.text,
            index: &self.index,
        }
    }
}

/// The file behind a `file:` URI; other schemes (an unsaved buffer) have none, and their
/// file checks wait until the document is saved somewhere.
fn file_path(uri: &lsp::Uri) -> Option<std::path::PathBuf> {
    if !uri.scheme()?.as_str().eq_ignore_ascii_case("file") {
        return None;
    }
    let path = uri.path().as_estr().decode().into_string().ok()?;
    Some(std::path::PathBuf::from(path.into_owned()))
}
