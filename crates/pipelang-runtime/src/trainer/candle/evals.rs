//! Evaluations on held-out generated data of the sample corpus: image-to-caption retrieval after
//! a CoCa stage, the decoder's caption loss on held-out images at the start and end of stages
//! that feed images to it, and its loss on held-out long stories at the final context of a
//! stage that grows the context. They show learning, not just running, and go into the run
//! summary.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::heldout;
use super::session::Session;
use super::step::{self, Models};
use crate::data::{Batch, CaptionPair, Sequence, Tokenizer};
use crate::model::{CaptionBatch, CocaHead};
use crate::setup;
use crate::trainer::StageContext;
use pipelang::plan::PhasePlan;
use pipelang::plan::rope::Rope;

/// The evaluations one stage runs, with their held-out data.
pub struct StageEvals<'p> {
    pairs: Option<Vec<CaptionPair>>,
    /// Whether images reach the decoder through the projector (not CoCa).
    feeds_images: bool,
    merge: u32,
    /// Long stories at the final context, for a stage that grows the context.
    long: Option<Vec<Sequence>>,
    first: &'p PhasePlan,
    last: &'p PhasePlan,
}

impl<'p> StageEvals<'p> {
    pub fn prepare(ctx: &StageContext<'p>, s: &Session) -> StageEvals<'p> {
        let st = ctx.stage();
        let root = &ctx.prep.data_root;
        let image = setup::image_config(ctx.pipeline());
        let m = s.models();
        let feeds_images =
            s.coca.is_none() && m.vit.is_some() && m.projector.is_some() && m.decoder.is_some();
        let (first, last) = (&st.phases[0], st.phases.last().expect("a stage has phases"));
        // Unlike the training loss, whose steps at different lengths do not compare, this is
        // one measure taken twice.
        let grows = first.seq_len < last.seq_len;
        let long = (grows && s.has_decoder() && s.coca.is_none())
            .then(|| heldout::long_stories(root, &s.tokenizer, last.seq_len as usize))
            .flatten();
        StageEvals {
            pairs: heldout::caption_pairs(root, &s.tokenizer, image),
            feeds_images,
            merge: image.merge,
            long,
            first,
            last,
        }
    }

    /// Before a stage's first step (not when it resumes part-way).
    pub fn at_start(
        &self,
        s: &Session,
        dev: &Device,
    ) -> candle_core::Result<BTreeMap<String, f64>> {
        let mut out = BTreeMap::new();
        if let (Some(pairs), true) = (&self.pairs, self.feeds_images) {
            let v = caption_loss(
                &s.models(),
                pairs,
                self.merge,
                &s.tokenizer,
                s.rope(&self.first.rope_base, &self.first.rope_scaling),
                dev,
            )?;
            out.insert("caption_loss_start".into(), v);
        }
        if let Some(seqs) = &self.long {
            let v = text_loss(
                &s.models(),
                seqs,
                &s.tokenizer,
                s.rope(&self.last.rope_base, &self.last.rope_scaling),
                dev,
            )?;
            out.insert("long_loss_start".into(), v);
        }
        Ok(out)
    }

    /// After the stage's last step.
    pub fn at_end(&self, s: &Session, dev: &Device) -> candle_core::Result<BTreeMap<String, f64>> {
        let mut out = BTreeMap::new();
        let (m, rope) = (
            s.models(),
            s.rope(&self.last.rope_base, &self.last.rope_scaling),
        );
        if let Some(pairs) = &self.pairs {
            if let Some(c) = &s.coca {
                out.insert(
                    "retrieval_top1".into(),
                    retrieval(&m, &c.head, pairs, rope, dev)?,
                );
                out.insert("retrieval_chance".into(), 1.0 / pairs.len() as f64);
            }
            if self.feeds_images {
                let v = caption_loss(&m, pairs, self.merge, &s.tokenizer, rope, dev)?;
                out.insert("caption_loss_end".into(), v);
            }
        }
        if let Some(seqs) = &self.long {
            out.insert(
                "long_loss_end".into(),
                text_loss(&m, seqs, &s.tokenizer, rope, dev)?,
            );
        }
        Ok(out)
    }
}

/// Top-1 image-to-caption retrieval accuracy among the held-out pairs (chance is 1/n).
fn retrieval(
    m: &Models,
    head: &CocaHead,
    pairs: &[CaptionPair],
    rope: Rope,
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
fn caption_loss(
    m: &Models,
    pairs: &[CaptionPair],
    merge: u32,
    tokenizer: &Tokenizer,
    rope: Rope,
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

/// Mean next-token loss of the decoder on text sequences of one length.
fn text_loss(
    m: &Models,
    seqs: &[Sequence],
    tokenizer: &Tokenizer,
    rope: Rope,
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
