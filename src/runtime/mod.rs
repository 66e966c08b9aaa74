//! Executes a planned pipeline on candle.

pub mod data;
pub mod model;
