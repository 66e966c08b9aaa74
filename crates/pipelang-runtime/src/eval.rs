//! Evaluations on held-out generated data of the sample corpus: image-to-caption retrieval after
//! a CoCa stage, the decoder's caption loss on held-out images (`corpus/caption_heldout/`) at
//! the start and end of stages that feed images to it, and its loss on held-out long stories
//! (`corpus/long_text_heldout/`) at the final context of a stage that grows the context. They
//! show learning, not just running, and go into the run summary.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::data::{
    Batch, CaptionPair, ImageConfig, MultimodalSource, Sequence, SourceKind, TextSource, Tokenizer,
};
use super::model::{CaptionBatch, CocaHead};
use super::step::{self, Models};

const PAIRS: usize = 32;

/// Up to `PAIRS` held-out image-caption pairs, when the sample data has them.
pub fn heldout(root: &Path, tokenizer: &Tokenizer, image: ImageConfig) -> Option<Vec<CaptionPair>> {
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

/// Top-1 image-to-caption retrieval accuracy among the held-out pairs (chance is 1/n).
pub fn retrieval(
    m: &Models,
    head: &CocaHead,
    pairs: &[CaptionPair],
    rope: f64,
    dev: &Device,
) -> candle_core::Result<f64> {
    let (Some(vit), Some(dec)) = (m.vit, m.decoder) else {
        candle_core::bail!("retrieval needs a vit and a decoder")
    };
    let images: Vec<_> = pairs.iter().map(|p| &p.image).collect();
    let packed = step::pack_images(&images, dev)?;
    let img = head.image_embeddings(vit, &packed)?;
    let l = pairs
        .iter()
        .map(|p| p.caption.len().max(1))
        .max()
        .unwrap_or(1);
    let mut ids = vec![0u32; pairs.len() * l];
    let mut lengths = vec![];
    for (i, p) in pairs.iter().enumerate() {
        let c: Vec<u32> = if p.caption.is_empty() {
            vec![0]
        } else {
            p.caption.clone()
        };
        ids[i * l..i * l + c.len()].copy_from_slice(&c);
        lengths.push(c.len());
    }
    let captions = CaptionBatch {
        tokens: Tensor::from_vec(ids, (pairs.len(), l), dev)?,
        lengths,
    };
    let txt = head.text_embeddings(dec, &captions, rope)?;
    let sim = img.matmul(&txt.t()?)?.to_vec2::<f32>()?;
    let hits = sim
        .iter()
        .enumerate()
        .filter(|(i, row)| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .is_some_and(|(j, _)| j == *i)
        })
        .count();
    Ok(hits as f64 / pairs.len() as f64)
}

/// Mean next-token loss of the captions of held-out images, the image entering the decoder
/// through the projector: `[image_start, image x n, image_end, caption, end]`.
pub fn caption_loss(
    m: &Models,
    pairs: &[CaptionPair],
    merge: u32,
    tokenizer: &Tokenizer,
    rope: f64,
    dev: &Device,
) -> candle_core::Result<f64> {
    let sp = tokenizer.specials();
    let mut seqs: Vec<Sequence> = pairs
        .iter()
        .map(|p| {
            let n = p.image.merged_tokens(merge);
            let mut tokens = vec![sp.image_start];
            tokens.extend(std::iter::repeat_n(sp.image, n));
            tokens.push(sp.image_end);
            let text_from = tokens.len();
            tokens.extend(&p.caption);
            tokens.push(sp.eod);
            let loss_mask = (0..tokens.len()).map(|i| i >= text_from).collect();
            Sequence {
                tokens,
                loss_mask,
                images: vec![p.image.clone()],
            }
        })
        .collect();
    let len = seqs.iter().map(|s| s.tokens.len()).max().unwrap_or(0);
    for s in &mut seqs {
        while s.tokens.len() < len {
            s.tokens.push(sp.pad);
            s.loss_mask.push(false);
        }
    }
    let batch = Batch {
        source_of: vec![0; seqs.len()],
        counts: vec![seqs.len()],
        sequences: seqs,
    };
    let (loss, _) = step::next_token(m, &batch, rope, sp, dev)?;
    step::scalar(&loss)
}

/// Sequences of `seq_len + 1` tokens from the held-out long stories, at most `LONG` and only
/// from the first pass over them; `None` when the sample data has none.
pub fn heldout_long(root: &Path, tokenizer: &Tokenizer, seq_len: usize) -> Option<Vec<Sequence>> {
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

/// Mean next-token loss of the decoder on text sequences of one length.
pub fn text_loss(
    m: &Models,
    seqs: &[Sequence],
    tokenizer: &Tokenizer,
    rope: f64,
    dev: &Device,
) -> candle_core::Result<f64> {
    let batch = Batch {
        source_of: vec![0; seqs.len()],
        counts: vec![seqs.len()],
        sequences: seqs.to_vec(),
    };
    let (loss, _) = step::next_token(m, &batch, rope, tokenizer.specials(), dev)?;
    step::scalar(&loss)
}
