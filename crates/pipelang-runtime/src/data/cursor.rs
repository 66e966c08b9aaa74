//! The resumable state of one source, stored by the runtime in `run.ron`.

use super::files::LinePos;

/// Where a source stands. Restoring it with `Source::restore` continues the exact same stream
/// of sequences.
///
/// - `pos`: for text sources the next unread line; for multimodal sources the start of the
///   record the next token comes from.
/// - `pending`: text sources only: tokens already read but not yet emitted (the packing carry).
/// - `skip`: multimodal sources only: how many tokens of the record at `pos` were already
///   emitted (the record is re-read and re-tokenised on restore, so no pixels are stored).
/// - `sequences`: how many sequences the source has produced in total.
/// - `bad_samples`, `first_bad`: WebDataset sources only: samples skipped so far (no image, no
///   caption, an image that does not decode) and the first of them, described.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SourceCursor {
    pub pos: LinePos,
    pub pending: Vec<u32>,
    pub skip: u64,
    pub sequences: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bad_samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SourceCursor {
    /// Completed passes over all the source's files.
    pub fn epoch(&self) -> u64 {
        self.pos.epoch
    }
}
