//! One input file tokenised into one shard: read in batches of lines, each batch parsed and
//! tokenised on all cores (rayon) and written in order, so the tokens are exactly those
//! training reads: a JSONL record is a document (`{"text": ...}`, its tokens then EOS); a
//! `.txt` file is one document whose non-blank lines are tokenised one at a time with their
//! newline, then EOS (`TextSource::fill`); a Parquet row group's non-null strings are
//! documents, one row group in memory at a time.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rayon::prelude::*;

use super::manifest::Hashing;
use super::writer::TokenWriter;
use crate::data::error::{DataError, Result};
use crate::data::parquet_text::ParquetText;
use crate::data::records::{Origin, parse_text};
use crate::data::text_source::TEXT_FILES;
use crate::data::tokenizer::Tokenizer;

/// Lines read before a batch is tokenised: enough to keep every core busy.
const BATCH_LINES: usize = 4096;
/// ... or this many bytes, whichever comes first, so memory stays bounded by long lines.
const BATCH_BYTES: u64 = 16 << 20;

/// How an input file holds its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Jsonl,
    PlainText,
    Parquet,
}

impl Layout {
    pub fn of(path: &Path) -> Result<Layout> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") | Some("json") => Ok(Layout::Jsonl),
            Some("txt") => Ok(Layout::PlainText),
            Some("parquet") => Ok(Layout::Parquet),
            _ => Err(DataError::UnsupportedFile {
                path: path.to_path_buf(),
                expected: TEXT_FILES.into(),
            }),
        }
    }
}

/// What reading a shard found: the input's size and content hash.
pub struct Read {
    pub bytes: u64,
    pub sha256: String,
}

/// Tokenises `path` into `w`. `progress` is advanced by the bytes read.
pub fn tokenize_file(
    path: &Path,
    layout: Layout,
    column: &str,
    tokenizer: &Tokenizer,
    w: &mut dyn TokenWriter,
    progress: &indicatif::ProgressBar,
) -> Result<Read> {
    let io = |e| DataError::io(path, e);
    if layout == Layout::Parquet {
        return tokenize_parquet(path, column, tokenizer, w, progress);
    }
    let mut reader = BufReader::with_capacity(1 << 20, Hashing::new(File::open(path).map_err(io)?));
    let mut bytes = 0u64;
    let mut line_no = 0u64;
    let mut seen = false;
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(BATCH_LINES);
    loop {
        batch.clear();
        let mut batch_bytes = 0u64;
        while batch.len() < BATCH_LINES && batch_bytes < BATCH_BYTES {
            let mut buf = Vec::new();
            let n = reader.read_until(b'\n', &mut buf).map_err(io)? as u64;
            if n == 0 {
                break;
            }
            line_no += 1;
            batch_bytes += n;
            batch.push((line_no, buf));
        }
        if batch.is_empty() {
            break;
        }
        bytes += batch_bytes;
        let encoded: Vec<Result<Option<Vec<u32>>>> = batch
            .par_iter()
            .map(|(line, buf)| encode_line(path, *line, buf, layout, tokenizer))
            .collect();
        for ids in encoded {
            let Some(ids) = ids? else { continue };
            seen = true;
            w.push(&ids).map_err(io)?;
            if layout == Layout::Jsonl {
                w.end_document().map_err(io)?;
            }
        }
        progress.inc(batch_bytes);
    }
    if !seen {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if layout == Layout::PlainText {
        w.end_document().map_err(io)?;
    }
    Ok(Read {
        bytes,
        sha256: reader.into_inner().hex(),
    })
}

fn tokenize_parquet(
    path: &Path,
    column: &str,
    tokenizer: &Tokenizer,
    w: &mut dyn TokenWriter,
    progress: &indicatif::ProgressBar,
) -> Result<Read> {
    let io = |e| DataError::io(path, e);
    let table = ParquetText::open(path, column)?;
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    let mut seen = false;
    for g in 0..table.row_groups() {
        let rows = table.read_group(g)?;
        let encoded: Result<Vec<Vec<u32>>> = rows
            .par_iter()
            .flatten()
            .map(|t| tokenizer.encode(t))
            .collect();
        for ids in encoded? {
            seen = true;
            w.push(&ids).map_err(io)?;
            w.end_document().map_err(io)?;
        }
        progress.inc(bytes / table.row_groups() as u64);
    }
    if !seen {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Read {
        bytes,
        sha256: super::manifest::sha256_file(path).map_err(io)?,
    })
}

/// One line's tokens; `None` for a blank line (training skips them: `LineReader`).
fn encode_line(
    path: &Path,
    line: u64,
    buf: &[u8],
    layout: Layout,
    tokenizer: &Tokenizer,
) -> Result<Option<Vec<u32>>> {
    let text = std::str::from_utf8(buf).map_err(|_| DataError::MalformedLine {
        path: path.to_path_buf(),
        line,
        message: "the line is not valid UTF-8".into(),
    })?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return Ok(None);
    }
    let ids = match layout {
        Layout::Jsonl => tokenizer.encode(&parse_text(Origin { path, line }, text)?)?,
        Layout::PlainText => tokenizer.encode(&format!("{text}\n"))?,
        Layout::Parquet => unreachable!("Parquet files are read by row group"),
    };
    Ok(Some(ids))
}
