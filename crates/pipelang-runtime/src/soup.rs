//! A soup (`stage soup = average(...)`): the weighted mean of its inputs' final weights,
//! element by element, written atomically as the soup's final checkpoint, from which the
//! stages after it start. No optimizer state: a stage after a soup starts its own.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use pipelang::plan::StagePlan;

use crate::checkpoint::{self, Checkpoint};

/// Averages the inputs of `soup` into `checkpoints/SOUP/final.safetensors` (relative path
/// returned). The mean is taken in f64 and stored in each tensor's own dtype. The checker holds
/// the inputs to the same models; a file that disagrees (another key or shape) is an error
/// naming it, never a silent partial mean.
pub fn average(run_dir: &Path, soup: &StagePlan) -> Result<String, String> {
    let dev = Device::Cpu;
    let err = |e: candle_core::Error| format!("soup `{}`: {e}", soup.name);
    let mut inputs = vec![];
    for a in &soup.average {
        let rel = checkpoint::final_path(&a.stage);
        let ck = Checkpoint::load(run_dir, &rel, &dev).map_err(|e| {
            format!(
                "soup `{}`: cannot read the final checkpoint of `{}` ({rel}): {e}",
                soup.name, a.stage
            )
        })?;
        inputs.push((a, rel, ck));
    }
    let mut out = Checkpoint::default();
    for model in &soup.train {
        let (first, first_rel, first_ck) = &inputs[0];
        let reference = first_ck.model(model);
        let mut sums: BTreeMap<String, (Tensor, DType)> = BTreeMap::new();
        for (a, rel, ck) in &inputs {
            let params = ck.model(model);
            let keys: Vec<&String> = params.keys().collect();
            if keys != reference.keys().collect::<Vec<_>>() {
                return Err(format!(
                    "soup `{}`: {rel} holds other parameters of `{model}` than {first_rel}",
                    soup.name
                ));
            }
            for (name, t) in params {
                if t.dims() != reference[&name].dims() {
                    return Err(format!(
                        "soup `{}`: `{model}/{name}` is {:?} in {rel} but {:?} in {first_rel} \
                         (of `{}`)",
                        soup.name,
                        t.dims(),
                        reference[&name].dims(),
                        first.stage
                    ));
                }
                let w = t
                    .to_dtype(DType::F64)
                    .map_err(err)?
                    .affine(a.weight, 0.0)
                    .map_err(err)?;
                match sums.remove(&name) {
                    Some((s, dt)) => sums.insert(name, ((s + w).map_err(err)?, dt)),
                    None => sums.insert(name, (w, t.dtype())),
                };
            }
        }
        let mut mean = BTreeMap::new();
        for (name, (s, dt)) in sums {
            mean.insert(name, s.to_dtype(dt).map_err(err)?);
        }
        out.add_model(model, mean);
    }
    let rel = checkpoint::final_path(&soup.name);
    out.save(run_dir, &rel)
        .map_err(|e| format!("soup `{}`: cannot write {rel}: {e}", soup.name))?;
    Ok(rel)
}
