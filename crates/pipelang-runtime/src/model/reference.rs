//! Differentiable reference forms of the fused kernels, composed of candle ops that all have a
//! backward pass (none of candle's fused `rope`, `rms_norm` or `softmax_last_dim`).

use super::kernels::attention::AttnSpec;
use super::kernels::rope::RopeTable;
use candle_core::{D, DType, Device, Result, Tensor};

/// Reference of [`super::kernels::attention::fused_attention`]: `qkv [B, T, 3D]` -> `[B, T, D]`.
pub fn attention(qkv: &Tensor, spec: &AttnSpec) -> Result<Tensor> {
    if qkv.rank() == 2 {
        let (n, d3) = qkv.dims2()?;
        let t = spec.seq.max(1);
        return attention(&qkv.reshape((n / t, t, d3))?, spec)?.reshape((n, d3 / 3));
    }
    let (b, t, d3) = qkv.dims3()?;
    let (d, h) = (d3 / 3, spec.heads);
    let dh = d / h;
    let head = |i: usize| -> Result<Tensor> {
        qkv.narrow(2, i * d, d)?
            .reshape((b, t, h, dh))?
            .transpose(1, 2)
    };
    let (q, k, v) = (head(0)?, head(1)?, head(2)?);
    heads_attention(q, k, v, spec)
}

/// Reference of grouped-query attention with optional QK-norm: `qkv [B, T, (H + 2 KV) dh]` or
/// `[B*T, ..]` -> `[B, T, H dh]`. Key/value heads are gathered per query head by index
/// (`j / (H / KV)`), not broadcast as the fused path does, so the two are independent.
/// `qk_norm`: the query and key norm weights `[dh]` and epsilon.
pub fn grouped_attention(
    qkv: &Tensor,
    kv_heads: usize,
    qk_norm: Option<(&Tensor, &Tensor, f64)>,
    spec: &AttnSpec,
) -> Result<Tensor> {
    if qkv.rank() == 2 {
        let (n, w) = qkv.dims2()?;
        let t = spec.seq.max(1);
        let out = grouped_attention(&qkv.reshape((n / t, t, w))?, kv_heads, qk_norm, spec)?;
        let d = out.dim(2)?;
        return out.reshape((n, d));
    }
    let (b, t, w) = qkv.dims3()?;
    let h = spec.heads;
    let dh = w / (h + 2 * kv_heads);
    let part = |from: usize, heads: usize| -> Result<Tensor> {
        qkv.narrow(2, from * dh, heads * dh)?
            .reshape((b, t, heads, dh))
    };
    let (mut q, mut k, v) = (
        part(0, h)?,
        part(h, kv_heads)?,
        part(h + kv_heads, kv_heads)?,
    );
    if let Some((wq, wk, eps)) = qk_norm {
        q = rms_norm(&q, wq, eps)?;
        k = rms_norm(&k, wk, eps)?;
    }
    let group = h / kv_heads;
    let of: Vec<u32> = (0..h).map(|j| (j / group) as u32).collect();
    let of = Tensor::from_vec(of, h, qkv.device())?;
    let gather =
        |x: Tensor| -> Result<Tensor> { x.transpose(1, 2)?.contiguous()?.index_select(&of, 1) };
    heads_attention(q.transpose(1, 2)?, gather(k)?, gather(v)?, spec)
}

/// `q`, `k`, `v` `[B, H, T, dh]` (queries and keys not yet rotated) -> `[B, T, H dh]`.
fn heads_attention(mut q: Tensor, mut k: Tensor, v: Tensor, spec: &AttnSpec) -> Result<Tensor> {
    let (b, h, t, dh) = q.dims4()?;
    let dev = q.device().clone();
    if let Some(r) = &spec.rope {
        let (cos, sin) = rope_tensors(r, b, t, &dev)?;
        q = rotate(&q, &cos, &sin)?;
        k = rotate(&k, &cos, &sin)?;
    }
    let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?;
    let scores = scores.broadcast_add(&mask(spec, b, t, &dev)?)?;
    let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
    p.matmul(&v.contiguous()?)?
        .transpose(1, 2)?
        .reshape((b, t, h * dh))
}

/// cos and sin as `[B or 1, 1, T, half]` tensors.
fn rope_tensors(r: &RopeTable, b: usize, t: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let rows = if r.per_token { b * t } else { t };
    let shape = if r.per_token {
        (b, 1, t, r.half)
    } else {
        (1, 1, t, r.half)
    };
    let cos = Tensor::from_slice(&r.cos[..rows * r.half], shape, dev)?;
    let sin = Tensor::from_slice(&r.sin[..rows * r.half], shape, dev)?;
    Ok((cos, sin))
}

fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let (x1, x2) = (
        x.narrow(D::Minus1, 0, half)?,
        x.narrow(D::Minus1, half, half)?,
    );
    let y1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let y2 = (x1.broadcast_mul(sin)? + x2.broadcast_mul(cos)?)?;
    Tensor::cat(&[y1, y2], D::Minus1)
}

/// Additive mask `[B, 1, T, T]`: 0 where a query may attend, -inf elsewhere.
fn mask(spec: &AttnSpec, b: usize, t: usize, dev: &Device) -> Result<Tensor> {
    let mut m = vec![0f32; b * t * t];
    for bi in 0..b {
        for i in 0..t {
            for j in 0..t {
                let causal_ok = !spec.causal || j <= i;
                let seg_ok = spec
                    .segments
                    .as_ref()
                    .is_none_or(|s| s[bi * t + i] == s[bi * t + j]);
                if !(causal_ok && seg_ok) {
                    m[(bi * t + i) * t + j] = f32::NEG_INFINITY;
                }
            }
        }
    }
    Tensor::from_vec(m, (b, 1, t, t), dev)
}

pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&r)?.broadcast_mul(w)
}

/// `sum_i w_i (logsumexp(z_i) - z_i[t_i])` over `logits [N, V]`.
pub fn cross_entropy(logits: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Tensor> {
    let dev = logits.device();
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let n = targets.len();
    // Masked rows may carry any target id; point them at 0 so the gather stays in range.
    let safe: Vec<u32> = targets
        .iter()
        .zip(weights)
        .map(|(t, w)| if *w == 0.0 { 0 } else { *t })
        .collect();
    let picked = logp
        .gather(&Tensor::from_vec(safe, (n, 1), dev)?, 1)?
        .squeeze(1)?;
    let w = Tensor::from_slice(weights, n, dev)?.to_dtype(DType::F32)?;
    (picked * w)?.sum_all()?.neg()
}

pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.gelu()
}

pub fn swiglu(x: &Tensor) -> Result<Tensor> {
    let h = x.dim(D::Minus1)? / 2;
    x.narrow(D::Minus1, 0, h)?.silu()? * x.narrow(D::Minus1, h, h)?
}
