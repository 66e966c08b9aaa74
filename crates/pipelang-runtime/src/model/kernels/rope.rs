//! Rotary position tables shared by the fused attention op and the reference path.
//!
//! Pairs are split in halves (`x[i]` rotates with `x[i + d/2]`), as in Llama and candle's
//! `rope_slow`. A table row holds the cos and sin of every pair's angle for one token.

use std::sync::Arc;

use pipelang::plan::rope::Rope;

#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable {
    /// `[rows, half]` cosines.
    pub cos: Vec<f32>,
    /// `[rows, half]` sines.
    pub sin: Vec<f32>,
    /// Pairs per head, `head_dim / 2`.
    pub half: usize,
    /// True when there is one row per token of the batch (`[B*T]`), false when one row per
    /// position (`[T]`) is shared by every sequence.
    pub per_token: bool,
}

impl RopeTable {
    /// Positions `0..seq` with frequencies `base^(-2i/head_dim)`.
    pub fn new_1d(seq: usize, head_dim: usize, base: f64) -> Arc<Self> {
        Self::for_rope(seq, head_dim, &Rope::plain(base))
    }

    /// Positions `0..seq` with the decoder's frequencies as its scaling states them
    /// (`pipelang::plan::rope`, one definition for plan, runtime and engine tests). YaRN's
    /// attention factor multiplies both the cosines and the sines, so queries and keys are
    /// each scaled by it and the logits by its square, as the paper and OLMo-core do; the
    /// fused op and the reference path read the same table.
    pub fn for_rope(seq: usize, head_dim: usize, rope: &Rope) -> Arc<Self> {
        let half = head_dim / 2;
        let freqs = rope.inv_freqs(head_dim);
        let m = rope.attention_factor();
        let mut cos = Vec::with_capacity(seq * half);
        let mut sin = Vec::with_capacity(seq * half);
        for p in 0..seq {
            for f in &freqs {
                let a = p as f64 * f;
                cos.push((a.cos() * m) as f32);
                sin.push((a.sin() * m) as f32);
            }
        }
        Arc::new(Self {
            cos,
            sin,
            half,
            per_token: false,
        })
    }

    /// 2-D positions per token: the first half of the pairs rotate with the row, the second
    /// half with the column, each half with frequencies `base^(-2i/(head_dim/2))`.
    pub fn new_2d(rows: &[u32], cols: &[u32], head_dim: usize, base: f64) -> Arc<Self> {
        let half = head_dim / 2;
        let quarter = half / 2;
        let freqs: Vec<f64> = (0..quarter)
            .map(|i| base.powf(-((2 * i) as f64) / half as f64))
            .collect();
        let mut cos = Vec::with_capacity(rows.len() * half);
        let mut sin = Vec::with_capacity(rows.len() * half);
        for (&r, &c) in rows.iter().zip(cols) {
            for pos in [r, c] {
                for f in &freqs {
                    let a = pos as f64 * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        Arc::new(Self {
            cos,
            sin,
            half,
            per_token: true,
        })
    }

    #[inline(always)]
    pub(crate) fn row(&self, b: usize, t: usize, seq: usize) -> (&[f32], &[f32]) {
        let r = if self.per_token { b * seq + t } else { t };
        let h = self.half;
        (&self.cos[r * h..(r + 1) * h], &self.sin[r * h..(r + 1) * h])
    }

    /// Rows the table holds, to check it against a batch.
    pub fn rows(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }
}

/// `dst = rotate(src)`, both of length `2 * cos.len()`.
#[inline(always)]
pub(crate) fn rotate(src: &[f32], cos: &[f32], sin: &[f32], scale: f32, dst: &mut [f32]) {
    let h = cos.len();
    let (d1, d2) = dst.split_at_mut(h);
    for i in 0..h {
        let (x1, x2) = (src[i], src[i + h]);
        d1[i] = (x1 * cos[i] - x2 * sin[i]) * scale;
        d2[i] = (x1 * sin[i] + x2 * cos[i]) * scale;
    }
}

/// The transpose of [`rotate`]: maps a gradient w.r.t. rotated values back to the inputs.
#[inline(always)]
pub(crate) fn rotate_back(g: &[f32], cos: &[f32], sin: &[f32], scale: f32, dst: &mut [f32]) {
    let h = cos.len();
    let (d1, d2) = dst.split_at_mut(h);
    for i in 0..h {
        let (g1, g2) = (g[i], g[i + h]);
        d1[i] = (g1 * cos[i] + g2 * sin[i]) * scale;
        d2[i] = (g2 * cos[i] - g1 * sin[i]) * scale;
    }
}
