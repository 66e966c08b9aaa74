//! Training data: sources, tokenizers, packing, per-step mixture sampling, sample data.
//!
//! A stage opens its sources ([`Source::open`] from a [`SourceSpec`]), puts them in a
//! [`DataLoader`] with the run's seed, and asks [`DataLoader::next_batch`] for each step's
//! sequences with the plan's shares. [`DataLoader::state`] / [`DataLoader::restore`] save and
//! resume the exact stream (serde, stored in `run.ron`).

mod braces;
pub mod census;
mod cursor;
mod error;
mod files;
mod image_patches;
mod loader;
mod mixture;
mod multimodal;
mod parquet_text;
pub mod prepared;
mod records;
mod sample;
mod sequence;
mod source;
mod text_source;
mod tokenizer;
mod webdataset;

#[cfg(test)]
mod multimodal_tests;
#[cfg(test)]
mod webdataset_tests;

pub use cursor::SourceCursor;
pub use error::{DataError, Result};
pub use files::{LinePos, expand_globs};
pub use image_patches::{ImageConfig, ImagePatches, load_image};
pub use loader::{Batch, DataLoader, LoaderState};
pub use mixture::{Draw, MixtureSampler, MixtureState};
pub use multimodal::MultimodalSource;
pub use records::{Origin, SourceKind};
pub use sample::{PICTURE_SIDE, SampleSummary, generate_sample_data};
pub use sequence::{CaptionPair, Sequence};
pub use source::{Source, SourceSpec};
pub use text_source::TextSource;
pub use tokenizer::{N_SPECIALS, SpecialIds, Tokenizer};
