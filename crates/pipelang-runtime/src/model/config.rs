//! Plain configuration structs of the models, built by the planner from the `.pipe` fields.

use serde::{Deserialize, Serialize};

/// Which implementation of the hot operations a model uses.
///
/// `Fused` runs our CPU custom ops (attention with RoPE, RMSNorm, activations, cross-entropy);
/// `Reference` composes differentiable candle ops. Both compute the same function; the reference
/// stays so that tests can compare values and gradients, and as a fallback on devices the fused
/// ops do not support (they are CPU-only: a CUDA run must pick `Reference`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernels {
    Reference,
    #[default]
    Fused,
}

impl Kernels {
    /// The fused kernels are candle custom ops with CPU kernels only; any other device gets
    /// the differentiable reference ops, which candle runs on every backend.
    pub fn for_device(dev: &candle_core::Device) -> Self {
        if dev.is_cpu() {
            Kernels::Fused
        } else {
            Kernels::Reference
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlpKind {
    /// `W2 (silu(W_gate x) * W_up x)`.
    SwiGlu,
    /// `W2 gelu(W1 x)`, GELU in its tanh approximation (PyTorch `GELU(approximate="tanh")`).
    Gelu,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MoeConfig {
    pub experts: usize,
    /// Experts each token is routed to (top-k).
    pub active: usize,
    /// Weight of the Switch load-balancing loss, per MoE layer.
    pub aux_weight: f64,
    /// Experts every token goes through beside the routed ones (DeepSeekMoE's shared
    /// experts), held as one MLP `shared` times as wide: the sum of `shared` MLPs of width H
    /// is one MLP of width `shared x H`.
    #[serde(default)]
    pub shared: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DecoderConfig {
    pub vocab: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp: MlpKind,
    /// Hidden width of the MLP (of each expert under MoE). See [`default_mlp_hidden`].
    pub mlp_hidden: usize,
    pub moe: Option<MoeConfig>,
    /// Key/value heads (grouped-query attention; 1 = multi-query). `None`: as many as `heads`.
    #[serde(default)]
    pub kv_heads: Option<usize>,
    /// RMSNorm over each head's queries and keys (own weights of width `d_model / heads`),
    /// before RoPE.
    #[serde(default)]
    pub qk_norm: bool,
    /// The output head multiplies by the input embedding matrix (no `head` parameter).
    #[serde(default)]
    pub tie_embeddings: bool,
    /// Under MoE, the first `dense_layers` blocks have a dense MLP of width `mlp_hidden`.
    #[serde(default)]
    pub dense_layers: usize,
    #[serde(default)]
    pub kernels: Kernels,
}

/// The usual hidden width for an MLP kind: `4 d` for GELU; for SwiGLU `8/3 d` (same parameter
/// count as a `4 d` GELU MLP, since SwiGLU has three matrices) rounded up to a multiple of 8.
pub fn default_mlp_hidden(kind: MlpKind, d_model: usize) -> usize {
    match kind {
        MlpKind::Gelu => 4 * d_model,
        MlpKind::SwiGlu => (8 * d_model).div_ceil(3).div_ceil(8) * 8,
    }
}

impl DecoderConfig {
    /// A dense decoder with the default MLP width of its kind.
    pub fn dense(vocab: usize, d_model: usize, layers: usize, heads: usize, mlp: MlpKind) -> Self {
        Self {
            vocab,
            d_model,
            layers,
            heads,
            mlp,
            mlp_hidden: default_mlp_hidden(mlp, d_model),
            moe: None,
            kv_heads: None,
            qk_norm: false,
            tie_embeddings: false,
            dense_layers: 0,
            kernels: Kernels::default(),
        }
    }

    /// Key/value heads: `kv_heads`, or `heads` when unset.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads.unwrap_or(self.heads)
    }

    /// The throughput benchmark's model (issue 6): d 128, 4 layers, 4 heads, GELU MLP 4x,
    /// byte vocabulary of 256, no biases, untied output head.
    pub fn bench() -> Self {
        Self::dense(256, 128, 4, 4, MlpKind::Gelu)
    }

    pub fn validate(&self) -> candle_core::Result<()> {
        let bad = |what: String| Err(candle_core::Error::Msg(format!("decoder config: {what}")));
        if self.vocab == 0 || self.d_model == 0 || self.layers == 0 || self.heads == 0 {
            return bad("vocab, d_model, layers and heads must all be positive".into());
        }
        if !self.d_model.is_multiple_of(self.heads)
            || !(self.d_model / self.heads).is_multiple_of(2)
        {
            return bad(format!(
                "d_model {} must split into {} heads of even width (RoPE rotates pairs)",
                self.d_model, self.heads
            ));
        }
        if self.mlp_hidden == 0 {
            return bad("mlp_hidden must be positive".into());
        }
        let kv = self.kv_heads();
        if kv == 0 || !self.heads.is_multiple_of(kv) {
            return bad(format!(
                "{kv} key/value heads must divide the {} query heads",
                self.heads
            ));
        }
        if self.dense_layers > 0 && (self.moe.is_none() || self.dense_layers >= self.layers) {
            return bad(format!(
                "{} dense layers need a mixture of experts with more than {} layers",
                self.dense_layers, self.dense_layers
            ));
        }
        if let Some(moe) = &self.moe
            && (moe.experts == 0 || moe.active == 0 || moe.active > moe.experts)
        {
            return bad(format!(
                "moe needs 1 <= active ({}) <= experts ({})",
                moe.active, moe.experts
            ));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct VitConfig {
    /// Side of a square patch in pixels.
    pub patch: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub channels: usize,
    #[serde(default)]
    pub kernels: Kernels,
}

impl VitConfig {
    pub fn new(patch: usize, d_model: usize, layers: usize, heads: usize) -> Self {
        Self {
            patch,
            d_model,
            layers,
            heads,
            channels: 3,
            kernels: Kernels::default(),
        }
    }

    /// Length of one flattened patch, `channels * patch * patch`.
    pub fn patch_dim(&self) -> usize {
        self.channels * self.patch * self.patch
    }

    pub fn validate(&self) -> candle_core::Result<()> {
        if self.patch == 0 || self.d_model == 0 || self.layers == 0 || self.heads == 0 {
            candle_core::bail!("vit config: patch, d_model, layers and heads must all be positive");
        }
        if !self.d_model.is_multiple_of(self.heads)
            || !(self.d_model / self.heads).is_multiple_of(4)
        {
            candle_core::bail!(
                "vit config: d_model {} must split into {} heads of a width divisible by 4 \
                 (2-D RoPE rotates pairs for rows and for columns)",
                self.d_model,
                self.heads
            );
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProjectorConfig {
    /// Width of the ViT features.
    pub in_dim: usize,
    /// The decoder's d_model.
    pub out_dim: usize,
    /// Side k of the k x k blocks merged into one token (1 = no merging).
    pub pixel_shuffle: usize,
}
