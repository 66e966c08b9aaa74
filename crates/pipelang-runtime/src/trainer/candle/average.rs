//! Weights averaged along a stage (`StagePlan::average`): kept in f64 beside the trained
//! weights, updated after every step, saved in every checkpoint (`average/` + the weight's
//! key) so that a resumed stage continues the same sum, and handed on at the stage's end.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use pipelang::plan::StageAverage;

use crate::checkpoint::Checkpoint;

/// The checkpoint prefix of the running average.
pub const PREFIX: &str = "average/";

pub struct Averager {
    kind: StageAverage,
    /// By checkpoint key (`model/MODEL/PARAM`): the sum of the window's weights so far, or the
    /// EMA; empty before the first step that counts.
    acc: BTreeMap<String, Tensor>,
}

impl Averager {
    /// A fresh average, or the one the checkpoint a stage resumes from holds.
    pub fn new(kind: StageAverage, resumed: Option<&Checkpoint>) -> Averager {
        let acc = resumed.map_or_else(BTreeMap::new, |ck| ck.under(PREFIX));
        Averager { kind, acc }
    }

    /// After step `step` of the stage, with the weights it left (`model/...` keys).
    pub fn step(
        &mut self,
        step: u64,
        weights: &BTreeMap<String, Tensor>,
    ) -> candle_core::Result<()> {
        for (k, w) in weights {
            let w = w.to_dtype(DType::F64)?;
            let next = match (self.kind, self.acc.get(k)) {
                (StageAverage::Last { first_step, .. }, _) if step < first_step => continue,
                (StageAverage::Last { .. }, Some(sum)) => (sum + &w)?,
                (StageAverage::Ema { decay }, Some(e)) if step > 0 => {
                    (e.affine(decay, 0.0)? + w.affine(1.0 - decay, 0.0)?)?
                }
                _ => w,
            };
            self.acc.insert(k.clone(), next);
        }
        Ok(())
    }

    /// The running state, for a checkpoint.
    pub fn state(&self) -> impl Iterator<Item = (String, Tensor)> + '_ {
        self.acc
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.clone()))
    }

    /// The averaged weights after the stage's last step (`steps` of them), in the dtype of
    /// `like` (the weights they replace).
    pub fn result(
        &self,
        steps: u64,
        like: &BTreeMap<String, Tensor>,
    ) -> candle_core::Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (k, w) in like {
            let a = self.acc.get(k).ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "the average has no `{k}`: was the stage resumed from another recipe?"
                ))
            })?;
            let a = match self.kind {
                StageAverage::Last { first_step, .. } => {
                    a.affine(1.0 / (steps - first_step) as f64, 0.0)?
                }
                StageAverage::Ema { .. } => a.clone(),
            };
            out.insert(k.clone(), a.to_dtype(w.dtype())?);
        }
        Ok(out)
    }
}
