//! Executes a planned pipeline on candle: models, data, the training loop, checkpoints and
//! run records. Every per-step value (LR, mixture, sequence length, RoPE base) comes from the
//! planner.

pub use pipelang::atomic;
pub mod build;
pub mod data;
mod eval;
pub mod lock;
pub mod model;
pub mod record;
pub mod setup;
mod step;
pub mod summary;
pub mod train;
pub mod watch;

pub use setup::{Prepared, RunError};
pub use train::{RunOptions, Runner};
