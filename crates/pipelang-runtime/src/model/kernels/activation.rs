//! Fused MLP activations: GELU (tanh form) and SwiGLU, elementwise over all cores.

use super::{out, slice, uninit};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

pub(crate) const CHUNK: usize = 16384;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // tanh(x) = 1 - 2 / (e^{2x} + 1), through the vectorisable exp.
    1.0 - 2.0 / (super::fast_exp(2.0 * x) + 1.0)
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
}

#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    let th = tanh(u);
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + super::fast_exp(-x))
}

struct Gelu;

simd_fn!(
    pub(crate) fn gelu_chunk(x: &[f32], y: &mut [f32]) {
        for (y, x) in y.iter_mut().zip(x) {
            *y = gelu(*x);
        }
    }
);

simd_fn!(
    pub(crate) fn gelu_grad_chunk(x: &[f32], g: &[f32], dx: &mut [f32]) {
        for ((d, x), g) in dx.iter_mut().zip(x).zip(g) {
            *d = g * gelu_grad(*x);
        }
    }
);

pub fn fused_gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let x = slice(s, l, self.name())?;
        // Every chunk is written by gelu_chunk.
        let mut y = uninit(x.len());
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(yc, xc)| gelu_chunk(xc, yc));
        out(y, l.shape().clone())
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&g.contiguous()?, &GeluBackward)?))
    }
}

struct GeluBackward;

impl CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "fused-gelu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        // Every chunk is written by gelu_grad_chunk.
        let mut dx = uninit(x.len());
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(dc, (xc, gc))| gelu_grad_chunk(xc, gc, dc));
        out(dx, l1.shape().clone())
    }
}

/// SwiGLU on a packed projection: `[.., 2H]` holding (gate | up) -> `silu(gate) * up`, `[.., H]`.
struct SwiGlu;

pub fn fused_swiglu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(SwiGlu)
}

fn halves(l: &Layout, op: &str) -> Result<(usize, Shape)> {
    let dims = l.shape().dims();
    let Some(&w2) = dims.last() else {
        bail!("{op}: expects a tensor with a last dim")
    };
    if w2 % 2 != 0 {
        bail!("{op}: last dim {w2} is not (gate | up)");
    }
    let mut o = dims.to_vec();
    *o.last_mut().expect("checked above") = w2 / 2;
    Ok((w2 / 2, Shape::from(o)))
}

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let x = slice(s, l, self.name())?;
        let (h, shape) = halves(l, self.name())?;
        let rows = (CHUNK / (2 * h)).max(1);
        let mut y = vec![0f32; x.len() / 2];
        y.par_chunks_mut(rows * h)
            .zip(x.par_chunks(rows * 2 * h))
            .for_each(|(yc, xc)| {
                for (yr, xr) in yc.chunks_exact_mut(h).zip(xc.chunks_exact(2 * h)) {
                    let (a, b) = xr.split_at(h);
                    for i in 0..h {
                        yr[i] = a[i] * sigmoid(a[i]) * b[i];
                    }
                }
            });
        out(y, shape)
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&g.contiguous()?, &SwiGluBackward)?))
    }
}

struct SwiGluBackward;

impl CustomOp2 for SwiGluBackward {
    fn name(&self) -> &'static str {
        "fused-swiglu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let (h, _) = halves(l1, self.name())?;
        let rows = (CHUNK / (2 * h)).max(1);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(rows * 2 * h)
            .zip(x.par_chunks(rows * 2 * h).zip(g.par_chunks(rows * h)))
            .for_each(|(dc, (xc, gc))| {
                for ((dr, xr), gr) in dc
                    .chunks_exact_mut(2 * h)
                    .zip(xc.chunks_exact(2 * h))
                    .zip(gc.chunks_exact(h))
                {
                    let (a, b) = xr.split_at(h);
                    let (da, db) = dr.split_at_mut(h);
                    for i in 0..h {
                        let s = sigmoid(a[i]);
                        let silu = a[i] * s;
                        db[i] = gr[i] * silu;
                        da[i] = gr[i] * b[i] * s * (1.0 + a[i] * (1.0 - s));
                    }
                }
            });
        out(dx, l1.shape().clone())
    }
}
