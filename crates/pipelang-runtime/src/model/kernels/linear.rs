//! Fused linear map `y = x W^T` as one op with its own backward pass.
//!
//! Through candle, `x.matmul(&w.t())` is two graph nodes (a transpose and a matmul); in the
//! backward pass each costs a zeroed gradient buffer and an add, and the weight gradient
//! arrives as a strided transpose. Here the weight gradient `g^T x` is computed directly in
//! the weight's layout, and every product runs on the packed AVX-512 kernel of [`super::gemm`].

use super::activation::{CHUNK, gelu_chunk, gelu_grad_chunk};
use super::gemm::{Mat, sgemm};
use super::{out, slice, uninit};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// `x [.., in]` times `w [out, in]` transposed: `[.., out]`.
pub fn fused_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}

/// Rows and width of `x [.., in]`, checked against `w [out, in]`.
fn dims(op: &str, x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    let (out_f, in_f) = match *w.shape().dims() {
        [o, i] => (o, i),
        _ => bail!("{op}: weight {:?} is not [out, in]", w.shape()),
    };
    let xd = x.shape().dims();
    if xd.last() != Some(&in_f) {
        bail!("{op}: input {:?} does not end in {in_f}", x.shape());
    }
    Ok((x.shape().elem_count() / in_f.max(1), in_f, out_f))
}

/// `x W^T` on the packed kernel, and the output shape `[.., out]`.
fn project(
    op: &str,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let (x, w) = (slice(s1, l1, op)?, slice(s2, l2, op)?);
    let (n, i, o) = dims(op, l1, l2)?;
    // Written whole by the product (C is overwritten, never read).
    let mut y = uninit(n * o);
    sgemm(
        n,
        o,
        i,
        Mat::rows(x, i),
        Mat::cols(w, i),
        &mut y,
        o,
        false,
        true,
    );
    let mut shape = l1.shape().dims().to_vec();
    *shape.last_mut().expect("checked rank") = o;
    Ok((y, shape))
}

/// Gradients of `x` and `W` from the gradient `g` of `x W^T`.
fn input_and_weight_grads(
    g: &Tensor,
    x: &Tensor,
    w: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let dx = g.apply_op2_no_bwd(w, &InputGrad)?;
    let dw = g.apply_op2_no_bwd(x, &WeightGrad)?;
    Ok((Some(dx), Some(dw)))
}

struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (y, shape) = project(self.name(), s1, l1, s2, l2)?;
        out(y, shape)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        input_and_weight_grads(&g.contiguous()?, x, w)
    }
}

/// `dx = g W`: `g [.., out]`, `w [out, in]` -> `[.., in]`.
struct InputGrad;

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "fused-linear-dx"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (g, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let [o, i] = *l2.shape().dims() else {
            bail!("{}: weight {:?} is not [out, in]", self.name(), l2.shape())
        };
        let n = g.len() / o.max(1);
        // Written whole by the product.
        let mut dx = uninit(n * i);
        sgemm(
            n,
            i,
            o,
            Mat::rows(g, o),
            Mat::rows(w, i),
            &mut dx,
            i,
            false,
            true,
        );
        let mut shape = l1.shape().dims().to_vec();
        *shape.last_mut().expect("checked rank") = i;
        out(dx, shape)
    }
}

/// `dW = g^T x`: `g [.., out]`, `x [.., in]` -> `[out, in]`.
struct WeightGrad;

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "fused-linear-dw"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (g, x) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let (Some(&o), Some(&i)) = (l1.shape().dims().last(), l2.shape().dims().last()) else {
            bail!("{}: scalar arguments", self.name())
        };
        let n = g.len() / o.max(1);
        // Written whole by the product.
        let mut dw = uninit(o * i);
        sgemm(
            o,
            i,
            n,
            Mat::cols(g, o),
            Mat::rows(x, i),
            &mut dw,
            i,
            false,
            true,
        );
        out(dw, (o, i))
    }
}

/// `gelu(x W^T)` (tanh form) as one op: the MLP's up projection and activation without the
/// `[.., out]` pre-activation as a graph node of its own, whose gradient would cost a zeroed
/// buffer and an add the size of the MLP's hidden layer. The pre-activation is kept for the
/// backward pass.
pub fn fused_linear_gelu(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(
        &w.contiguous()?,
        LinearGelu {
            pre: Arc::new(Mutex::new(None)),
        },
    )
}

struct LinearGelu {
    pre: Arc<Mutex<Option<Arc<Vec<f32>>>>>,
}

impl CustomOp2 for LinearGelu {
    fn name(&self) -> &'static str {
        "fused-linear-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let (h, shape) = project(self.name(), s1, l1, s2, l2)?;
        // Every chunk is written by gelu_chunk.
        let mut y = uninit(h.len());
        y.par_chunks_mut(CHUNK)
            .zip(h.par_chunks(CHUNK))
            .for_each(|(yc, hc)| gelu_chunk(hc, yc));
        *self.pre.lock().expect("linear-gelu lock") = Some(Arc::new(h));
        out(y, shape)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let pre = self.pre.lock().expect("linear-gelu lock").clone();
        let Some(pre) = pre else {
            bail!("fused-linear-gelu: backward without a forward pass")
        };
        let dh = g.contiguous()?.apply_op1_no_bwd(&GeluGradSaved { pre })?;
        input_and_weight_grads(&dh, x, w)
    }
}

/// `g * gelu'(h)` with the pre-activation `h` saved by the forward pass.
struct GeluGradSaved {
    pre: Arc<Vec<f32>>,
}

impl CustomOp1 for GeluGradSaved {
    fn name(&self) -> &'static str {
        "fused-linear-gelu-bwd"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let _time = super::prof::span(self.name());
        let g = slice(s, l, self.name())?;
        if g.len() != self.pre.len() {
            bail!(
                "{}: gradient of {} values for {} pre-activations",
                self.name(),
                g.len(),
                self.pre.len()
            );
        }
        // Every chunk is written by gelu_grad_chunk.
        let mut dh = uninit(g.len());
        dh.par_chunks_mut(CHUNK)
            .zip(self.pre.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(dc, (hc, gc))| gelu_grad_chunk(hc, gc, dc));
        out(dh, l.shape().clone())
    }
}
