//! One training step's forward pass for each kind of stage: next-token on text, next-token
//! with images entering the decoder through the projector, and CoCa.

use candle_core::{DType, Device, Tensor};
use pipelang::plan::rope::Rope;

use crate::build::{Built, ModelSlot};
use crate::data::{Batch, CaptionPair, ImagePatches, SpecialIds};
use crate::model::{
    CaptionBatch, CocaHead, Decoder, PackedImages, Projector, Vit, cross_entropy, scatter_rows,
};

pub struct Models<'a> {
    pub decoder: Option<&'a Decoder>,
    pub vit: Option<&'a Vit>,
    pub projector: Option<&'a Projector>,
    /// A second decoder, for CoCa (the small caption decoder).
    pub caption_decoder: Option<&'a Decoder>,
}

pub fn pick<'a>(slots: &'a [ModelSlot]) -> Models<'a> {
    let mut m = Models {
        decoder: None,
        vit: None,
        projector: None,
        caption_decoder: None,
    };
    for s in slots {
        match &s.built {
            Built::Decoder(d) => {
                if m.decoder.is_none() {
                    m.decoder = Some(d)
                } else {
                    m.caption_decoder = Some(d)
                }
            }
            Built::Vit(v) => m.vit = Some(v),
            Built::Projector(p) => m.projector = Some(p),
        }
    }
    m
}

pub fn pack_images(images: &[&ImagePatches], dev: &Device) -> candle_core::Result<PackedImages> {
    let dim = images.first().map_or(0, |i| i.patch_dim());
    let list: Vec<(Vec<f32>, usize, usize)> = images
        .iter()
        .map(|i| (i.data.clone(), i.rows as usize, i.cols as usize))
        .collect();
    PackedImages::pack(&list, dim, dev)
}

/// Mean next-token loss of a batch of packed sequences; images (if any) replace their
/// placeholder tokens with projected ViT features. Returns (loss, aux loss).
pub fn next_token(
    m: &Models,
    batch: &Batch,
    rope: Rope,
    specials: SpecialIds,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let decoder = m
        .decoder
        .ok_or_else(|| candle_core::Error::Msg("next_token needs a decoder".into()))?;
    let b = batch.sequences.len();
    let t = batch.sequences[0].seq_len();
    let mut inputs = Vec::with_capacity(b * t);
    let mut targets = Vec::with_capacity(b * t);
    let mut weights = Vec::with_capacity(b * t);
    for s in &batch.sequences {
        inputs.extend_from_slice(s.inputs());
        targets.extend_from_slice(s.targets());
        weights.extend(s.target_mask().iter().map(|&k| if k { 1f32 } else { 0.0 }));
    }
    let count: f32 = weights.iter().sum();
    if count > 0.0 {
        weights.iter_mut().for_each(|w| *w /= count);
    }
    let ids = Tensor::from_vec(inputs.clone(), (b, t), dev)?;
    let mut x = decoder.embed(&ids)?;
    let images: Vec<&ImagePatches> = batch
        .sequences
        .iter()
        .flat_map(|s| s.images.iter())
        .collect();
    if !images.is_empty() {
        let (vit, projector) = match (m.vit, m.projector) {
            (Some(v), Some(p)) => (v, p),
            _ => candle_core::bail!("images in the batch but no vit and projector in the stage"),
        };
        let packed = pack_images(&images, dev)?;
        let feats = vit.forward(&packed)?.features;
        let (tokens, _) = projector.forward(&feats, &packed)?;
        // Feature row r goes to the r-th placeholder of the batch; a placeholder that fell on
        // the last (target-only) position has no input slot, so its row is dropped.
        let mut positions = vec![];
        let mut rows = vec![];
        let mut r = 0u32;
        for (bi, s) in batch.sequences.iter().enumerate() {
            for (ti, &tok) in s.tokens.iter().enumerate() {
                if tok == specials.image {
                    if ti < t {
                        positions.push(bi * t + ti);
                        rows.push(r);
                    }
                    r += 1;
                }
            }
        }
        if r as usize != tokens.dim(0)? {
            candle_core::bail!(
                "{} image placeholders for {} projected image tokens",
                r,
                tokens.dim(0)?
            );
        }
        let rows = Tensor::from_vec(rows, positions.len(), dev)?;
        x = scatter_rows(&x, &positions, &tokens.index_select(&rows, 0)?)?;
    }
    let out = decoder.forward_embeds(&x, rope)?;
    let v = decoder.cfg.vocab;
    let loss = cross_entropy(
        &out.logits.reshape((b * t, v))?,
        &targets,
        &weights,
        decoder.cfg.kernels,
    )?;
    Ok((loss, out.aux_loss))
}

/// CoCa loss on image-caption pairs (captions cut to `max_caption` tokens).
pub fn coca(
    m: &Models,
    head: &CocaHead,
    pairs: &[CaptionPair],
    caption_weight: f64,
    rope: Rope,
    max_caption: usize,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let (vit, dec) = match (m.vit, m.decoder) {
        (Some(v), Some(d)) => (v, d),
        _ => candle_core::bail!("coca needs a vit and a decoder"),
    };
    let images: Vec<&ImagePatches> = pairs.iter().map(|p| &p.image).collect();
    let packed = pack_images(&images, dev)?;
    let l = pairs
        .iter()
        .map(|p| p.caption.len().clamp(1, max_caption))
        .max()
        .unwrap_or(1);
    let mut ids = vec![0u32; pairs.len() * l];
    let mut lengths = vec![];
    for (i, p) in pairs.iter().enumerate() {
        let c = &p.caption[..p.caption.len().min(l)];
        let c: Vec<u32> = if c.is_empty() { vec![0] } else { c.to_vec() };
        ids[i * l..i * l + c.len()].copy_from_slice(&c);
        lengths.push(c.len());
    }
    let captions = CaptionBatch {
        tokens: Tensor::from_vec(ids, (pairs.len(), l), dev)?,
        lengths,
    };
    let out = head.loss(vit, dec, &packed, &captions, caption_weight, rope)?;
    Ok((out.loss, out.contrastive, out.caption))
}

pub fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}
