//! Seeded, order-independent parameter initialisation.
//!
//! candle's CPU `randn` draws from an unseeded thread RNG, so two runs with the same seed would
//! start from different weights. Here each variable's values come from a ChaCha stream keyed by
//! the run seed and the variable's full name: the same seed gives the same model bit for bit,
//! whatever order the layers are built in.

use candle_core::{DType, Device, Result, Shape, Tensor, Var, bail};
use candle_nn::{Init, VarBuilder, VarMap, var_builder::SimpleBackend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Seeded {
    map: VarMap,
    seed: u64,
}

/// A `VarBuilder` that creates missing variables in `map` with seeded values (variables already
/// in `map`, e.g. loaded from a checkpoint, are returned as they are, shape-checked).
pub fn seeded_var_builder(map: &VarMap, seed: u64, dev: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(Seeded {
            map: map.clone(),
            seed,
        }),
        DType::F32,
        dev.clone(),
    )
}

fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(h)
}

fn values(init: Init, n: usize, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    Ok(match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => (0..n)
            .map(|_| {
                // Box-Muller; 1 - u keeps the log argument in (0, 1].
                let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                (mean + stdev * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect(),
        Init::Uniform { lo, up } => (0..n)
            .map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32)
            .collect(),
        Init::Kaiming { .. } => bail!("seeded init: Kaiming hints are not used by these models"),
    })
}

impl SimpleBackend for Seeded {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.map.data().lock().expect("var map lock");
        if let Some(v) = data.get(name) {
            if v.shape() != &s {
                bail!(
                    "parameter {name}: stored shape {:?}, the model needs {s:?}",
                    v.shape()
                );
            }
            return Ok(v.as_tensor().clone());
        }
        if dtype != DType::F32 {
            bail!("parameter {name}: only f32 parameters are supported, asked for {dtype:?}");
        }
        let vals = values(h, s.elem_count(), &mut stream(self.seed, name))?;
        let var = Var::from_tensor(&Tensor::from_vec(vals, s, dev)?)?;
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        match self.map.data().lock().expect("var map lock").get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => bail!("parameter {name} does not exist yet"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map
            .data()
            .lock()
            .expect("var map lock")
            .contains_key(name)
    }
}
