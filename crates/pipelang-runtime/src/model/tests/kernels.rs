//! Each fused op against its reference (values and gradients, several shapes), and against
//! finite differences.

use super::{check_fd, max_abs, max_abs_diff, randn};
use crate::model::kernels::attention::{AttnSpec, fused_attention};
use crate::model::kernels::linear::{fused_linear, fused_linear_gelu};
use crate::model::kernels::rope::RopeTable;
use crate::model::kernels::{activation, rmsnorm, xent};
use crate::model::reference;
use candle_core::{Result, Tensor, Var};
use pipelang::plan::rope::{Rope, RopeScaling};
use std::sync::Arc;

/// Compares `fused` and `reference` on `x`: outputs, and gradients of `sum(y * r)`.
fn compare(
    x: &Tensor,
    fused: &dyn Fn(&Tensor) -> Result<Tensor>,
    refr: &dyn Fn(&Tensor) -> Result<Tensor>,
    tol: f32,
) {
    let v = Var::from_tensor(x).unwrap();
    let yf = fused(v.as_tensor()).unwrap();
    let yr = refr(v.as_tensor()).unwrap();
    let scale = 1.0 + max_abs(&yr);
    assert!(
        max_abs_diff(&yf, &yr) <= tol * scale,
        "values differ by {}",
        max_abs_diff(&yf, &yr)
    );
    let r = randn(yr.dims(), 99, 1.0);
    let gf = (yf * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gr = (yr * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let (gf, gr) = (
        gf.get(v.as_tensor()).unwrap(),
        gr.get(v.as_tensor()).unwrap(),
    );
    let gscale = 1.0 + max_abs(gr);
    assert!(
        max_abs_diff(gf, gr) <= tol * gscale,
        "gradients differ by {}",
        max_abs_diff(gf, gr)
    );
    assert!(max_abs(gf) > 0.0, "the fused gradient is zero");
}

fn specs(b: usize, t: usize, dh: usize, heads: usize) -> Vec<AttnSpec> {
    let segments: Vec<u32> = (0..b * t).map(|i| ((i % t) * 3 / t) as u32).collect();
    let rows: Vec<u32> = (0..b * t).map(|i| ((i % t) / 3) as u32).collect();
    let cols: Vec<u32> = (0..b * t).map(|i| ((i % t) % 3) as u32).collect();
    let rope1 = Some(RopeTable::new_1d(t, dh, 10_000.0));
    let rope2 = if dh.is_multiple_of(4) {
        Some(RopeTable::new_2d(&rows, &cols, dh, 100.0))
    } else {
        rope1.clone()
    };
    vec![
        AttnSpec {
            heads,
            seq: t,
            causal: true,
            segments: None,
            rope: rope1.clone(),
        },
        AttnSpec {
            heads,
            seq: t,
            causal: false,
            segments: None,
            rope: None,
        },
        AttnSpec {
            heads,
            seq: t,
            causal: true,
            segments: Some(Arc::new(segments.clone())),
            rope: rope1,
        },
        AttnSpec {
            heads,
            seq: t,
            causal: false,
            segments: Some(Arc::new(segments)),
            rope: rope2,
        },
        // Scaled frequencies and YaRN's attention factor in the table: both paths read it.
        AttnSpec {
            heads,
            seq: t,
            causal: true,
            segments: None,
            rope: Some(RopeTable::for_rope(t, dh, &yarn())),
        },
    ]
}

/// YaRN over a short original context, so that small heads have pairs on both sides of the
/// ramp.
fn yarn() -> Rope {
    Rope {
        base: 10_000.0,
        scaling: RopeScaling::Yarn {
            factor: 4.0,
            original: 16,
            alpha: 1.0,
            beta: 32.0,
        },
    }
}

/// A table row is the cosine and sine of position x frequency, times the attention factor:
/// DeepSeek-V3's YaRN (s = 40 from 4K, pairs 0..=20 kept, 46.. divided by 40, see
/// `pipelang/tests/plan_rope.rs` for the band) on a 128-wide head, and Llama 3.1's scaling.
#[test]
fn rope_tables_hold_the_scaled_frequencies_and_yarns_temperature() {
    let y = Rope {
        base: 10_000.0,
        scaling: RopeScaling::Yarn {
            factor: 40.0,
            original: 4096,
            alpha: 1.0,
            beta: 32.0,
        },
    };
    let t = RopeTable::for_rope(9, 128, &y);
    let m = 0.1 * 40f64.ln() + 1.0;
    let at = |p: usize, i: usize| (t.cos[p * 64 + i] as f64, t.sin[p * 64 + i] as f64);
    let f10 = 10_000f64.powf(-20.0 / 128.0);
    let f50 = 10_000f64.powf(-100.0 / 128.0) / 40.0;
    let f33 = 10_000f64.powf(-66.0 / 128.0) * 0.5125;
    for (p, i, f) in [(7, 10, f10), (8, 50, f50), (5, 33, f33)] {
        let (c, s) = at(p, i);
        assert!((c - (p as f64 * f).cos() * m).abs() < 1e-6, "cos {p} {i}");
        assert!((s - (p as f64 * f).sin() * m).abs() < 1e-6, "sin {p} {i}");
    }
    let l = Rope {
        base: 500_000.0,
        scaling: RopeScaling::Llama3 {
            factor: 8.0,
            low_freq: 1.0,
            high_freq: 4.0,
            original: 8192,
        },
    };
    let t = RopeTable::for_rope(4, 128, &l);
    // Pair 40: wavelength above 8192, divided by 8; no temperature.
    let f40 = 500_000f64.powf(-80.0 / 128.0) / 8.0;
    let (c, s) = (t.cos[3 * 64 + 40] as f64, t.sin[3 * 64 + 40] as f64);
    assert!((c - (3.0 * f40).cos()).abs() < 1e-6 && (s - (3.0 * f40).sin()).abs() < 1e-6);
    // The plain table is the unscaled one.
    assert_eq!(
        *RopeTable::for_rope(5, 16, &Rope::plain(10_000.0)),
        *RopeTable::new_1d(5, 16, 10_000.0)
    );
}

#[test]
fn attention_matches_reference() {
    // 150 tokens span three query blocks, the last one partial.
    for (b, t, heads, dh) in [
        (1, 1, 1, 2),
        (2, 7, 2, 4),
        (1, 13, 3, 8),
        (2, 33, 2, 16),
        (1, 150, 2, 32),
    ] {
        let x = randn(&[b, t, 3 * heads * dh], (b * t * heads) as u64, 1.5);
        for spec in specs(b, t, dh, heads) {
            compare(
                &x,
                &|x| fused_attention(x, &spec),
                &|x| reference::attention(x, &spec),
                2e-5,
            );
        }
    }
}

#[test]
fn attention_finite_differences() {
    let (b, t, heads, dh) = (2, 5, 2, 4);
    let v = Var::from_tensor(&randn(&[b, t, 3 * heads * dh], 3, 1.0)).unwrap();
    let r = randn(&[b, t, heads * dh], 4, 1.0);
    for spec in specs(b, t, dh, heads) {
        let loss = || {
            fused_attention(v.as_tensor(), &spec)?
                .mul(&r)?
                .sum_all()?
                .to_scalar::<f32>()
        };
        let g = fused_attention(v.as_tensor(), &spec)
            .unwrap()
            .mul(&r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        check_fd(&v, g.get(v.as_tensor()).unwrap(), 25, 1e-2, 2e-3, &loss);
    }
}

#[test]
fn rms_norm_matches_reference_and_finite_differences() {
    for shape in [[1usize, 1, 3], [2, 5, 8], [3, 7, 130]] {
        let d = shape[2];
        let w = randn(&[d], 5, 1.0);
        let x = randn(&shape, 6, 2.0);
        compare(
            &x,
            &|x| rmsnorm::fused_rms_norm(x, &w, 1e-5),
            &|x| reference::rms_norm(x, &w, 1e-5),
            1e-5,
        );
        // ... and w.r.t. the weight.
        compare(
            &w,
            &|w| rmsnorm::fused_rms_norm(&x, w, 1e-5),
            &|w| reference::rms_norm(&x, w, 1e-5),
            1e-5,
        );
    }
    let x = Var::from_tensor(&randn(&[3, 6], 8, 1.0)).unwrap();
    let w = Var::from_tensor(&randn(&[6], 9, 1.0)).unwrap();
    let r = randn(&[3, 6], 10, 1.0);
    let loss = || {
        rmsnorm::fused_rms_norm(&x, &w, 1e-5)?
            .mul(&r)?
            .sum_all()?
            .to_scalar::<f32>()
    };
    let g = rmsnorm::fused_rms_norm(&x, &w, 1e-5)
        .unwrap()
        .mul(&r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    check_fd(&x, g.get(&x).unwrap(), 12, 1e-2, 2e-3, &loss);
    check_fd(&w, g.get(&w).unwrap(), 6, 1e-2, 2e-3, &loss);
}

#[test]
fn activations_match_reference_and_finite_differences() {
    for shape in [[1usize, 2], [4, 6], [33, 70]] {
        let x = randn(&shape, 11, 4.0);
        compare(&x, &activation::fused_gelu, &reference::gelu, 1e-5);
        compare(&x, &activation::fused_swiglu, &reference::swiglu, 1e-5);
    }
    let x = Var::from_tensor(&randn(&[3, 8], 12, 3.0)).unwrap();
    for op in [
        activation::fused_gelu as fn(&Tensor) -> Result<Tensor>,
        activation::fused_swiglu,
    ] {
        let r = randn(op(&x).unwrap().dims(), 13, 1.0);
        let loss = || op(&x)?.mul(&r)?.sum_all()?.to_scalar::<f32>();
        let g = op(&x)
            .unwrap()
            .mul(&r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        check_fd(&x, g.get(&x).unwrap(), 12, 1e-2, 2e-3, &loss);
    }
}

#[test]
fn cross_entropy_matches_reference_and_finite_differences() {
    for (n, v) in [(1usize, 2usize), (5, 7), (40, 300)] {
        let targets: Vec<u32> = (0..n).map(|i| ((i * 7 + 3) % v) as u32).collect();
        let weights: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 1 { 0.0 } else { 1.0 / n as f32 })
            .collect();
        let x = randn(&[n, v], 14, 5.0);
        compare(
            &x,
            &|x| xent::fused_cross_entropy(x, &targets, &weights),
            &|x| reference::cross_entropy(x, &targets, &weights),
            1e-5,
        );
    }
    let x = Var::from_tensor(&randn(&[4, 5], 15, 2.0)).unwrap();
    let (t, w) = ([1u32, 4, 0, 2], [0.5f32, 0.0, 0.25, 0.25]);
    let loss = || xent::fused_cross_entropy(&x, &t, &w)?.to_scalar::<f32>();
    let g = xent::fused_cross_entropy(&x, &t, &w)
        .unwrap()
        .backward()
        .unwrap();
    check_fd(&x, g.get(&x).unwrap(), 15, 1e-2, 2e-3, &loss);
}

#[test]
fn cross_entropy_rejects_targets_outside_the_vocabulary() {
    let x = randn(&[2, 3], 1, 1.0);
    let err = xent::fused_cross_entropy(&x, &[0, 3], &[0.5, 0.5])
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
}

#[test]
fn linear_matches_matmul_in_values_and_both_gradients() {
    // Shapes around the 12 x 32 micro-tile and the 256-deep packing block, and a 3-D input.
    for (dims, out) in [
        (vec![1usize, 1], 1usize),
        (vec![5, 7], 3),
        (vec![13, 33], 40),
        (vec![2, 50, 300], 70),
        (vec![600, 20], 33),
    ] {
        let d_in = *dims.last().unwrap();
        let x = Var::from_tensor(&randn(&dims, dims.iter().sum::<usize>() as u64, 1.0)).unwrap();
        let w = Var::from_tensor(&randn(&[out, d_in], out as u64, 1.0)).unwrap();
        let yf = fused_linear(x.as_tensor(), w.as_tensor()).unwrap();
        let yr = x
            .as_tensor()
            .broadcast_matmul(&w.as_tensor().t().unwrap())
            .unwrap();
        let tol = 1e-5 * (d_in as f32).sqrt();
        assert!(max_abs_diff(&yf, &yr) <= tol * (1.0 + max_abs(&yr)));
        let r = randn(yr.dims(), 3, 1.0);
        let gf = (yf * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (yr * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            let (a, b) = (
                gf.get(v.as_tensor()).unwrap(),
                gr.get(v.as_tensor()).unwrap(),
            );
            let rows = dims.iter().product::<usize>() / d_in;
            let tol = 1e-5 * ((rows + out) as f32).sqrt();
            assert!(
                max_abs_diff(a, b) <= tol * (1.0 + max_abs(b)),
                "{dims:?} x {out}: gradients differ by {}",
                max_abs_diff(a, b)
            );
            assert!(max_abs(a) > 0.0);
        }
    }
}

#[test]
fn linear_rejects_mismatched_widths() {
    let x = randn(&[4, 5], 1, 1.0);
    let w = randn(&[3, 6], 2, 1.0);
    let err = fused_linear(&x, &w).unwrap_err().to_string();
    assert!(err.contains("does not end in 6"), "{err}");
}

#[test]
fn linear_gelu_matches_reference_in_values_and_both_gradients() {
    for (rows, d_in, out) in [
        (1usize, 1usize, 1usize),
        (7, 5, 13),
        (40, 33, 70),
        (300, 16, 40),
    ] {
        let x = Var::from_tensor(&randn(&[rows, d_in], rows as u64, 2.0)).unwrap();
        let w = Var::from_tensor(&randn(&[out, d_in], out as u64, 1.0)).unwrap();
        let yf = fused_linear_gelu(x.as_tensor(), w.as_tensor()).unwrap();
        let h = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
        let yr = reference::gelu(&h).unwrap();
        let tol = 2e-5 * (d_in as f32).sqrt();
        assert!(max_abs_diff(&yf, &yr) <= tol * (1.0 + max_abs(&yr)));
        let r = randn(yr.dims(), 5, 1.0);
        let gf = (yf * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (yr * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            let (a, b) = (
                gf.get(v.as_tensor()).unwrap(),
                gr.get(v.as_tensor()).unwrap(),
            );
            let tol = 2e-5 * ((rows + out) as f32).sqrt();
            assert!(
                max_abs_diff(a, b) <= tol * (1.0 + max_abs(b)),
                "{rows}x{d_in}x{out}: gradients differ by {}",
                max_abs_diff(a, b)
            );
            assert!(max_abs(a) > 0.0);
        }
    }
}
