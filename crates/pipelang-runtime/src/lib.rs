//! Executes a planned pipeline on candle: models, data, the training loop, checkpoints and
//! run records. Every per-step value (LR, mixture, sequence length, RoPE base) comes from the
//! planner.

pub use pipelang::atomic;
pub mod build;
pub mod checkpoint;
pub mod data;
pub mod edit;
pub mod lock;
pub mod metrics;
pub mod model;
mod progress;
pub mod record;
pub mod setup;
pub mod soup;
pub mod stop;
pub mod summary;
pub mod train;
pub mod trainer;
pub mod watch;

pub use setup::{Prepared, RunError};
pub use train::{RunOptions, Runner};
