//! Executes a planned pipeline on candle.

pub mod atomic;
pub mod data;
pub mod model;
