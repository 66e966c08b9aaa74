//! Fixtures the tests of several crates write: Parquet files (the `parquet` crate's own writer)
//! and WebDataset tar shards (the `tar` crate's writer, real PNG and JPEG bytes from `image`).
//! A dev-dependency only; nothing here ships in `pipe`.

pub mod parquet;
pub mod tar;
