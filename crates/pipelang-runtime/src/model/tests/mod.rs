//! Unit tests of the models: fused kernels against the reference, finite differences, gradient
//! reach, losses against hand-computed values, NaViT independence, optimiser state.

mod coca;
mod decoder;
mod kernels;
mod modern;
mod optim;
mod speed;
mod vision;

use candle_core::{Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(super) fn randn(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

pub(super) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub(super) fn max_abs(a: &Tensor) -> f32 {
    a.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()))
}

/// Central finite differences of `loss` w.r.t. `count` entries of `var`, compared with the
/// analytic gradient `grad`.
pub(super) fn check_fd(
    var: &Var,
    grad: &Tensor,
    count: usize,
    eps: f32,
    tol: f32,
    loss: &dyn Fn() -> Result<f32>,
) {
    let base = var.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let g = grad.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..count {
        let i = rng.random_range(0..base.len());
        let at = |d: f32| {
            let mut v = base.clone();
            v[i] += d;
            var.set(&Tensor::from_vec(v, var.shape(), var.device()).unwrap())
                .unwrap();
            loss().unwrap()
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!(
            (fd - g[i]).abs() <= tol * (1.0 + g[i].abs()),
            "entry {i}: finite difference {fd}, analytic {}",
            g[i]
        );
    }
    var.set(&Tensor::from_vec(base, var.shape(), var.device()).unwrap())
        .unwrap();
}
