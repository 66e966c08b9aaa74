//! The state of one step: LR, phase, batch, sequence length, RoPE base per model and source
//! shares, in O(log n) (a binary search over phases and LR pieces; nothing is tabulated).

use std::collections::BTreeMap;

use serde::Serialize;

use super::batch::BatchRun;
use super::rope::{Rope, RopeScaling};
use super::{PhasePlan, Plan, StagePlan};
use crate::check::ir::{DataId, IndexVec};

#[derive(Debug, Clone, Serialize)]
pub struct StepState {
    pub stage: String,
    pub phase: Option<String>,
    /// Step within the stage (0-based).
    pub step: u64,
    /// Step counted from the start of the whole run.
    pub global_step: u64,
    /// Tokens into the stage where the step starts.
    pub tokens: f64,
    pub lr: f64,
    pub batch: u64,
    pub seq_len: u64,
    pub tokens_per_step: u64,
    /// RoPE base of each decoder the stage uses, by model name.
    pub rope_base: BTreeMap<String, f64>,
    /// RoPE scaling of each decoder that has one, by model name (absent: none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rope_scaling: BTreeMap<String, RopeScaling>,
    /// Shares of the sources in use, by name.
    pub mix: BTreeMap<String, f64>,
    /// Share of every data source, indexed like `Plan::sources` (zeros included).
    #[serde(skip)]
    pub shares: IndexVec<DataId, f64>,
}

impl StepState {
    /// The rotary embedding a decoder runs with at this step (`None`: the stage does not use
    /// it, or it is not a decoder).
    pub fn rope(&self, model: &str) -> Option<Rope> {
        let base = *self.rope_base.get(model)?;
        Some(Rope {
            base,
            scaling: self.rope_scaling.get(model).copied().unwrap_or_default(),
        })
    }
}

impl StagePlan {
    /// The phase a step of this stage falls in (steps past the end fall in the last phase).
    pub fn phase_of(&self, step: u64) -> &PhasePlan {
        let i = self
            .phases
            .partition_point(|p| p.first_step + p.steps <= step)
            .min(self.phases.len() - 1);
        &self.phases[i]
    }

    /// Tokens into the stage where `step` starts.
    pub fn tokens_at(&self, step: u64) -> f64 {
        let ph = self.phase_of(step);
        let (run, k) = ph.run_of(step);
        ph.start_tokens + run.start + k as f64 * (run.batch * ph.seq_len) as f64
    }

    /// Sequences in `step`'s batch.
    pub fn batch_at(&self, step: u64) -> u64 {
        self.phase_of(step).run_of(step).0.batch
    }
}

impl PhasePlan {
    /// The run of one batch that a step of the stage falls in, and the step's place in it.
    fn run_of(&self, step: u64) -> (&BatchRun, u64) {
        let k = step - self.first_step.min(step);
        let i = self
            .runs
            .partition_point(|r| r.first_step <= k)
            .saturating_sub(1);
        let run = &self.runs[i];
        (run, k - run.first_step)
    }
}

impl Plan {
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// A soup has no step: its state is what it hands over (its inputs' last LR, seq_len and
    /// RoPE bases), with no batch and no data.
    fn soup_state(&self, stage: usize) -> StepState {
        let st = &self.stages[stage];
        StepState {
            stage: st.name.clone(),
            phase: None,
            step: 0,
            global_step: self.stages[..stage].iter().map(|s| s.steps).sum(),
            tokens: 0.0,
            lr: st.lr.end,
            batch: 0,
            seq_len: st.seq_len,
            tokens_per_step: 0,
            rope_base: st.rope_base.clone(),
            rope_scaling: st.rope_scaling.clone(),
            mix: BTreeMap::new(),
            shares: IndexVec::from_elem(0.0, self.sources.len()),
        }
    }

    /// LR of a step: the schedule evaluated at the token position where the step starts.
    pub fn lr_at(&self, stage: usize, step: u64) -> f64 {
        let st = &self.stages[stage];
        self.schedules[st.run]
            .curve
            .at(st.schedule.offset + st.tokens_at(step))
    }

    /// Share of every data source (indexed like `sources`) at a step.
    pub fn mix_at(&self, stage: usize, step: u64) -> IndexVec<DataId, f64> {
        let st = &self.stages[stage];
        st.mix_tree.at(st.tokens_at(step) / st.tokens)
    }

    /// Everything a step of a stage runs with: the one source of per-step values for the
    /// training loop, `pipe plan --at` and the editor. Steps past the end give the last step.
    pub fn step(&self, stage: usize, step: u64) -> StepState {
        let st = &self.stages[stage];
        if st.is_soup() {
            return self.soup_state(stage);
        }
        let step = step.min(st.steps.saturating_sub(1));
        let ph = st.phase_of(step);
        let global_step = self.stages[..stage].iter().map(|s| s.steps).sum::<u64>() + step;
        let shares = self.mix_at(stage, step);
        StepState {
            stage: st.name.clone(),
            phase: ph.name.clone(),
            step,
            global_step,
            tokens: st.tokens_at(step),
            lr: self.lr_at(stage, step),
            batch: st.batch_at(step),
            seq_len: ph.seq_len,
            tokens_per_step: st.batch_at(step) * ph.seq_len,
            rope_base: ph.rope_base.clone(),
            rope_scaling: ph.rope_scaling.clone(),
            mix: shares
                .iter_enumerated()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, v)| (self.sources[i].clone(), *v))
                .collect(),
            shares,
        }
    }
}
