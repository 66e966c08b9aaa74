//! CoCa pre-training of the ViT with a tiny caption decoder: SigLIP contrastive loss between
//! pooled image and caption embeddings, plus `caption_weight` x captioning cross-entropy of the
//! decoder reading the image's patch features as a prefix.

use super::config::Kernels;
use super::decoder::Decoder;
use super::layers::Linear;
use super::loss::{cross_entropy, siglip_loss};
use super::vit::{PackedImages, Vit};
use candle_core::{DType, Result, Tensor, bail};
use candle_nn::{Init, VarBuilder};
use pipelang::plan::rope::Rope;

/// One caption per image, right-padded: `tokens [n, L]` u32 and the real length of each.
#[derive(Clone, Debug)]
pub struct CaptionBatch {
    pub tokens: Tensor,
    pub lengths: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct CocaOut {
    /// `contrastive + caption_weight * caption`.
    pub loss: Tensor,
    pub contrastive: Tensor,
    pub caption: Tensor,
}

/// The parameters CoCa adds around a ViT and a caption decoder: projections into the shared
/// embedding space, the map from ViT features to decoder-width prefix tokens, and SigLIP's
/// learnable log-temperature and bias.
#[derive(Clone, Debug)]
pub struct CocaHead {
    image_proj: Linear,
    text_proj: Linear,
    prefix: Linear,
    pub log_scale: Tensor,
    pub bias: Tensor,
}

impl CocaHead {
    pub fn new(
        vb: VarBuilder,
        vit_dim: usize,
        decoder_dim: usize,
        embed_dim: usize,
    ) -> Result<Self> {
        Ok(Self {
            image_proj: Linear::new(
                vb.pp("image_proj"),
                vit_dim,
                embed_dim,
                false,
                (vit_dim as f64).powf(-0.5),
            )?,
            text_proj: Linear::new(
                vb.pp("text_proj"),
                decoder_dim,
                embed_dim,
                false,
                (decoder_dim as f64).powf(-0.5),
            )?,
            prefix: Linear::new(
                vb.pp("prefix"),
                vit_dim,
                decoder_dim,
                true,
                (vit_dim as f64).powf(-0.5),
            )?,
            log_scale: vb.get_with_hints((), "log_scale", Init::Const(10f64.ln()))?,
            bias: vb.get_with_hints((), "bias", Init::Const(-10.0))?,
        })
    }

    /// Image embeddings `[n, E]` (not normalised) from the pooled ViT output.
    pub fn image_embeddings(&self, vit: &Vit, images: &PackedImages) -> Result<Tensor> {
        self.image_proj.forward(&vit.forward(images)?.pooled)
    }

    /// Caption embeddings `[n, E]`: the decoder's text-only pass, final hidden states averaged
    /// over each caption's real tokens.
    pub fn text_embeddings(
        &self,
        decoder: &Decoder,
        captions: &CaptionBatch,
        rope: Rope,
    ) -> Result<Tensor> {
        let (n, l) = captions.tokens.dims2()?;
        check_lengths(captions, n, l)?;
        let hidden = decoder.forward(&captions.tokens, rope)?.hidden;
        let mut pool = vec![0f32; n * n * l];
        for (i, &len) in captions.lengths.iter().enumerate() {
            for t in 0..len {
                pool[i * n * l + i * l + t] = 1.0 / len as f32;
            }
        }
        let pool = Tensor::from_vec(pool, (n, n * l), hidden.device())?;
        let pooled = pool.matmul(&hidden.reshape((n * l, decoder.cfg.d_model))?)?;
        self.text_proj.forward(&pooled)
    }

    pub fn loss(
        &self,
        vit: &Vit,
        decoder: &Decoder,
        images: &PackedImages,
        captions: &CaptionBatch,
        caption_weight: f64,
        rope: impl Into<Rope>,
    ) -> Result<CocaOut> {
        let rope: Rope = rope.into();
        let n = images.grids.len();
        let (cn, l) = captions.tokens.dims2()?;
        if cn != n {
            bail!("coca: {n} images but {cn} captions");
        }
        check_lengths(captions, n, l)?;
        let v = vit.forward(images)?;
        let img = self.image_proj.forward(&v.pooled)?;
        let txt = self.text_embeddings(decoder, captions, rope)?;
        let contrastive = siglip_loss(&img, &txt, &self.log_scale, &self.bias)?;
        let caption = self.caption_loss(
            decoder,
            images,
            &self.prefix.forward(&v.features)?,
            captions,
            rope,
        )?;
        let loss = (&contrastive + (&caption * caption_weight)?)?;
        Ok(CocaOut {
            loss,
            contrastive,
            caption,
        })
    }

    /// Rows `[pad.., image tokens, caption tokens]`, left-padded to one length; padding is its
    /// own segment so real tokens never attend to it.
    fn caption_loss(
        &self,
        decoder: &Decoder,
        images: &PackedImages,
        prefix: &Tensor,
        captions: &CaptionBatch,
        rope: Rope,
    ) -> Result<Tensor> {
        let offsets = images.offsets()?;
        let (n, l) = captions.tokens.dims2()?;
        let d = decoder.cfg.d_model;
        let lens: Vec<usize> = images
            .grids
            .iter()
            .zip(&captions.lengths)
            .map(|((h, w), c)| h * w + c)
            .collect();
        let s = lens.iter().copied().max().unwrap_or(0);
        let patches = prefix.dim(0)?;
        let caption_ids = captions.tokens.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        // Gather table: row 0 zeros (padding), then prefix tokens, then caption embeddings.
        let (mut idx, mut segments) = (Vec::with_capacity(n * s), Vec::with_capacity(n * s));
        let (mut targets, mut weights) = (vec![0u32; n * s], vec![0f32; n * s]);
        for i in 0..n {
            let (h, w) = images.grids[i];
            let pad = s - lens[i];
            for p in 0..s {
                let row = i * s + p;
                let (src, seg) = if p < pad {
                    (0, 1)
                } else if p < pad + h * w {
                    (1 + offsets[i] + (p - pad), 0)
                } else {
                    (1 + patches + i * l + (p - pad - h * w), 0)
                };
                idx.push(src as u32);
                segments.push(seg);
                let next = p + 1;
                if next < s && next >= pad + h * w {
                    targets[row] = caption_ids[i][next - pad - h * w];
                    weights[row] = 1.0;
                }
            }
        }
        let count: f32 = weights.iter().sum();
        if count == 0.0 {
            return Tensor::zeros((), DType::F32, prefix.device());
        }
        weights.iter_mut().for_each(|w| *w /= count);
        let dev = prefix.device();
        let emb = decoder.embed(&captions.tokens)?.reshape((n * l, d))?;
        let table = Tensor::cat(&[&Tensor::zeros((1, d), DType::F32, dev)?, prefix, &emb], 0)?;
        let x = table
            .index_select(&Tensor::from_vec(idx, n * s, dev)?, 0)?
            .reshape((n, s, d))?;
        let out = decoder.forward_embeds_masked(&x, rope, Some(&segments))?;
        let kernels: Kernels = decoder.cfg.kernels;
        cross_entropy(
            &out.logits.reshape((n * s, decoder.cfg.vocab))?,
            &targets,
            &weights,
            kernels,
        )
    }
}

fn check_lengths(captions: &CaptionBatch, n: usize, l: usize) -> Result<()> {
    if captions.lengths.len() != n {
        bail!(
            "coca: {} caption lengths for {n} captions",
            captions.lengths.len()
        );
    }
    if let Some(bad) = captions.lengths.iter().find(|&&c| c == 0 || c > l) {
        bail!("coca: caption length {bad} outside 1..={l}");
    }
    Ok(())
}
