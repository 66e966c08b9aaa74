//! The decoder fields of modern recipes (grouped-query and multi-query attention, QK-norm, tied
//! embeddings, a stated FFN width, shared experts, dense first layers): the fused model against
//! the reference for values and gradients, every parameter reached, grouped attention against
//! multi-head attention with the key/value heads copied out, and a short training run.

use super::{max_abs, max_abs_diff};
use crate::model::*;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

fn tokens(b: usize, t: usize, vocab: usize, seed: u64) -> Tensor {
    let v: Vec<u32> = (0..b * t)
        .map(|i| ((i as u64 * 5 + seed * 11 + (i * i) as u64) % vocab as u64) as u32)
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

/// d 16, 4 query heads of width 4, 3 layers, vocabulary 17.
fn base(kernels: Kernels) -> DecoderConfig {
    DecoderConfig {
        kernels,
        mlp_hidden: 12,
        ..DecoderConfig::dense(17, 16, 3, 4, MlpKind::SwiGlu)
    }
}

fn moe(shared: usize) -> Option<MoeConfig> {
    Some(MoeConfig {
        experts: 4,
        active: 2,
        aux_weight: 0.01,
        shared,
    })
}

/// Each field alone, then all together, as (what, config).
fn variants(k: Kernels) -> Vec<(&'static str, DecoderConfig)> {
    vec![
        (
            "gqa",
            DecoderConfig {
                kv_heads: Some(2),
                ..base(k)
            },
        ),
        (
            "mqa",
            DecoderConfig {
                kv_heads: Some(1),
                ..base(k)
            },
        ),
        (
            "qk_norm",
            DecoderConfig {
                qk_norm: true,
                ..base(k)
            },
        ),
        (
            "tied",
            DecoderConfig {
                tie_embeddings: true,
                ..base(k)
            },
        ),
        (
            "ffn",
            DecoderConfig {
                mlp_hidden: 40,
                ..base(k)
            },
        ),
        (
            "shared experts",
            DecoderConfig {
                moe: moe(1),
                ..base(k)
            },
        ),
        (
            "dense layers",
            DecoderConfig {
                moe: moe(0),
                dense_layers: 1,
                ..base(k)
            },
        ),
        (
            "all",
            DecoderConfig {
                kv_heads: Some(2),
                qk_norm: true,
                tie_embeddings: true,
                mlp_hidden: 24,
                moe: moe(2),
                dense_layers: 2,
                ..base(k)
            },
        ),
    ]
}

#[test]
fn fused_and_reference_agree_in_values_and_gradients() {
    for ((what, cf), (_, cr)) in variants(Kernels::Fused)
        .into_iter()
        .zip(variants(Kernels::Reference))
    {
        let (mf, df) = build(&cf, 3);
        let (mr, dr) = build(&cr, 3);
        let x = tokens(2, 11, 17, 4);
        let (of, or) = (
            df.forward(&x, 500.0).unwrap(),
            dr.forward(&x, 500.0).unwrap(),
        );
        let d = max_abs_diff(&of.logits, &or.logits);
        assert!(d < 1e-4, "{what}: logits differ by {d}");
        let (lf, lr) = (loss(&df, &x), loss(&dr, &x));
        let (gf, gr) = (lf.backward().unwrap(), lr.backward().unwrap());
        let (vf, vr) = (named_vars(&mf, ""), named_vars(&mr, ""));
        assert_eq!(vf.len(), vr.len());
        for ((name, a), (_, b)) in vf.iter().zip(&vr) {
            let (ga, gb) = (gf.get(a.as_tensor()), gr.get(b.as_tensor()));
            let (ga, gb) = (
                ga.unwrap_or_else(|| panic!("{what}: {name} has no fused gradient")),
                gb.unwrap_or_else(|| panic!("{what}: {name} has no reference gradient")),
            );
            assert!(max_abs(ga) > 0.0, "{what}: {name} has a zero gradient");
            let d = max_abs_diff(ga, gb);
            assert!(
                d < 1e-4 * (1.0 + max_abs(gb)),
                "{what}: gradients of {name} differ by {d}"
            );
        }
    }
}

#[test]
fn the_fields_shape_the_parameters() {
    let names = |cfg: &DecoderConfig| -> Vec<(String, Vec<usize>)> {
        let (map, _) = build(cfg, 1);
        named_vars(&map, "")
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().dims().to_vec()))
            .collect()
    };
    let find = |v: &[(String, Vec<usize>)], n: &str| {
        v.iter().find(|(k, _)| k == n).map(|(_, d)| d.clone())
    };
    let k = Kernels::Fused;
    // 4 query heads and 1 key/value head of width 4: (4 + 2) x 4 rows.
    let mqa = names(&DecoderConfig {
        kv_heads: Some(1),
        ..base(k)
    });
    assert_eq!(find(&mqa, "block0.attn.qkv.weight"), Some(vec![24, 16]));
    let qk = names(&DecoderConfig {
        qk_norm: true,
        ..base(k)
    });
    assert_eq!(find(&qk, "block2.attn.q_norm.weight"), Some(vec![4]));
    assert_eq!(find(&qk, "block2.attn.k_norm.weight"), Some(vec![4]));
    let tied = names(&DecoderConfig {
        tie_embeddings: true,
        ..base(k)
    });
    assert_eq!(find(&tied, "head.weight"), None);
    assert_eq!(find(&names(&base(k)), "head.weight"), Some(vec![17, 16]));
    let ffn = names(&DecoderConfig {
        mlp_hidden: 40,
        ..base(k)
    });
    assert_eq!(find(&ffn, "block0.mlp.up.weight"), Some(vec![80, 16]));
    assert_eq!(find(&ffn, "block0.mlp.down.weight"), Some(vec![16, 40]));
    let m = names(&DecoderConfig {
        moe: moe(2),
        dense_layers: 1,
        ..base(k)
    });
    assert!(
        find(&m, "block0.mlp.up.weight").is_some(),
        "layer 0 is dense"
    );
    assert!(find(&m, "block0.moe.router.weight").is_none());
    assert_eq!(find(&m, "block1.moe.router.weight"), Some(vec![4, 16]));
    // Two shared experts of width 12: one MLP of width 24.
    assert_eq!(
        find(&m, "block1.moe.shared.down.weight"),
        Some(vec![16, 24])
    );
    let bad = DecoderConfig {
        kv_heads: Some(3),
        ..base(k)
    };
    assert!(Decoder::new(seeded_var_builder(&VarMap::new(), 0, &Device::Cpu), &bad).is_err());
    let bad = DecoderConfig {
        moe: moe(0),
        dense_layers: 3,
        ..base(k)
    };
    assert!(Decoder::new(seeded_var_builder(&VarMap::new(), 0, &Device::Cpu), &bad).is_err());
}

/// Grouped-query attention is multi-head attention whose key/value heads are copies within a
/// group: the same weights, copied out into an MHA model, give the same logits.
#[test]
fn grouped_attention_is_multi_head_with_shared_keys_and_values() {
    for kernels in [Kernels::Fused, Kernels::Reference] {
        let gqa = DecoderConfig {
            kv_heads: Some(2),
            ..base(kernels)
        };
        let (gmap, gdec) = build(&gqa, 7);
        let (mmap, mdec) = build(&base(kernels), 8);
        let (h, kv, dh, d) = (4, 2, 4, 16);
        let gvars = gmap.data().lock().unwrap().clone();
        for (name, var) in mmap.data().lock().unwrap().iter() {
            let src = gvars[name].as_tensor();
            if !name.ends_with("attn.qkv.weight") {
                var.set(src).unwrap();
                continue;
            }
            // Rows: H query heads, then KV key heads, then KV value heads, dh rows each.
            let rows = |from: usize, n: usize| src.narrow(0, from * dh, n * dh).unwrap();
            let q = rows(0, h);
            let mut parts = vec![q];
            for first in [h, h + kv] {
                for j in 0..h {
                    parts.push(rows(first + j / (h / kv), 1));
                }
            }
            let full = Tensor::cat(&parts, 0).unwrap();
            assert_eq!(full.dims(), &[3 * d, d]);
            var.set(&full).unwrap();
        }
        let x = tokens(2, 9, 17, 2);
        let a = gdec.forward(&x, 300.0).unwrap().logits;
        let b = mdec.forward(&x, 300.0).unwrap().logits;
        let diff = max_abs_diff(&a, &b);
        assert!(
            diff < 1e-5,
            "{kernels:?}: GQA and its MHA copy differ by {diff}"
        );
    }
}

#[test]
fn a_modern_decoder_learns() {
    let cfg = DecoderConfig {
        kv_heads: Some(2),
        qk_norm: true,
        tie_embeddings: true,
        mlp_hidden: 48,
        ..DecoderConfig::dense(24, 32, 2, 4, MlpKind::SwiGlu)
    };
    let (map, dec) = build(&cfg, 11);
    let mut opt = AdamW::new(named_vars(&map, ""), AdamWConfig::default()).unwrap();
    let mut losses = vec![];
    for step in 0..40 {
        let x = tokens(2, 16, 24, step % 4);
        let l = loss(&dec, &x);
        opt.step(&l.backward().unwrap(), 3e-3).unwrap();
        losses.push(l.to_scalar::<f32>().unwrap());
    }
    assert!(
        losses[39] < losses[0] * 0.8,
        "the loss did not fall: {losses:?}"
    );
}
