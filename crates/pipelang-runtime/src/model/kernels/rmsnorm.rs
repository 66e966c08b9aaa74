//! Fused RMSNorm: `y = x / sqrt(mean(x^2) + eps) * w` over the last dimension.

use super::{dot, dot3, out, rows_per_task, slice, uninit};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

struct Forward {
    eps: f32,
}

pub fn fused_rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Forward { eps: eps as f32 })
}

fn width(lx: &Layout, lw: &Layout, op: &str) -> Result<usize> {
    let d = lx.shape().dims().last().copied().unwrap_or(0);
    if lw.shape().dims() != [d] {
        bail!(
            "{op}: weight {:?} does not match the last dim of {:?}",
            lw.shape(),
            lx.shape()
        );
    }
    Ok(d)
}

#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    1.0 / (dot(row, row) / row.len() as f32 + eps).sqrt()
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (x, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let d = width(l1, l2, self.name())?;
        // Every row is written below.
        let mut y = uninit(x.len());
        let chunk = rows_per_task(d) * d;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(yc, xc)| {
                for (yr, xr) in yc.chunks_exact_mut(d).zip(xc.chunks_exact(d)) {
                    let r = inv_rms(xr, self.eps);
                    for ((yi, xi), wi) in yr.iter_mut().zip(xr).zip(w) {
                        *yi = xi * r * wi;
                    }
                }
            });
        out(y, l1.shape().clone())
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, w) = (x.contiguous()?, w.contiguous()?);
        let both = x.apply_op3_no_bwd(&w, &g.contiguous()?, &Backward { eps: self.eps })?;
        let n = x.elem_count();
        let dx = both.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = both.narrow(0, n, w.elem_count())?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw)))
    }
}

/// Returns `dx` and `dw` concatenated in one flat tensor (a custom op has one output).
struct Backward {
    eps: f32,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "fused-rms-norm-bwd"
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
        let (x, w, g) = (
            slice(s1, l1, self.name())?,
            slice(s2, l2, self.name())?,
            slice(s3, l3, self.name())?,
        );
        let d = width(l1, l2, self.name())?;
        let n = x.len();
        let mut res = vec![0f32; n + d];
        let (dx, dw_out) = res.split_at_mut(n);
        let chunk = rows_per_task(d) * d;
        // dx = r (w g) - x r^3 / d * sum(w g x); dw = sum over rows of g x r, summed per chunk
        // and then over chunks in order so the result does not depend on scheduling.
        let partial: Vec<Vec<f32>> = dx
            .par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .map(|(dxc, (xc, gc))| {
                let mut dw = vec![0f32; d];
                backward_rows(xc, gc, w, self.eps, dxc, &mut dw);
                dw
            })
            .collect();
        for p in partial {
            dw_out.iter_mut().zip(&p).for_each(|(o, v)| *o += v);
        }
        out(res, n + d)
    }
}

simd_fn!(
    /// The rows of one task: `dx` written, `x g r` added into `dw` (both `d` wide).
    fn backward_rows(xc: &[f32], gc: &[f32], w: &[f32], eps: f32, dxc: &mut [f32], dw: &mut [f32]) {
        let d = w.len();
        for ((dxr, xr), gr) in dxc
            .chunks_exact_mut(d)
            .zip(xc.chunks_exact(d))
            .zip(gc.chunks_exact(d))
        {
            let r = inv_rms(xr, eps);
            let c = r * r * r * dot3(w, gr, xr) / d as f32;
            for i in 0..d {
                dw[i] += gr[i] * xr[i] * r;
                dxr[i] = r * w[i] * gr[i] - c * xr[i];
            }
        }
    }
);
