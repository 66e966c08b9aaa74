//! Fused multi-head self-attention with RoPE, straight from the packed `qkv` projection.
//!
//! Input `[B, T, 3D]` (queries, keys, values, each `H` heads of `D/H`), output `[B, T, D]` with
//! the heads already merged, so neither direction needs a transpose or a copy in candle. The
//! mask is causal and/or block-diagonal over segments (NaViT packing, padded prefixes). Softmax
//! statistics (log-sum-exp per query) are kept from the forward pass; the backward pass
//! recomputes the probabilities one row at a time, as flash attention does, instead of storing
//! the `T x T` matrix.

use super::gemm::{Mat, sgemm};
use super::rope::{RopeTable, rotate, rotate_back};
use super::{dot, fast_exp, max, out, slice, sum, uninit};
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

    /// Queries (pre-scaled by `1/sqrt(dh)`), keys and values of head `h` of sequence `b`,
    /// queries and keys rotated: the operands of the block matmuls.
    fn load_head(&self, qkv: &[f32], dims: Dims, b: usize, h: usize) -> Head {
        let Dims { t, d, dh, .. } = dims;
        let scale = 1.0 / (dh as f32).sqrt();
        // Every row of the three is written in the loop below.
        let (mut q, mut k, mut v) = (uninit(t * dh), uninit(t * dh), uninit(t * dh));
        for i in 0..t {
            let row = &qkv[(b * t + i) * 3 * d..(b * t + i + 1) * 3 * d];
            let (qs, ks, vs) = (
                &row[h * dh..(h + 1) * dh],
                &row[d + h * dh..d + (h + 1) * dh],
                &row[2 * d + h * dh..2 * d + (h + 1) * dh],
            );
            let at = i * dh..(i + 1) * dh;
            match &self.rope {
                Some(r) => {
                    let (c, s) = r.row(b, i, t);
                    rotate(qs, c, s, scale, &mut q[at.clone()]);
                    rotate(ks, c, s, 1.0, &mut k[at.clone()]);
                }
                None => {
                    q[at.clone()]
                        .iter_mut()
                        .zip(qs)
                        .for_each(|(o, x)| *o = x * scale);
                    k[at.clone()].copy_from_slice(ks);
                }
            }
            v[at].copy_from_slice(vs);
        }
        let (kt, vt) = (transpose(&k, t, dh), transpose(&v, t, dh));
        Head { q, k, v, kt, vt }
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

/// One head's operands: `q`, `k`, `v` row-major `[T, dh]`, and `kt`, `vt` their `[dh, T]`
/// transposes, so that every block product reads rows in place instead of packing a
/// transposed copy per block.
struct Head {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    kt: Vec<f32>,
    vt: Vec<f32>,
}

/// `x [rows, cols]` row-major -> `[cols, rows]`.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    // Written whole: every (i, j) once.
    let mut y = uninit(rows * cols);
    for (i, row) in x.chunks_exact(cols).take(rows).enumerate() {
        for (j, v) in row.iter().enumerate() {
            y[j * rows + i] = *v;
        }
    }
    y
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

/// Queries per block: a block's scores `[QB, T]` stay in L2, and causal blocks stop at their
/// last query, which skips most of the masked upper triangle.
const QB: usize = 64;

/// Scores of queries `q0..q0+qn` against keys `0..kn` into `s [qn, kn]` (`kt` is `[dh, T]`).
fn block_scores(head: &Head, dh: usize, q0: usize, qn: usize, kn: usize, s: &mut [f32]) {
    let t = head.kt.len() / dh.max(1);
    sgemm(
        qn,
        kn,
        dh,
        Mat::rows(&head.q[q0 * dh..], dh),
        Mat::rows(&head.kt, t),
        s,
        kn,
        false,
        false,
    );
}

/// Masks score row of query `i` (keys `0..kn`) and turns it into probabilities
/// `exp(s - lse)`, zero where masked.
#[inline(always)]
fn probabilities(
    spec: &AttnSpec,
    seg: Option<&[u32]>,
    i: usize,
    t: usize,
    row: &mut [f32],
    lse: f32,
) {
    let end = spec.key_end(i, t).min(row.len());
    if let Some(sg) = seg {
        for (j, x) in row[..end].iter_mut().enumerate() {
            *x = if sg[j] == sg[i] {
                fast_exp(*x - lse)
            } else {
                0.0
            };
        }
    } else {
        for x in &mut row[..end] {
            *x = fast_exp(*x - lse);
        }
    }
    row[end..].fill(0.0);
}

/// Turns the score row of query `i` (keys `0..kn`) into softmax probabilities in place, zero
/// where masked, and returns its log-sum-exp.
#[inline(always)]
fn softmax_row(spec: &AttnSpec, seg: Option<&[u32]>, i: usize, t: usize, row: &mut [f32]) -> f32 {
    let end = spec.key_end(i, t).min(row.len());
    if let Some(sg) = seg {
        for (j, x) in row[..end].iter_mut().enumerate() {
            if sg[j] != sg[i] {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    let m = max(&row[..end]);
    for x in &mut row[..end] {
        *x = fast_exp(*x - m);
    }
    let total = sum(&row[..end]);
    let inv = 1.0 / total;
    for x in &mut row[..end] {
        *x *= inv;
    }
    row[end..].fill(0.0);
    m + total.ln()
}

#[inline(always)]
fn head_forward_impl(spec: &AttnSpec, dims: Dims, b: usize, head: &Head) -> (Vec<f32>, Vec<f32>) {
    let Dims { t, dh, .. } = dims;
    let v = &head.v;
    let seg = spec.segment_of(b, t);
    // Each query block's rows of o and lse are written by its product and softmax; s is
    // written by block_scores before each use.
    let (mut o, mut lse, mut s) = (uninit(t * dh), uninit(t), uninit(QB.min(t) * t));
    for q0 in (0..t).step_by(QB) {
        let qn = QB.min(t - q0);
        let kn = if spec.causal { q0 + qn } else { t };
        let s = &mut s[..qn * kn];
        block_scores(head, dh, q0, qn, kn, s);
        for (r, row) in s.chunks_exact_mut(kn).enumerate() {
            let i = q0 + r;
            lse[i] = softmax_row(spec, seg, i, t, row);
        }
        sgemm(
            qn,
            dh,
            kn,
            Mat::rows(s, kn),
            Mat::rows(v, dh),
            &mut o[q0 * dh..],
            dh,
            false,
            false,
        );
    }
    (o, lse)
}

#[target_feature(enable = "avx2,fma")]
fn head_forward_avx2(spec: &AttnSpec, dims: Dims, b: usize, head: &Head) -> (Vec<f32>, Vec<f32>) {
    head_forward_impl(spec, dims, b, head)
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn head_forward_avx512(spec: &AttnSpec, dims: Dims, b: usize, head: &Head) -> (Vec<f32>, Vec<f32>) {
    head_forward_impl(spec, dims, b, head)
}

fn head_forward(spec: &AttnSpec, dims: Dims, b: usize, head: &Head) -> (Vec<f32>, Vec<f32>) {
    if super::gemm::has_avx512() {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { head_forward_avx512(spec, dims, b, head) }
    } else if super::has_avx2() {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { head_forward_avx2(spec, dims, b, head) }
    } else {
        head_forward_impl(spec, dims, b, head)
    }
}

impl CustomOp1 for Forward {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
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
        // Every head's columns of every row are copied in.
        let mut o = uninit(b * t * d);
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
        let _time = super::prof::span(self.name());
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
                if super::gemm::has_avx512() {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    unsafe { self.head_backward_avx512(dims, bi, hi, &loaded, o, go, lse) }
                } else if super::has_avx2() {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    unsafe { self.head_backward_avx2(dims, bi, hi, &loaded, o, go, lse) }
                } else {
                    self.head_backward(dims, bi, hi, &loaded, o, go, lse)
                }
            })
            .collect();
        // Every head's q, k and v columns of every row are written.
        let mut gq = uninit(b * t * 3 * d);
        gq.par_chunks_mut(t * 3 * d)
            .enumerate()
            .for_each(|(bi, gb)| {
                for (hi, [dq, dk, dv]) in grads[bi * h..(bi + 1) * h].iter().enumerate() {
                    for i in 0..t {
                        let row = &mut gb[i * 3 * d..(i + 1) * 3 * d];
                        let src = i * dh..(i + 1) * dh;
                        let (qd, rest) = row.split_at_mut(d);
                        let (kd, vd) = rest.split_at_mut(d);
                        let cols = hi * dh..(hi + 1) * dh;
                        let (qd, kd) = (&mut qd[cols.clone()], &mut kd[cols.clone()]);
                        match &self.spec.rope {
                            Some(r) => {
                                let (c, s) = r.row(bi, i, t);
                                rotate_back(&dq[src.clone()], c, s, scale, qd);
                                rotate_back(&dk[src.clone()], c, s, 1.0, kd);
                            }
                            None => {
                                qd.iter_mut()
                                    .zip(&dq[src.clone()])
                                    .for_each(|(o, x)| *o = x * scale);
                                kd.copy_from_slice(&dk[src.clone()]);
                            }
                        }
                        vd[cols].copy_from_slice(&dv[src]);
                    }
                }
            });
        out(gq, l1.shape().clone())
    }
}

impl Backward {
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn head_backward_avx512(
        &self,
        dims: Dims,
        b: usize,
        h: usize,
        loaded: &Head,
        o: &[f32],
        go: &[f32],
        lse: &[f32],
    ) -> [Vec<f32>; 3] {
        self.head_backward(dims, b, h, loaded, o, go, lse)
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn head_backward_avx2(
        &self,
        dims: Dims,
        b: usize,
        h: usize,
        loaded: &Head,
        o: &[f32],
        go: &[f32],
        lse: &[f32],
    ) -> [Vec<f32>; 3] {
        self.head_backward(dims, b, h, loaded, o, go, lse)
    }

    /// Gradients w.r.t. the scaled, rotated queries, the rotated keys and the values of one
    /// head, each `[T, dh]`. Per block of queries: recompute P from the saved log-sum-exp, then
    /// dP = dO V^T, dS = P (dP - rowsum(dO O)), dQ = dS K, dK += dS^T Q, dV += P^T dO.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn head_backward(
        &self,
        dims: Dims,
        b: usize,
        h: usize,
        head: &Head,
        o: &[f32],
        go: &[f32],
        lse: &[f32],
    ) -> [Vec<f32>; 3] {
        let Dims { t, d, dh, .. } = dims;
        let (q, k) = (&head.q, &head.k);
        let seg = self.spec.segment_of(b, t);
        // Every row is written in the loop below.
        let (mut gh, mut di) = (uninit(t * dh), uninit(t));
        for i in 0..t {
            let at = (b * t + i) * d + h * dh..(b * t + i) * d + (h + 1) * dh;
            gh[i * dh..(i + 1) * dh].copy_from_slice(&go[at.clone()]);
            di[i] = dot(&go[at.clone()], &o[at]);
        }
        // Each query block's rows are overwritten by its product; dk and dv accumulate.
        let mut dq = uninit(t * dh);
        let mut dk = vec![0f32; t * dh];
        let mut dv = vec![0f32; t * dh];
        // Written by block_scores and the dP product before each use.
        let (mut p, mut ds) = (uninit(QB.min(t) * t), uninit(QB.min(t) * t));
        for q0 in (0..t).step_by(QB) {
            let qn = QB.min(t - q0);
            let kn = if self.spec.causal { q0 + qn } else { t };
            let (p, ds) = (&mut p[..qn * kn], &mut ds[..qn * kn]);
            block_scores(head, dh, q0, qn, kn, p);
            for (r, row) in p.chunks_exact_mut(kn).enumerate() {
                probabilities(&self.spec, seg, q0 + r, t, row, lse[q0 + r]);
            }
            let g_blk = &gh[q0 * dh..(q0 + qn) * dh];
            sgemm(
                qn,
                kn,
                dh,
                Mat::rows(g_blk, dh),
                Mat::rows(&head.vt, t),
                ds,
                kn,
                false,
                false,
            );
            for (r, (dr, pr)) in ds.chunks_exact_mut(kn).zip(p.chunks_exact(kn)).enumerate() {
                let dd = di[q0 + r];
                for (x, pj) in dr.iter_mut().zip(pr) {
                    *x = pj * (*x - dd);
                }
            }
            let q_blk = &q[q0 * dh..(q0 + qn) * dh];
            let ds = &*ds;
            let p = &*p;
            sgemm(
                qn,
                dh,
                kn,
                Mat::rows(ds, kn),
                Mat::rows(k, dh),
                &mut dq[q0 * dh..],
                dh,
                false,
                false,
            );
            sgemm(
                kn,
                dh,
                qn,
                Mat::cols(ds, kn),
                Mat::rows(q_blk, dh),
                &mut dk,
                dh,
                true,
                false,
            );
            sgemm(
                kn,
                dh,
                qn,
                Mat::cols(p, kn),
                Mat::rows(g_blk, dh),
                &mut dv,
                dh,
                true,
                false,
            );
        }
        [dq, dk, dv]
    }
}
