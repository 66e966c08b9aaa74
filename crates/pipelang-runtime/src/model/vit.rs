//! Vision transformer over NaViT-packed patches: images of any size share one sequence, each
//! attending only to itself (block-diagonal mask), with 2-D RoPE for positions.

use super::config::MlpKind;
use super::config::VitConfig;
use super::kernels::attention::AttnSpec;
use super::kernels::rope::RopeTable;
use super::layers::{Linear, Mlp, RmsNorm, SelfAttention};
use candle_core::{Device, Result, Tensor, bail};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// Base of the ViT's 2-D RoPE; grids are small, so the usual 10,000 leaves plenty of room.
const VIT_ROPE_BASE: f64 = 10_000.0;

/// Patches of several images packed in one sequence.
///
/// Each image's patches are contiguous and row-major (the projector relies on it); patch
/// vectors are flattened `(y, x, channel)` within the patch, as [`patchify`] does. Patches whose
/// image index is `grids.len()` or more are padding: they attend only to their own index and
/// are left out of pooling.
#[derive(Clone, Debug)]
pub struct PackedImages {
    /// `[N, channels * patch * patch]` f32.
    pub patches: Tensor,
    pub rows: Vec<u32>,
    pub cols: Vec<u32>,
    pub image: Vec<u32>,
    /// `(rows, cols)` of patches per image.
    pub grids: Vec<(usize, usize)>,
}

impl PackedImages {
    /// Packs already patchified images (`(patch vectors, grid rows, grid cols)`).
    pub fn pack(
        images: &[(Vec<f32>, usize, usize)],
        patch_dim: usize,
        dev: &Device,
    ) -> Result<Self> {
        let (mut data, mut rows, mut cols, mut image, mut grids) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (i, (p, h, w)) in images.iter().enumerate() {
            if p.len() != h * w * patch_dim {
                bail!(
                    "image {i}: {} values for a {h}x{w} grid of {patch_dim}-value patches",
                    p.len()
                );
            }
            data.extend_from_slice(p);
            for r in 0..*h {
                for c in 0..*w {
                    rows.push(r as u32);
                    cols.push(c as u32);
                    image.push(i as u32);
                }
            }
            grids.push((*h, *w));
        }
        let n = rows.len();
        Ok(Self {
            patches: Tensor::from_vec(data, (n, patch_dim), dev)?,
            rows,
            cols,
            image,
            grids,
        })
    }

    /// Offset of each image's first patch, checking that the patches are laid out as documented.
    pub fn offsets(&self) -> Result<Vec<usize>> {
        let n = self.patches.dim(0)?;
        if self.rows.len() != n || self.cols.len() != n || self.image.len() != n {
            bail!(
                "packed images: {n} patches but {}/{}/{} rows/cols/image ids",
                self.rows.len(),
                self.cols.len(),
                self.image.len()
            );
        }
        let mut offsets = vec![usize::MAX; self.grids.len()];
        let mut i = 0;
        while i < n {
            let img = self.image[i] as usize;
            if img >= self.grids.len() {
                i += 1;
                continue;
            }
            if offsets[img] != usize::MAX {
                bail!("packed images: patches of image {img} are not contiguous");
            }
            offsets[img] = i;
            let (h, w) = self.grids[img];
            for k in 0..h * w {
                let j = i + k;
                if j >= n
                    || self.image[j] as usize != img
                    || self.rows[j] as usize != k / w
                    || self.cols[j] as usize != k % w
                {
                    bail!(
                        "packed images: image {img} ({h}x{w}) is not laid out row-major from patch {i}"
                    );
                }
            }
            i += h * w;
        }
        if let Some(missing) = offsets.iter().position(|o| *o == usize::MAX) {
            bail!("packed images: image {missing} has no patches");
        }
        Ok(offsets)
    }
}

/// Cuts an `[height, width, channels]` image into row-major patches flattened `(y, x, c)`.
/// Sides must be multiples of the patch (resizing is the data loader's choice).
pub fn patchify(
    hwc: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    patch: usize,
) -> Result<(Vec<f32>, usize, usize)> {
    if hwc.len() != height * width * channels {
        bail!(
            "patchify: {} values for a {height}x{width}x{channels} image",
            hwc.len()
        );
    }
    if patch == 0 || !height.is_multiple_of(patch) || !width.is_multiple_of(patch) {
        bail!(
            "patchify: a {height}x{width} image does not split into {patch}x{patch} patches; resize it first"
        );
    }
    let (gh, gw) = (height / patch, width / patch);
    let mut out = Vec::with_capacity(hwc.len());
    for gy in 0..gh {
        for gx in 0..gw {
            for y in 0..patch {
                let start = ((gy * patch + y) * width + gx * patch) * channels;
                out.extend_from_slice(&hwc[start..start + patch * channels]);
            }
        }
    }
    Ok((out, gh, gw))
}

#[derive(Clone, Debug)]
struct Block {
    norm1: RmsNorm,
    attn: SelfAttention,
    norm2: RmsNorm,
    mlp: Mlp,
}

#[derive(Clone, Debug)]
pub struct Vit {
    pub cfg: VitConfig,
    patch_embed: Linear,
    blocks: Vec<Block>,
    norm: RmsNorm,
}

#[derive(Clone, Debug)]
pub struct VitOut {
    /// Per-patch features `[N, D]`, in the packed order.
    pub features: Tensor,
    /// Mean of each image's patch features, `[images, D]`.
    pub pooled: Tensor,
}

impl Vit {
    /// Pre-norm blocks (RMSNorm, bidirectional attention with 2-D RoPE, GELU MLP 4x), biases
    /// on the patch embedding and attention, final RMSNorm.
    pub fn new(vb: VarBuilder, cfg: &VitConfig) -> Result<Self> {
        super::kernels::keep_freed_memory();
        cfg.validate()?;
        let d = cfg.d_model;
        let out_std = (d as f64).powf(-0.5) / (2.0 * cfg.layers as f64).sqrt();
        let patch_embed = Linear::new(
            vb.pp("patch_embed"),
            cfg.patch_dim(),
            d,
            true,
            (cfg.patch_dim() as f64).powf(-0.5),
        )?;
        let blocks = (0..cfg.layers)
            .map(|i| {
                let vb = vb.pp(format!("block{i}"));
                Ok(Block {
                    norm1: RmsNorm::new(vb.pp("norm1"), d, cfg.kernels)?,
                    attn: SelfAttention::new(
                        vb.pp("attn"),
                        d,
                        cfg.heads,
                        true,
                        cfg.kernels,
                        out_std,
                    )?,
                    norm2: RmsNorm::new(vb.pp("norm2"), d, cfg.kernels)?,
                    mlp: Mlp::new(vb.pp("mlp"), d, 4 * d, MlpKind::Gelu, cfg.kernels, out_std)?,
                })
            })
            .collect::<Result<_>>()?;
        let norm = RmsNorm::new(vb.pp("norm"), d, cfg.kernels)?;
        Ok(Self {
            cfg: cfg.clone(),
            patch_embed,
            blocks,
            norm,
        })
    }

    /// The same model with its weights cut from the autograd graph (frozen).
    pub fn detached(&self) -> Self {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                norm1: b.norm1.detached(),
                attn: b.attn.detached(),
                norm2: b.norm2.detached(),
                mlp: b.mlp.detached(),
            })
            .collect();
        Self {
            cfg: self.cfg.clone(),
            patch_embed: self.patch_embed.detached(),
            blocks,
            norm: self.norm.detached(),
        }
    }

    pub fn forward(&self, images: &PackedImages) -> Result<VitOut> {
        let n = images.patches.dim(0)?;
        let pd = images.patches.dim(1)?;
        if pd != self.cfg.patch_dim() {
            bail!(
                "vit: patches of {pd} values, the model expects {}",
                self.cfg.patch_dim()
            );
        }
        images.offsets()?;
        let d = self.cfg.d_model;
        let spec = AttnSpec {
            heads: self.cfg.heads,
            seq: n,
            causal: false,
            segments: Some(Arc::new(images.image.clone())),
            rope: Some(RopeTable::new_2d(
                &images.rows,
                &images.cols,
                d / self.cfg.heads,
                VIT_ROPE_BASE,
            )),
        };
        let mut h = self.patch_embed.forward(&images.patches)?;
        for blk in &self.blocks {
            h = (&h + blk.attn.forward(&blk.norm1.forward(&h)?, &spec)?)?;
            h = (&h + blk.mlp.forward(&blk.norm2.forward(&h)?)?)?;
        }
        let features = self.norm.forward(&h)?;
        let count = images.grids.len();
        let mut pool = vec![0f32; count * n];
        for (j, &img) in images.image.iter().enumerate() {
            let img = img as usize;
            if img < count {
                let (gh, gw) = images.grids[img];
                pool[img * n + j] = 1.0 / (gh * gw) as f32;
            }
        }
        let pooled = Tensor::from_vec(pool, (count, n), features.device())?.matmul(&features)?;
        Ok(VitOut { features, pooled })
    }
}
