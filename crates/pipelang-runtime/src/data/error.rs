//! The one error type of the data layer. Every variant names the file (and the record or line
//! when there is one), says what is wrong and what to do, so a bad corpus never panics the run.

use std::path::PathBuf;

/// What went wrong while reading training data. Line numbers are 1-based.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: no such file\n  hint: check the data declaration's path (relative to {base})")]
    MissingFile { path: PathBuf, base: PathBuf },

    #[error(
        "{path}: the file is empty (no records)\n  hint: remove it or fill it; every matched file must hold data"
    )]
    EmptyFile { path: PathBuf },

    #[error(
        "glob `{pattern}` (relative to {base}) matches no files\n  hint: check the pattern, or run `pipe sample-data DIR` to generate the sample corpus"
    )]
    NoMatch { pattern: String, base: PathBuf },

    #[error(
        "glob `{pattern}` is not a valid pattern: {message}\n  hint: use *, ? and [..], and braces {{a,b}} or {{00000..00127}}"
    )]
    BadPattern { pattern: String, message: String },

    #[error("{path}: cannot read: {source}\n  hint: check that the file exists and is readable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: unsupported file type\n  hint: {expected}")]
    UnsupportedFile { path: PathBuf, expected: String },

    #[error(
        "{path}:{line}: malformed JSON line: {message}\n  hint: every line must be one JSON object"
    )]
    MalformedLine {
        path: PathBuf,
        line: u64,
        message: String,
    },

    #[error("{path}:{line}: field `{field}` {problem}\n  hint: expected {expected}")]
    WrongField {
        path: PathBuf,
        line: u64,
        field: String,
        problem: String,
        expected: String,
    },

    #[error(
        "{path}:{line}: image `{image}` does not exist\n  hint: image paths are relative to the JSONL file's folder"
    )]
    MissingImage {
        path: PathBuf,
        line: u64,
        image: PathBuf,
    },

    #[error(
        "{path}:{line}: image `{image}` cannot be decoded: {message}\n  hint: images must be PNG or JPEG"
    )]
    BadImage {
        path: PathBuf,
        line: u64,
        image: PathBuf,
        message: String,
    },

    #[error("{path}:{line}: image `{image}` is {width}x{height}: {problem}\n  hint: {hint}")]
    ImageSize {
        path: PathBuf,
        line: u64,
        image: PathBuf,
        width: u32,
        height: u32,
        problem: String,
        hint: String,
    },

    #[error("{path}: column `{column}` {problem}\n  hint: {hint}")]
    ParquetColumn {
        path: PathBuf,
        column: String,
        problem: String,
        hint: String,
    },

    #[error(
        "{path}: cannot read Parquet: {message}\n  hint: the file must be a complete Parquet file"
    )]
    Parquet { path: PathBuf, message: String },

    #[error(
        "{path}: byte {offset}: {message}\n  hint: the shard is incomplete or not a tar file; download it again, or leave it out of the glob"
    )]
    Tar {
        path: PathBuf,
        offset: u64,
        message: String,
    },

    #[error(
        "every sample is bad ({count} read, none with both an image and a caption); the first: {first}\n  hint: {hint}"
    )]
    AllSamplesBad {
        count: u64,
        first: String,
        hint: String,
    },

    #[error(
        "{path}: tokenizer error: {message}\n  hint: the tokenizer must be a HuggingFace tokenizer.json"
    )]
    Tokenizer { path: PathBuf, message: String },

    #[error(
        "data cursor does not fit the source `{source_name}`: {message}\n  hint: the data files changed since the run was saved; restart the stage or restore the files"
    )]
    BadCursor {
        source_name: String,
        message: String,
    },

    #[error(
        "mixture shares are invalid: {message}\n  hint: shares must be finite, non-negative, one per source, and sum to 1"
    )]
    BadShares { message: String },

    #[error("source `{source_name}` is {kind} data: {message}")]
    WrongKind {
        source_name: String,
        kind: String,
        message: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, DataError>;
