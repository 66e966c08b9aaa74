//! Decoder: gradient reach (dense and MoE), finite differences, fused == reference, the
//! placeholder scatter, and a short training run on both kernel sets.

use super::{check_fd, max_abs, max_abs_diff, randn};
use crate::model::*;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

fn tiny(mlp: MlpKind, moe: Option<MoeConfig>, kernels: Kernels) -> DecoderConfig {
    DecoderConfig {
        moe,
        kernels,
        mlp_hidden: 12,
        ..DecoderConfig::dense(13, 8, 2, 2, mlp)
    }
}

fn tokens(b: usize, t: usize, vocab: usize, seed: u64) -> Tensor {
    let v: Vec<u32> = (0..b * t)
        .map(|i| ((i as u64 * 7 + seed * 3 + (i * i) as u64) % vocab as u64) as u32)
        .collect();
    Tensor::from_vec(v, (b, t), &Device::Cpu).unwrap()
}

fn build(cfg: &DecoderConfig, seed: u64) -> (VarMap, Decoder) {
    let map = VarMap::new();
    let dec = Decoder::new(seeded_var_builder(&map, seed, &Device::Cpu), cfg).unwrap();
    (map, dec)
}

fn loss(dec: &Decoder, x: &Tensor) -> Tensor {
    let out = dec.forward(x, 500.0).unwrap();
    (next_token_loss(&out.logits, x, None, dec.cfg.kernels).unwrap() + out.aux_loss).unwrap()
}

#[test]
fn every_parameter_gets_a_gradient() {
    let moe = Some(MoeConfig {
        experts: 3,
        active: 2,
        aux_weight: 0.01,
        shared: 0,
    });
    for kernels in [Kernels::Fused, Kernels::Reference] {
        for (mlp, moe) in [
            (MlpKind::Gelu, None),
            (MlpKind::SwiGlu, None),
            (MlpKind::SwiGlu, moe.clone()),
        ] {
            let (map, dec) = build(&tiny(mlp, moe.clone(), kernels), 1);
            let grads = loss(&dec, &tokens(3, 10, 13, 1)).backward().unwrap();
            let vars = named_vars(&map, "");
            assert!(vars.len() > 10);
            for (name, v) in vars {
                let g = grads
                    .get(v.as_tensor())
                    .unwrap_or_else(|| panic!("{name}: no gradient ({mlp:?}, {kernels:?})"));
                assert!(
                    max_abs(g) > 0.0,
                    "{name}: zero gradient ({mlp:?}, {kernels:?})"
                );
            }
        }
    }
}

#[test]
fn fused_and_reference_decoders_agree() {
    let moe = Some(MoeConfig {
        experts: 4,
        active: 1,
        aux_weight: 0.1,
        shared: 0,
    });
    for (mlp, moe) in [(MlpKind::Gelu, None), (MlpKind::SwiGlu, moe)] {
        let (mf, df) = build(&tiny(mlp, moe.clone(), Kernels::Fused), 2);
        let (mr, dr) = build(&tiny(mlp, moe, Kernels::Reference), 2);
        let x = tokens(2, 9, 13, 2);
        let (lf, lr) = (loss(&df, &x), loss(&dr, &x));
        assert!(max_abs_diff(&lf, &lr) < 1e-5, "{lf} vs {lr}");
        let (gf, gr) = (lf.backward().unwrap(), lr.backward().unwrap());
        for ((name, vf), (_, vr)) in named_vars(&mf, "").iter().zip(named_vars(&mr, "")) {
            let d = max_abs_diff(
                gf.get(vf.as_tensor()).unwrap(),
                gr.get(vr.as_tensor()).unwrap(),
            );
            assert!(d < 1e-4, "{name}: gradients differ by {d}");
        }
    }
}

#[test]
fn decoder_finite_differences() {
    let (map, dec) = build(&tiny(MlpKind::Gelu, None, Kernels::Fused), 3);
    let x = tokens(2, 6, 13, 3);
    let grads = loss(&dec, &x).backward().unwrap();
    let f = || loss(&dec, &x).to_scalar::<f32>();
    for (name, v) in named_vars(&map, "") {
        if [
            "embedding",
            "block0.attn.qkv.weight",
            "block1.mlp.up.weight",
            "block0.norm1.weight",
            "head.weight",
        ]
        .contains(&name.as_str())
        {
            check_fd(&v, grads.get(v.as_tensor()).unwrap(), 6, 5e-3, 5e-3, &f);
        }
    }
}

#[test]
fn rope_base_and_masks_change_the_output() {
    let (_, dec) = build(&tiny(MlpKind::Gelu, None, Kernels::Fused), 4);
    let x = tokens(1, 12, 13, 4);
    let a = dec.forward(&x, 10.0).unwrap().logits;
    let b = dec.forward(&x, 10_000.0).unwrap().logits;
    assert!(max_abs_diff(&a, &b) > 1e-4, "the RoPE base has no effect");
    // Causality: changing the last token leaves earlier logits alone.
    let mut v = x.flatten_all().unwrap().to_vec1::<u32>().unwrap();
    v[11] = (v[11] + 1) % 13;
    let y = Tensor::from_vec(v, (1, 12), &Device::Cpu).unwrap();
    let c = dec.forward(&y, 10.0).unwrap().logits;
    assert_eq!(
        max_abs_diff(&a.narrow(1, 0, 11).unwrap(), &c.narrow(1, 0, 11).unwrap()),
        0.0
    );
    assert!(max_abs_diff(&a.narrow(1, 11, 1).unwrap(), &c.narrow(1, 11, 1).unwrap()) > 0.0);
}

#[test]
fn bad_input_is_an_error() {
    let (_, dec) = build(&tiny(MlpKind::Gelu, None, Kernels::Fused), 5);
    let x = Tensor::from_vec(vec![0u32, 13], (1, 2), &Device::Cpu).unwrap();
    assert!(
        dec.forward(&x, 100.0)
            .unwrap_err()
            .to_string()
            .contains("outside the vocabulary")
    );
    let x = tokens(1, 3, 13, 0);
    assert!(dec.forward(&x, 0.5).is_err());
    let bad = DecoderConfig {
        heads: 3,
        ..tiny(MlpKind::Gelu, None, Kernels::Fused)
    };
    assert!(Decoder::new(seeded_var_builder(&VarMap::new(), 0, &Device::Cpu), &bad).is_err());
}

#[test]
fn scatter_rows_places_features_and_passes_gradients() {
    let e = randn(&[2, 3, 4], 1, 1.0);
    let f = candle_core::Var::from_tensor(&randn(&[2, 4], 2, 1.0)).unwrap();
    let y = scatter_rows(&e, &[4, 1], f.as_tensor()).unwrap();
    let flat = y.reshape((6, 4)).unwrap();
    let f0 = f.as_tensor().get(0).unwrap();
    let f1 = f.as_tensor().get(1).unwrap();
    assert_eq!(max_abs_diff(&flat.get(4).unwrap(), &f0), 0.0);
    assert_eq!(max_abs_diff(&flat.get(1).unwrap(), &f1), 0.0);
    assert_eq!(
        max_abs_diff(
            &flat.get(0).unwrap(),
            &e.reshape((6, 4)).unwrap().get(0).unwrap()
        ),
        0.0
    );
    let r = randn(&[2, 3, 4], 3, 1.0);
    let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g = g.get(f.as_tensor()).unwrap();
    let rf = r.reshape((6, 4)).unwrap();
    assert_eq!(max_abs_diff(&g.get(0).unwrap(), &rf.get(4).unwrap()), 0.0);
    assert!(scatter_rows(&e, &[6], &randn(&[1, 4], 4, 1.0)).is_err());
}

#[test]
fn loss_mask_excludes_positions() {
    let (_, dec) = build(&tiny(MlpKind::Gelu, None, Kernels::Reference), 6);
    let x = tokens(1, 6, 13, 6);
    let logits = dec.forward(&x, 100.0).unwrap().logits;
    let mask = Tensor::from_vec(vec![0f32, 1., 1., 0., 0., 1.], (1, 6), &Device::Cpu).unwrap();
    let masked = next_token_loss(&logits, &x, Some(&mask), Kernels::Fused)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    // By hand: positions 0, 1 and 4 predict the kept tokens 1, 2 and 5.
    let lp = candle_nn::ops::log_softmax(&logits.squeeze(0).unwrap(), 1)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let ids = x.flatten_all().unwrap().to_vec1::<u32>().unwrap();
    let want = -(lp[0][ids[1] as usize] + lp[1][ids[2] as usize] + lp[4][ids[5] as usize]) / 3.0;
    assert!((masked - want).abs() < 1e-5, "{masked} vs {want}");
    let none = Tensor::zeros((1, 6), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        next_token_loss(&logits, &x, Some(&none), Kernels::Fused)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );
}

/// Trains the same seeded model for 50 steps with both kernel sets and compares the losses.
fn fused_and_reference_runs_match(cfg: &dyn Fn(Kernels) -> DecoderConfig, b: usize, t: usize) {
    let mut runs = Vec::new();
    for k in [Kernels::Fused, Kernels::Reference] {
        let c = cfg(k);
        let (map, dec) = build(&c, 9);
        let mut opt = AdamW::new(named_vars(&map, ""), AdamWConfig::default()).unwrap();
        let mut losses = Vec::new();
        for step in 0..50 {
            let x = tokens(b, t, c.vocab, step % 5);
            let l = loss(&dec, &x);
            opt.step(&l.backward().unwrap(), 3e-3).unwrap();
            losses.push(l.to_scalar::<f32>().unwrap());
        }
        runs.push(losses);
    }
    for (s, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert!(
            (a - b).abs() < 1e-3 * (1.0 + a.abs()),
            "step {s}: fused {a}, reference {b}"
        );
    }
    assert!(
        runs[0][49] < runs[0][0] * 0.8,
        "the loss did not fall: {:?}",
        runs[0]
    );
}

#[test]
fn fused_and_reference_training_runs_match_for_50_steps() {
    let cfg = |k| DecoderConfig {
        kernels: k,
        ..DecoderConfig::dense(20, 16, 2, 2, MlpKind::Gelu)
    };
    fused_and_reference_runs_match(&cfg, 2, 16);
}

/// Wide enough for full 12 x 32 matmul tiles read in place, and 150 tokens for three attention
/// query blocks, the last one partial: the paths the benchmark model takes.
#[test]
fn fused_and_reference_training_runs_match_at_benchmark_like_shapes() {
    let cfg = |k| DecoderConfig {
        kernels: k,
        ..DecoderConfig::dense(40, 64, 2, 2, MlpKind::Gelu)
    };
    fused_and_reference_runs_match(&cfg, 2, 150);
}
