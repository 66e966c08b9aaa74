//! Finding the files of a source (glob patterns, sorted) and reading them line by line from a
//! resumable position, wrapping around at the end of the last file (one epoch per pass).
//! Parquet files are read row by row instead, one row group in memory at a time.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::{DataError, Result};
use super::parquet_text::ParquetText;

/// Whether a file is read as Parquet rows rather than lines.
pub fn is_parquet(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("parquet")
}

/// Expands each pattern's braces (`{00000..00127}`, `{a,b}`: `braces.rs`), then its globs
/// relative to `base` (absolute patterns stay as they are), into the sorted,
/// de-duplicated list of regular files it matches. A pattern that matches nothing is an error,
/// and so is a matched file that is empty or cannot be opened.
pub fn expand_globs(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    let mut expanded = vec![];
    for pattern in patterns {
        expanded.extend(super::braces::expand(pattern).map_err(|message| {
            DataError::BadPattern {
                pattern: pattern.clone(),
                message,
            }
        })?);
    }
    for pattern in &expanded {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let full_str = full.to_string_lossy().into_owned();
        let has_meta = pattern.contains(['*', '?', '[']);
        let entries = glob::glob(&full_str).map_err(|e| DataError::BadPattern {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| {
                let path = e.path().to_path_buf();
                DataError::io(path, e.into())
            })?;
            if path.is_file() {
                found.push(path);
            }
        }
        if found.is_empty() {
            return Err(if has_meta {
                DataError::NoMatch {
                    pattern: pattern.clone(),
                    base: base.to_path_buf(),
                }
            } else {
                DataError::MissingFile {
                    path: full,
                    base: base.to_path_buf(),
                }
            });
        }
        all.extend(found);
    }
    all.sort();
    all.dedup();
    for path in &all {
        let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
        if meta.len() == 0 {
            return Err(DataError::EmptyFile { path: path.clone() });
        }
        File::open(path).map_err(|e| DataError::io(path, e))?;
    }
    Ok(all)
}

/// Where a [`LineReader`] stands: the next unread byte of file `file`, whose line number is
/// `line` (1-based), after `epoch` complete passes over all files. In a Parquet file, `offset`
/// is the row group and `line` the next unread row within it (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LinePos {
    pub file: usize,
    pub offset: u64,
    pub line: u64,
    pub epoch: u64,
}

/// The file being read.
enum Open {
    Lines(BufReader<File>),
    /// A Parquet file and the current row group's column (rows already read are `None`).
    Rows {
        table: ParquetText,
        rows: Vec<Option<String>>,
    },
}

/// One event of the endless line stream.
#[derive(Debug)]
pub enum LineEvent {
    /// A non-blank line (newline stripped), or a Parquet row's string, and the position it
    /// started at.
    Line { text: String, start: LinePos },
    /// The end of file number `.0` was reached (plain-text sources close a document here).
    EndOfFile(usize),
}

/// Streams the lines of a sorted file list forever, keeping only one open file. Blank lines are
/// skipped; a file that has nothing but blank lines is reported as empty, which also guarantees
/// that every pass yields something (no endless loop on a blank corpus).
pub struct LineReader {
    files: Vec<PathBuf>,
    pos: LinePos,
    reader: Option<Open>,
    /// The string column of Parquet files.
    column: String,
    /// Whether the current file was read from its start and has shown a non-blank line yet.
    from_start: bool,
    seen_content: bool,
}

impl LineReader {
    pub fn new(files: Vec<PathBuf>) -> Self {
        assert!(
            !files.is_empty(),
            "expand_globs never returns an empty list"
        );
        LineReader {
            pos: LinePos {
                file: 0,
                offset: 0,
                line: if is_parquet(&files[0]) { 0 } else { 1 },
                epoch: 0,
            },
            files,
            reader: None,
            column: pipelang::schema::data::DEFAULT_COLUMN.into(),
            from_start: true,
            seen_content: false,
        }
    }

    /// Parquet files are read from `column`.
    pub fn with_column(mut self, column: &str) -> Self {
        self.column = column.to_string();
        self
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The position of the next unread line.
    pub fn pos(&self) -> LinePos {
        self.pos
    }

    /// Moves to `pos`; the file is opened (and the offset checked) lazily on the next read.
    pub fn seek(&mut self, pos: LinePos) -> std::result::Result<(), String> {
        if pos.file >= self.files.len() {
            return Err(format!(
                "file index {} but the source has {} files",
                pos.file,
                self.files.len()
            ));
        }
        let len = std::fs::metadata(&self.files[pos.file])
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", self.files[pos.file].display()))?;
        let parquet = is_parquet(&self.files[pos.file]);
        if parquet {
            // Row groups and rows are checked against the file when it is opened.
            self.pos = pos;
            self.reader = None;
            self.from_start = pos.offset == 0 && pos.line == 0;
            self.seen_content = false;
            return Ok(());
        }
        if pos.offset > len {
            return Err(format!(
                "offset {} is past the end of {} ({len} bytes)",
                pos.offset,
                self.files[pos.file].display()
            ));
        }
        self.pos = pos;
        self.reader = None;
        self.from_start = pos.offset == 0;
        self.seen_content = false;
        Ok(())
    }

    pub fn next_event(&mut self) -> Result<LineEvent> {
        loop {
            if self.reader.is_none() {
                self.reader = Some(self.open()?);
            }
            let path = &self.files[self.pos.file];
            let reader = self.reader.as_mut().expect("opened above");
            let reader = match reader {
                Open::Rows { table, rows } => {
                    if self.pos.line as usize >= rows.len() {
                        if self.pos.offset as usize + 1 < table.row_groups() {
                            self.pos.offset += 1;
                            self.pos.line = 0;
                            *rows = table.read_group(self.pos.offset as usize)?;
                            continue;
                        }
                        return self.end_of_file();
                    }
                    let start = self.pos;
                    let row = rows[self.pos.line as usize].take();
                    self.pos.line += 1;
                    // A null row is no document.
                    let Some(text) = row else { continue };
                    self.seen_content = true;
                    return Ok(LineEvent::Line { text, start });
                }
                Open::Lines(r) => r,
            };
            let mut buf = Vec::new();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| DataError::io(path, e))? as u64;
            if n == 0 {
                return self.end_of_file();
            }
            let start = self.pos;
            self.pos.offset += n;
            self.pos.line += 1;
            let text = String::from_utf8(buf).map_err(|_| DataError::MalformedLine {
                path: path.clone(),
                line: start.line,
                message: "the line is not valid UTF-8".into(),
            })?;
            let trimmed = text.trim_end_matches(['\n', '\r']);
            if trimmed.trim().is_empty() {
                continue;
            }
            self.seen_content = true;
            return Ok(LineEvent::Line {
                text: trimmed.to_string(),
                start,
            });
        }
    }

    /// Opens the file at `pos`: seeks to the byte offset, or loads the row group of a Parquet
    /// file (checking that the position is inside it).
    fn open(&self) -> Result<Open> {
        let path = &self.files[self.pos.file];
        if is_parquet(path) {
            let table = ParquetText::open(path, &self.column)?;
            let (group, row) = (self.pos.offset as usize, self.pos.line as usize);
            let groups = table.row_groups();
            let rows = match group < groups {
                true => table.read_group(group)?,
                false if group == 0 => vec![],
                false => {
                    return Err(DataError::Parquet {
                        path: path.clone(),
                        message: format!("row group {group} is past the file's {groups}"),
                    });
                }
            };
            if row > rows.len() {
                return Err(DataError::Parquet {
                    path: path.clone(),
                    message: format!("row {row} is past row group {group}'s {}", rows.len()),
                });
            }
            return Ok(Open::Rows { table, rows });
        }
        let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
        file.seek(SeekFrom::Start(self.pos.offset))
            .map_err(|e| DataError::io(path, e))?;
        Ok(Open::Lines(BufReader::new(file)))
    }

    /// The end of the current file: on to the next (or the first, one epoch later).
    fn end_of_file(&mut self) -> Result<LineEvent> {
        let path = &self.files[self.pos.file];
        if self.from_start && !self.seen_content {
            return Err(DataError::EmptyFile { path: path.clone() });
        }
        let done = self.pos.file;
        self.reader = None;
        self.pos.file += 1;
        if self.pos.file == self.files.len() {
            self.pos.file = 0;
            self.pos.epoch += 1;
        }
        let parquet = is_parquet(&self.files[self.pos.file]);
        self.pos.offset = 0;
        self.pos.line = if parquet { 0 } else { 1 };
        self.from_start = true;
        self.seen_content = false;
        Ok(LineEvent::EndOfFile(done))
    }

    /// Path of file number `i`.
    pub fn path(&self, i: usize) -> &Path {
        &self.files[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_sorted_relative_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("c")).unwrap();
        for name in ["b.jsonl", "a.jsonl", "z.txt"] {
            std::fs::write(dir.path().join("c").join(name), "x\n").unwrap();
        }
        let files = expand_globs(dir.path(), &["c/*.jsonl".into()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.jsonl", "b.jsonl"]);

        let err = expand_globs(dir.path(), &["c/*.parquet".into()]).unwrap_err();
        assert!(matches!(err, DataError::NoMatch { .. }), "{err}");
        let err = expand_globs(dir.path(), &["c/missing.jsonl".into()]).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
        assert!(err.to_string().contains("missing.jsonl"));

        std::fs::write(dir.path().join("c/empty.jsonl"), "").unwrap();
        let err = expand_globs(dir.path(), &["c/*.jsonl".into()]).unwrap_err();
        assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
    }

    #[test]
    fn lines_wrap_with_epochs_and_resume_from_positions() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        std::fs::write(&a, "one\n\ntwo\r\n").unwrap();
        std::fs::write(&b, "three").unwrap();
        let mut r = LineReader::new(vec![a, b]);
        let mut seen = Vec::new();
        let mut mid = None;
        for _ in 0..8 {
            match r.next_event().unwrap() {
                LineEvent::Line { text, start } => {
                    if text == "two" {
                        mid = Some(r.pos());
                        assert_eq!(start.line, 3);
                    }
                    seen.push(text);
                }
                LineEvent::EndOfFile(i) => seen.push(format!("<eof{i}>")),
            }
        }
        assert_eq!(
            seen,
            [
                "one", "two", "<eof0>", "three", "<eof1>", "one", "two", "<eof0>"
            ]
        );
        assert_eq!(r.pos().epoch, 1);

        let mut r2 = LineReader::new(r.files().to_vec());
        r2.seek(mid.unwrap()).unwrap();
        assert!(matches!(r2.next_event().unwrap(), LineEvent::EndOfFile(0)));
        assert!(
            matches!(r2.next_event().unwrap(), LineEvent::Line { text, .. } if text == "three")
        );
        assert!(
            r2.seek(LinePos {
                file: 5,
                ..LinePos::default()
            })
            .is_err()
        );
    }

    #[test]
    fn blank_only_file_is_reported_empty() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, "\n  \n").unwrap();
        let mut r = LineReader::new(vec![a]);
        let err = r.next_event().unwrap_err();
        assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
    }
}
