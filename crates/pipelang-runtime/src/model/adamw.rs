//! AdamW over a named set of variables, with the learning rate handed in at every step (the
//! planner owns the schedule) and global-norm gradient clipping.
//!
//! Frozen models are simply not in the set. Weight decay applies to matrices and embeddings
//! (rank >= 2), not to norm gains, biases or scalars, as is usual for transformers. A parameter
//! that got no gradient in a step is left untouched, moments included (PyTorch does the same for
//! `grad is None`). Updates run per parameter in a fixed order, so runs are bit-reproducible.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global gradient-norm threshold; `None` disables clipping.
    pub clip_norm: Option<f64>,
}

impl Default for AdamWConfig {
    /// The language's defaults (`schema::optimizer`).
    fn default() -> Self {
        Self::from_plan(&pipelang::check::ir::Optimizer::default())
    }
}

impl AdamWConfig {
    /// A stage's settings as the plan states them (`clip = 0`: no clipping).
    pub fn from_plan(o: &pipelang::check::ir::Optimizer) -> Self {
        Self {
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            clip_norm: (o.clip > 0.0).then_some(o.clip),
        }
    }
}

pub struct AdamW {
    pub cfg: AdamWConfig,
    params: Vec<(String, Var)>,
    /// Per parameter, the factor on the LR (`lr_scale` of its model; 1 by default).
    lr_scale: Vec<f64>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: u64,
}

/// What one optimiser step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    pub step: u64,
}

/// The variables of a `VarMap`, named `prefix.name` and sorted, ready for [`AdamW::new`].
pub fn named_vars(map: &candle_nn::VarMap, prefix: &str) -> Vec<(String, Var)> {
    let data = map.data().lock().expect("var map lock");
    let mut v: Vec<(String, Var)> = data
        .iter()
        .map(|(k, v)| {
            (
                if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                },
                v.clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl AdamW {
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let mut names = std::collections::HashSet::new();
        for (n, p) in &params {
            if !names.insert(n.clone()) {
                bail!("adamw: parameter {n} listed twice");
            }
            if p.dtype() != DType::F32 {
                bail!(
                    "adamw: parameter {n} is {:?}, only f32 is supported",
                    p.dtype()
                );
            }
        }
        let m = params
            .iter()
            .map(|(_, p)| vec![0f32; p.elem_count()])
            .collect();
        let v = params
            .iter()
            .map(|(_, p)| vec![0f32; p.elem_count()])
            .collect();
        Ok(Self {
            cfg,
            lr_scale: vec![1.0; params.len()],
            params,
            m,
            v,
            step: 0,
        })
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Gives each parameter the LR factor `factor(name)` (a model's `lr_scale`): its step and
    /// its weight decay follow the scaled LR, as a PyTorch parameter group's do.
    pub fn set_lr_scale(&mut self, factor: impl Fn(&str) -> f64) {
        self.lr_scale = self.params.iter().map(|(n, _)| factor(n)).collect();
    }

    /// The LR the parameters of `model` (named `MODEL.PARAM`) are updated with at schedule LR
    /// `lr`; `None` when the optimizer holds none of them.
    pub fn lr_of_model(&self, model: &str, lr: f64) -> Option<f64> {
        let prefix = format!("{model}.");
        let i = self
            .params
            .iter()
            .position(|(n, _)| n.starts_with(&prefix))?;
        Some(lr * self.lr_scale[i])
    }

    /// One update at learning rate `lr` from the gradients in `grads`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<StepStats> {
        if !(lr.is_finite() && lr >= 0.0) {
            bail!("adamw: learning rate {lr} is not a finite non-negative number");
        }
        let gs: Vec<Option<Vec<f32>>> = self
            .params
            .iter()
            .map(|(_, p)| {
                grads
                    .get(p.as_tensor())
                    .map(|g| g.flatten_all()?.to_vec1::<f32>())
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let sq: f64 = gs
            .iter()
            .flatten()
            .map(|g| g.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>())
            .sum();
        let grad_norm = sq.sqrt();
        if !grad_norm.is_finite() {
            bail!("adamw: gradient norm is {grad_norm}; refusing to update");
        }
        let clip = match self.cfg.clip_norm {
            Some(c) if grad_norm > c => (c / (grad_norm + 1e-6)) as f32,
            _ => 1.0,
        };
        self.step += 1;
        let t = self.step as i32;
        let c = &self.cfg;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let bc2_sqrt = bc2.sqrt() as f32;
        let eps = c.eps as f32;
        let updated: Vec<Option<Vec<f32>>> = self
            .params
            .par_iter()
            .zip(&self.lr_scale)
            .zip(self.m.par_iter_mut().zip(self.v.par_iter_mut()))
            .zip(gs.par_iter())
            .map(|((((_, p), scale), (m, v)), g)| {
                let Some(g) = g else { return Ok(None) };
                let lr = lr * scale;
                let step_size = (lr / bc1) as f32;
                let wd = (lr * c.weight_decay) as f32;
                let mut w = p.flatten_all()?.to_vec1::<f32>()?;
                let decay = if p.rank() >= 2 { 1.0 - wd } else { 1.0 };
                for i in 0..w.len() {
                    let gi = g[i] * clip;
                    m[i] = b1 * m[i] + (1.0 - b1) * gi;
                    v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                    w[i] = w[i] * decay - step_size * m[i] / (v[i].sqrt() / bc2_sqrt + eps);
                }
                Ok(Some(w))
            })
            .collect::<Result<_>>()?;
        for ((_, p), w) in self.params.iter().zip(updated) {
            if let Some(w) = w {
                p.set(&Tensor::from_vec(w, p.shape(), p.device())?)?;
            }
        }
        Ok(StepStats {
            grad_norm,
            step: self.step,
        })
    }

    /// State as named tensors (`adamw.step`, `adamw.m.NAME`, `adamw.v.NAME`) for safetensors.
    pub fn export_state(&self, dev: &Device) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        out.insert(
            "adamw.step".to_string(),
            Tensor::new(&[self.step as i64], dev)?,
        );
        for (i, (n, p)) in self.params.iter().enumerate() {
            out.insert(
                format!("adamw.m.{n}"),
                Tensor::from_slice(&self.m[i], p.shape(), dev)?,
            );
            out.insert(
                format!("adamw.v.{n}"),
                Tensor::from_slice(&self.v[i], p.shape(), dev)?,
            );
        }
        Ok(out)
    }

    /// Continues from the state of an earlier optimizer over other parameters (the previous
    /// stage on the same LR schedule): its moments for the parameters both train, zero moments
    /// for the rest; the step count carries over.
    pub fn continue_from(&mut self, prior: &HashMap<String, Tensor>) -> Result<()> {
        let mut state = HashMap::new();
        let step = match prior.get("adamw.step") {
            Some(s) => s.clone(),
            None => Tensor::new(&[0i64], &Device::Cpu)?,
        };
        state.insert("adamw.step".to_string(), step);
        for (n, v) in &self.params {
            for kind in ["m", "v"] {
                let key = format!("adamw.{kind}.{n}");
                let t = match prior.get(&key) {
                    Some(t) if t.shape() == v.shape() => t.clone(),
                    _ => v.as_tensor().zeros_like()?,
                };
                state.insert(key, t);
            }
        }
        self.import_state(&state)
    }

    /// Restores what [`Self::export_state`] wrote; every parameter must be present with its shape.
    pub fn import_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let Some(step) = state.get("adamw.step") else {
            bail!("adamw state: no adamw.step entry")
        };
        let step = step.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
        let [step] = step.as_slice() else {
            bail!("adamw state: adamw.step must hold one value")
        };
        let mut m = Vec::with_capacity(self.params.len());
        let mut v = Vec::with_capacity(self.params.len());
        for (n, p) in &self.params {
            for (kind, dst) in [("m", &mut m), ("v", &mut v)] {
                let key = format!("adamw.{kind}.{n}");
                let Some(t) = state.get(&key) else {
                    bail!("adamw state: missing {key}")
                };
                if t.shape() != p.shape() {
                    bail!(
                        "adamw state: {key} has shape {:?}, the parameter {:?}",
                        t.shape(),
                        p.shape()
                    );
                }
                dst.push(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
            }
        }
        self.step = u64::try_from(*step)
            .map_err(|_| candle_core::Error::Msg(format!("adamw state: negative step {step}")))?;
        self.m = m;
        self.v = v;
        Ok(())
    }
}
