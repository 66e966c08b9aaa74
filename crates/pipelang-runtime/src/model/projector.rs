//! `projector(vit -> llm)`: pixel shuffle, then Linear -> GELU -> Linear into the decoder's width.

use super::config::ProjectorConfig;
use super::layers::Linear;
use super::vit::PackedImages;
use candle_core::{Result, Tensor, bail};
use candle_nn::VarBuilder;

/// Merges each `k x k` block of neighbouring patch features of every image into one token:
/// an `[h, w, C]` grid becomes `[ceil(h/k) * ceil(w/k), k*k*C]`, tokens row-major, each token's
/// values ordered `(dy, dx, channel)`. Grids whose sides are not multiples of k are padded with
/// zero features at the bottom and right (so no patch is dropped). Returns the tokens of all
/// images concatenated in image order and the token count of each image.
pub fn pixel_shuffle(
    features: &Tensor,
    images: &PackedImages,
    k: usize,
) -> Result<(Tensor, Vec<usize>)> {
    if k == 0 {
        bail!("pixel_shuffle: k must be at least 1");
    }
    let c = features.dim(1)?;
    let offsets = images.offsets()?;
    let mut parts = Vec::with_capacity(offsets.len());
    let mut counts = Vec::with_capacity(offsets.len());
    for (&start, &(h, w)) in offsets.iter().zip(&images.grids) {
        let (h2, w2) = (h.div_ceil(k), w.div_ceil(k));
        let g = features.narrow(0, start, h * w)?.reshape((h, w, c))?;
        let g = g
            .pad_with_zeros(0, 0, h2 * k - h)?
            .pad_with_zeros(1, 0, w2 * k - w)?;
        let t = g
            .reshape((h2, k, w2, k, c))?
            .permute((0, 2, 1, 3, 4))?
            .reshape((h2 * w2, k * k * c))?;
        parts.push(t);
        counts.push(h2 * w2);
    }
    Ok((Tensor::cat(&parts, 0)?, counts))
}

#[derive(Clone, Debug)]
pub struct Projector {
    pub cfg: ProjectorConfig,
    fc1: Linear,
    fc2: Linear,
}

impl Projector {
    pub fn new(vb: VarBuilder, cfg: &ProjectorConfig) -> Result<Self> {
        let k = cfg.pixel_shuffle;
        if k == 0 || cfg.in_dim == 0 || cfg.out_dim == 0 {
            bail!("projector config: in_dim, out_dim and pixel_shuffle must be positive");
        }
        let merged = cfg.in_dim * k * k;
        let fc1 = Linear::new(
            vb.pp("fc1"),
            merged,
            cfg.out_dim,
            true,
            (merged as f64).powf(-0.5),
        )?;
        let fc2 = Linear::new(
            vb.pp("fc2"),
            cfg.out_dim,
            cfg.out_dim,
            true,
            (cfg.out_dim as f64).powf(-0.5),
        )?;
        Ok(Self {
            cfg: cfg.clone(),
            fc1,
            fc2,
        })
    }

    /// The same projector with its weights cut from the autograd graph (frozen).
    pub fn detached(&self) -> Self {
        Self {
            cfg: self.cfg.clone(),
            fc1: self.fc1.detached(),
            fc2: self.fc2.detached(),
        }
    }

    /// ViT features `[N, in_dim]` of `images` -> LLM tokens `[M, out_dim]` and tokens per image.
    pub fn forward(
        &self,
        features: &Tensor,
        images: &PackedImages,
    ) -> Result<(Tensor, Vec<usize>)> {
        if features.dim(1)? != self.cfg.in_dim {
            bail!(
                "projector: features of width {}, configured in_dim {}",
                features.dim(1)?,
                self.cfg.in_dim
            );
        }
        let (t, counts) = pixel_shuffle(features, images, self.cfg.pixel_shuffle)?;
        let y = self.fc2.forward(&self.fc1.forward(&t)?.gelu()?)?;
        Ok((y, counts))
    }
}
