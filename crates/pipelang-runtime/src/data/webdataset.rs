//! WebDataset shards (`image_text("laion/{00000..00127}.tar")`): tar files read entry by entry
//! with the `tar` crate, never whole. The WebDataset rules: an entry's key is its path up to the
//! first dot of its basename and its extension the rest (lower-cased); the entries of a sample
//! are consecutive and share a key; entries that are not regular files, or whose basename has no
//! extension, belong to no sample. A sample's caption is its `.txt` or a named string field of
//! its `.json`; its image the first `.jpg`/`.jpeg`/`.png`/`.webp`.
//!
//! Positions: a sample starts at the byte of its first header (a multiple of 512) and ends where
//! the next one starts, so a cursor (shard, byte, sample index) reopens the shard, seeks and
//! reads the same sample again. A sample that lacks an image or a caption, or whose image does
//! not decode, is a [`Bad`] sample: the readers count it and go on. A shard cut short (inside a
//! header, inside an entry, or without the end-of-archive blocks) is an error naming the byte.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::error::{DataError, Result};
use super::files::LinePos;
use super::image_patches::{ImageConfig, ImagePatches};

const BLOCK: u64 = 512;

/// Image extensions, in no order of preference: a sample's first image entry is its image.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp"];

pub fn is_tar(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("tar")
}

/// One sample: its key, where it starts, and the entries a caption or an image can come from
/// (extension, bytes), in archive order.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: String,
    pub start: LinePos,
    pub entries: Vec<(String, Vec<u8>)>,
}

/// Why a sample cannot be trained on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    NoImage,
    NoCaption(String),
    BadImage(String),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::NoImage => f.write_str("no image (.jpg, .jpeg, .png or .webp)"),
            Bad::NoCaption(why) | Bad::BadImage(why) => f.write_str(why),
        }
    }
}

/// A sample described for messages: `laion/00001.tar, sample 3 (`000123`)`.
pub fn describe(path: &Path, s: &Sample) -> String {
    format!(
        "{}, sample {} (`{}`)",
        path.display(),
        s.start.line + 1,
        s.key
    )
}

/// The WebDataset key and extension of an entry name; `None` when its basename has no
/// extension (or starts with a dot), which WebDataset skips.
pub fn split_key(name: &str) -> Option<(&str, &str)> {
    let base_at = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[base_at..].find('.')? + base_at;
    (dot > base_at).then(|| (&name[..dot], &name[dot + 1..]))
}

fn wanted(ext: &str) -> bool {
    ext == "txt" || ext == "json" || IMAGE_EXTENSIONS.contains(&ext)
}

/// The caption of a sample: its `.txt`, or `field` of its `.json`.
pub fn caption(s: &Sample, field: Option<&str>) -> std::result::Result<String, Bad> {
    let want = if field.is_some() { "json" } else { "txt" };
    let Some((_, bytes)) = s.entries.iter().find(|(e, _)| e == want) else {
        return Err(Bad::NoCaption(format!("no caption (no .{want} entry)")));
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Bad::NoCaption(format!("the .{want} is not valid UTF-8")))?;
    let Some(field) = field else {
        return Ok(text.trim().to_string());
    };
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Bad::NoCaption(format!("the .json does not parse: {e}")))?;
    match v.get(field) {
        Some(serde_json::Value::String(c)) => Ok(c.clone()),
        Some(other) => Err(Bad::NoCaption(format!(
            "the .json's `{field}` is not a string but {}",
            match other {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Array(_) => "an array",
                _ => "an object",
            }
        ))),
        None => Err(Bad::NoCaption(format!(
            "no caption (the .json has no field `{field}`)"
        ))),
    }
}

/// The sample's image, decoded to RGB, and its entry name (`KEY.EXT`).
pub fn image(s: &Sample) -> std::result::Result<(RgbImage, PathBuf), Bad> {
    let Some((ext, bytes)) = s
        .entries
        .iter()
        .find(|(e, _)| IMAGE_EXTENSIONS.contains(&e.as_str()))
    else {
        return Err(Bad::NoImage);
    };
    let name = PathBuf::from(format!("{}.{ext}", s.key));
    let decoded = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Bad::BadImage(format!("`{}` cannot be decoded: {e}", name.display())))?
        .decode()
        .map_err(|e| Bad::BadImage(format!("`{}` cannot be decoded: {e}", name.display())))?;
    Ok((decoded.to_rgb8(), name))
}

/// The size an image of `w` x `h` is resized to; one smaller than a merge cell is a bad sample.
pub fn fitted(
    w: u32,
    h: u32,
    name: &Path,
    cfg: &ImageConfig,
) -> std::result::Result<(u32, u32), Bad> {
    cfg.fitted_size(w, h).ok_or_else(|| {
        let cell = cfg.patch * cfg.merge;
        Bad::BadImage(format!(
            "`{}` is {w}x{h}, smaller than one {cell}x{cell} merge cell",
            name.display()
        ))
    })
}

/// The image fitted to the patch grid; an image smaller than one merge cell is a bad sample.
pub fn patches(
    rgb: RgbImage,
    name: &Path,
    cfg: &ImageConfig,
) -> std::result::Result<ImagePatches, Bad> {
    let (w, h) = rgb.dimensions();
    let (tw, th) = fitted(w, h, name, cfg)?;
    let rgb = match (tw, th) == (w, h) {
        true => rgb,
        false => image::imageops::resize(&rgb, tw, th, image::imageops::FilterType::Triangle),
    };
    Ok(ImagePatches::from_rgb(&rgb, cfg.patch))
}

/// Image and caption of a sample, or why it is bad.
pub fn image_and_caption(
    s: &Sample,
    field: Option<&str>,
    cfg: &ImageConfig,
) -> std::result::Result<(ImagePatches, PathBuf, String), Bad> {
    let (rgb, name) = image(s)?;
    let caption = caption(s, field)?;
    Ok((patches(rgb, &name, cfg)?, name, caption))
}

/// One event of the endless sample stream.
#[derive(Debug)]
pub enum TarEvent {
    Sample(Sample),
    /// The end of a shard (the next event is the next shard's first sample).
    EndOfFile,
}

struct Open {
    reader: BufReader<File>,
    len: u64,
}

/// Streams the samples of a sorted list of shards forever (one epoch per pass), one open file,
/// one sample in memory. `pos`: `file` the shard, `offset` the byte where the next sample
/// starts, `line` its index in the shard (0-based), `epoch` the completed passes.
pub struct TarReader {
    files: Vec<PathBuf>,
    pos: LinePos,
    open: Option<Open>,
    from_start: bool,
    seen_sample: bool,
}

fn tar_err(path: &Path, offset: u64, message: String) -> DataError {
    DataError::Tar {
        path: path.to_path_buf(),
        offset,
        message,
    }
}

impl TarReader {
    pub fn new(files: Vec<PathBuf>) -> Self {
        assert!(
            !files.is_empty(),
            "expand_globs never returns an empty list"
        );
        TarReader {
            files,
            pos: LinePos::default(),
            open: None,
            from_start: true,
            seen_sample: false,
        }
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn path(&self, i: usize) -> &Path {
        &self.files[i]
    }

    /// Where the next unread sample starts.
    pub fn pos(&self) -> LinePos {
        self.pos
    }

    /// Moves to `pos` (checked against the shard's size and the tar block size); the sample there
    /// is read on the next call.
    pub fn seek(&mut self, pos: LinePos) -> std::result::Result<(), String> {
        let Some(path) = self.files.get(pos.file) else {
            return Err(format!(
                "shard index {} but the source has {} shards",
                pos.file,
                self.files.len()
            ));
        };
        let len = std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if pos.offset % BLOCK != 0 || pos.offset > len {
            return Err(format!(
                "byte {} is not where a sample of {} ({len} bytes) can start",
                pos.offset,
                path.display()
            ));
        }
        self.pos = pos;
        self.open = None;
        self.from_start = pos.offset == 0;
        self.seen_sample = false;
        Ok(())
    }

    pub fn next_event(&mut self) -> Result<TarEvent> {
        let path = self.files[self.pos.file].clone();
        if self.open.is_none() {
            let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
            let len = file.metadata().map_err(|e| DataError::io(&path, e))?.len();
            self.open = Some(Open {
                reader: BufReader::with_capacity(1 << 16, file),
                len,
            });
        }
        let open = self.open.as_mut().expect("opened above");
        match read_sample(open, &path, self.pos)? {
            Some((key, entries, end)) => {
                let start = self.pos;
                self.pos.offset = end;
                self.pos.line += 1;
                self.seen_sample = true;
                Ok(TarEvent::Sample(Sample {
                    key,
                    start,
                    entries,
                }))
            }
            None => {
                if self.from_start && !self.seen_sample {
                    return Err(DataError::EmptyFile { path });
                }
                self.open = None;
                self.pos.file += 1;
                if self.pos.file == self.files.len() {
                    self.pos.file = 0;
                    self.pos.epoch += 1;
                }
                (self.pos.offset, self.pos.line) = (0, 0);
                self.from_start = true;
                self.seen_sample = false;
                Ok(TarEvent::EndOfFile)
            }
        }
    }
}

type Entries = Vec<(String, Vec<u8>)>;

/// The sample starting at `at.offset`: its key, entries and where the next one starts; `None`
/// at the end-of-archive blocks.
fn read_sample(
    open: &mut Open,
    path: &Path,
    at: LinePos,
) -> Result<Option<(String, Entries, u64)>> {
    let offset = at.offset;
    let io = |e: std::io::Error| DataError::io(path, e);
    let here = open.reader.stream_position().map_err(io)?;
    open.reader
        .seek_relative(offset as i64 - here as i64)
        .map_err(io)?;
    let len = open.len;
    let mut archive = tar::Archive::new(&mut open.reader);
    let entries = archive.entries().map_err(io)?;
    let mut key: Option<String> = None;
    let mut out: Entries = vec![];
    let mut end = offset;
    let sample = at.line + 1;
    let inside = |key: &Option<String>| match key {
        Some(k) => format!("inside sample {sample} (`{k}`)"),
        None => format!("after sample {}", at.line),
    };
    // A header that does not read follows the last entry read (of this sample, or the one
    // before it when none was).
    let cut = |end: u64, key: &Option<String>, e: std::io::Error| {
        let after = match key {
            Some(k) => format!("after sample {sample} (`{k}`)"),
            None => format!("after sample {}", at.line),
        };
        let what = match e.to_string().as_str() {
            m if m.contains("failed to read entire block") || m.contains("unexpected EOF") => {
                "the tar is truncated: it ends in the middle of a header or an entry".to_string()
            }
            m => format!("the tar is corrupt: {m}"),
        };
        tar_err(path, end, format!("{what} ({after})"))
    };
    for entry in entries {
        let mut e = entry.map_err(|e| cut(end, &key, e))?;
        let size = e.size();
        let entry_end = offset + e.raw_file_position() + size.div_ceil(BLOCK) * BLOCK;
        let header_at = offset + e.raw_header_position();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let split = e
            .header()
            .entry_type()
            .is_file()
            .then(|| split_key(&name))
            .flatten();
        let Some((k, ext)) = split else {
            // Not part of any sample: skipped with whatever comes before the next sample.
            if key.is_none() {
                end = entry_end;
            }
            continue;
        };
        match &key {
            Some(current) if current != k => break,
            Some(_) => {}
            None => key = Some(k.to_string()),
        }
        let ext = ext.to_ascii_lowercase();
        if wanted(&ext) {
            let mut bytes = Vec::with_capacity(size.min(1 << 26) as usize);
            e.read_to_end(&mut bytes)
                .map_err(|e| DataError::io(path, e))?;
            if bytes.len() as u64 != size {
                return Err(tar_err(
                    path,
                    header_at,
                    format!(
                        "the tar is truncated: entry `{name}` holds {} of its {size} bytes ({})",
                        bytes.len(),
                        inside(&key)
                    ),
                ));
            }
            out.push((ext, bytes));
        }
        end = entry_end;
    }
    match key {
        Some(k) => Ok(Some((k, out, end))),
        // The tar crate stops at a zero block or at the end of the file: only the first is the
        // end of the archive.
        None if len >= end + BLOCK => Ok(None),
        None => Err(tar_err(
            path,
            end,
            format!(
                "the tar is truncated: it ends after sample {} without the end-of-archive blocks",
                at.line
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelang_test_support::tar::{jpeg, png, write};

    fn samples(r: &mut TarReader) -> Vec<Sample> {
        let mut out = vec![];
        while let TarEvent::Sample(s) = r.next_event().unwrap() {
            out.push(s);
        }
        out
    }

    #[test]
    fn keys_group_consecutive_entries_and_a_cursor_reads_the_same_sample_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        write(
            &p,
            &[
                ("s/000.jpg", jpeg(16, 16, 1)),
                ("s/000.txt", b"a cat".to_vec()),
                ("s/000.cls", b"3".to_vec()),
                ("README", b"no extension: in no sample".to_vec()),
                ("s/001.seg.png", png(8, 8, 2)),
                ("s/001.json", br#"{"caption": "a dog"}"#.to_vec()),
                ("s/002.PNG", png(8, 8, 3)),
            ],
        );
        let mut r = TarReader::new(vec![p.clone()]);
        let all = samples(&mut r);
        let keys: Vec<&str> = all.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["s/000", "s/001", "s/002"]);
        let exts: Vec<Vec<&str>> = all
            .iter()
            .map(|s| s.entries.iter().map(|(e, _)| e.as_str()).collect())
            .collect();
        // `.cls` and `.seg.png` hold no caption or image; extensions are lower-cased.
        assert_eq!(exts, [vec!["jpg", "txt"], vec!["json"], vec!["png"]]);
        assert_eq!(caption(&all[0], None).unwrap(), "a cat");
        assert_eq!(caption(&all[1], Some("caption")).unwrap(), "a dog");
        assert_eq!(image(&all[1]).unwrap_err(), Bad::NoImage);
        assert!(matches!(caption(&all[2], None), Err(Bad::NoCaption(_))));
        assert_eq!(image(&all[0]).unwrap().0.dimensions(), (16, 16));
        assert!(all.iter().all(|s| s.start.offset % 512 == 0));
        assert_eq!(
            all.iter().map(|s| s.start.line).collect::<Vec<_>>(),
            [0, 1, 2]
        );

        // Seeking to any sample's start reads it, and everything after it, again.
        for s in &all {
            let mut r2 = TarReader::new(vec![p.clone()]);
            r2.seek(s.start).unwrap();
            let rest = samples(&mut r2);
            assert_eq!(rest[0].key, s.key);
            assert_eq!(rest[0].entries, s.entries);
            assert_eq!(rest.len(), 3 - s.start.line as usize);
        }
        assert!(
            r.seek(LinePos {
                offset: 100,
                ..LinePos::default()
            })
            .is_err()
        );
    }

    #[test]
    fn a_truncated_shard_names_the_byte_and_the_sample() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tar");
        write(
            &p,
            &[
                ("000.png", png(16, 16, 1)),
                ("000.txt", b"first".to_vec()),
                ("001.png", png(64, 64, 2)),
                ("001.txt", b"second".to_vec()),
            ],
        );
        let full = std::fs::read(&p).unwrap();
        // Cut inside the second image, inside a header, and right after the last entry.
        let mut r = TarReader::new(vec![p.clone()]);
        let first = samples(&mut r);
        let second_at = first[1].start.offset as usize;
        for (cut, says) in [
            (second_at + 700, "inside sample 2 (`001`)"),
            (second_at + 100, "after sample 1"),
            (full.len() - 1024, "without the end-of-archive blocks"),
        ] {
            std::fs::write(&p, &full[..cut]).unwrap();
            let mut r = TarReader::new(vec![p.clone()]);
            let err = loop {
                match r.next_event() {
                    Ok(TarEvent::Sample(_)) => continue,
                    Ok(TarEvent::EndOfFile) => panic!("cut at {cut} read to the end"),
                    Err(e) => break e,
                }
            };
            let msg = err.to_string();
            assert!(msg.contains("t.tar") && msg.contains("truncated"), "{msg}");
            assert!(msg.contains(says), "cut at {cut}: {msg}");
        }
    }

    #[test]
    fn keys_follow_webdataset() {
        assert_eq!(split_key("a/b/000123.jpg"), Some(("a/b/000123", "jpg")));
        assert_eq!(split_key("x.seg.png"), Some(("x", "seg.png")));
        assert_eq!(split_key("dir.v1/x.txt"), Some(("dir.v1/x", "txt")));
        assert_eq!(split_key("README"), None);
        assert_eq!(split_key("a/.hidden"), None);
    }
}
