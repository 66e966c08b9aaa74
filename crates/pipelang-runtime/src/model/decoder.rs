//! Decoder-only language model: embedding, pre-norm blocks (RMSNorm, causal RoPE attention with
//! grouped key/value heads and QK-norm when asked, dense or MoE feed-forward, the first
//! `dense_layers` dense under MoE), final norm, output head (the embedding matrix when tied).
//! No biases.

use super::config::DecoderConfig;
use super::kernels::attention::AttnSpec;
use super::kernels::rope::RopeTable;
use super::layers::{Linear, Mlp, RmsNorm, SelfAttention};
use super::moe::Moe;
use candle_core::{DType, Result, Tensor, bail};
use candle_nn::{Init, VarBuilder};
use pipelang::plan::rope::Rope;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Ffn {
    Dense(Mlp),
    Moe(Moe),
}

#[derive(Clone, Debug)]
struct Block {
    norm1: RmsNorm,
    attn: SelfAttention,
    norm2: RmsNorm,
    ffn: Ffn,
}

#[derive(Clone, Debug)]
pub struct Decoder {
    pub cfg: DecoderConfig,
    embedding: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    head: Linear,
}

/// What a forward pass returns.
#[derive(Clone, Debug)]
pub struct DecoderOut {
    /// `[B, T, vocab]`.
    pub logits: Tensor,
    /// Sum over MoE layers of their weighted balance losses (a zero scalar when dense): add it
    /// to the training loss.
    pub aux_loss: Tensor,
    /// Final-normed hidden states `[B, T, D]` (what the output head reads).
    pub hidden: Tensor,
}

impl Decoder {
    /// Parameters are named `embedding`, `block{i}.{norm1,attn.qkv,attn.out,norm2,mlp|moe}`
    /// (and `attn.q_norm`, `attn.k_norm` with QK-norm), `norm`, `head` (none when tied) under
    /// `vb`.
    pub fn new(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        cfg.validate()?;
        super::kernels::keep_freed_memory();
        let d = cfg.d_model;
        // Residual-branch outputs start smaller with depth (GPT-2), so the stream stays O(1).
        let out_std = (d as f64).powf(-0.5) / (2.0 * cfg.layers as f64).sqrt();
        // A tied matrix is also the output head: drawn at the head's scale, so that the first
        // logits are O(1) rather than O(sqrt(d)).
        let embedding_std = if cfg.tie_embeddings {
            (d as f64).powf(-0.5)
        } else {
            1.0
        };
        let embedding = vb.get_with_hints(
            (cfg.vocab, d),
            "embedding",
            Init::Randn {
                mean: 0.0,
                stdev: embedding_std,
            },
        )?;
        let blocks = (0..cfg.layers)
            .map(|i| {
                let vb = vb.pp(format!("block{i}"));
                let ffn = match &cfg.moe {
                    Some(m) if i >= cfg.dense_layers => {
                        Ffn::Moe(Moe::new(vb.pp("moe"), cfg, m, out_std)?)
                    }
                    _ => Ffn::Dense(Mlp::new(
                        vb.pp("mlp"),
                        d,
                        cfg.mlp_hidden,
                        cfg.mlp,
                        cfg.kernels,
                        out_std,
                    )?),
                };
                Ok(Block {
                    norm1: RmsNorm::new(vb.pp("norm1"), d, cfg.kernels)?,
                    attn: SelfAttention::grouped(
                        vb.pp("attn"),
                        d,
                        cfg.heads,
                        cfg.kv_heads(),
                        cfg.qk_norm,
                        false,
                        cfg.kernels,
                        out_std,
                    )?,
                    norm2: RmsNorm::new(vb.pp("norm2"), d, cfg.kernels)?,
                    ffn,
                })
            })
            .collect::<Result<_>>()?;
        let norm = RmsNorm::new(vb.pp("norm"), d, cfg.kernels)?;
        let head = if cfg.tie_embeddings {
            Linear::shared(embedding.clone(), cfg.kernels)
        } else {
            Linear::new(vb.pp("head"), d, cfg.vocab, false, (d as f64).powf(-0.5))?
                .with_kernels(cfg.kernels)
        };
        Ok(Self {
            cfg: cfg.clone(),
            embedding,
            blocks,
            norm,
            head,
        })
    }

    /// The same model with its weights cut from the autograd graph: a frozen model runs its
    /// forward pass for a trainable one without computing (or holding) gradients of its own.
    pub fn detached(&self) -> Self {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                norm1: b.norm1.detached(),
                attn: b.attn.detached(),
                norm2: b.norm2.detached(),
                ffn: match &b.ffn {
                    Ffn::Dense(m) => Ffn::Dense(m.detached()),
                    Ffn::Moe(m) => Ffn::Moe(m.detached()),
                },
            })
            .collect();
        let embedding = self.embedding.detach();
        let head = if self.cfg.tie_embeddings {
            Linear::shared(embedding.clone(), self.cfg.kernels)
        } else {
            self.head.detached()
        };
        Self {
            cfg: self.cfg.clone(),
            embedding,
            blocks,
            norm: self.norm.detached(),
            head,
        }
    }

    /// `tokens [B, T]` (u32) -> embeddings `[B, T, D]`.
    pub fn embed(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let flat = tokens.flatten_all()?.to_dtype(DType::U32)?;
        let max = flat.max(0)?.to_scalar::<u32>()?;
        if max as usize >= self.cfg.vocab {
            bail!(
                "decoder: token id {max} outside the vocabulary of {}",
                self.cfg.vocab
            );
        }
        self.embedding
            .index_select(&flat, 0)?
            .reshape((b, t, self.cfg.d_model))
    }

    pub fn forward(&self, tokens: &Tensor, rope: impl Into<Rope>) -> Result<DecoderOut> {
        self.forward_embeds(&self.embed(tokens)?, rope)
    }

    /// Causal forward pass from embeddings `[B, T, D]`.
    pub fn forward_embeds(&self, x: &Tensor, rope: impl Into<Rope>) -> Result<DecoderOut> {
        self.forward_embeds_masked(x, rope, None)
    }

    /// Like [`Self::forward_embeds`], and tokens attend only within their segment
    /// (`segments[b * T + t]`): packed documents, or padding kept out of a prefix.
    pub fn forward_embeds_masked(
        &self,
        x: &Tensor,
        rope: impl Into<Rope>,
        segments: Option<&[u32]>,
    ) -> Result<DecoderOut> {
        let (b, t, d) = x.dims3()?;
        if d != self.cfg.d_model {
            bail!(
                "decoder: embeddings of width {d}, the model has d_model {}",
                self.cfg.d_model
            );
        }
        let rope = rope.into();
        if !(rope.base.is_finite() && rope.base > 1.0) {
            bail!(
                "decoder: RoPE base {} must be a finite number above 1",
                rope.base
            );
        }
        let spec = AttnSpec {
            heads: self.cfg.heads,
            seq: t,
            causal: true,
            segments: segments.map(|s| Arc::new(s.to_vec())),
            rope: Some(RopeTable::for_rope(t, d / self.cfg.heads, &rope)),
        };
        // The residual stream stays 2-D `[B*T, D]` until the end.
        let mut h = x.reshape((b * t, d))?;
        let mut aux = Tensor::zeros((), DType::F32, x.device())?;
        for blk in &self.blocks {
            h = (&h + blk.attn.forward(&blk.norm1.forward(&h)?, &spec)?)?;
            let n = blk.norm2.forward(&h)?;
            let f = match &blk.ffn {
                Ffn::Dense(m) => m.forward(&n)?,
                Ffn::Moe(m) => {
                    let (y, a) = m.forward(&n)?;
                    aux = (aux + a)?;
                    y
                }
            };
            h = (h + f)?;
        }
        let hidden = self.norm.forward(&h)?;
        let logits = self
            .head
            .forward(&hidden)?
            .reshape((b, t, self.cfg.vocab))?;
        Ok(DecoderOut {
            logits,
            aux_loss: aux,
            hidden: hidden.reshape((b, t, d))?,
        })
    }
}

/// Replaces rows of `embeds [B, T, D]` at `positions` (flat `b * T + t`, in the order of the
/// feature rows) by `features [M, D]`; differentiable w.r.t. both. Image features enter the
/// language model this way, at the placeholder tokens.
pub fn scatter_rows(embeds: &Tensor, positions: &[usize], features: &Tensor) -> Result<Tensor> {
    let (b, t, d) = embeds.dims3()?;
    let (m, fd) = features.dims2()?;
    if fd != d || m != positions.len() {
        bail!(
            "scatter_rows: {m} feature rows of width {fd} for {} positions of width {d}",
            positions.len()
        );
    }
    let n = b * t;
    let mut idx: Vec<u32> = (0..n as u32).collect();
    for (j, &p) in positions.iter().enumerate() {
        if p >= n {
            bail!("scatter_rows: position {p} outside the {b}x{t} sequence");
        }
        idx[p] = (n + j) as u32;
    }
    let table = Tensor::cat(&[&embeds.reshape((n, d))?, features], 0)?;
    let idx = Tensor::from_vec(idx, n, embeds.device())?;
    table.index_select(&idx, 0)?.reshape((b, t, d))
}
