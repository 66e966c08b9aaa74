//! Training losses: masked next-token cross-entropy and SigLIP's sigmoid contrastive loss.

use super::config::Kernels;
use super::kernels::xent::fused_cross_entropy;
use super::layers::{l2_normalize, softplus};
use super::reference;
use candle_core::{DType, Result, Tensor, bail};

/// `sum_i w_i (logsumexp(z_i) - z_i[t_i])` over `logits [N, V]`.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &[u32],
    weights: &[f32],
    kernels: Kernels,
) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => fused_cross_entropy(logits, targets, weights),
        Kernels::Reference => reference::cross_entropy(logits, targets, weights),
    }
}

/// Mean next-token cross-entropy of `logits [B, T, V]` against `tokens [B, T]` shifted by one:
/// position t predicts token t+1, counted only where `loss_mask[b, t+1]` is non-zero (text
/// tokens; zero at image placeholders and padding). `None` counts every token. A batch with
/// no counted token gives a zero loss.
pub fn next_token_loss(
    logits: &Tensor,
    tokens: &Tensor,
    loss_mask: Option<&Tensor>,
    kernels: Kernels,
) -> Result<Tensor> {
    let (b, t, v) = logits.dims3()?;
    if tokens.dims() != [b, t] {
        bail!(
            "next_token_loss: tokens {:?} do not match logits {:?}",
            tokens.dims(),
            logits.dims()
        );
    }
    let ids = tokens
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let keep = match loss_mask {
        Some(m) => {
            if m.dims() != [b, t] {
                bail!(
                    "next_token_loss: loss mask {:?} does not match tokens {:?}",
                    m.dims(),
                    tokens.dims()
                );
            }
            m.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?
        }
        None => vec![1.0; b * t],
    };
    let mut targets = vec![0u32; b * t];
    let mut weights = vec![0f32; b * t];
    for bi in 0..b {
        for ti in 0..t.saturating_sub(1) {
            let (i, next) = (bi * t + ti, bi * t + ti + 1);
            targets[i] = ids[next];
            weights[i] = if keep[next] != 0.0 { 1.0 } else { 0.0 };
        }
    }
    let count: f32 = weights.iter().sum();
    if count == 0.0 {
        return Tensor::zeros((), DType::F32, logits.device());
    }
    weights.iter_mut().for_each(|w| *w /= count);
    cross_entropy(&logits.reshape((b * t, v))?, &targets, &weights, kernels)
}

/// SigLIP: `-1/n sum_ij log sigmoid(z_ij (e^s <x_i, y_j> + b))` with `z_ij = 1` on the diagonal
/// (matching image-text pairs) and -1 elsewhere, on L2-normalised `img [n, E]` and `txt [n, E]`;
/// `log_scale` (s) and `bias` (b) are learnable scalars (SigLIP starts them at ln 10 and -10).
pub fn siglip_loss(
    img: &Tensor,
    txt: &Tensor,
    log_scale: &Tensor,
    bias: &Tensor,
) -> Result<Tensor> {
    let (n, e) = img.dims2()?;
    if txt.dims() != [n, e] {
        bail!(
            "siglip: image embeddings {:?} and text embeddings {:?} differ",
            img.dims(),
            txt.dims()
        );
    }
    let (x, y) = (l2_normalize(img)?, l2_normalize(txt)?);
    let logits = x
        .matmul(&y.t()?)?
        .broadcast_mul(&log_scale.exp()?)?
        .broadcast_add(bias)?;
    let signs: Vec<f32> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { -1.0 })
        .collect();
    let z = Tensor::from_vec(signs, (n, n), img.device())?;
    // -log sigmoid(u) = softplus(-u)
    softplus(&(logits * z)?.neg()?)?.sum_all()? / n as f64
}
