//! Fused softmax + cross-entropy over rows of logits with per-row target and weight.
//!
//! The loss is `sum_i w_i (logsumexp(z_i) - z_i[t_i])`: weights carry both the mask (0 for
//! image placeholders, padding and the last position) and the normalisation (1 / count), so
//! the op never materialises probabilities, one-hot targets or a shifted copy of the logits.

use super::{out, rows_per_task, slice};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;
use std::sync::Arc;

#[derive(Clone)]
struct Rows {
    targets: Arc<Vec<u32>>,
    weights: Arc<Vec<f32>>,
}

/// `logits [N, V]` -> scalar weighted cross-entropy.
pub fn fused_cross_entropy(logits: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Tensor> {
    let (n, v) = logits.dims2()?;
    if targets.len() != n || weights.len() != n {
        bail!(
            "cross-entropy: {n} rows but {} targets and {} weights",
            targets.len(),
            weights.len()
        );
    }
    if let Some(t) = targets
        .iter()
        .zip(weights)
        .find(|(t, w)| **w != 0.0 && **t as usize >= v)
    {
        bail!(
            "cross-entropy: target {} outside the vocabulary of {v}",
            t.0
        );
    }
    let rows = Rows {
        targets: Arc::new(targets.to_vec()),
        weights: Arc::new(weights.to_vec()),
    };
    logits.contiguous()?.apply_op1(rows)
}

simd_fn!(
    /// `log(sum(exp(row)))`, with independent accumulators so the exps vectorise (a single
    /// running sum is a sequential dependency the compiler may not reorder).
    fn lse(row: &[f32]) -> f32 {
        let m = super::max(row);
        let mut acc = [0f32; 16];
        let mut chunks = row.chunks_exact(16);
        for c in &mut chunks {
            for l in 0..16 {
                acc[l] += super::fast_exp(c[l] - m);
            }
        }
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|x| super::fast_exp(x - m))
            .sum();
        m + (super::sum(&acc) + tail).ln()
    }
);

simd_fn!(
    /// `dr = w * softmax(zr)` given the row's log-sum-exp `m`.
    fn softmax_row(zr: &[f32], m: f32, w: f32, dr: &mut [f32]) {
        for (d, x) in dr.iter_mut().zip(zr) {
            *d = w * super::fast_exp(x - m);
        }
    }
);

impl CustomOp1 for Rows {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(CustomOp1::name(self));
        let z = slice(s, l, "fused-cross-entropy")?;
        let (_, v) = l.shape().dims2()?;
        let rows = rows_per_task(v);
        let parts: Vec<f64> = z
            .par_chunks(rows * v)
            .enumerate()
            .map(|(c, zc)| {
                let mut acc = 0f64;
                for (r, zr) in zc.chunks_exact(v).enumerate() {
                    let i = c * rows + r;
                    let w = self.weights[i];
                    if w != 0.0 {
                        acc += (w * (lse(zr) - zr[self.targets[i] as usize])) as f64;
                    }
                }
                acc
            })
            .collect();
        out(vec![parts.iter().sum::<f64>() as f32], ())
    }

    fn bwd(&self, z: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(z.apply_op2_no_bwd(&g.contiguous()?, self)?))
    }
}

/// Backward: `(logits, dloss)` -> `dloss * w_i (softmax(z_i) - onehot(t_i))`.
impl CustomOp2 for Rows {
    fn name(&self) -> &'static str {
        "fused-cross-entropy-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(CustomOp2::name(self));
        let z = slice(s1, l1, "fused-cross-entropy-bwd")?;
        let g = slice(s2, l2, "fused-cross-entropy-bwd")?[0];
        let (_, v) = l1.shape().dims2()?;
        let rows = rows_per_task(v);
        let mut dz = vec![0f32; z.len()];
        dz.par_chunks_mut(rows * v)
            .zip(z.par_chunks(rows * v))
            .enumerate()
            .for_each(|(c, (dc, zc))| {
                for (r, (dr, zr)) in dc.chunks_exact_mut(v).zip(zc.chunks_exact(v)).enumerate() {
                    let i = c * rows + r;
                    let w = self.weights[i] * g;
                    if w == 0.0 {
                        continue;
                    }
                    softmax_row(zr, lse(zr), w, dr);
                    dr[self.targets[i] as usize] -= w;
                }
            });
        out(dz, l1.shape().clone())
    }
}
