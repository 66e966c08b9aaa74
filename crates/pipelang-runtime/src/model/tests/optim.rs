//! AdamW: the update by hand, clipping, state round trip, seeded initialisation.

use crate::model::*;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

fn quad_grads(p: &Var, target: &Tensor) -> candle_core::backprop::GradStore {
    // loss = 0.5 * |p - target|^2, so grad = p - target.
    ((p.as_tensor() - target)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        * 0.5)
        .unwrap()
        .backward()
        .unwrap()
}

#[test]
fn adamw_matches_the_update_by_hand() {
    let dev = Device::Cpu;
    let w = Var::from_tensor(&Tensor::new(&[[1f32, -2.], [0.5, 3.]], &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::new(&[0.25f32, -1.0], &dev).unwrap()).unwrap();
    let cfg = AdamWConfig {
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: 0.1,
        clip_norm: None,
    };
    let mut opt = AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], cfg).unwrap();
    let zero2 = Tensor::zeros((2, 2), candle_core::DType::F32, &dev).unwrap();
    let zero1 = Tensor::zeros(2, candle_core::DType::F32, &dev).unwrap();
    let (lr, wd) = (0.1f64, 0.1f64);
    let (mut m, mut v) = (0.0f64, 0.0f64);
    let mut x = 1.0f64; // w[0][0]
    let (mut mb, mut vb) = (0.0f64, 0.0f64);
    let mut y = 0.25f64; // b[0], no decay
    for t in 1..=3 {
        let mut g = quad_grads(&w, &zero2);
        let gb = quad_grads(&b, &zero1);
        g.insert(b.as_tensor(), gb.get(b.as_tensor()).unwrap().clone());
        opt.step(&g, lr).unwrap();
        let (gx, gy) = (x, y);
        m = 0.9 * m + 0.1 * gx;
        v = 0.99 * v + 0.01 * gx * gx;
        x = x * (1.0 - lr * wd)
            - lr * (m / (1.0 - 0.9f64.powi(t))) / ((v / (1.0 - 0.99f64.powi(t))).sqrt() + 1e-8);
        mb = 0.9 * mb + 0.1 * gy;
        vb = 0.99 * vb + 0.01 * gy * gy;
        y -= lr * (mb / (1.0 - 0.9f64.powi(t))) / ((vb / (1.0 - 0.99f64.powi(t))).sqrt() + 1e-8);
    }
    let got_x = w.as_tensor().to_vec2::<f32>().unwrap()[0][0] as f64;
    let got_y = b.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
    assert!((got_x - x).abs() < 1e-5, "{got_x} vs {x}");
    assert!((got_y - y).abs() < 1e-5, "{got_y} vs {y}");
    assert_eq!(opt.step_count(), 3);
}

#[test]
fn clipping_reports_the_norm_before_clipping() {
    let dev = Device::Cpu;
    let p = Var::from_tensor(&Tensor::new(&[3f32, 4.], &dev).unwrap()).unwrap();
    let cfg = AdamWConfig {
        clip_norm: Some(1.0),
        weight_decay: 0.0,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(vec![("p".into(), p.clone())], cfg).unwrap();
    let zero = Tensor::zeros(2, candle_core::DType::F32, &dev).unwrap();
    let s = opt.step(&quad_grads(&p, &zero), 0.01).unwrap();
    assert!((s.grad_norm - 5.0).abs() < 1e-6);
    assert!(opt.step(&quad_grads(&p, &zero), f64::NAN).is_err());
}

#[test]
fn state_round_trip_continues_identically() {
    let dev = Device::Cpu;
    let make = || {
        let map = VarMap::new();
        let dec = Decoder::new(
            seeded_var_builder(&map, 5, &dev),
            &DecoderConfig::dense(9, 8, 1, 2, MlpKind::SwiGlu),
        )
        .unwrap();
        let opt = AdamW::new(named_vars(&map, ""), AdamWConfig::default()).unwrap();
        (map, dec, opt)
    };
    let x = Tensor::new(&[[1u32, 2, 3, 4, 5, 6]], &dev).unwrap();
    let step = |dec: &Decoder, opt: &mut AdamW| {
        let out = dec.forward(&x, 100.0).unwrap();
        let l = next_token_loss(&out.logits, &x, None, Kernels::Fused).unwrap();
        opt.step(&l.backward().unwrap(), 1e-2).unwrap();
    };
    let (ma, da, mut oa) = make();
    let (mb, db, mut ob) = make();
    step(&da, &mut oa);
    // Copy weights and optimiser state to the second model, then take one more step on both.
    for ((_, a), (_, b)) in named_vars(&ma, "").iter().zip(named_vars(&mb, "")) {
        b.set(a.as_tensor()).unwrap();
    }
    ob.import_state(&oa.export_state(&dev).unwrap()).unwrap();
    assert_eq!(ob.step_count(), 1);
    step(&da, &mut oa);
    step(&db, &mut ob);
    for ((n, a), (_, b)) in named_vars(&ma, "").iter().zip(named_vars(&mb, "")) {
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a, b, "{n} differs after resuming");
    }
    let mut bad = oa.export_state(&dev).unwrap();
    bad.remove("adamw.m.head.weight");
    assert!(
        ob.import_state(&bad)
            .unwrap_err()
            .to_string()
            .contains("adamw.m.head.weight")
    );
}

#[test]
fn seeded_initialisation_is_reproducible() {
    let dev = Device::Cpu;
    let cfg = DecoderConfig::dense(9, 8, 2, 2, MlpKind::Gelu);
    let weights = |seed| {
        let map = VarMap::new();
        Decoder::new(seeded_var_builder(&map, seed, &dev), &cfg).unwrap();
        named_vars(&map, "")
            .iter()
            .map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(weights(1), weights(1));
    assert_ne!(weights(1), weights(2));
}
