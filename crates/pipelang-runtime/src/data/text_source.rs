//! Text sources: JSONL documents (`{"text": ...}` per line), plain `.txt` files (one document
//! per file) and Parquet files (one document per row of a string column), streamed line by line
//! (row by row) and packed into sequences separated by end-of-document.
//!
//! Packing: each sequence is `seq_len + 1` consecutive tokens of the stream and the next one
//! starts at its last token, so every token is a target exactly once whatever `seq_len` each
//! call asks for (seq_len changes between stages and phases).

use std::path::Path;

use super::cursor::SourceCursor;
use super::error::{DataError, Result};
use super::files::{LineEvent, LineReader, expand_globs};
use super::records::{Origin, parse_text};
use super::sequence::Sequence;
use super::tokenizer::Tokenizer;

pub struct TextSource {
    name: String,
    tokenizer: Tokenizer,
    reader: LineReader,
    /// Per file: how it holds documents.
    layout: Vec<Layout>,
    pending: Vec<u32>,
    sequences: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Jsonl,
    Plain,
    Parquet,
}

/// What a text source's files may be.
pub const TEXT_FILES: &str =
    "text data must be .jsonl ({\"text\": ...} per line), .txt or .parquet (a string column)";

impl TextSource {
    /// Opens the files matched by `patterns` (relative to `base`). Files ending in `.txt` are plain
    /// text, `.jsonl`/`.json` are JSONL, `.parquet` are read from the column `text`; anything
    /// else is an error.
    pub fn open(
        name: &str,
        base: &Path,
        patterns: &[String],
        tokenizer: Tokenizer,
    ) -> Result<Self> {
        Self::open_with_column(
            name,
            base,
            patterns,
            tokenizer,
            pipelang::schema::data::DEFAULT_COLUMN,
        )
    }

    /// [`TextSource::open`], Parquet files read from `column`.
    pub fn open_with_column(
        name: &str,
        base: &Path,
        patterns: &[String],
        tokenizer: Tokenizer,
        column: &str,
    ) -> Result<Self> {
        let files = expand_globs(base, patterns)?;
        let mut layout = Vec::with_capacity(files.len());
        for f in &files {
            match f.extension().and_then(|e| e.to_str()) {
                Some("txt") => layout.push(Layout::Plain),
                Some("jsonl") | Some("json") => layout.push(Layout::Jsonl),
                Some("parquet") => layout.push(Layout::Parquet),
                _ => {
                    return Err(DataError::UnsupportedFile {
                        path: f.clone(),
                        expected: TEXT_FILES.into(),
                    });
                }
            }
        }
        Ok(TextSource {
            name: name.to_string(),
            tokenizer,
            reader: LineReader::new(files).with_column(column),
            layout,
            pending: Vec::new(),
            sequences: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source's files, sorted.
    pub fn files(&self) -> &[std::path::PathBuf] {
        self.reader.files()
    }

    /// Completed passes over all files.
    pub fn epoch(&self) -> u64 {
        self.reader.pos().epoch
    }

    /// Reads lines until at least `need` tokens are pending.
    fn fill(&mut self, need: usize) -> Result<()> {
        while self.pending.len() < need {
            let mut out = std::mem::take(&mut self.pending);
            let r = self.read_event(&mut out);
            self.pending = out;
            r?;
        }
        Ok(())
    }

    /// Tokenises the next line (or closes a plain-text document) into `out`.
    fn read_event(&mut self, out: &mut Vec<u32>) -> Result<()> {
        let eod = self.tokenizer.specials().eod;
        match self.reader.next_event()? {
            LineEvent::Line { text, start } => {
                if self.layout[start.file] == Layout::Parquet {
                    out.extend(self.tokenizer.encode(&text)?);
                    out.push(eod);
                } else if self.layout[start.file] == Layout::Plain {
                    // Lines are tokenised one at a time to stay streaming; the newline is
                    // kept so the model still sees line structure.
                    let mut t = text;
                    t.push('\n');
                    out.extend(self.tokenizer.encode(&t)?);
                } else {
                    let origin = Origin {
                        path: self.reader.path(start.file),
                        line: start.line,
                    };
                    let doc = parse_text(origin, &text)?;
                    out.extend(self.tokenizer.encode(&doc)?);
                    out.push(eod);
                }
            }
            LineEvent::EndOfFile(i) => {
                if self.layout[i] == Layout::Plain {
                    out.push(eod);
                }
            }
        }
        Ok(())
    }

    /// Every token of one pass over the files from the start, documents closed by
    /// end-of-document: the stream packing reads, for an engine's token files.
    pub fn one_pass(&mut self) -> Result<Vec<u32>> {
        let epoch = self.epoch();
        let mut out = vec![];
        while self.epoch() == epoch {
            self.read_event(&mut out)?;
        }
        Ok(out)
    }

    /// The next packed sequence of `seq_len + 1` tokens (all of them count for the loss).
    pub fn next_sequence(&mut self, seq_len: usize) -> Result<Sequence> {
        assert!(
            seq_len > 0,
            "seq_len comes from the checked plan and is positive"
        );
        self.fill(seq_len + 1)?;
        let tokens = self.pending[..=seq_len].to_vec();
        self.pending.drain(..seq_len);
        self.sequences += 1;
        Ok(Sequence {
            loss_mask: vec![true; tokens.len()],
            tokens,
            images: Vec::new(),
        })
    }

    pub fn cursor(&self) -> SourceCursor {
        SourceCursor {
            pos: self.reader.pos(),
            pending: self.pending.clone(),
            skip: 0,
            sequences: self.sequences,
            ..SourceCursor::default()
        }
    }

    pub fn restore(&mut self, cursor: &SourceCursor) -> Result<()> {
        let vocab = self.tokenizer.vocab_size();
        let bad = |message: String| DataError::BadCursor {
            source_name: self.name.clone(),
            message,
        };
        if let Some(&t) = cursor.pending.iter().find(|&&t| t >= vocab) {
            return Err(bad(format!(
                "pending token {t} is outside the vocabulary ({vocab})"
            )));
        }
        if cursor.skip != 0 {
            return Err(bad("a text source never skips into a record".into()));
        }
        self.reader.seek(cursor.pos).map_err(bad)?;
        self.pending = cursor.pending.clone();
        self.sequences = cursor.sequences;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        std::fs::write(
            dir.path().join("t/a.jsonl"),
            "{\"text\": \"hello\"}\n\n{\"text\": \"world!\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("t/b.txt"), "line one\nline two\n").unwrap();
        dir
    }

    fn open(dir: &Path) -> TextSource {
        TextSource::open("t", dir, &["t/*".into()], Tokenizer::Bytes).unwrap()
    }

    #[test]
    fn one_pass_is_the_packed_stream_of_one_epoch() {
        let dir = corpus();
        let eod = Tokenizer::Bytes.specials().eod;
        let pass = open(dir.path()).one_pass().unwrap();
        let mut want: Vec<u32> = b"hello".iter().map(|&b| b as u32).collect();
        want.push(eod);
        want.extend(b"world!".iter().map(|&b| b as u32));
        want.push(eod);
        want.extend(b"line one\nline two\n".iter().map(|&b| b as u32));
        want.push(eod);
        assert_eq!(pass, want);
        // Packing reads the same stream: sequences of n + 1 tokens overlapping by one.
        let mut s = open(dir.path());
        let mut stream = s.next_sequence(pass.len() - 1).unwrap().tokens;
        stream.truncate(pass.len());
        assert_eq!(stream, pass);
        // The next pass starts again at the first document.
        let mut s = open(dir.path());
        assert_eq!(s.one_pass().unwrap(), pass);
        assert_eq!(s.one_pass().unwrap(), pass);
    }

    #[test]
    fn documents_are_packed_with_eod_and_every_token_is_a_target_once() {
        let dir = corpus();
        let mut s = open(dir.path());
        let t = Tokenizer::Bytes;
        let mut stream: Vec<u32> = Vec::new();
        let mut first = true;
        for seq_len in [4, 7, 3, 5, 11, 8] {
            let seq = s.next_sequence(seq_len).unwrap();
            assert_eq!(seq.tokens.len(), seq_len + 1);
            assert_eq!(seq.inputs()[1..], seq.targets()[..seq_len - 1]);
            if first {
                stream.extend(&seq.tokens);
                first = false;
            } else {
                assert_eq!(seq.tokens[0], *stream.last().unwrap());
                stream.extend(&seq.tokens[1..]);
            }
        }
        let text = t.decode(&stream);
        assert!(
            text.starts_with("hello<eod>world!<eod>line one\nline two\n<eod>hello"),
            "{text:?}"
        );
        assert_eq!(s.epoch(), 1);
    }

    #[test]
    fn restoring_a_cursor_gives_the_identical_stream() {
        let dir = corpus();
        let lens = [5usize, 9, 2, 16, 3, 8, 8, 13, 1, 6, 20, 4];
        let mut full = open(dir.path());
        let all: Vec<_> = lens
            .iter()
            .map(|&l| full.next_sequence(l).unwrap())
            .collect();
        for cut in 0..lens.len() {
            let mut a = open(dir.path());
            for &l in &lens[..cut] {
                a.next_sequence(l).unwrap();
            }
            let saved = ron::to_string(&a.cursor()).unwrap();
            let mut b = open(dir.path());
            b.restore(&ron::from_str(&saved).unwrap()).unwrap();
            for (i, &l) in lens.iter().enumerate().skip(cut) {
                assert_eq!(
                    b.next_sequence(l).unwrap(),
                    all[i],
                    "cut {cut}, sequence {i}"
                );
            }
            assert_eq!(b.epoch(), full.epoch());
        }
    }

    #[test]
    fn bad_lines_and_files_are_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.jsonl"),
            "{\"text\": \"ok\"}\n{\"text\": 5}\n",
        )
        .unwrap();
        let mut s =
            TextSource::open("b", dir.path(), &["bad.jsonl".into()], Tokenizer::Bytes).unwrap();
        let err = s.next_sequence(8).unwrap_err();
        assert!(err.to_string().contains("bad.jsonl:2"), "{err}");

        std::fs::write(dir.path().join("x.csv"), "a,b\n").unwrap();
        let err = TextSource::open("c", dir.path(), &["*.csv".into()], Tokenizer::Bytes)
            .err()
            .unwrap();
        assert!(matches!(err, DataError::UnsupportedFile { .. }), "{err}");

        let mut s = open(corpus().path());
        let cursor = SourceCursor {
            pending: vec![9999],
            ..SourceCursor::default()
        };
        assert!(matches!(
            s.restore(&cursor),
            Err(DataError::BadCursor { .. })
        ));
    }

    fn parquet_corpus() -> tempfile::TempDir {
        use pipelang_test_support::parquet::write;
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("a.parquet"),
            &[
                vec![Some("first"), None, Some("second doc")],
                vec![None],
                vec![Some(""), Some("fourth")],
            ],
        );
        write(
            &dir.path().join("b.parquet"),
            &[vec![Some("b one")], vec![Some("b two")]],
        );
        dir
    }

    #[test]
    fn parquet_rows_are_documents_and_a_cursor_resumes_inside_a_row_group() {
        let dir = parquet_corpus();
        let open =
            || TextSource::open("p", dir.path(), &["*.parquet".into()], Tokenizer::Bytes).unwrap();
        let mut s = open();
        let seq = s.next_sequence(41).unwrap();
        assert!(
            Tokenizer::Bytes
                .decode(&seq.tokens)
                .starts_with("first<eod>second doc<eod><eod>fourth<eod>b one<eod>b two<eod>first"),
            "{:?}",
            Tokenizer::Bytes.decode(&seq.tokens)
        );
        let lens = [3usize, 5, 2, 7, 1, 4, 9, 2, 6, 3, 11, 5];
        let mut full = open();
        let all: Vec<_> = lens
            .iter()
            .map(|&l| full.next_sequence(l).unwrap())
            .collect();
        for cut in 0..lens.len() {
            let mut a = open();
            for &l in &lens[..cut] {
                a.next_sequence(l).unwrap();
            }
            let saved = ron::to_string(&a.cursor()).unwrap();
            let mut b = open();
            b.restore(&ron::from_str(&saved).unwrap()).unwrap();
            for (i, &l) in lens.iter().enumerate().skip(cut) {
                assert_eq!(
                    b.next_sequence(l).unwrap(),
                    all[i],
                    "cut {cut}, sequence {i}"
                );
            }
        }
    }

    #[test]
    fn a_parquet_source_without_its_column_is_a_located_error() {
        let dir = parquet_corpus();
        let mut s = TextSource::open_with_column(
            "p",
            dir.path(),
            &["a.parquet".into()],
            Tokenizer::Bytes,
            "body",
        )
        .unwrap();
        let err = s.next_sequence(4).unwrap_err();
        assert!(
            err.to_string()
                .contains("a.parquet: column `body` does not exist"),
            "{err}"
        );
    }

    #[test]
    fn hf_tokenizer_feeds_a_text_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), "{\"text\": \"a red circle\"}\n").unwrap();
        let tok = Tokenizer::from_hf_file(
            &Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
                .join("crates/pipelang-runtime/tests/data_fixtures/tokenizer_wordlevel.json"),
        )
        .unwrap();
        let mut s = TextSource::open("h", dir.path(), &["a.jsonl".into()], tok).unwrap();
        assert_eq!(s.next_sequence(5).unwrap().tokens, vec![1, 2, 3, 8, 1, 2]);
    }
}
