//! RoPE frequency scaling: what a decoder's rotary frequencies are, given its base, head width
//! and `rope_scaling`. Pure arithmetic, declared once here so that the candle runtime, the plan's
//! readers and the engine tests compute the same frequencies.
//!
//! The formulas are the ones the published models run (and the engines implement):
//! - `linear`: position interpolation (Chen et al. 2023, "Extending Context Window of Large
//!   Language Models via Positional Interpolation"): every frequency divided by the factor.
//! - `yarn`: YaRN (Peng et al. 2023, §3.2 "NTK-by-parts" and §3.4 the attention temperature),
//!   as the authors' code (jquesnelle/yarn), DeepSeek-V3's and OLMo-core's compute it: the
//!   dimension whose wavelength fits `r` rotations into the original context is
//!   `d(r) = D ln(L / (2 pi r)) / (2 ln b)`; pairs below `floor(d(beta))` keep their frequency,
//!   pairs above `ceil(d(alpha))` are divided by the factor, and a linear ramp over the pair
//!   index blends the two in between. Queries and keys are both multiplied by
//!   `sqrt(1/t) = 0.1 ln(s) + 1`.
//! - `llama3`: Llama 3.1's frequency scaling (the released model's `rope_scaling`, the code of
//!   `transformers`' `_compute_llama3_parameters`): wavelengths above `original / low_freq` are
//!   divided by the factor, those below `original / high_freq` kept, and the band between
//!   interpolated by `smooth = (original / wavelength - low_freq) / (high_freq - low_freq)`.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::check::units;

/// How a decoder's rotary frequencies are scaled beyond its base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RopeScaling {
    #[default]
    None,
    Linear {
        factor: f64,
    },
    Yarn {
        factor: f64,
        /// The context the model was trained at before the extension (tokens).
        original: u64,
        /// Fewest rotations in the original context for a pair to be interpolated fully.
        alpha: f64,
        /// Most rotations for a pair to be interpolated at all; above, it keeps its frequency.
        beta: f64,
    },
    Llama3 {
        factor: f64,
        low_freq: f64,
        high_freq: f64,
        original: u64,
    },
}

/// A decoder's rotary embedding: its base and its scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rope {
    pub base: f64,
    pub scaling: RopeScaling,
}

impl Rope {
    pub fn plain(base: f64) -> Rope {
        Rope {
            base,
            scaling: RopeScaling::None,
        }
    }

    /// The inverse frequency of each pair `i` of a head of width `head_dim` (`head_dim / 2`
    /// values): `base^(-2i/head_dim)`, scaled.
    pub fn inv_freqs(&self, head_dim: usize) -> Vec<f64> {
        let half = head_dim / 2;
        let plain = (0..half).map(|i| self.base.powf(-((2 * i) as f64) / head_dim as f64));
        match self.scaling {
            RopeScaling::None => plain.collect(),
            RopeScaling::Linear { factor } => plain.map(|f| f / factor).collect(),
            RopeScaling::Yarn {
                factor,
                original,
                alpha,
                beta,
            } => {
                let (low, high) = yarn_band(self.base, head_dim, original, alpha, beta);
                let span = (high - low).max(1e-3);
                plain
                    .enumerate()
                    .map(|(i, f)| {
                        // 0: keep the frequency (extrapolate), 1: divide it (interpolate).
                        let ramp = ((i as f64 - low) / span).clamp(0.0, 1.0);
                        f / factor * ramp + f * (1.0 - ramp)
                    })
                    .collect()
            }
            RopeScaling::Llama3 {
                factor,
                low_freq,
                high_freq,
                original,
            } => {
                let original = original as f64;
                let (long, short) = (original / low_freq, original / high_freq);
                plain
                    .map(|f| {
                        let wavelength = 2.0 * PI / f;
                        if wavelength < short {
                            f
                        } else if wavelength > long {
                            f / factor
                        } else {
                            let smooth =
                                (original / wavelength - low_freq) / (high_freq - low_freq);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }

    /// The factor on both the cosines and the sines (so on queries and keys, and its square on
    /// the attention logits): YaRN's `sqrt(1/t) = 0.1 ln(s) + 1`, else 1.
    pub fn attention_factor(&self) -> f64 {
        self.scaling.attention_factor()
    }
}

/// The pair indices between which YaRN's ramp runs: `floor(d(beta))` and `ceil(d(alpha))`,
/// clamped to the head's pairs.
pub fn yarn_band(base: f64, head_dim: usize, original: u64, alpha: f64, beta: f64) -> (f64, f64) {
    let dim = |rotations: f64| {
        head_dim as f64 * (original as f64 / (rotations * 2.0 * PI)).ln() / (2.0 * base.ln())
    };
    let low = dim(beta).floor().max(0.0);
    let high = dim(alpha).ceil().min((head_dim / 2) as f64 - 1.0);
    (low, high)
}

impl RopeScaling {
    pub fn is_none(&self) -> bool {
        matches!(self, RopeScaling::None)
    }

    /// The word of the source: `none`, `linear`, `yarn`, `llama3`.
    pub fn kind(&self) -> &'static str {
        match self {
            RopeScaling::None => "none",
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Yarn { .. } => "yarn",
            RopeScaling::Llama3 { .. } => "llama3",
        }
    }

    pub fn factor(&self) -> f64 {
        match *self {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor }
            | RopeScaling::Yarn { factor, .. }
            | RopeScaling::Llama3 { factor, .. } => factor,
        }
    }

    /// The context the model was trained at before the extension, where the kind states one.
    pub fn original(&self) -> Option<u64> {
        match *self {
            RopeScaling::Yarn { original, .. } | RopeScaling::Llama3 { original, .. } => {
                Some(original)
            }
            _ => None,
        }
    }

    pub fn attention_factor(&self) -> f64 {
        match *self {
            RopeScaling::Yarn { factor, .. } => 0.1 * factor.ln() + 1.0,
            _ => 1.0,
        }
    }

    /// As a recipe writes it, every argument named: `yarn(factor = 40, original = 4K, alpha =
    /// 1, beta = 32)`.
    pub fn show(&self) -> String {
        let n = units::trim;
        match *self {
            RopeScaling::None => "none".into(),
            RopeScaling::Linear { factor } => format!("linear(factor = {})", n(factor)),
            RopeScaling::Yarn {
                factor,
                original,
                alpha,
                beta,
            } => format!(
                "yarn(factor = {}, original = {}, alpha = {}, beta = {})",
                n(factor),
                units::length(original),
                n(alpha),
                n(beta)
            ),
            RopeScaling::Llama3 {
                factor,
                low_freq,
                high_freq,
                original,
            } => format!(
                "llama3(factor = {}, low_freq = {}, high_freq = {}, original = {})",
                n(factor),
                n(low_freq),
                n(high_freq),
                units::length(original)
            ),
        }
    }

    /// Short, for tables and plots: `yarn x40 from 4K`.
    pub fn brief(&self) -> String {
        match self.original() {
            _ if self.is_none() => "none".into(),
            Some(o) => format!(
                "{} x{} from {}",
                self.kind(),
                units::trim(self.factor()),
                units::length(o)
            ),
            None => format!("{} x{}", self.kind(), units::trim(self.factor())),
        }
    }

    /// The lengths in it multiplied (a profile's `scale seq_len by F`).
    pub fn scale_lengths(&mut self, f: f64) {
        match self {
            RopeScaling::Yarn { original, .. } | RopeScaling::Llama3 { original, .. } => {
                *original = ((*original as f64) * f).round().max(1.0) as u64
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for RopeScaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.show())
    }
}

/// A plain base: no scaling.
impl From<f64> for Rope {
    fn from(base: f64) -> Rope {
        Rope::plain(base)
    }
}
