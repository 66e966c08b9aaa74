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
    eps: f64,
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

/// Multi-head self-attention from one packed qkv projection; RoPE and mask come in the spec.
#[derive(Clone, Debug)]
pub struct SelfAttention {
    qkv: Linear,
    out: Linear,
    pub heads: usize,
    kernels: Kernels,
}

impl SelfAttention {
    pub fn new(
        vb: VarBuilder,
        d: usize,
        heads: usize,
        bias: bool,
        kernels: Kernels,
        out_std: f64,
    ) -> Result<Self> {
        let qkv =
            Linear::new(vb.pp("qkv"), d, 3 * d, bias, (d as f64).powf(-0.5))?.with_kernels(kernels);
        let out = Linear::new(vb.pp("out"), d, d, bias, out_std)?.with_kernels(kernels);
        Ok(Self {
            qkv,
            out,
            heads,
            kernels,
        })
    }

    pub fn detached(&self) -> Self {
        Self {
            qkv: self.qkv.detached(),
            out: self.out.detached(),
            ..self.clone()
        }
    }

    /// `x [B, T, D]` or `[B*T, D]` (then `spec.seq` gives T); `spec.heads` is this layer's.
    pub fn forward(&self, x: &Tensor, spec: &AttnSpec) -> Result<Tensor> {
        let qkv = self.qkv.forward(x)?;
        let spec = AttnSpec {
            heads: self.heads,
            ..spec.clone()
        };
        let a = match self.kernels {
            Kernels::Fused => fused_attention(&qkv, &spec)?,
            Kernels::Reference => reference::attention(&qkv, &spec)?,
        };
        self.out.forward(&a)
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
