//! The throughput benchmark's model and training step (issue 6), so the runtime, the benchmark
//! binary and the tests all build exactly the same thing.
//!
//! Model: [`DecoderConfig::bench`] (d 128, 4 layers, 4 heads, GELU MLP 512, vocab 256, RMSNorm,
//! RoPE, no biases, untied head), RoPE base 10,000, batch 16 x 256 tokens, AdamW (betas 0.9 /
//! 0.95, eps 1e-8, weight decay 0.1 on matrices, clip 1.0), fp32. The PyTorch reference must
//! match: `nn.GELU(approximate="tanh")`, RMSNorm eps 1e-5, half-split RoPE.

use super::adamw::{AdamW, AdamWConfig, named_vars};
use super::config::{DecoderConfig, Kernels};
use super::decoder::Decoder;
use super::init::seeded_var_builder;
use super::loss::next_token_loss;
use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use std::time::Instant;

pub const BATCH: usize = 16;
pub const SEQ: usize = 256;
pub const ROPE_BASE: f64 = 10_000.0;
pub const LR: f64 = 1e-3;

pub struct BenchModel {
    pub varmap: VarMap,
    pub decoder: Decoder,
    pub opt: AdamW,
}

impl BenchModel {
    pub fn new(kernels: Kernels, seed: u64, dev: &Device) -> Result<Self> {
        let cfg = DecoderConfig {
            kernels,
            ..DecoderConfig::bench()
        };
        let varmap = VarMap::new();
        let decoder = Decoder::new(seeded_var_builder(&varmap, seed, dev).pp("llm"), &cfg)?;
        let opt = AdamW::new(named_vars(&varmap, ""), AdamWConfig::default())?;
        Ok(Self {
            varmap,
            decoder,
            opt,
        })
    }

    /// Forward, backward and AdamW update on `tokens [B, T]`; returns the loss before the update.
    pub fn train_step(&mut self, tokens: &Tensor, lr: f64) -> Result<f32> {
        let out = self.decoder.forward(tokens, ROPE_BASE)?;
        let loss = next_token_loss(&out.logits, tokens, None, self.decoder.cfg.kernels)?;
        let loss = (loss + out.aux_loss)?;
        let grads = loss.backward()?;
        self.opt.step(&grads, lr)?;
        loss.to_scalar::<f32>()
    }
}

/// Deterministic byte batches with some structure (repeated words), so losses move.
pub fn synthetic_batch(
    seed: u64,
    step: u64,
    batch: usize,
    seq: usize,
    dev: &Device,
) -> Result<Tensor> {
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(step));
    let words: [&[u8]; 6] = [b"the ", b"cat ", b"sat ", b"on ", b"a ", b"mat. "];
    let mut data = Vec::with_capacity(batch * seq);
    while data.len() < batch * seq {
        data.extend(
            words[rng.random_range(0..words.len())]
                .iter()
                .map(|b| *b as u32),
        );
    }
    data.truncate(batch * seq);
    Tensor::from_vec(data, (batch, seq), dev)
}

#[derive(Debug, Clone)]
pub struct Throughput {
    pub step_seconds: Vec<f64>,
    pub median_tokens_per_s: f64,
}

/// Times `steps` training steps after `warmup` untimed ones.
pub fn measure(kernels: Kernels, warmup: usize, steps: usize) -> Result<Throughput> {
    let dev = Device::Cpu;
    let mut m = BenchModel::new(kernels, 0, &dev)?;
    let mut secs = Vec::with_capacity(steps);
    for s in 0..warmup + steps {
        let x = synthetic_batch(0, s as u64, BATCH, SEQ, &dev)?;
        let t0 = Instant::now();
        m.train_step(&x, LR)?;
        if s >= warmup {
            secs.push(t0.elapsed().as_secs_f64());
        }
    }
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(Throughput {
        step_seconds: secs,
        median_tokens_per_s: (BATCH * SEQ) as f64 / median,
    })
}
