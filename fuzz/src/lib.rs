//! The fuzz targets' bodies, one module each. They use only what the crates under test depend
//! on already, so that the workspace's tests can compile the same files (with `#[path]`) and
//! run them over the seeds and regression inputs without building libFuzzer.

pub mod check;
pub mod fmt;
pub mod lsp;
pub mod parse;
pub mod plan;
