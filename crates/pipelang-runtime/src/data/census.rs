//! `pipe check --data`: every source opened and counted with its own tokenizer before a run
//! asks anything of it. Files are streamed line by line and batches of lines are parsed and
//! tokenised on all cores (rayon); images are decoded to count their tokens (and to find the
//! ones that do not decode). Records are read by the same parsers as training
//! (`records::parse_text`, `records::parse_multimodal`), so a bad record is reported with the
//! same file and line as `pipe run` would stop at. WebDataset shards are read sample by sample
//! with the training reader (`webdataset.rs`); bad samples are counted, and the first ones
//! described, as training skips them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::{DataError, Result};
use super::files::{expand_globs, is_parquet};
use super::image_patches::{ImageConfig, decode_rgb};
use super::parquet_text::ParquetText;
use super::records::{Origin, Piece, SourceKind, parse_multimodal, parse_text};
use super::text_source::TEXT_FILES;
use super::tokenizer::Tokenizer;
use super::webdataset::{self, TarEvent, TarReader, is_tar};

/// Lines parsed and tokenised together: large enough to keep every core busy, small enough
/// to stream.
const BATCH: usize = 2048;

/// WebDataset samples decoded together (each holds an image).
const TAR_BATCH: usize = 256;

/// Problems kept per source (the first ones, in file and line order); counting goes on past
/// them so the totals stay useful.
pub const MAX_PROBLEMS: usize = 5;

/// What one source holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SourceCount {
    pub files: usize,
    pub bytes: u64,
    /// JSONL records, or `.txt` files (one document each).
    pub documents: u64,
    /// Tokens of one pass, as training packs them: text, image blocks, end of document.
    pub tokens: u64,
    pub images: u64,
    /// WebDataset samples without an image or a caption, or whose image does not decode:
    /// training skips them.
    pub bad_samples: u64,
}

/// A problem found while counting, with the glob (index into the declaration's globs) whose
/// files it is in.
#[derive(Debug)]
pub struct Problem {
    pub glob: usize,
    pub error: DataError,
}

/// A source's count and its problems.
#[derive(Debug, Default)]
pub struct Census {
    pub count: SourceCount,
    pub problems: Vec<Problem>,
    /// The first bad samples (up to `MAX_PROBLEMS`), described.
    pub bad: Vec<String>,
    pub seconds: f64,
}

/// Counts a source whose files match `patterns` (relative to `base`). `progress` is advanced
/// by the bytes read. A glob that matches nothing is a problem of that glob; the others are
/// still counted.
pub fn count_source(
    kind: SourceKind,
    base: &Path,
    patterns: &[String],
    column: &str,
    caption: Option<&str>,
    tokenizer: &Tokenizer,
    image: ImageConfig,
    progress: &indicatif::ProgressBar,
) -> Census {
    let started = std::time::Instant::now();
    let mut out = Census::default();
    let mut files: Vec<(usize, PathBuf)> = vec![];
    for (g, pattern) in patterns.iter().enumerate() {
        match expand_globs(base, std::slice::from_ref(pattern)) {
            Ok(found) => files.extend(found.into_iter().map(|f| (g, f))),
            Err(error) => out.problems.push(Problem { glob: g, error }),
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    files.dedup_by(|a, b| a.1 == b.1);
    out.count.files = files.len();
    for (g, path) in &files {
        if kind == SourceKind::ImageText && is_tar(path) {
            match count_tar(path, caption, tokenizer, image, progress) {
                Ok((c, bad)) => {
                    add(&mut out.count, &c);
                    let room = MAX_PROBLEMS - out.bad.len().min(MAX_PROBLEMS);
                    out.bad.extend(bad.into_iter().take(room));
                }
                Err(error) => out.problems.push(Problem { glob: *g, error }),
            }
            if out.problems.len() >= MAX_PROBLEMS {
                break;
            }
            continue;
        }
        match count_file(kind, path, column, tokenizer, image, progress) {
            Ok((c, errors)) => {
                add(&mut out.count, &c);
                for error in errors {
                    out.problems.push(Problem { glob: *g, error });
                }
            }
            Err(error) => out.problems.push(Problem { glob: *g, error }),
        }
        if out.problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if out.problems.is_empty() && out.count.documents == 0 && out.count.bad_samples > 0 {
        out.problems.push(Problem {
            glob: 0,
            error: DataError::AllSamplesBad {
                count: out.count.bad_samples,
                first: out.bad.first().cloned().unwrap_or_default(),
                hint: match caption {
                    Some(f) => {
                        format!("each sample needs an image and a .json with a string `{f}` field")
                    }
                    None => "each sample needs an image (.jpg, .jpeg, .png, .webp) and a .txt \
                             caption; for a caption in the .json, write `caption = \"FIELD\"`"
                        .into(),
                },
            },
        });
    }
    out.problems.truncate(MAX_PROBLEMS);
    out.seconds = started.elapsed().as_secs_f64();
    out
}

fn add(to: &mut SourceCount, c: &SourceCount) {
    to.bytes += c.bytes;
    to.documents += c.documents;
    to.tokens += c.tokens;
    to.images += c.images;
    to.bad_samples += c.bad_samples;
}

/// A WebDataset shard, its samples decoded and tokenised on all cores as training reads them
/// (image block, caption, end of document); bad samples counted and the first ones described.
fn count_tar(
    path: &Path,
    caption: Option<&str>,
    tokenizer: &Tokenizer,
    image: ImageConfig,
    progress: &indicatif::ProgressBar,
) -> Result<(SourceCount, Vec<String>)> {
    let bytes = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let mut count = SourceCount {
        bytes,
        ..SourceCount::default()
    };
    let mut bad = vec![];
    let mut reader = TarReader::new(vec![path.to_path_buf()]);
    let (mut shown, mut done) = (0u64, false);
    let cell = image.patch * image.merge;
    while !done {
        let mut batch = Vec::with_capacity(TAR_BATCH);
        while batch.len() < TAR_BATCH {
            match reader.next_event()? {
                TarEvent::Sample(s) => batch.push(s),
                TarEvent::EndOfFile => {
                    done = true;
                    break;
                }
            }
        }
        let at = if done { bytes } else { reader.pos().offset };
        progress.inc(at.saturating_sub(shown));
        shown = at;
        let results: Vec<Result<std::result::Result<u64, webdataset::Bad>>> = batch
            .par_iter()
            .map(|s| {
                let counted = webdataset::image(s).and_then(|(rgb, name)| {
                    let text = webdataset::caption(s, caption)?;
                    let (w, h) = rgb.dimensions();
                    let (tw, th) = webdataset::fitted(w, h, &name, &image)?;
                    Ok((((tw / cell) * (th / cell)) as u64 + 2, text))
                });
                Ok(match counted {
                    // Merged image tokens with image start and end, the caption, end of document.
                    Ok((image_tokens, text)) => {
                        Ok(image_tokens + tokenizer.encode(&text)?.len() as u64 + 1)
                    }
                    Err(b) => Err(b),
                })
            })
            .collect();
        for (s, r) in batch.iter().zip(results) {
            match r? {
                Ok(tokens) => {
                    count.documents += 1;
                    count.images += 1;
                    count.tokens += tokens;
                }
                Err(why) => {
                    count.bad_samples += 1;
                    if bad.len() < MAX_PROBLEMS {
                        bad.push(format!("{}: {why}", webdataset::describe(path, s)));
                    }
                }
            }
        }
    }
    Ok((count, bad))
}

/// One file: its count, and the records that could not be read (up to `MAX_PROBLEMS`).
fn count_file(
    kind: SourceKind,
    path: &Path,
    column: &str,
    tokenizer: &Tokenizer,
    image: ImageConfig,
    progress: &indicatif::ProgressBar,
) -> Result<(SourceCount, Vec<DataError>)> {
    if kind == SourceKind::Text && is_parquet(path) {
        return count_parquet(path, column, tokenizer, progress);
    }
    let plain = match path.extension().and_then(|e| e.to_str()) {
        Some("txt") if kind == SourceKind::Text => true,
        Some("jsonl") | Some("json") => false,
        _ => {
            return Err(DataError::UnsupportedFile {
                path: path.to_path_buf(),
                expected: match kind {
                    SourceKind::Text => TEXT_FILES,
                    _ => "multimodal data must be .jsonl, one record per line",
                }
                .into(),
            });
        }
    };
    let eod = 1u64;
    let mut reader = BufReader::new(File::open(path).map_err(|e| DataError::io(path, e))?);
    let mut count = SourceCount::default();
    let mut errors: Vec<DataError> = vec![];
    let mut line_no = 0u64;
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        let mut batch_bytes = 0u64;
        while batch.len() < BATCH {
            let mut buf = Vec::new();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| DataError::io(path, e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            batch_bytes += n as u64;
            count.bytes += n as u64;
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            batch.push((line_no, buf));
        }
        if batch.is_empty() {
            break;
        }
        progress.inc(batch_bytes);
        let results: Vec<std::result::Result<SourceCount, DataError>> = batch
            .par_iter()
            .map(|(line, buf)| {
                let origin = Origin { path, line: *line };
                let text = std::str::from_utf8(buf).map_err(|_| DataError::MalformedLine {
                    path: path.to_path_buf(),
                    line: *line,
                    message: "the line is not valid UTF-8".into(),
                })?;
                let text = text.trim_end_matches(['\n', '\r']);
                count_record(kind, plain, origin, text, tokenizer, image)
            })
            .collect();
        for r in results {
            match r {
                Ok(c) => add(&mut count, &c),
                Err(e) if errors.len() < MAX_PROBLEMS => errors.push(e),
                Err(_) => {}
            }
        }
    }
    if count.bytes == 0 || (count.documents == 0 && errors.is_empty() && !plain) {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if plain {
        // A plain-text file is one document, closed by one end-of-document token.
        count.documents = 1;
        count.tokens += eod;
    }
    Ok((count, errors))
}

/// A Parquet file, one row group at a time, its rows tokenised on all cores: a document per
/// non-null row, as `TextSource` reads them.
fn count_parquet(
    path: &Path,
    column: &str,
    tokenizer: &Tokenizer,
    progress: &indicatif::ProgressBar,
) -> Result<(SourceCount, Vec<DataError>)> {
    let table = ParquetText::open(path, column)?;
    let bytes = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let mut count = SourceCount {
        bytes,
        ..SourceCount::default()
    };
    for g in 0..table.row_groups() {
        let rows = table.read_group(g)?;
        let tokens: Result<Vec<u64>> = rows
            .par_iter()
            .flatten()
            .map(|t| Ok(tokenizer.encode(t)?.len() as u64 + 1))
            .collect();
        let tokens = tokens?;
        count.documents += tokens.len() as u64;
        count.tokens += tokens.iter().sum::<u64>();
    }
    progress.inc(bytes);
    if count.documents == 0 {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok((count, vec![]))
}

/// One non-blank line: tokens as training packs them.
fn count_record(
    kind: SourceKind,
    plain: bool,
    origin: Origin,
    line: &str,
    tokenizer: &Tokenizer,
    image: ImageConfig,
) -> Result<SourceCount> {
    let mut c = SourceCount::default();
    if plain {
        // Plain text keeps its newlines (see `TextSource::fill`).
        let mut t = line.to_string();
        t.push('\n');
        c.tokens = tokenizer.encode(&t)?.len() as u64;
        return Ok(c);
    }
    c.documents = 1;
    c.tokens = 1; // end of document
    if kind == SourceKind::Text {
        c.tokens += tokenizer.encode(&parse_text(origin, line)?)?.len() as u64;
        return Ok(c);
    }
    for piece in parse_multimodal(kind, origin, line)? {
        match piece {
            Piece::Text(t) => c.tokens += tokenizer.encode(&t)?.len() as u64,
            Piece::Image(img) => {
                let rgb = decode_rgb(&img, origin)?;
                let (w, h) = rgb.dimensions();
                let (tw, th) = image
                    .fitted_size(w, h)
                    .ok_or_else(|| DataError::ImageSize {
                        path: origin.path.to_path_buf(),
                        line: origin.line,
                        image: img.clone(),
                        width: w,
                        height: h,
                        problem: "smaller than one merge cell".into(),
                        hint: format!(
                            "use images of at least {0}x{0} pixels",
                            image.patch * image.merge
                        ),
                    })?;
                let cell = image.patch * image.merge;
                // Merged image tokens plus image start and image end.
                c.tokens += ((tw / cell) * (th / cell)) as u64 + 2;
                c.images += 1;
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: ImageConfig = ImageConfig {
        patch: 4,
        merge: 2,
        max_side: 32,
    };

    #[test]
    fn counts_documents_and_tokens_like_training() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"text\": \"abc\"}\n\n{\"text\": \"hello\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.txt"), "xy\nz\n").unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let c = count_source(
            SourceKind::Text,
            dir.path(),
            &["*.jsonl".into(), "*.txt".into(), "none/*.jsonl".into()],
            "text",
            None,
            &Tokenizer::Bytes,
            IMG,
            &bar,
        );
        // 3 + 1 and 5 + 1 for the records; "xy\n" + "z\n" + 1 for the text file.
        assert_eq!(c.count.documents, 3);
        assert_eq!(c.count.tokens, 4 + 6 + 6);
        assert_eq!(c.count.files, 2);
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].glob, 2);
        assert!(matches!(c.problems[0].error, DataError::NoMatch { .. }));
    }

    #[test]
    fn bad_records_name_file_and_line_and_counting_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"text\": \"abc\"}\n{\"text\": 5}\nnot json\n{\"text\": \"d\"}\n",
        )
        .unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let c = count_source(
            SourceKind::Text,
            dir.path(),
            &["*.jsonl".into()],
            "text",
            None,
            &Tokenizer::Bytes,
            IMG,
            &bar,
        );
        assert_eq!(c.count.documents, 2);
        let shown: Vec<String> = c.problems.iter().map(|p| p.error.to_string()).collect();
        assert!(shown[0].contains("a.jsonl:2:"), "{shown:?}");
        assert!(shown[1].contains("a.jsonl:3:"), "{shown:?}");
    }

    #[test]
    fn images_are_decoded_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        image::RgbImage::new(16, 8)
            .save(dir.path().join("ok.png"))
            .unwrap();
        std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
        std::fs::write(
            dir.path().join("c.jsonl"),
            "{\"image\": \"ok.png\", \"text\": \"ab\"}\n{\"image\": \"bad.png\", \"text\": \"x\"}\n",
        )
        .unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let c = count_source(
            SourceKind::ImageText,
            dir.path(),
            &["*.jsonl".into()],
            "text",
            None,
            &Tokenizer::Bytes,
            IMG,
            &bar,
        );
        // 16x8 in 8-pixel cells: 2 x 1 merged tokens + start + end; "ab"; end of document.
        assert_eq!((c.count.documents, c.count.images), (1, 1));
        assert_eq!(c.count.tokens, 4 + 2 + 1);
        assert_eq!(c.problems.len(), 1);
        assert!(
            matches!(&c.problems[0].error, DataError::BadImage { line: 2, .. }),
            "{:?}",
            c.problems[0]
        );
    }
}

pub use pipeline::{DataReport, EPOCH_WARNING, Need, SourceRow, StageRow, census};

/// The whole pipeline's census: every source a stage reads, counted once, and what each stage
/// asks of it.
mod pipeline {
    use std::path::Path;

    use pipelang::check::files;
    use pipelang::check::ir::{DataId, IndexVec, MixNode, MixTarget, Pipeline};
    use pipelang::diag::{Code, Diagnostic};
    use pipelang::plan::Plan;
    use pipelang::syntax::Span;

    use super::{Census, SourceCount, count_source, expand_globs};
    use crate::data::prepared::{self, Manifest};
    use crate::setup::{column_of, image_config, source_kind, tokenizer_for};

    /// Past this many passes over a source, repeated data stops helping (and starts to be
    /// memorised): `pipe check --data` warns.
    pub const EPOCH_WARNING: f64 = 4.0;

    #[derive(Debug, Clone, serde::Serialize)]
    pub struct SourceRow {
        pub name: String,
        pub kind: &'static str,
        #[serde(flatten)]
        pub count: SourceCount,
        /// Whether every file was read without a problem (the counts are then exact).
        pub complete: bool,
        /// Whether the counts come from a `pipe prepare-data` manifest whose content hashes
        /// match the files (nothing was tokenised).
        pub prepared: bool,
        pub seconds: f64,
    }

    /// What one stage asks of one source.
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct Need {
        pub source: String,
        pub tokens: f64,
        /// Passes over the source this stage alone makes.
        pub epochs: f64,
        /// Passes made by the end of this stage, the stages before it included (the
        /// source's position carries over from stage to stage).
        pub cumulative_epochs: f64,
    }

    #[derive(Debug, Clone, serde::Serialize)]
    pub struct StageRow {
        pub name: String,
        pub tokens: f64,
        pub sources: Vec<Need>,
    }

    #[derive(Debug, Clone, serde::Serialize)]
    pub struct DataReport {
        pub sources: Vec<SourceRow>,
        pub stages: Vec<StageRow>,
        #[serde(skip)]
        pub diagnostics: Vec<Diagnostic>,
        pub bytes: u64,
        pub seconds: f64,
    }

    impl DataReport {
        pub fn mb_per_s(&self) -> f64 {
            self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
        }
    }

    fn mix_nodes<'a>(nodes: &'a [MixNode], out: &mut Vec<(DataId, &'a MixNode)>) {
        for n in nodes {
            match &n.target {
                MixTarget::Source(d) => out.push((*d, n)),
                MixTarget::Group(g) => mix_nodes(g, out),
            }
        }
    }

    /// Tokens a stage of `tokens` takes from each source: the mixture's share integrated over
    /// the stage (Simpson's rule; shares are polynomials of low degree in the position).
    fn taken(plan: &pipelang::plan::StagePlan, sources: usize) -> IndexVec<DataId, f64> {
        const N: usize = 64;
        let mut acc: IndexVec<DataId, f64> = IndexVec::from_elem(0.0, sources);
        for i in 0..=N {
            let w = match i {
                0 | N => 1.0,
                _ if i % 2 == 1 => 4.0,
                _ => 2.0,
            };
            for (a, s) in acc.iter_mut().zip(&plan.mix_tree.at(i as f64 / N as f64)) {
                *a += w * s;
            }
        }
        acc.iter()
            .map(|a| a / (3.0 * N as f64) * plan.tokens)
            .collect()
    }

    /// Opens and counts every source the plan reads (`file` is the pipeline's path), and
    /// reports what the stages ask of them. Diagnostics: the file-aware checks of
    /// `check::files` (tokenizers), globs that match nothing and records that do not read
    /// (P0701, at the glob), and sources read for more than `EPOCH_WARNING` epochs (P0702,
    /// at the stage's mixture entry where the count passes it). A source that `prepared` (the
    /// manifest of `pipe prepare-data`) holds with the same file contents and tokenizer is
    /// counted from it instead of tokenised.
    pub fn census(
        p: &Pipeline,
        plan: &Plan,
        file: &Path,
        progress: bool,
        prepared: Option<&Manifest>,
    ) -> DataReport {
        let started = std::time::Instant::now();
        let root = files::data_root(file, p);
        let mut diagnostics = files::check(p, file);
        let used: Vec<DataId> = {
            let mut u: Vec<DataId> = plan
                .stages
                .iter()
                .flat_map(|s| s.mix_tree.used_sources())
                .collect();
            u.sort();
            u.dedup();
            u
        };
        let mut total_bytes = 0u64;
        for &d in &used {
            for g in &p.data[d].globs {
                let Ok(paths) = expand_globs(&root, std::slice::from_ref(&g.value)) else {
                    continue;
                };
                total_bytes += paths
                    .iter()
                    .filter_map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
                    .sum::<u64>();
            }
        }
        let bar = if progress {
            indicatif::ProgressBar::new(total_bytes)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap()
            .progress_chars("=> "),
        );
        let image = image_config(p);
        let mut counts: IndexVec<DataId, Option<SourceCount>> =
            IndexVec::from_elem(None, p.data.len());
        let mut sources = vec![];
        for &d in &used {
            let data = &p.data[d];
            bar.set_prefix(data.name.clone());
            // A tokenizer that does not load is already a diagnostic of `check::files`.
            let Ok(tok) = tokenizer_for(p, d, &root) else {
                continue;
            };
            let patterns: Vec<String> = data.globs.iter().map(|g| g.value.clone()).collect();
            if let Some(count) = prepared.and_then(|m| from_manifest(m, p, d, &root, &patterns)) {
                bar.inc(count.bytes);
                counts[d] = Some(count.clone());
                sources.push(SourceRow {
                    name: data.name.clone(),
                    kind: data.kind.name(),
                    count,
                    complete: true,
                    prepared: true,
                    seconds: 0.0,
                });
                continue;
            }
            let Census {
                count,
                problems,
                bad,
                seconds,
            } = count_source(
                source_kind(data.kind),
                &root,
                &patterns,
                column_of(data),
                data.caption.as_ref().map(|c| c.value.as_str()),
                &tok,
                image,
                &bar,
            );
            if count.bad_samples > 0 && count.documents > 0 {
                let span = data.globs.first().map_or(data.name_span, |g| g.span);
                let more = match count.bad_samples as usize > bad.len() {
                    true => format!("; {} more", count.bad_samples as usize - bad.len()),
                    false => String::new(),
                };
                diagnostics.push(
                    Diagnostic::new(
                        Code::DATA_SAMPLES_SKIPPED,
                        format!(
                            "data source `{}`: {} of {} samples are skipped: {}{more}",
                            data.name,
                            count.bad_samples,
                            count.bad_samples + count.documents,
                            bad.join("; ")
                        ),
                    )
                    .label(
                        span,
                        format!(
                            "{} samples without an image or a caption",
                            count.bad_samples
                        ),
                    )
                    .help(
                        "training skips these samples and counts them in run.ron (the source's \
                         cursor: bad_samples); repair or drop them to train on them",
                    ),
                );
            }
            for pr in &problems {
                let span = data.globs.get(pr.glob).map_or(data.name_span, |g| g.span);
                diagnostics.push(
                    Diagnostic::new(
                        Code::DATA_FILES,
                        format!("data source `{}`: {}", data.name, pr.error),
                    )
                    .label(span, format!("resolved under {}", shown(&root)))
                    .help(
                        "fix the file or the glob; paths are relative to the pipeline file (or \
                         its data_root)",
                    ),
                );
            }
            let complete = problems.is_empty();
            if count.tokens > 0 {
                counts[d] = Some(count.clone());
            }
            sources.push(SourceRow {
                name: data.name.clone(),
                kind: data.kind.name(),
                count,
                complete,
                prepared: false,
                seconds,
            });
        }
        bar.finish_and_clear();
        let mut stages = vec![];
        let mut read: IndexVec<DataId, f64> = IndexVec::from_elem(0.0, p.data.len());
        let mut warned: IndexVec<DataId, bool> = IndexVec::from_elem(false, p.data.len());
        for st in &plan.stages {
            let takes = taken(st, p.data.len());
            let mut nodes = vec![];
            mix_nodes(&p.stages[st.id].mix, &mut nodes);
            let mut needs = vec![];
            for d in st.mix_tree.used_sources() {
                let tokens = takes[d];
                let Some(c) = &counts[d] else {
                    continue;
                };
                let epochs = tokens / c.tokens as f64;
                read[d] += epochs;
                needs.push(super::pipeline::Need {
                    source: p.data[d].name.clone(),
                    tokens,
                    epochs,
                    cumulative_epochs: read[d],
                });
                if read[d] > EPOCH_WARNING && !warned[d] {
                    warned[d] = true;
                    let at: Span = nodes
                        .iter()
                        .find(|(id, _)| *id == d)
                        .map_or(p.stages[st.id].mix_span, |(_, n)| n.span);
                    let data = &p.data[d];
                    diagnostics.push(
                        Diagnostic::new(
                            Code::DATA_REPEATED,
                            format!(
                                "`{}` is read {:.1} times by the end of stage `{}`: {} tokens \
                                 asked of {} there, {} in one pass",
                                data.name,
                                read[d],
                                st.name,
                                short(tokens),
                                data.name,
                                short(c.tokens as f64)
                            ),
                        )
                        .label(
                            at,
                            format!("{:.1} epochs by the end of this stage", read[d]),
                        )
                        .label(
                            data.globs.first().map_or(data.name_span, |g| g.span),
                            format!("{} tokens in one pass", short(c.tokens as f64)),
                        )
                        .help(format!(
                            "past {EPOCH_WARNING} epochs repeated data stops helping: add data to \
                             the source, lower its share, or lower the budget"
                        )),
                    );
                }
            }
            stages.push(StageRow {
                name: st.name.clone(),
                tokens: st.tokens,
                sources: needs,
            });
        }
        let list = pipelang::diag::Diagnostics { list: diagnostics };
        DataReport {
            bytes: sources.iter().map(|s| s.count.bytes).sum(),
            sources,
            stages,
            diagnostics: list.finish(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// A text source's count from the manifest, when its files and tokenizer hash the same.
    fn from_manifest(
        m: &Manifest,
        p: &Pipeline,
        d: DataId,
        root: &Path,
        patterns: &[String],
    ) -> Option<SourceCount> {
        let files = expand_globs(root, patterns).ok()?;
        let tok = prepared::tokenizer_id(p, d, root).ok()?;
        let (documents, tokens, bytes) = m.current_counts(&p.data[d].name, &files, &tok)?;
        Some(SourceCount {
            files: files.len(),
            bytes,
            documents,
            tokens,
            images: 0,
            bad_samples: 0,
        })
    }

    /// A folder for messages: `.` rather than nothing.
    fn shown(root: &Path) -> String {
        match root.as_os_str().is_empty() {
            true => ".".into(),
            false => root.display().to_string(),
        }
    }

    /// `40.96K`, `1.2M` for messages and tables.
    pub fn short(n: f64) -> String {
        let (v, s) = match n.abs() {
            x if x >= 1e12 => (n / 1e12, "T"),
            x if x >= 1e9 => (n / 1e9, "B"),
            x if x >= 1e6 => (n / 1e6, "M"),
            x if x >= 1e3 => (n / 1e3, "K"),
            _ => (n, ""),
        };
        let t = format!("{v:.2}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        format!("{t}{s}")
    }
}

pub use pipeline::short;
