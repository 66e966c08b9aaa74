//! One data source of any kind behind a single API, opened from its declaration.

use std::path::Path;

use super::cursor::SourceCursor;
use super::error::Result;
use super::image_patches::ImageConfig;
use super::multimodal::MultimodalSource;
use super::records::SourceKind;
use super::sequence::{CaptionPair, Sequence};
use super::text_source::TextSource;
use super::tokenizer::Tokenizer;

/// A `data NAME = KIND("glob", ...)` declaration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceSpec {
    pub name: String,
    pub kind: SourceKind,
    /// Glob patterns, relative to the base directory given to [`Source::open`].
    pub patterns: Vec<String>,
    /// The string column of Parquet files (`None`: `text`).
    #[serde(default)]
    pub column: Option<String>,
    /// The `.json` field holding WebDataset captions (`None`: the `.txt` entry).
    #[serde(default)]
    pub caption: Option<String>,
}

pub enum Source {
    Text(TextSource),
    Multimodal(MultimodalSource),
}

impl Source {
    /// Opens a source: expands its globs (errors if a pattern matches nothing or a file is
    /// empty or unreadable); records are read lazily.
    pub fn open(
        spec: &SourceSpec,
        base: &Path,
        tokenizer: &Tokenizer,
        image: ImageConfig,
    ) -> Result<Self> {
        Ok(match spec.kind {
            SourceKind::Text => Source::Text(TextSource::open_with_column(
                &spec.name,
                base,
                &spec.patterns,
                tokenizer.clone(),
                spec.column
                    .as_deref()
                    .unwrap_or(pipelang::schema::data::DEFAULT_COLUMN),
            )?),
            kind => Source::Multimodal(MultimodalSource::open_with_caption(
                &spec.name,
                kind,
                base,
                &spec.patterns,
                tokenizer.clone(),
                image,
                spec.caption.as_deref(),
            )?),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Source::Text(s) => s.name(),
            Source::Multimodal(s) => s.name(),
        }
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Text(_) => SourceKind::Text,
            Source::Multimodal(s) => s.kind(),
        }
    }

    /// The files the source's globs matched, sorted.
    pub fn files(&self) -> &[std::path::PathBuf] {
        match self {
            Source::Text(s) => s.files(),
            Source::Multimodal(s) => s.files(),
        }
    }

    /// Completed passes over the source's files.
    pub fn epoch(&self) -> u64 {
        match self {
            Source::Text(s) => s.epoch(),
            Source::Multimodal(s) => s.epoch(),
        }
    }

    /// The next packed sequence of `seq_len + 1` tokens.
    pub fn next_sequence(&mut self, seq_len: usize) -> Result<Sequence> {
        match self {
            Source::Text(s) => s.next_sequence(seq_len),
            Source::Multimodal(s) => s.next_sequence(seq_len),
        }
    }

    /// The next (image, caption) pair for CoCa; `image_text` sources only.
    pub fn next_caption_pair(&mut self) -> Result<CaptionPair> {
        match self {
            Source::Multimodal(s) => s.next_caption_pair(),
            Source::Text(s) => Err(super::error::DataError::WrongKind {
                source_name: s.name().into(),
                kind: "text".into(),
                message: "caption pairs need image_text data".into(),
            }),
        }
    }

    pub fn cursor(&self) -> SourceCursor {
        match self {
            Source::Text(s) => s.cursor(),
            Source::Multimodal(s) => s.cursor(),
        }
    }

    pub fn restore(&mut self, cursor: &SourceCursor) -> Result<()> {
        match self {
            Source::Text(s) => s.restore(cursor),
            Source::Multimodal(s) => s.restore(cursor),
        }
    }
}
