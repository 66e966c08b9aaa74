//! Multimodal sources (`image_text`, `interleaved`, `video`): records become token sequences
//! with image placeholders, a text-only loss mask and the images' patches.
//!
//! A record reads as its pieces in order, then end-of-document. An image becomes
//! `image_start, image x n, image_end` with `n = (h/p/k) * (w/p/k)` placeholders (the projector
//! merges k x k patches into one LLM token). Packing: a record that fits in what is left of the
//! sequence goes in whole; one that does not starts the next sequence (the rest is padding), and
//! one longer than a whole sequence is split across sequences between tokens of text or between
//! images, never inside an image. Nothing is dropped, so every caption token is seen once.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::cursor::SourceCursor;
use super::error::{DataError, Result};
use super::files::{LineEvent, LinePos, LineReader, expand_globs};
use super::image_patches::{ImageConfig, ImagePatches, decode_rgb, fit_and_patchify};
use super::records::{Origin, Piece, SourceKind, parse_multimodal};
use super::sequence::{CaptionPair, Sequence};
use super::tokenizer::Tokenizer;

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
    reader: LineReader,
    current: Option<Current>,
    sequences: u64,
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
        assert!(kind != SourceKind::Text, "text data is a TextSource");
        let files = expand_globs(base, patterns)?;
        for f in &files {
            if !matches!(
                f.extension().and_then(|e| e.to_str()),
                Some("jsonl") | Some("json")
            ) {
                return Err(DataError::UnsupportedFile {
                    path: f.clone(),
                    expected: format!("{} data must be .jsonl files", kind.name()),
                });
            }
        }
        Ok(MultimodalSource {
            name: name.to_string(),
            kind,
            tokenizer,
            image,
            reader: LineReader::new(files),
            current: None,
            sequences: 0,
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
    fn next_line(&mut self) -> Result<(String, LinePos)> {
        loop {
            if let LineEvent::Line { text, start } = self.reader.next_event()? {
                return Ok((text, start));
            }
        }
    }

    fn image_block_len(&self, p: &ImagePatches) -> usize {
        p.merged_tokens(self.image.merge) + 2
    }

    /// Reads, parses and tokenises the next record (images decoded and patchified).
    fn load_record(&mut self) -> Result<Current> {
        let (line, start) = self.next_line()?;
        let path = self.reader.path(start.file).to_path_buf();
        let origin = Origin {
            path: &path,
            line: start.line,
        };
        let pieces = parse_multimodal(self.kind, origin, &line)?;
        let mut units = VecDeque::with_capacity(pieces.len() + 1);
        let mut first_frame: Option<(u32, u32)> = None;
        for piece in pieces {
            match piece {
                Piece::Text(t) => {
                    let ids = self.tokenizer.encode(&t)?;
                    if !ids.is_empty() {
                        units.push_back(Unit::Text(ids));
                    }
                }
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
                    units.push_back(Unit::Image(patches, img));
                }
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
        let (line, start) = self.next_line()?;
        let path = self.reader.path(start.file).to_path_buf();
        let origin = Origin {
            path: &path,
            line: start.line,
        };
        let mut image = None;
        let mut caption = Vec::new();
        for piece in parse_multimodal(self.kind, origin, &line)? {
            match piece {
                Piece::Image(img) => {
                    let rgb = decode_rgb(&img, origin)?;
                    image = Some(fit_and_patchify(rgb, &img, origin, &self.image)?);
                }
                Piece::Text(t) => caption = self.tokenizer.encode(&t)?,
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
