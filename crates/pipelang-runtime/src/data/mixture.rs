//! Per-step mixture sampling: how many sequences each source contributes to a batch, so that
//! the realised cumulative counts track the plan's cumulative shares.
//!
//! Each step adds `share_i * batch` to source i's planned cumulative count. The batch is then
//! dealt one sequence at a time to the source whose realised count lags its plan the most
//! (ties to the lower index) — largest remainder on the cumulative target, computed so that a
//! count never has to go backwards. Nothing is random except the order of the sequences inside
//! the batch, a Fisher-Yates shuffle seeded by (seed, step).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::error::{DataError, Result};

/// The resumable state of a mixture (stored in `run.ron`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct MixtureState {
    pub seed: u64,
    /// Steps drawn so far.
    pub step: u64,
    /// Planned cumulative sequences per source.
    pub planned: Vec<f64>,
    /// Realised cumulative sequences per source.
    pub realised: Vec<u64>,
}

/// One step's draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// Sequences per source this step (sums to the batch size).
    pub counts: Vec<usize>,
    /// The source of each batch slot, in batch order.
    pub order: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MixtureSampler {
    state: MixtureState,
}

impl MixtureSampler {
    pub fn new(n_sources: usize, seed: u64) -> Self {
        MixtureSampler {
            state: MixtureState {
                seed,
                step: 0,
                planned: vec![0.0; n_sources],
                realised: vec![0; n_sources],
            },
        }
    }

    pub fn from_state(state: MixtureState) -> Self {
        MixtureSampler { state }
    }

    pub fn state(&self) -> &MixtureState {
        &self.state
    }

    /// Draws one step: `shares` are this step's fractions per source (summing to 1).
    pub fn draw(&mut self, shares: &[f64], batch: usize) -> Result<Draw> {
        let n = self.state.planned.len();
        let bad = |message: String| DataError::BadShares { message };
        if shares.len() != n {
            return Err(bad(format!("{} shares for {n} sources", shares.len())));
        }
        if let Some(s) = shares.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(bad(format!(
                "share {s} is not a finite non-negative number"
            )));
        }
        let sum: f64 = shares.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(bad(format!("shares sum to {sum}, not 1")));
        }
        for (p, s) in self.state.planned.iter_mut().zip(shares) {
            *p += s / sum * batch as f64;
        }
        let mut counts = vec![0usize; n];
        for _ in 0..batch {
            let lag = |i: usize| {
                self.state.planned[i] - (self.state.realised[i] + counts[i] as u64) as f64
            };
            let mut best = 0;
            for i in 1..n {
                if lag(i) > lag(best) {
                    best = i;
                }
            }
            counts[best] += 1;
        }
        for (r, c) in self.state.realised.iter_mut().zip(&counts) {
            *r += *c as u64;
        }
        let mut order: Vec<usize> = counts
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| std::iter::repeat_n(i, c))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.state.seed);
        rng.set_stream(self.state.step);
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        self.state.step += 1;
        Ok(Draw { counts, order })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The multimodal ramp of joint_pretrain: web_text = rest, multimodal 0% -> 40% split
    /// 50/30/20 over image_text, interleaved, ocr.
    fn ramp_shares(step: usize, steps: usize) -> Vec<f64> {
        let m = 0.4 * step as f64 / (steps - 1) as f64;
        vec![1.0 - m, 0.5 * m, 0.3 * m, 0.2 * m]
    }

    #[test]
    fn cumulative_counts_track_a_linear_ramp() {
        for (steps, batch) in [(200usize, 16usize), (57, 7), (30, 512)] {
            let mut s = MixtureSampler::new(4, 2025);
            let mut planned = [0.0f64; 4];
            let mut realised = [0usize; 4];
            for step in 0..steps {
                let shares = ramp_shares(step, steps);
                let d = s.draw(&shares, batch).unwrap();
                let multimodal: usize = d.counts[1..].iter().sum();
                if step == 0 {
                    assert_eq!(multimodal, 0);
                }
                if step == steps - 1 {
                    let want = 0.4 * batch as f64;
                    assert!(
                        (multimodal as f64 - want).abs() <= 3.0,
                        "{multimodal} vs {want}"
                    );
                }
                assert_eq!(d.counts.iter().sum::<usize>(), batch);
                assert_eq!(d.order.len(), batch);
                for i in 0..4 {
                    assert_eq!(d.order.iter().filter(|&&o| o == i).count(), d.counts[i]);
                    planned[i] += shares[i] * batch as f64;
                    realised[i] += d.counts[i];
                    let dev = realised[i] as f64 - planned[i];
                    assert!(dev.abs() <= 1.0 + 1e-9, "step {step} source {i}: {dev}");
                }
            }
            let total = (steps * batch) as f64;
            for i in 0..4 {
                let diff = (realised[i] as f64 - planned[i]) / total;
                assert!(
                    diff.abs() < 0.02,
                    "source {i}: realised share off by {diff}"
                );
            }
        }
    }

    #[test]
    fn draws_are_deterministic_and_resume_from_state() {
        let mut a = MixtureSampler::new(3, 7);
        let mut b = MixtureSampler::new(3, 7);
        let mut c = MixtureSampler::new(3, 8);
        let shares = [0.5, 0.3, 0.2];
        let mut differs = false;
        for step in 0..20 {
            let da = a.draw(&shares, 10).unwrap();
            assert_eq!(da, b.draw(&shares, 10).unwrap());
            differs |= da.order != c.draw(&shares, 10).unwrap().order;
            if step == 9 {
                let saved = ron::to_string(a.state()).unwrap();
                b = MixtureSampler::from_state(ron::from_str(&saved).unwrap());
            }
        }
        assert!(differs, "another seed gives another order");
    }

    #[test]
    fn exact_shares_give_exact_counts_and_bad_shares_are_errors() {
        let mut s = MixtureSampler::new(2, 0);
        for _ in 0..5 {
            assert_eq!(s.draw(&[0.75, 0.25], 16).unwrap().counts, vec![12, 4]);
        }
        assert!(s.draw(&[0.5], 16).is_err());
        assert!(s.draw(&[0.9, 0.2], 16).is_err());
        assert!(s.draw(&[1.5, -0.5], 16).is_err());
        assert!(s.draw(&[f64::NAN, 1.0], 16).is_err());
    }
}
