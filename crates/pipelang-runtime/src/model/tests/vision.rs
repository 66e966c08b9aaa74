//! ViT packing, pixel shuffle, projector.

use super::{max_abs, max_abs_diff, randn};
use crate::model::*;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

fn images(sizes: &[(usize, usize)], pd: usize, seed: u64) -> PackedImages {
    let imgs: Vec<(Vec<f32>, usize, usize)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(h, w))| {
            let v = randn(&[h * w * pd], seed + i as u64, 1.0)
                .to_vec1::<f32>()
                .unwrap();
            (v, h, w)
        })
        .collect();
    PackedImages::pack(&imgs, pd, &Device::Cpu).unwrap()
}

fn vit(kernels: Kernels) -> (VarMap, Vit) {
    let map = VarMap::new();
    let cfg = VitConfig {
        kernels,
        ..VitConfig::new(2, 8, 2, 2)
    };
    let v = Vit::new(seeded_var_builder(&map, 3, &Device::Cpu), &cfg).unwrap();
    (map, v)
}

#[test]
fn packed_images_do_not_see_each_other() {
    for kernels in [Kernels::Fused, Kernels::Reference] {
        let (_, v) = vit(kernels);
        let a = images(&[(2, 3), (3, 2), (1, 1)], 12, 10);
        let mut b = images(&[(2, 3), (3, 2), (1, 1)], 12, 10);
        // Change only image 1's patches (rows 6..12).
        let p = a.patches.to_vec2::<f32>().unwrap();
        let mut q = p.clone();
        for row in &mut q[6..12] {
            row.iter_mut().for_each(|x| *x = -*x + 0.3);
        }
        b.patches = Tensor::new(q, &Device::Cpu).unwrap();
        let (oa, ob) = (v.forward(&a).unwrap(), v.forward(&b).unwrap());
        for (range, changed) in [(0..6, false), (6..12, true), (12..13, false)] {
            let fa = oa.features.narrow(0, range.start, range.len()).unwrap();
            let fb = ob.features.narrow(0, range.start, range.len()).unwrap();
            let d = max_abs_diff(&fa, &fb);
            assert_eq!(
                d > 0.0,
                changed,
                "image rows {range:?} changed by {d} ({kernels:?})"
            );
        }
        assert_eq!(oa.pooled.dims(), [3, 8]);
        let pooled_diff = (oa.pooled - ob.pooled)
            .unwrap()
            .abs()
            .unwrap()
            .sum(1)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            pooled_diff[0] == 0.0 && pooled_diff[1] > 0.0 && pooled_diff[2] == 0.0,
            "{pooled_diff:?}"
        );
        // An image alone gives the same features as inside the pack (up to summation order).
        let alone = images(&[(1, 1)], 12, 12);
        let fa = v.forward(&alone).unwrap().features;
        assert!(max_abs_diff(&fa, &oa.features.narrow(0, 12, 1).unwrap()) < 1e-5);
    }
}

#[test]
fn fused_and_reference_vit_agree_and_every_parameter_learns() {
    let (mf, vf) = vit(Kernels::Fused);
    let (mr, vr) = vit(Kernels::Reference);
    let x = images(&[(2, 2), (3, 1)], 12, 20);
    let r = randn(&[7, 8], 21, 1.0);
    let lf = (vf.forward(&x).unwrap().features * &r)
        .unwrap()
        .sum_all()
        .unwrap();
    let lr = (vr.forward(&x).unwrap().features * &r)
        .unwrap()
        .sum_all()
        .unwrap();
    assert!(max_abs_diff(&lf, &lr) < 1e-4);
    let (gf, gr) = (lf.backward().unwrap(), lr.backward().unwrap());
    for ((name, a), (_, b)) in named_vars(&mf, "").iter().zip(named_vars(&mr, "")) {
        let (ga, gb) = (
            gf.get(a.as_tensor()).unwrap(),
            gr.get(b.as_tensor()).unwrap(),
        );
        assert!(max_abs(ga) > 0.0, "{name}: zero gradient");
        assert!(
            max_abs_diff(ga, gb) < 1e-4 * (1.0 + max_abs(gb)),
            "{name}: gradients differ"
        );
    }
}

#[test]
fn bad_packing_is_an_error() {
    let (_, v) = vit(Kernels::Fused);
    let mut x = images(&[(2, 2)], 12, 1);
    x.cols.swap(0, 1);
    assert!(v.forward(&x).unwrap_err().to_string().contains("row-major"));
    let x = images(&[(2, 2)], 10, 1);
    assert!(v.forward(&x).is_err());
    assert!(
        patchify(&[0.0; 30], 5, 2, 3, 2)
            .unwrap_err()
            .to_string()
            .contains("resize")
    );
}

#[test]
fn patchify_orders_patches_row_major() {
    // 2x4 single-channel image, patch 2 -> grid 1x2.
    let img: Vec<f32> = (0..8).map(|v| v as f32).collect();
    let (p, h, w) = patchify(&img, 2, 4, 1, 2).unwrap();
    assert_eq!((h, w), (1, 2));
    assert_eq!(p, vec![0., 1., 4., 5., 2., 3., 6., 7.]);
}

#[test]
fn pixel_shuffle_shapes_and_values() {
    // One 2x4 grid and one 3x3 grid (padded to 4x4), channel values encode (image, row, col, c).
    let c = 2;
    let sizes = [(2usize, 4usize), (3, 3)];
    let mut feats = Vec::new();
    let mut imgs = Vec::new();
    for (i, &(h, w)) in sizes.iter().enumerate() {
        let mut v = Vec::new();
        for r in 0..h {
            for col in 0..w {
                for ch in 0..c {
                    v.push((1000 * (i + 1) + 100 * r + 10 * col + ch) as f32);
                }
            }
        }
        feats.extend_from_slice(&v);
        imgs.push((v, h, w));
    }
    let packed = PackedImages::pack(&imgs, c, &Device::Cpu).unwrap();
    let f = Tensor::from_vec(feats, (17, c), &Device::Cpu).unwrap();
    let (t, counts) = pixel_shuffle(&f, &packed, 2).unwrap();
    assert_eq!(counts, vec![2, 4]);
    assert_eq!(t.dims(), [6, 8]);
    let t = t.to_vec2::<f32>().unwrap();
    // Image 0, token 1 covers rows 0-1, cols 2-3, ordered (dy, dx, channel).
    assert_eq!(
        t[1],
        vec![1020., 1021., 1030., 1031., 1120., 1121., 1130., 1131.]
    );
    // Image 1, token 3 (bottom right) holds (2,2) and zero padding.
    assert_eq!(t[5], vec![2220., 2221., 0., 0., 0., 0., 0., 0.]);
    assert_eq!(
        t[2],
        vec![2000., 2001., 2010., 2011., 2100., 2101., 2110., 2111.]
    );
    let (t1, counts1) = pixel_shuffle(&f, &packed, 1).unwrap();
    assert_eq!((t1.dims(), counts1), (&[17usize, 2][..], vec![8, 9]));
}

#[test]
fn projector_maps_to_the_decoder_width_with_gradients() {
    let map = VarMap::new();
    let cfg = ProjectorConfig {
        in_dim: 8,
        out_dim: 6,
        pixel_shuffle: 2,
    };
    let p = Projector::new(seeded_var_builder(&map, 1, &Device::Cpu), &cfg).unwrap();
    let x = images(&[(2, 2), (3, 5)], 1, 0);
    let f = candle_core::Var::from_tensor(&randn(&[19, 8], 2, 1.0)).unwrap();
    let (y, counts) = p.forward(f.as_tensor(), &x).unwrap();
    assert_eq!((y.dims(), counts), (&[7usize, 6][..], vec![1, 6]));
    let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    for (name, v) in named_vars(&map, "") {
        assert!(
            max_abs(g.get(v.as_tensor()).unwrap()) > 0.0,
            "{name}: zero gradient"
        );
    }
    let gf = g
        .get(f.as_tensor())
        .unwrap()
        .abs()
        .unwrap()
        .sum(1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(
        gf.iter().all(|x| *x > 0.0),
        "some patch gets no gradient: {gf:?}"
    );
}

/// A joint step as in vit_align: ViT and projector train, the LLM is frozen (detached).
#[test]
fn joint_step_reaches_trainable_models_and_not_frozen_ones() {
    let dev = Device::Cpu;
    let (mv, v) = vit(Kernels::Fused);
    let (mp, ml) = (VarMap::new(), VarMap::new());
    let proj = Projector::new(
        seeded_var_builder(&mp, 4, &dev),
        &ProjectorConfig {
            in_dim: 8,
            out_dim: 8,
            pixel_shuffle: 2,
        },
    )
    .unwrap();
    let cfg = DecoderConfig {
        mlp_hidden: 16,
        ..DecoderConfig::dense(11, 8, 1, 2, MlpKind::SwiGlu)
    };
    let llm = Decoder::new(seeded_var_builder(&ml, 5, &dev), &cfg)
        .unwrap()
        .detached();
    let x = images(&[(2, 2), (2, 4)], 12, 30);
    let (img_tokens, counts) = proj.forward(&v.forward(&x).unwrap().features, &x).unwrap();
    assert_eq!(counts, vec![1, 2]);
    // Sequence: text, 1 placeholder, text, 2 placeholders, text.
    let tokens = Tensor::new(&[[1u32, 10, 2, 10, 10, 3, 4]], &dev).unwrap();
    let mask = Tensor::new(&[[1f32, 0., 1., 0., 0., 1., 1.]], &dev).unwrap();
    let emb = scatter_rows(&llm.embed(&tokens).unwrap(), &[1, 3, 4], &img_tokens).unwrap();
    let out = llm.forward_embeds(&emb, 1000.0).unwrap();
    let loss = next_token_loss(&out.logits, &tokens, Some(&mask), Kernels::Fused).unwrap();
    let g = loss.backward().unwrap();
    for (name, var) in named_vars(&mv, "vit")
        .into_iter()
        .chain(named_vars(&mp, "projector"))
    {
        let gv = g
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert!(max_abs(gv) > 0.0, "{name}: zero gradient");
    }
    for (name, var) in named_vars(&ml, "llm") {
        assert!(
            g.get(var.as_tensor()).is_none(),
            "{name}: the frozen LLM got a gradient"
        );
    }
}
