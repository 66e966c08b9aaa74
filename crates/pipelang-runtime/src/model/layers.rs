//! Building blocks shared by the decoder and the ViT, each dispatching on [`Kernels`].

use super::config::{Kernels, MlpKind};
use super::kernels::linear::{fused_linear, fused_linear_gelu};
use super::kernels::{activation, attention::AttnSpec, attention::fused_attention, rmsnorm};
use super::reference;
use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// A linear map that multiplies as one 2-D matmul whatever the leading dims (candle's
/// `Linear` broadcasts the weight per batch instead, one small gemm per sequence).
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// Fused: one op with its own backward pass; reference: candle's matmul.
    kernels: Kernels,
}

impl Linear {
    /// Weight `[out, in]` drawn from N(0, std^2); bias (if any) zeros.
    pub fn new(vb: VarBuilder, d_in: usize, d_out: usize, bias: bool, std: f64) -> Result<Self> {
        let weight = vb.get_with_hints(
            (d_out, d_in),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        let bias = if bias {
            Some(vb.get_with_hints(d_out, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            kernels: Kernels::Reference,
        })
    }

    /// A layer over an existing weight `[out, in]` (tied embeddings: the head is the
    /// embedding matrix, so both uses add to one gradient).
    pub fn shared(weight: Tensor, kernels: Kernels) -> Self {
        Self {
            weight,
            bias: None,
            kernels,
        }
    }

    /// The same layer multiplying with `kernels`.
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }

    pub fn detached(&self) -> Self {
        Self {
            weight: self.weight.detach(),
            bias: self.bias.as_ref().map(Tensor::detach),
            kernels: self.kernels,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.kernels == Kernels::Fused {
            // Any rank: the op multiplies all leading dims as rows, with no reshape nodes.
            let y = fused_linear(x, &self.weight)?;
            return match &self.bias {
                Some(b) => y.broadcast_add(b),
                None => Ok(y),
            };
        }
        if x.rank() == 2 {
            // No reshape nodes: each costs a zeroed gradient buffer and an add in backward.
            let y = x.matmul(&self.weight.t()?)?;
            return match &self.bias {
                Some(b) => y.broadcast_add(b),
                None => Ok(y),
            };
        }
        let dims = x.dims();
        let d_in = *dims.last().unwrap_or(&0);
        let rows = x.elem_count() / d_in.max(1);
        let y = x.reshape((rows, d_in))?.matmul(&self.weight.t()?)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out = dims.to_vec();
        *out.last_mut().expect("linear input has a last dim") = self.weight.dim(0)?;
        y.reshape(out)
    }
}

#[derive(Clone, Debug)]
pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
    kernels: Kernels,
}

impl RmsNorm {
    pub fn new(vb: VarBuilder, d: usize, kernels: Kernels) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(d, "weight", Init::Const(1.0))?,
            eps: 1e-5,
            kernels,
        })
    }

    pub fn detached(&self) -> Self {
        Self {
            weight: self.weight.detach(),
            ..self.clone()
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.kernels {
            Kernels::Fused => rmsnorm::fused_rms_norm(x, &self.weight, self.eps),
            Kernels::Reference => reference::rms_norm(x, &self.weight, self.eps),
        }
    }
}

/// Feed-forward block. SwiGLU keeps gate and up projections in one `[2H, D]` matrix so they
/// cost one matmul.
#[derive(Clone, Debug)]
pub struct Mlp {
    up: Linear,
    down: Linear,
    kind: MlpKind,
    kernels: Kernels,
}

impl Mlp {
    pub fn new(
        vb: VarBuilder,
        d: usize,
        hidden: usize,
        kind: MlpKind,
        kernels: Kernels,
        out_std: f64,
    ) -> Result<Self> {
        let width = match kind {
            MlpKind::Gelu => hidden,
            MlpKind::SwiGlu => 2 * hidden,
        };
        let up =
            Linear::new(vb.pp("up"), d, width, false, (d as f64).powf(-0.5))?.with_kernels(kernels);
        let down = Linear::new(vb.pp("down"), hidden, d, false, out_std)?.with_kernels(kernels);
        Ok(Self {
            up,
            down,
            kind,
            kernels,
        })
    }

    pub fn detached(&self) -> Self {
        Self {
            up: self.up.detached(),
            down: self.down.detached(),
            ..self.clone()
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let (MlpKind::Gelu, Kernels::Fused, None) = (self.kind, self.kernels, &self.up.bias) {
            return self.down.forward(&fused_linear_gelu(x, &self.up.weight)?);
        }
        let h = self.up.forward(x)?;
        let a = match (self.kind, self.kernels) {
            (MlpKind::Gelu, Kernels::Fused) => activation::fused_gelu(&h)?,
            (MlpKind::Gelu, Kernels::Reference) => reference::gelu(&h)?,
            (MlpKind::SwiGlu, Kernels::Fused) => activation::fused_swiglu(&h)?,
            (MlpKind::SwiGlu, Kernels::Reference) => reference::swiglu(&h)?,
        };
        self.down.forward(&a)
    }
}

/// Self-attention from one packed projection `[Q | K | V]`: `heads` query heads and `kv_heads`
/// key/value heads of width `D / heads` (grouped-query attention when fewer; query head j reads
/// key/value head `j / (heads / kv_heads)`, Llama's `repeat_kv` order), optionally with
/// RMSNorm over each head's queries and keys before RoPE (QK-norm). RoPE and mask come in the
/// spec.
#[derive(Clone, Debug)]
pub struct SelfAttention {
    qkv: Linear,
    out: Linear,
    pub heads: usize,
    kv_heads: usize,
    /// Weights `[D / heads]` of the query and key norms.
    qk_norm: Option<(RmsNorm, RmsNorm)>,
    kernels: Kernels,
}

impl SelfAttention {
    /// Multi-head attention (as many key/value heads as query heads), no QK-norm.
    pub fn new(
        vb: VarBuilder,
        d: usize,
        heads: usize,
        bias: bool,
        kernels: Kernels,
        out_std: f64,
    ) -> Result<Self> {
        Self::grouped(vb, d, heads, heads, false, bias, kernels, out_std)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn grouped(
        vb: VarBuilder,
        d: usize,
        heads: usize,
        kv_heads: usize,
        qk_norm: bool,
        bias: bool,
        kernels: Kernels,
        out_std: f64,
    ) -> Result<Self> {
        let dh = d / heads;
        let width = (heads + 2 * kv_heads) * dh;
        let qkv =
            Linear::new(vb.pp("qkv"), d, width, bias, (d as f64).powf(-0.5))?.with_kernels(kernels);
        let out = Linear::new(vb.pp("out"), d, d, bias, out_std)?.with_kernels(kernels);
        let qk_norm = if qk_norm {
            Some((
                RmsNorm::new(vb.pp("q_norm"), dh, kernels)?,
                RmsNorm::new(vb.pp("k_norm"), dh, kernels)?,
            ))
        } else {
            None
        };
        Ok(Self {
            qkv,
            out,
            heads,
            kv_heads,
            qk_norm,
            kernels,
        })
    }

    pub fn detached(&self) -> Self {
        Self {
            qkv: self.qkv.detached(),
            out: self.out.detached(),
            qk_norm: self
                .qk_norm
                .as_ref()
                .map(|(q, k)| (q.detached(), k.detached())),
            ..self.clone()
        }
    }

    /// `x [B, T, D]` or `[B*T, D]` (then `spec.seq` gives T); `spec.heads` is this layer's.
    pub fn forward(&self, x: &Tensor, spec: &AttnSpec) -> Result<Tensor> {
        let qkv = self.qkv.forward(x)?;
        let spec = AttnSpec {
            heads: self.heads,
            seq: if x.rank() == 3 { x.dim(1)? } else { spec.seq },
            ..spec.clone()
        };
        let plain = self.kv_heads == self.heads && self.qk_norm.is_none();
        let a = match (self.kernels, plain) {
            (Kernels::Fused, true) => fused_attention(&qkv, &spec)?,
            (Kernels::Reference, true) => reference::attention(&qkv, &spec)?,
            (Kernels::Fused, false) => self.fused_grouped(&qkv, &spec)?,
            (Kernels::Reference, false) => {
                let norms = self
                    .qk_norm
                    .as_ref()
                    .map(|(q, k)| (&q.weight, &k.weight, q.eps));
                reference::grouped_attention(&qkv, self.kv_heads, norms, &spec)?
            }
        };
        self.out.forward(&a)
    }

    /// The fused kernels on grouped or QK-normed heads: queries and keys normed by the fused
    /// RMSNorm (a row per head), each key/value head repeated for its group, and the packed
    /// `[Q | K | V]` of `heads` heads handed to the fused attention (its backward sums the
    /// repeated heads' gradients back through the broadcast).
    fn fused_grouped(&self, qkv: &Tensor, spec: &AttnSpec) -> Result<Tensor> {
        let width = *qkv.dims().last().unwrap_or(&0);
        let rows = qkv.elem_count() / width.max(1);
        let (h, kv) = (self.heads, self.kv_heads);
        let dh = width / (h + 2 * kv);
        let x = qkv.reshape((rows, width))?;
        let mut q = x.narrow(1, 0, h * dh)?;
        let mut k = x.narrow(1, h * dh, kv * dh)?;
        let v = x.narrow(1, (h + kv) * dh, kv * dh)?;
        if let Some((qn, kn)) = &self.qk_norm {
            let per_head = |t: &Tensor, n: &RmsNorm, heads: usize| -> Result<Tensor> {
                n.forward(&t.contiguous()?.reshape((rows * heads, dh))?)?
                    .reshape((rows, heads * dh))
            };
            q = per_head(&q, qn, h)?;
            k = per_head(&k, kn, kv)?;
        }
        let group = h / kv;
        let repeat = |t: Tensor| -> Result<Tensor> {
            if group == 1 {
                return Ok(t);
            }
            t.reshape((rows, kv, 1, dh))?
                .broadcast_as((rows, kv, group, dh))?
                .contiguous()?
                .reshape((rows, h * dh))
        };
        let packed = Tensor::cat(&[q, repeat(k)?, repeat(v)?], 1)?;
        let a = fused_attention(&packed, spec)?;
        let mut dims = qkv.dims().to_vec();
        *dims.last_mut().expect("attention input has a last dim") = h * dh;
        a.reshape(dims)
    }
}

/// Numerically stable `log(1 + e^x)`, differentiable.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let n = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&n)
}
