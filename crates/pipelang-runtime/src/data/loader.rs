//! A stage's data: its sources, the mixture over them, and batches of packed sequences.

use std::collections::BTreeMap;

use super::cursor::SourceCursor;
use super::error::{DataError, Result};
use super::mixture::{MixtureSampler, MixtureState};
use super::sequence::{CaptionPair, Sequence};
use super::source::Source;

/// One optimizer step's sequences, in batch order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub sequences: Vec<Sequence>,
    /// Index (into the loader's sources) of the source of each sequence.
    pub source_of: Vec<usize>,
    /// Sequences per source this step (the per-source counts for `metrics.jsonl`).
    pub counts: Vec<usize>,
}

impl Batch {
    /// Target tokens whose loss counts, over the whole batch.
    pub fn loss_tokens(&self) -> usize {
        self.sequences.iter().map(Sequence::loss_tokens).sum()
    }
}

/// Everything needed to resume a stage's data stream exactly: per-source cursors by source
/// name, and the mixture's cumulative counts.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct LoaderState {
    pub cursors: BTreeMap<String, SourceCursor>,
    pub mixture: MixtureState,
}

pub struct DataLoader {
    sources: Vec<Source>,
    mixture: MixtureSampler,
}

impl DataLoader {
    /// A loader over `sources` (in the order the plan's shares refer to them).
    pub fn new(sources: Vec<Source>, seed: u64) -> Self {
        let n = sources.len();
        DataLoader {
            sources,
            mixture: MixtureSampler::new(n, seed),
        }
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn source_names(&self) -> Vec<&str> {
        self.sources.iter().map(Source::name).collect()
    }

    /// One step's batch: `shares[i]` is the plan's fraction for source i at this step.
    pub fn next_batch(&mut self, shares: &[f64], batch: usize, seq_len: usize) -> Result<Batch> {
        let draw = self.mixture.draw(shares, batch)?;
        let mut sequences = Vec::with_capacity(batch);
        for &src in &draw.order {
            sequences.push(self.sources[src].next_sequence(seq_len)?);
        }
        Ok(Batch {
            sequences,
            source_of: draw.order,
            counts: draw.counts,
        })
    }

    /// One CoCa step's image-caption pairs, drawn with the plan's shares like `next_batch`.
    pub fn next_caption_batch(
        &mut self,
        shares: &[f64],
        batch: usize,
    ) -> Result<(Vec<CaptionPair>, Vec<usize>)> {
        let draw = self.mixture.draw(shares, batch)?;
        let mut pairs = Vec::with_capacity(batch);
        for &src in &draw.order {
            pairs.push(self.sources[src].next_caption_pair()?);
        }
        Ok((pairs, draw.counts))
    }

    /// The cursors of all sources, by name: carry them into the next stage's loader with
    /// [`DataLoader::restore_cursors`] so a source shared by two stages continues, not restarts.
    pub fn cursors(&self) -> BTreeMap<String, SourceCursor> {
        self.sources
            .iter()
            .map(|s| (s.name().to_string(), s.cursor()))
            .collect()
    }

    /// Restores the cursors of the sources named in `cursors`; others keep their position.
    pub fn restore_cursors(&mut self, cursors: &BTreeMap<String, SourceCursor>) -> Result<()> {
        for s in &mut self.sources {
            if let Some(c) = cursors.get(s.name()) {
                s.restore(c)?;
            }
        }
        Ok(())
    }

    pub fn state(&self) -> LoaderState {
        LoaderState {
            cursors: self.cursors(),
            mixture: self.mixture.state().clone(),
        }
    }

    pub fn restore(&mut self, state: &LoaderState) -> Result<()> {
        if state.mixture.planned.len() != self.sources.len() {
            return Err(DataError::BadCursor {
                source_name: self.source_names().join(", "),
                message: format!(
                    "the saved mixture has {} sources, this stage has {}",
                    state.mixture.planned.len(),
                    self.sources.len()
                ),
            });
        }
        self.restore_cursors(&state.cursors)?;
        self.mixture = MixtureSampler::from_state(state.mixture.clone());
        Ok(())
    }
}
