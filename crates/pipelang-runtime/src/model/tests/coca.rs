//! SigLIP by hand, and the CoCa loss reaching every parameter.

use super::max_abs;
use crate::model::*;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

#[test]
fn siglip_matches_a_hand_computed_2x2_case() {
    let dev = Device::Cpu;
    // Already unit vectors: cosines are [[1, 0], [0.6, 0.8]] . [[0.6, 0.8], [1, 0]]^T.
    let img = Tensor::new(&[[1f32, 0.], [0.6, 0.8]], &dev).unwrap();
    let txt = Tensor::new(&[[0.6f32, 0.8], [1., 0.]], &dev).unwrap();
    let (t, b) = (2f32, -1f32);
    let log_t = Tensor::new(t.ln(), &dev).unwrap();
    let bias = Tensor::new(b, &dev).unwrap();
    let got = siglip_loss(&img, &txt, &log_t, &bias)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    // cos: (0,0) 0.6, (0,1) 1.0, (1,0) 1.0, (1,1) 0.6; logits t*cos + b.
    let sp = |x: f32| (1.0 + x.exp()).ln();
    let (l_diag, l_off) = (t * 0.6 + b, t * 1.0 + b);
    let want = (2.0 * sp(-l_diag) + 2.0 * sp(l_off)) / 2.0;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    // Scale-invariant in the inputs (they are normalised inside).
    let again = siglip_loss(&(img * 3.0).unwrap(), &txt, &log_t, &bias)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((again - want).abs() < 1e-6);
}

#[test]
fn coca_loss_reaches_vit_decoder_and_head() {
    let dev = Device::Cpu;
    let (mv, md, mh) = (VarMap::new(), VarMap::new(), VarMap::new());
    let vit = Vit::new(
        seeded_var_builder(&mv, 1, &dev),
        &VitConfig::new(2, 8, 1, 2),
    )
    .unwrap();
    let dcfg = DecoderConfig {
        mlp_hidden: 16,
        ..DecoderConfig::dense(11, 8, 1, 2, MlpKind::Gelu)
    };
    let dec = Decoder::new(seeded_var_builder(&md, 2, &dev), &dcfg).unwrap();
    let head = CocaHead::new(seeded_var_builder(&mh, 3, &dev), 8, 8, 6).unwrap();
    let imgs: Vec<_> = [(2usize, 2usize), (1, 3)]
        .iter()
        .map(|&(h, w)| {
            (
                super::randn(&[h * w * 12], (h * w) as u64, 1.0)
                    .to_vec1::<f32>()
                    .unwrap(),
                h,
                w,
            )
        })
        .collect();
    let images = PackedImages::pack(&imgs, 12, &dev).unwrap();
    let captions = CaptionBatch {
        tokens: Tensor::new(&[[1u32, 2, 3, 4], [5, 6, 0, 0]], &dev).unwrap(),
        lengths: vec![4, 2],
    };
    let out = head
        .loss(&vit, &dec, &images, &captions, 2.0, 1000.0)
        .unwrap();
    let (l, c, cap) = (
        out.loss.to_scalar::<f32>().unwrap(),
        out.contrastive.to_scalar::<f32>().unwrap(),
        out.caption.to_scalar::<f32>().unwrap(),
    );
    assert!((l - (c + 2.0 * cap)).abs() < 1e-5);
    assert!(
        cap > 1.0 && cap < 5.0,
        "caption loss {cap} should be near ln(11)"
    );
    let g = out.loss.backward().unwrap();
    for (map, what) in [(&mv, "vit"), (&md, "decoder"), (&mh, "head")] {
        for (name, v) in named_vars(map, what) {
            let gv = g
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient"));
            assert!(max_abs(gv) > 0.0, "{name}: zero gradient");
        }
    }
    // Padding of the second caption does not change its loss.
    let captions2 = CaptionBatch {
        tokens: Tensor::new(&[[1u32, 2, 3, 4], [5, 6, 9, 9]], &dev).unwrap(),
        lengths: vec![4, 2],
    };
    let out2 = head
        .loss(&vit, &dec, &images, &captions2, 2.0, 1000.0)
        .unwrap();
    assert!((out2.loss.to_scalar::<f32>().unwrap() - l).abs() < 1e-5);
}
