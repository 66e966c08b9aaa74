//! Fused multi-head self-attention with RoPE, straight from the packed `qkv` projection.
//!
//! Input `[B, T, 3D]` (queries, keys, values, each `H` heads of `D/H`), output `[B, T, D]` with
//! the heads already merged, so neither direction needs a transpose or a copy in candle. The
//! mask is causal and/or block-diagonal over segments (NaViT packing, padded prefixes). Softmax
//! statistics (log-sum-exp per query) are kept from the forward pass; the backward pass
//! recomputes the probabilities one row at a time, as flash attention does, instead of storing
//! the `T x T` matrix.

use super::rope::{RopeTable, rotate, rotate_back};
use super::{axpy, dot, fast_exp, max, out, slice, sum};
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// What the attention op needs beyond the tensor itself.
#[derive(Clone, Debug, Default)]
pub struct AttnSpec {
    pub heads: usize,
    /// Sequence length when the input is 2-D (`[B*T, 3D]`); ignored for 3-D input.
    pub seq: usize,
    pub causal: bool,
    /// Segment id per token of the batch (`B*T`): a token attends only to its own segment.
    pub segments: Option<Arc<Vec<u32>>>,
    pub rope: Option<Arc<RopeTable>>,
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    d: usize,
    h: usize,
    dh: usize,
}

impl AttnSpec {
    fn dims(&self, shape: &Shape) -> Result<Dims> {
        let (b, t, d3) = match *shape.dims() {
            [b, t, d3] => (b, t, d3),
            [n, d3] if self.seq > 0 && n % self.seq == 0 => (n / self.seq, self.seq, d3),
            _ => bail!(
                "attention: input {shape:?} is neither [B, T, 3D] nor [B*T, 3D] with T = {}",
                self.seq
            ),
        };
        let h = self.heads;
        if h == 0 || d3 % (3 * h) != 0 {
            bail!("attention: last dim {d3} is not 3 x heads ({h}) x head_dim");
        }
        let d = d3 / 3;
        let dh = d / h;
        if let Some(s) = &self.segments
            && s.len() != b * t
        {
            bail!("attention: {} segment ids for {b}x{t} tokens", s.len());
        }
        if let Some(r) = &self.rope {
            let rows = if r.per_token { b * t } else { t };
            if r.half * 2 != dh || r.rows() < rows {
                bail!(
                    "attention: RoPE table ({} rows, {} pairs) does not fit {b}x{t} tokens of head width {dh}",
                    r.rows(),
                    r.half
                );
            }
        }
        Ok(Dims { b, t, d, h, dh })
    }

    /// Queries (pre-scaled by `1/sqrt(dh)`) `[T, dh]`, and keys and values transposed to
    /// `[dh, T]`, of head `h` of sequence `b`, rotated. With keys and values transposed, every
    /// inner loop runs along the keys: long contiguous axpys and dots that vectorise well.
    fn load_head(&self, qkv: &[f32], dims: Dims, b: usize, h: usize) -> [Vec<f32>; 3] {
        let Dims { t, d, dh, .. } = dims;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut q = vec![0f32; t * dh];
        let mut kt = vec![0f32; t * dh];
        let mut vt = vec![0f32; t * dh];
        let mut k = vec![0f32; dh];
        for i in 0..t {
            let row = &qkv[(b * t + i) * 3 * d..(b * t + i + 1) * 3 * d];
            let (qs, ks, vs) = (
                &row[h * dh..(h + 1) * dh],
                &row[d + h * dh..d + (h + 1) * dh],
                &row[2 * d + h * dh..2 * d + (h + 1) * dh],
            );
            let qd = &mut q[i * dh..(i + 1) * dh];
            match &self.rope {
                Some(r) => {
                    let (c, s) = r.row(b, i, t);
                    rotate(qs, c, s, scale, qd);
                    rotate(ks, c, s, 1.0, &mut k);
                }
                None => {
                    qd.iter_mut().zip(qs).for_each(|(o, x)| *o = x * scale);
                    k.copy_from_slice(ks);
                }
            }
            for c in 0..dh {
                kt[c * t + i] = k[c];
                vt[c * t + i] = vs[c];
            }
        }
        [q, kt, vt]
    }

    /// Keys query `i` of sequence `b` may look at: a prefix for causal masks, and a segment
    /// test per key otherwise.
    #[inline(always)]
    fn key_end(&self, i: usize, t: usize) -> usize {
        if self.causal { i + 1 } else { t }
    }

    #[inline(always)]
    fn segment_of(&self, b: usize, t: usize) -> Option<&[u32]> {
        self.segments.as_ref().map(|s| &s[b * t..(b + 1) * t])
    }
}

struct Forward {
    spec: AttnSpec,
    /// Log-sum-exp per (b, h, query) from the forward pass, for the backward pass.
    lse: Arc<Mutex<Option<Arc<Vec<f32>>>>>,
}

/// Fused attention: `qkv [B, T, 3D]` -> `[B, T, D]` (or `[B*T, 3D]` -> `[B*T, D]`).
pub fn fused_attention(qkv: &Tensor, spec: &AttnSpec) -> Result<Tensor> {
    let qkv = qkv.contiguous()?;
    qkv.apply_op1(Forward {
        spec: spec.clone(),
        lse: Arc::new(Mutex::new(None)),
    })
}

/// Scores of query row `qi` against keys `0..end` (from `kt [dh, T]`), masked by segment.
#[inline(always)]
fn scores(
    qi: &[f32],
    kt: &[f32],
    t: usize,
    end: usize,
    seg: Option<&[u32]>,
    i: usize,
    s: &mut [f32],
) {
    let s = &mut s[..end];
    s.fill(0.0);
    for (c, &qc) in qi.iter().enumerate() {
        axpy(qc, &kt[c * t..c * t + end], s);
    }
    if let Some(sg) = seg {
        for (j, x) in s.iter_mut().enumerate() {
            if sg[j] != sg[i] {
                *x = f32::NEG_INFINITY;
            }
        }
    }
}

#[inline(always)]
fn head_forward_impl(
    spec: &AttnSpec,
    dims: Dims,
    b: usize,
    [q, kt, vt]: &[Vec<f32>; 3],
) -> (Vec<f32>, Vec<f32>) {
    let Dims { t, dh, .. } = dims;
    let seg = spec.segment_of(b, t);
    let mut o = vec![0f32; t * dh];
    let mut lse = vec![0f32; t];
    let mut s = vec![0f32; t];
    for i in 0..t {
        let end = spec.key_end(i, t);
        scores(&q[i * dh..(i + 1) * dh], kt, t, end, seg, i, &mut s);
        let m = max(&s[..end]);
        for x in &mut s[..end] {
            *x = fast_exp(*x - m);
        }
        let sum = sum(&s[..end]);
        let inv = 1.0 / sum;
        for (c, oc) in o[i * dh..(i + 1) * dh].iter_mut().enumerate() {
            *oc = dot(&s[..end], &vt[c * t..c * t + end]) * inv;
        }
        lse[i] = m + sum.ln();
    }
    (o, lse)
}

#[target_feature(enable = "avx2,fma")]
fn head_forward_avx2(
    spec: &AttnSpec,
    dims: Dims,
    b: usize,
    qkv: &[Vec<f32>; 3],
) -> (Vec<f32>, Vec<f32>) {
    head_forward_impl(spec, dims, b, qkv)
}

fn head_forward(
    spec: &AttnSpec,
    dims: Dims,
    b: usize,
    qkv: &[Vec<f32>; 3],
) -> (Vec<f32>, Vec<f32>) {
    if super::has_avx2() {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { head_forward_avx2(spec, dims, b, qkv) }
    } else {
        head_forward_impl(spec, dims, b, qkv)
    }
}

impl CustomOp1 for Forward {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = slice(s, l, self.name())?;
        let dims = self.spec.dims(l.shape())?;
        let Dims { b, t, d, h, dh } = dims;
        let heads: Vec<(Vec<f32>, Vec<f32>)> = (0..b * h)
            .into_par_iter()
            .map(|bh| {
                let loaded = self.spec.load_head(qkv, dims, bh / h, bh % h);
                head_forward(&self.spec, dims, bh / h, &loaded)
            })
            .collect();
        let mut o = vec![0f32; b * t * d];
        o.par_chunks_mut(t * d).enumerate().for_each(|(bi, ob)| {
            for (hi, (oh, _)) in heads[bi * h..(bi + 1) * h].iter().enumerate() {
                for i in 0..t {
                    ob[i * d + hi * dh..i * d + (hi + 1) * dh]
                        .copy_from_slice(&oh[i * dh..(i + 1) * dh]);
                }
            }
        });
        let lse: Vec<f32> = heads.into_iter().flat_map(|(_, l)| l).collect();
        *self.lse.lock().expect("attention lse lock") = Some(Arc::new(lse));
        let mut shape = l.shape().dims().to_vec();
        *shape.last_mut().expect("checked rank") = d;
        out(o, shape)
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let lse = self.lse.lock().expect("attention lse lock").clone();
        let Some(lse) = lse else {
            bail!("fused-attention: backward without a forward pass")
        };
        let g = grad.contiguous()?;
        let back = Backward {
            spec: self.spec.clone(),
            lse,
        };
        Ok(Some(arg.apply_op3_no_bwd(res, &g, &back)?))
    }
}

struct Backward {
    spec: AttnSpec,
    lse: Arc<Vec<f32>>,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "fused-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let qkv = slice(s1, l1, self.name())?;
        let o = slice(s2, l2, self.name())?;
        let go = slice(s3, l3, self.name())?;
        let dims = self.spec.dims(l1.shape())?;
        let Dims { b, t, d, h, dh } = dims;
        let scale = 1.0 / (dh as f32).sqrt();
        let grads: Vec<[Vec<f32>; 3]> = (0..b * h)
            .into_par_iter()
            .map(|bh| {
                let (bi, hi) = (bh / h, bh % h);
                let loaded = self.spec.load_head(qkv, dims, bi, hi);
                let lse = &self.lse[bh * t..(bh + 1) * t];
                if super::has_avx2() {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    unsafe { self.head_backward_avx2(dims, bi, hi, &loaded, o, go, lse) }
                } else {
                    self.head_backward(dims, bi, hi, &loaded, o, go, lse)
                }
            })
            .collect();
        let mut gq = vec![0f32; b * t * 3 * d];
        gq.par_chunks_mut(t * 3 * d)
            .enumerate()
            .for_each(|(bi, gb)| {
                let mut dk = vec![0f32; dh];
                for (hi, [dq, dkt, dvt]) in grads[bi * h..(bi + 1) * h].iter().enumerate() {
                    for i in 0..t {
                        for c in 0..dh {
                            dk[c] = dkt[c * t + i];
                        }
                        let row = &mut gb[i * 3 * d..(i + 1) * 3 * d];
                        let src = i * dh..(i + 1) * dh;
                        let (qd, rest) = row.split_at_mut(d);
                        let (kd, vd) = rest.split_at_mut(d);
                        let (qd, kd) = (
                            &mut qd[hi * dh..(hi + 1) * dh],
                            &mut kd[hi * dh..(hi + 1) * dh],
                        );
                        match &self.spec.rope {
                            Some(r) => {
                                let (c, s) = r.row(bi, i, t);
                                rotate_back(&dq[src.clone()], c, s, scale, qd);
                                rotate_back(&dk, c, s, 1.0, kd);
                            }
                            None => {
                                qd.iter_mut()
                                    .zip(&dq[src.clone()])
                                    .for_each(|(o, x)| *o = x * scale);
                                kd.copy_from_slice(&dk);
                            }
                        }
                        for (c, x) in vd[hi * dh..(hi + 1) * dh].iter_mut().enumerate() {
                            *x = dvt[c * t + i];
                        }
                    }
                }
            });
        out(gq, l1.shape().clone())
    }
}

impl Backward {
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn head_backward_avx2(
        &self,
        dims: Dims,
        b: usize,
        h: usize,
        loaded: &[Vec<f32>; 3],
        o: &[f32],
        go: &[f32],
        lse: &[f32],
    ) -> [Vec<f32>; 3] {
        self.head_backward(dims, b, h, loaded, o, go, lse)
    }

    /// Gradients w.r.t. the scaled, rotated queries `[T, dh]`, and the rotated keys and the
    /// values, both transposed `[dh, T]`, of one head.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn head_backward(
        &self,
        dims: Dims,
        b: usize,
        h: usize,
        [q, kt, vt]: &[Vec<f32>; 3],
        o: &[f32],
        go: &[f32],
        lse: &[f32],
    ) -> [Vec<f32>; 3] {
        let Dims { t, d, dh, .. } = dims;
        let seg = self.spec.segment_of(b, t);
        let mut dq = vec![0f32; t * dh];
        let mut dkt = vec![0f32; t * dh];
        let mut dvt = vec![0f32; t * dh];
        let mut p = vec![0f32; t];
        let mut ds = vec![0f32; t];
        for i in 0..t {
            let at = (b * t + i) * d + h * dh..(b * t + i) * d + (h + 1) * dh;
            let (oi, gi) = (&o[at.clone()], &go[at]);
            let di = dot(gi, oi);
            let end = self.spec.key_end(i, t);
            let qi = &q[i * dh..(i + 1) * dh];
            scores(qi, kt, t, end, seg, i, &mut p);
            for x in &mut p[..end] {
                *x = fast_exp(*x - lse[i]);
            }
            // dP = dO_i . V_j, then dS = P (dP - D_i).
            let dsr = &mut ds[..end];
            dsr.fill(0.0);
            for (c, &gc) in gi.iter().enumerate() {
                axpy(gc, &vt[c * t..c * t + end], dsr);
            }
            for (x, pj) in dsr.iter_mut().zip(&p[..end]) {
                *x = pj * (*x - di);
            }
            for c in 0..dh {
                dq[i * dh + c] = dot(dsr, &kt[c * t..c * t + end]);
                axpy(qi[c], dsr, &mut dkt[c * t..c * t + end]);
                axpy(gi[c], &p[..end], &mut dvt[c * t..c * t + end]);
            }
        }
        [dq, dkt, dvt]
    }
}
