//! Multimodal sources (`image_text`, `interleaved`, `video`): records become token sequences
//! with image placeholders, a text-only loss mask and the images' patches.
//!
//! A record reads as its pieces in order, then end-of-document. An image becomes
//! `image_start, image x n, image_end` with `n = (h/p/k) * (w/p/k)` placeholders (the projector
//! merges k x k patches into one LLM token). Packing: a record that fits in what is left of the
//! sequence goes in whole; one that does not starts the next sequence (the rest is padding), and
//! one longer than a whole sequence is split across sequences between tokens of text or between
//! images, never inside an image. Nothing is dropped, so every caption token is seen once.
//!
//! `image_text` sources may also be WebDataset tar shards (`webdataset.rs`): a sample is read as
//! a record is, and a bad sample (no image, no caption, an image that does not decode) is
//! counted in the cursor and skipped; a source all of whose samples are bad is an error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::cursor::SourceCursor;
use super::error::{DataError, Result};
use super::files::{LineEvent, LinePos, LineReader, expand_globs};
use super::image_patches::{ImageConfig, ImagePatches, decode_rgb, fit_and_patchify};
use super::records::{Origin, Piece, SourceKind, parse_multimodal};
use super::sequence::{CaptionPair, Sequence};
use super::tokenizer::Tokenizer;
use super::webdataset::{self, TarEvent, TarReader, is_tar};

/// Where records come from: JSONL lines, or WebDataset shards and the caption's JSON field.
enum Records {
    Lines(LineReader),
    Tar {
        reader: TarReader,
        caption: Option<String>,
    },
}

impl Records {
    fn files(&self) -> &[PathBuf] {
        match self {
            Records::Lines(r) => r.files(),
            Records::Tar { reader, .. } => reader.files(),
        }
    }

    fn pos(&self) -> LinePos {
        match self {
            Records::Lines(r) => r.pos(),
            Records::Tar { reader, .. } => reader.pos(),
        }
    }

    fn path(&self, i: usize) -> &Path {
        &self.files()[i]
    }

    fn seek(&mut self, pos: LinePos) -> std::result::Result<(), String> {
        match self {
            Records::Lines(r) => r.seek(pos),
            Records::Tar { reader, .. } => reader.seek(pos),
        }
    }
}

/// A record's pieces with their images decoded and patchified.
enum Loaded {
    Text(String),
    Image(ImagePatches, PathBuf),
}

/// Bad WebDataset samples met so far, and the start of the current run of them (a run that
/// comes back to where it started has seen every sample of the source).
#[derive(Default)]
struct BadSamples {
    count: u64,
    first: Option<String>,
    run_start: Option<LinePos>,
    run_len: u64,
}

enum Unit {
    Text(Vec<u32>),
    Image(ImagePatches, PathBuf),
}

/// The record being emitted: where it started, what is left, how much was emitted.
struct Current {
    start: LinePos,
    units: VecDeque<Unit>,
    consumed: u64,
    remaining_len: usize,
}

pub struct MultimodalSource {
    name: String,
    kind: SourceKind,
    tokenizer: Tokenizer,
    image: ImageConfig,
    reader: Records,
    current: Option<Current>,
    sequences: u64,
    bad: BadSamples,
}

impl MultimodalSource {
    pub fn open(
        name: &str,
        kind: SourceKind,
        base: &Path,
        patterns: &[String],
        tokenizer: Tokenizer,
        image: ImageConfig,
    ) -> Result<Self> {
        Self::open_with_caption(name, kind, base, patterns, tokenizer, image, None)
    }

    /// [`MultimodalSource::open`]; WebDataset captions read from the `.json` field `caption`
    /// (`None`: the `.txt` entry).
    pub fn open_with_caption(
        name: &str,
        kind: SourceKind,
        base: &Path,
        patterns: &[String],
        tokenizer: Tokenizer,
        image: ImageConfig,
        caption: Option<&str>,
    ) -> Result<Self> {
        assert!(kind != SourceKind::Text, "text data is a TextSource");
        let files = expand_globs(base, patterns)?;
        let tars = files.iter().filter(|f| is_tar(f)).count();
        let expected = match kind {
            SourceKind::ImageText => "image_text data must be .jsonl files or WebDataset .tar \
                                      shards, not both in one source"
                .to_string(),
            _ => format!("{} data must be .jsonl files", kind.name()),
        };
        let allowed = |f: &PathBuf| match f.extension().and_then(|e| e.to_str()) {
            Some("jsonl") | Some("json") => tars == 0,
            Some("tar") => kind == SourceKind::ImageText && tars == files.len(),
            _ => false,
        };
        if let Some(f) = files.iter().find(|f| !allowed(f)) {
            return Err(DataError::UnsupportedFile {
                path: f.clone(),
                expected,
            });
        }
        if let (0, Some(field), Some(first)) = (tars, caption, files.first()) {
            // Said, not ignored: the field would name nothing in a JSONL record.
            return Err(DataError::UnsupportedFile {
                path: first.clone(),
                expected: format!(
                    "`caption = \"{field}\"` names the .json field of WebDataset .tar shards; a \
                     .jsonl record carries its own caption: remove `caption`, or point the \
                     source at .tar shards"
                ),
            });
        }
        let reader = match tars {
            0 => Records::Lines(LineReader::new(files)),
            _ => Records::Tar {
                reader: TarReader::new(files),
                caption: caption.map(str::to_string),
            },
        };
        Ok(MultimodalSource {
            name: name.to_string(),
            kind,
            tokenizer,
            image,
            reader,
            current: None,
            sequences: 0,
            bad: BadSamples::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The source's files, sorted.
    pub fn files(&self) -> &[PathBuf] {
        self.reader.files()
    }

    pub fn epoch(&self) -> u64 {
        self.reader.pos().epoch
    }

    /// The next record line of the stream and where it started.
    fn next_line(reader: &mut LineReader) -> Result<(String, LinePos)> {
        loop {
            if let LineEvent::Line { text, start } = reader.next_event()? {
                return Ok((text, start));
            }
        }
    }

    /// The next record, images decoded and patchified, and where it started.
    fn next_loaded(&mut self) -> Result<(LinePos, Vec<Loaded>)> {
        if matches!(self.reader, Records::Lines(_)) {
            return self.next_jsonl();
        }
        let Records::Tar { reader, caption } = &mut self.reader else {
            unreachable!("JSONL sources returned above")
        };
        let caption = caption.as_deref();
        loop {
            let sample = match reader.next_event()? {
                TarEvent::Sample(s) => s,
                TarEvent::EndOfFile => continue,
            };
            match webdataset::image_and_caption(&sample, caption, &self.image) {
                Ok((patches, name, text)) => {
                    self.bad.run_start = None;
                    self.bad.run_len = 0;
                    return Ok((
                        sample.start,
                        vec![Loaded::Image(patches, name), Loaded::Text(text)],
                    ));
                }
                Err(why) => {
                    let path = reader.path(sample.start.file);
                    let described = format!("{}: {why}", webdataset::describe(path, &sample));
                    self.bad.count += 1;
                    self.bad.first.get_or_insert_with(|| described.clone());
                    self.bad.run_len += 1;
                    let start = *self.bad.run_start.get_or_insert(sample.start);
                    let back = (start.file, start.offset, start.epoch + 1)
                        == (sample.start.file, sample.start.offset, sample.start.epoch);
                    if back {
                        return Err(DataError::AllSamplesBad {
                            count: self.bad.run_len - 1,
                            first: self.bad.first.clone().unwrap_or(described),
                            hint: match caption {
                                Some(f) => format!(
                                    "each sample needs an image and a .json with a string \
                                     `{f}` field"
                                ),
                                None => "each sample needs an image (.jpg, .jpeg, .png, .webp) \
                                         and a .txt caption; for a caption in the .json, write \
                                         `caption = \"FIELD\"`"
                                    .into(),
                            },
                        });
                    }
                }
            }
        }
    }

    fn next_jsonl(&mut self) -> Result<(LinePos, Vec<Loaded>)> {
        let Records::Lines(reader) = &mut self.reader else {
            unreachable!("called for JSONL sources")
        };
        let (line, start) = Self::next_line(reader)?;
        let path = reader.path(start.file).to_path_buf();
        let origin = Origin {
            path: &path,
            line: start.line,
        };
        let pieces = parse_multimodal(self.kind, origin, &line)?;
        let mut out = Vec::with_capacity(pieces.len());
        let mut first_frame: Option<(u32, u32)> = None;
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push(Loaded::Text(t)),
                Piece::Image(img) => {
                    let rgb = decode_rgb(&img, origin)?;
                    if self.kind == SourceKind::Video {
                        let dims = rgb.dimensions();
                        let (w0, h0) = *first_frame.get_or_insert(dims);
                        if dims != (w0, h0) {
                            return Err(DataError::ImageSize {
                                path: path.clone(),
                                line: start.line,
                                image: img,
                                width: dims.0,
                                height: dims.1,
                                problem: format!("differs from the first frame's {w0}x{h0}"),
                                hint: "all frames of a video must have the same size".into(),
                            });
                        }
                    }
                    let patches = fit_and_patchify(rgb, &img, origin, &self.image)?;
                    out.push(Loaded::Image(patches, img));
                }
            }
        }
        Ok((start, out))
    }

    fn image_block_len(&self, p: &ImagePatches) -> usize {
        p.merged_tokens(self.image.merge) + 2
    }

    /// Reads, parses and tokenises the next record (images decoded and patchified).
    fn load_record(&mut self) -> Result<Current> {
        let (start, loaded) = self.next_loaded()?;
        let mut units = VecDeque::with_capacity(loaded.len() + 1);
        for piece in loaded {
            match piece {
                Loaded::Text(t) => {
                    let ids = self.tokenizer.encode(&t)?;
                    if !ids.is_empty() {
                        units.push_back(Unit::Text(ids));
                    }
                }
                Loaded::Image(patches, img) => units.push_back(Unit::Image(patches, img)),
            }
        }
        units.push_back(Unit::Text(vec![self.tokenizer.specials().eod]));
        let remaining_len = units
            .iter()
            .map(|u| match u {
                Unit::Text(t) => t.len(),
                Unit::Image(p, _) => self.image_block_len(p),
            })
            .sum();
        Ok(Current {
            start,
            units,
            consumed: 0,
            remaining_len,
        })
    }

    /// The next packed sequence of `seq_len + 1` tokens.
    pub fn next_sequence(&mut self, seq_len: usize) -> Result<Sequence> {
        assert!(
            seq_len > 0,
            "seq_len comes from the checked plan and is positive"
        );
        let cap = seq_len + 1;
        let sp = self.tokenizer.specials();
        let mut tokens = Vec::with_capacity(cap);
        let mut mask = Vec::with_capacity(cap);
        let mut images = Vec::new();
        while tokens.len() < cap {
            let mut cur = match self.current.take() {
                Some(c) => c,
                None => self.load_record()?,
            };
            let room = cap - tokens.len();
            if !tokens.is_empty() && cur.consumed == 0 && cur.remaining_len > room {
                self.current = Some(cur);
                break;
            }
            let mut full = false;
            while let Some(unit) = cur.units.front_mut() {
                let room = cap - tokens.len();
                if room == 0 {
                    break;
                }
                match unit {
                    Unit::Text(t) => {
                        let n = room.min(t.len());
                        tokens.extend(t.drain(..n));
                        mask.extend(std::iter::repeat_n(true, n));
                        cur.consumed += n as u64;
                        cur.remaining_len -= n;
                        if t.is_empty() {
                            cur.units.pop_front();
                        }
                    }
                    Unit::Image(p, img) => {
                        let n = p.merged_tokens(self.image.merge);
                        if n + 2 > cap {
                            let origin_path = self.reader.path(cur.start.file).to_path_buf();
                            return Err(DataError::ImageSize {
                                path: origin_path,
                                line: cur.start.line,
                                image: img.clone(),
                                width: p.cols * p.patch,
                                height: p.rows * p.patch,
                                problem: format!(
                                    "needs {} tokens but a sequence holds {cap}",
                                    n + 2
                                ),
                                hint: "lower the image max_side or raise the stage's seq_len"
                                    .into(),
                            });
                        }
                        if n + 2 > room {
                            full = true;
                            break;
                        }
                        tokens.push(sp.image_start);
                        tokens.extend(std::iter::repeat_n(sp.image, n));
                        tokens.push(sp.image_end);
                        mask.extend(std::iter::repeat_n(false, n + 2));
                        cur.consumed += (n + 2) as u64;
                        cur.remaining_len -= n + 2;
                        let Some(Unit::Image(p, _)) = cur.units.pop_front() else {
                            unreachable!("front was an image")
                        };
                        images.push(p);
                    }
                }
            }
            if !cur.units.is_empty() {
                self.current = Some(cur);
            }
            if full {
                break;
            }
        }
        tokens.resize(cap, sp.pad);
        mask.resize(cap, false);
        self.sequences += 1;
        Ok(Sequence {
            tokens,
            loss_mask: mask,
            images,
        })
    }

    /// The next image-caption pair, for CoCa training (`image_text` sources only). A record
    /// partly emitted by `next_sequence` is abandoned.
    pub fn next_caption_pair(&mut self) -> Result<CaptionPair> {
        if self.kind != SourceKind::ImageText {
            return Err(DataError::WrongKind {
                source_name: self.name.clone(),
                kind: self.kind.name().into(),
                message: "caption pairs need image_text data".into(),
            });
        }
        self.current = None;
        let (_, loaded) = self.next_loaded()?;
        let mut image = None;
        let mut caption = Vec::new();
        for piece in loaded {
            match piece {
                Loaded::Image(p, _) => image = Some(p),
                Loaded::Text(t) => caption = self.tokenizer.encode(&t)?,
            }
        }
        self.sequences += 1;
        Ok(CaptionPair {
            image: image.expect("an image_text record always has an image"),
            caption,
        })
    }

    pub fn cursor(&self) -> SourceCursor {
        let (pos, skip) = match &self.current {
            Some(c) => (c.start, c.consumed),
            None => (self.reader.pos(), 0),
        };
        SourceCursor {
            pos,
            pending: Vec::new(),
            skip,
            sequences: self.sequences,
            bad_samples: self.bad.count,
            first_bad: self.bad.first.clone(),
        }
    }

    pub fn restore(&mut self, cursor: &SourceCursor) -> Result<()> {
        let name = self.name.clone();
        let bad = |message: String| DataError::BadCursor {
            source_name: name.clone(),
            message,
        };
        if !cursor.pending.is_empty() {
            return Err(bad("a multimodal source keeps no pending tokens".into()));
        }
        self.reader.seek(cursor.pos).map_err(bad)?;
        self.current = None;
        self.sequences = cursor.sequences;
        self.bad = BadSamples {
            count: cursor.bad_samples,
            first: cursor.first_bad.clone(),
            ..BadSamples::default()
        };
        if cursor.skip == 0 {
            return Ok(());
        }
        let mut cur = self.load_record()?;
        let mut skip = cursor.skip as usize;
        while skip > 0 {
            let block = match cur.units.front_mut() {
                None => {
                    return Err(bad(format!(
                        "skip {} is past the record's end",
                        cursor.skip
                    )));
                }
                Some(Unit::Text(t)) => {
                    let n = skip.min(t.len());
                    t.drain(..n);
                    skip -= n;
                    cur.remaining_len -= n;
                    cur.consumed += n as u64;
                    if t.is_empty() {
                        cur.units.pop_front();
                    }
                    continue;
                }
                Some(Unit::Image(p, _)) => self.image_block_len(p),
            };
            if block > skip {
                return Err(bad(format!("skip {} ends inside an image", cursor.skip)));
            }
            cur.units.pop_front();
            skip -= block;
            cur.remaining_len -= block;
            cur.consumed += block as u64;
        }
        if !cur.units.is_empty() {
            self.current = Some(cur);
        }
        Ok(())
    }
}
