//! `pipe prepare-data`: every text source of a recipe tokenised with its own tokenizer into the
//! files an engine trains from, with a manifest that says what is in them.
//!
//! ```text
//! OUT/manifest.json               Manifest: per source its tokenizer, vocab, EOS, dtype,
//!                                 documents, tokens, and one Shard per input file
//! OUT/SOURCE/part-00000.npy       OLMo-core: the flat token array (+ .csv.gz, Dolma metadata)
//! OUT/SOURCE/part-00000.bin/.idx  Megatron: the indexed dataset (one sequence per document)
//! OUT/SOURCE/part-00000.done.json the shard's record, written last (the commit point)
//! ```
//!
//! The API other code calls (the OLMo-core engine exports its data through it):
//! - [`prepare`] (`&Prepared`) or [`prepare_pipeline`] (`&Pipeline` and its file) →
//!   [`Report`], whose [`Manifest`] lists each source's [`SourceEntry::engine_paths`]
//!   (OLMo-core's `paths`, Megatron's data prefixes), `vocab_size`, `eos`, `pad` and `dtype`;
//! - [`Manifest::read`] reads a prepared folder back; [`Manifest::current_counts`] gives a
//!   source's documents and tokens without tokenising, when the inputs and tokenizer still
//!   hash the same (`pipe check --data --prepared DIR`).
//!
//! Each input file is one shard, built in parallel with the others and tokenised on all cores
//! inside (`shard.rs`). Documents end with EOS (the tokenizer's `eod`), exactly as training
//! packs them. A shard's files are written under temporary names and renamed when complete;
//! its record comes last. A rerun skips every shard whose record matches its input's content
//! hash, the tokenizer and the format, and builds the rest; the manifest is written (atomically)
//! only when every shard is done. Sources of images are not tokens and are listed as skipped.

mod manifest;
mod megatron;
mod olmo_core;
mod shard;
mod staged;
mod writer;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use pipelang::check::ir::{DataId, DataKind, Pipeline};

pub use manifest::{
    Dtype, MANIFEST, Manifest, Shard, Skipped, SourceEntry, TokenizerId, sha256_file,
};
use shard::Layout;
use writer::TokenWriter;

use super::error::DataError;
use super::files::expand_globs;
use super::tokenizer::Tokenizer;
use crate::setup::{Prepared, column_of, tokenizer_for};

/// The engine whose files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    OlmoCore,
    Megatron,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::OlmoCore => "olmo-core",
            Format::Megatron => "megatron",
        }
    }

    pub fn dtype(self, vocab: u32) -> Dtype {
        match self {
            Format::OlmoCore => Dtype::olmo_core(vocab),
            Format::Megatron => Dtype::megatron(vocab),
        }
    }

    /// The shard's files, relative to the prepared folder, the data file first.
    fn outputs(self, prefix: &Path) -> Vec<PathBuf> {
        let ext: &[&str] = match self {
            Format::OlmoCore => &["npy", "csv.gz"],
            Format::Megatron => &["bin", "idx"],
        };
        ext.iter().map(|e| prefix.with_extension(e)).collect()
    }

    fn writer(
        self,
        prefix: &Path,
        dtype: Dtype,
        eos: u32,
    ) -> std::io::Result<Box<dyn TokenWriter>> {
        Ok(match self {
            Format::OlmoCore => Box::new(olmo_core::OlmoCoreWriter::create(prefix, dtype, eos)?),
            Format::Megatron => Box::new(megatron::MegatronWriter::create(prefix, dtype, eos)?),
        })
    }
}

/// What went wrong, with the source it happened in.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("data source `{source_name}`: {error}")]
    Data {
        source_name: String,
        error: Box<DataError>,
    },
    #[error(
        "{path}: cannot write: {error}\n  hint: check that the output folder is writable and has space"
    )]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What a run of `prepare` did.
#[derive(Debug)]
pub struct Report {
    pub manifest: Manifest,
    /// Shards tokenised by this run, and shards a previous run had finished (skipped).
    pub built: usize,
    pub reused: usize,
    /// Bytes of input tokenised by this run.
    pub bytes_tokenized: u64,
    pub seconds: f64,
}

/// Prepares every text source of a checked, planned pipeline into `out`.
pub fn prepare(
    prep: &Prepared,
    format: Format,
    out: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Report, Vec<PrepareError>> {
    let p = prep
        .checked
        .pipeline
        .as_ref()
        .expect("a Prepared pipeline has been checked");
    prepare_pipeline(p, &prep.file, &prep.data_root, format, out, progress)
}

/// The tokenizer's identity, by content.
pub fn tokenizer_id(p: &Pipeline, d: DataId, root: &Path) -> std::io::Result<TokenizerId> {
    Ok(match &p.data[d].tokenizer {
        None => TokenizerId {
            name: "bytes".into(),
            sha256: String::new(),
        },
        Some(t) => TokenizerId {
            name: t.value.clone(),
            sha256: sha256_file(&root.join(&t.value))?,
        },
    })
}

/// One input file of one source.
struct Job {
    source: usize,
    input: PathBuf,
    layout: Layout,
    /// The string column of Parquet files.
    column: String,
    /// `SOURCE/part-NNNNN`, relative to `out`.
    prefix: PathBuf,
}

impl Job {
    fn parquet_column(&self) -> Option<String> {
        (self.layout == Layout::Parquet).then(|| self.column.clone())
    }
}

/// Per source: what every shard of it shares.
struct SourceSetup {
    name: String,
    kind: &'static str,
    tokenizer: Tokenizer,
    id: TokenizerId,
    dtype: Dtype,
}

/// [`prepare`] from the pipeline `p` declared in `file`, whose data paths resolve under `root`.
pub fn prepare_pipeline(
    p: &Pipeline,
    file: &Path,
    root: &Path,
    format: Format,
    out: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Report, Vec<PrepareError>> {
    let started = std::time::Instant::now();
    let mut errors = vec![];
    let mut setups = vec![];
    let mut skipped = vec![];
    let mut jobs = vec![];
    let write_err = |path: &Path, error| PrepareError::Write {
        path: path.to_path_buf(),
        error,
    };
    for (d, data) in p.data.iter_enumerated() {
        let data_err = |error| PrepareError::Data {
            source_name: data.name.clone(),
            error: Box::new(error),
        };
        if data.kind != DataKind::Text {
            skipped.push(Skipped {
                name: data.name.clone(),
                kind: data.kind.name().into(),
                reason: "an image source has no engine token files (its images are not \
                         tokens, and its captions alone would lose them); `pipe run` trains on it \
                         as it is"
                    .into(),
            });
            continue;
        }
        let tokenizer = match tokenizer_for(p, d, root) {
            Ok(t) => t,
            Err(e) => {
                errors.push(data_err(DataError::Tokenizer {
                    path: root.join(data.tokenizer.as_ref().map_or("", |t| t.value.as_str())),
                    message: e.to_string(),
                }));
                continue;
            }
        };
        let id = match tokenizer_id(p, d, root) {
            Ok(id) => id,
            Err(e) => {
                errors.push(data_err(DataError::io(root, e)));
                continue;
            }
        };
        let patterns: Vec<String> = data.globs.iter().map(|g| g.value.clone()).collect();
        let files = match expand_globs(root, &patterns) {
            Ok(f) => f,
            Err(e) => {
                errors.push(data_err(e));
                continue;
            }
        };
        let dir = out.join(&data.name);
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| staged::remove_stale(&dir)) {
            errors.push(write_err(&dir, e));
            continue;
        }
        for (i, f) in files.iter().enumerate() {
            match Layout::of(f) {
                Ok(layout) => jobs.push(Job {
                    source: setups.len(),
                    input: std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()),
                    layout,
                    column: column_of(data).to_string(),
                    prefix: PathBuf::from(&data.name).join(format!("part-{i:05}")),
                }),
                Err(e) => errors.push(data_err(e)),
            }
        }
        setups.push(SourceSetup {
            name: data.name.clone(),
            kind: data.kind.name(),
            dtype: format.dtype(tokenizer.vocab_size()),
            tokenizer,
            id,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let total: u64 = jobs
        .iter()
        .filter_map(|j| std::fs::metadata(&j.input).ok())
        .map(|m| m.len())
        .sum();
    progress.set_length(total);
    let done: Vec<Result<(Shard, bool), PrepareError>> = jobs
        .par_iter()
        .map(|job| {
            let s = &setups[job.source];
            if let Some(shard) = reusable(out, job, s, format) {
                progress.inc(shard.bytes);
                return Ok((shard, true));
            }
            build(out, job, s, format, progress).map(|shard| (shard, false))
        })
        .collect();
    let mut shards: Vec<Vec<Shard>> = vec![vec![]; setups.len()];
    let (mut built, mut reused, mut bytes_tokenized) = (0, 0, 0);
    for (job, r) in jobs.iter().zip(done) {
        match r {
            Ok((shard, was_reused)) => {
                if was_reused {
                    reused += 1;
                } else {
                    built += 1;
                    bytes_tokenized += shard.bytes;
                }
                shards[job.source].push(shard);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let sources = setups
        .into_iter()
        .zip(shards)
        .map(|(s, shards)| {
            let sp = s.tokenizer.specials();
            SourceEntry {
                name: s.name,
                kind: s.kind.into(),
                tokenizer: s.id,
                vocab_size: s.tokenizer.vocab_size(),
                eos: sp.eod,
                pad: sp.pad,
                dtype: s.dtype,
                documents: shards.iter().map(|x| x.documents).sum(),
                tokens: shards.iter().map(|x| x.tokens).sum(),
                bytes: shards.iter().map(|x| x.bytes).sum(),
                shards,
            }
        })
        .collect();
    let manifest = Manifest {
        format,
        pipeline: std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()),
        pipelang: env!("CARGO_PKG_VERSION").into(),
        sources,
        skipped,
    };
    // A recipe of image sources alone has no shard folder that would have made `out`.
    std::fs::create_dir_all(out)
        .and_then(|_| manifest.write(out))
        .map_err(|e| vec![write_err(&out.join(MANIFEST), e)])?;
    Ok(Report {
        manifest,
        built,
        reused,
        bytes_tokenized,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The record of a shard a previous run finished, when it still holds: same input content,
/// tokenizer, format and dtype, and its files are there at the size the record says.
fn reusable(out: &Path, job: &Job, s: &SourceSetup, format: Format) -> Option<Shard> {
    let outputs = format.outputs(&job.prefix);
    let rec = manifest::read_record(&manifest::record_path(out, &outputs[0]))?;
    let same = rec.format == format
        && rec.tokenizer == s.id
        && rec.dtype == s.dtype
        && rec.eos == s.tokenizer.specials().eod
        && rec.input == job.input
        && rec.column == job.parquet_column()
        && rec.outputs == outputs;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    if !same
        || size(&job.input) != Some(rec.bytes)
        || size(&out.join(&outputs[0])) != Some(rec.tokens * s.dtype.size() as u64)
        || outputs.iter().any(|o| !out.join(o).is_file())
    {
        return None;
    }
    (sha256_file(&job.input).ok()? == rec.sha256).then_some(rec)
}

fn build(
    out: &Path,
    job: &Job,
    s: &SourceSetup,
    format: Format,
    progress: &indicatif::ProgressBar,
) -> Result<Shard, PrepareError> {
    let eos = s.tokenizer.specials().eod;
    let prefix = out.join(&job.prefix);
    let write_err = |error| PrepareError::Write {
        path: prefix.clone(),
        error,
    };
    let mut w = format.writer(&prefix, s.dtype, eos).map_err(write_err)?;
    let read = shard::tokenize_file(
        &job.input,
        job.layout,
        &job.column,
        &s.tokenizer,
        w.as_mut(),
        progress,
    )
    .map_err(|error| PrepareError::Data {
        source_name: s.name.clone(),
        error: Box::new(error),
    })?;
    let (documents, tokens) = w.counts();
    w.commit().map_err(write_err)?;
    let outputs = format.outputs(&job.prefix);
    let shard = Shard {
        input: job.input.clone(),
        bytes: read.bytes,
        sha256: read.sha256,
        documents,
        tokens,
        outputs: outputs.clone(),
        format,
        tokenizer: s.id.clone(),
        dtype: s.dtype,
        eos,
        column: job.parquet_column(),
    };
    let json = serde_json::to_string_pretty(&shard).expect("a shard record serialises");
    crate::atomic::write(&manifest::record_path(out, &outputs[0]), json.as_bytes())
        .map_err(write_err)?;
    Ok(shard)
}

impl Manifest {
    /// A source's documents, tokens and bytes, read from the manifest instead of tokenising,
    /// when it was prepared from exactly `files` (same contents) with the same tokenizer.
    pub fn current_counts(
        &self,
        name: &str,
        files: &[PathBuf],
        tokenizer: &TokenizerId,
    ) -> Option<(u64, u64, u64)> {
        let e = self.source(name)?;
        if &e.tokenizer != tokenizer || e.shards.len() != files.len() {
            return None;
        }
        let same = files.par_iter().zip(&e.shards).all(|(f, s)| {
            let f = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
            f == s.input
                && std::fs::metadata(&f).is_ok_and(|m| m.len() == s.bytes)
                && sha256_file(&f).is_ok_and(|h| h == s.sha256)
        });
        same.then_some((e.documents, e.tokens, e.bytes))
    }
}
