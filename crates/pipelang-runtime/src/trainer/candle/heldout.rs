//! Held-out data of the generated sample corpus, for the evaluations: image-caption pairs
//! (`corpus/caption_heldout/`) and long stories (`corpus/long_text_heldout/`). Read on their
//! first pass only, so no held-out item counts twice.

use std::path::Path;

use crate::data::{
    CaptionPair, ImageConfig, MultimodalSource, Sequence, SourceKind, TextSource, Tokenizer,
};

const PAIRS: usize = 32;

/// Up to `PAIRS` held-out image-caption pairs, when the sample data has them.
pub fn caption_pairs(
    root: &Path,
    tokenizer: &Tokenizer,
    image: ImageConfig,
) -> Option<Vec<CaptionPair>> {
    let dir = root.join("corpus/caption_heldout");
    if !dir.exists() {
        return None;
    }
    let mut src = MultimodalSource::open(
        "caption_heldout",
        SourceKind::ImageText,
        root,
        &["corpus/caption_heldout/*.jsonl".to_string()],
        tokenizer.clone(),
        image,
    )
    .ok()?;
    first_pass(PAIRS, || {
        let p = src.next_caption_pair().ok()?;
        Some((p, src.epoch()))
    })
}

/// Up to `n` items from `next` (an item and the source's epoch after reading it), stopping
/// where the source starts over: held-out data is never repeated. `None` when there is none
/// or the source fails.
fn first_pass<T>(n: usize, mut next: impl FnMut() -> Option<(T, u64)>) -> Option<Vec<T>> {
    let mut out = vec![];
    while out.len() < n {
        let (x, epoch) = next()?;
        if epoch > 0 {
            break;
        }
        out.push(x);
    }
    (!out.is_empty()).then_some(out)
}

/// Sequences of `seq_len + 1` tokens from the held-out long stories, at most `LONG` and only
/// from the first pass over them; `None` when the sample data has none.
pub fn long_stories(root: &Path, tokenizer: &Tokenizer, seq_len: usize) -> Option<Vec<Sequence>> {
    const LONG: usize = 16;
    if !root.join("corpus/long_text_heldout").exists() {
        return None;
    }
    let mut src = TextSource::open(
        "long_text_heldout",
        root,
        &["corpus/long_text_heldout/*.jsonl".to_string()],
        tokenizer.clone(),
    )
    .ok()?;
    first_pass(LONG, || {
        let s = src.next_sequence(seq_len).ok()?;
        Some((s, src.epoch()))
    })
}
