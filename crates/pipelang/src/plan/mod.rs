//! The planner: a checked pipeline resolved into its exact schedule. Everything the runtime
//! does per step (LR, mixture, sequence length, RoPE base) comes from here, so that plan and
//! run cannot disagree. Queries are O(log n) in the number of phases and LR pieces: nothing
//! is tabulated per step (full scale is millions of steps).

mod average;
pub mod batch;
pub mod lr;
mod mix;
pub mod picture;
pub mod query;
pub mod rope;
mod step;
pub mod table;
mod walk;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::ir::{self, DataId, IndexVec, ModelId, Pipeline, StageId};

pub use average::StageAverage;
pub use mix::MixTree;
pub use query::{At, PointQuery};
pub use step::StepState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub pipeline: String,
    pub profile: Option<String>,
    pub seed: u64,
    /// In execution order.
    pub stages: Vec<StagePlan>,
    pub schedules: Vec<SchedulePlan>,
    /// Every stage's tokens added up: the compute (parallel variants each count).
    pub total_tokens: f64,
    pub total_steps: u64,
    /// Tokens along the longest chain of `after` edges: what the recipe takes when parallel
    /// branches (variants, a ViT branch) run side by side.
    #[serde(default)]
    pub sequential_tokens: f64,
    #[serde(default)]
    pub sequential_steps: u64,
    /// Names of the data sources, in declaration order (indices of `mix_at`).
    pub sources: IndexVec<DataId, String>,
    /// The pipeline's AdamW settings (each stage's own are in `StagePlan::optimizer`).
    #[serde(default)]
    pub optimizer: ir::Optimizer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulePlan {
    pub name: String,
    pub span: f64,
    pub stages: Vec<String>,
    /// The LR along the span: an external tool evaluates it as `lr::Curve::at` does.
    pub curve: lr::Curve,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lr {
    pub start: f64,
    pub peak: f64,
    pub end: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixSummary {
    pub start: BTreeMap<String, f64>,
    pub end: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleRef {
    pub name: String,
    pub span: f64,
    /// Tokens of the span already run when this stage starts.
    pub offset: f64,
    pub resumed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsFrom {
    pub model: String,
    /// `None`: freshly initialised, or from `init`.
    pub from: Option<String>,
    /// The model's `init = "PATH"` (as written, relative to the pipeline file) when no stage
    /// hands weights over: the weights it starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchFrom {
    pub parent: String,
    /// Steps of the parent trained into the checkpoint the branch starts from.
    pub step: u64,
    /// Tokens into the parent where that checkpoint stands.
    pub tokens: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhasePlan {
    pub name: Option<String>,
    /// First step of the phase, counted within the stage.
    pub first_step: u64,
    pub steps: u64,
    /// Declared budget of the phase.
    pub tokens: f64,
    /// Token position inside the stage where the phase starts.
    pub start_tokens: f64,
    /// Of the first step.
    pub batch: u64,
    /// Of the last step, where the batch changes inside the phase (a ramp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_end: Option<u64>,
    pub seq_len: u64,
    /// Of the first step.
    pub tokens_per_step: u64,
    pub rope_base: BTreeMap<String, f64>,
    /// RoPE scaling of each decoder that has one (a decoder absent here has none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rope_scaling: BTreeMap<String, rope::RopeScaling>,
    pub lr: Lr,
    pub mix: MixSummary,
    /// Tokens of the phase's whole steps.
    pub trained_tokens: f64,
    /// Steps with one batch, in order (one run unless the batch ramps): `Plan::step` finds a
    /// step's batch and start by a binary search here.
    pub runs: Vec<batch::BatchRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagePlan {
    pub name: String,
    /// The stage's index in the checked pipeline.
    pub id: StageId,
    /// The stages it runs after (its `after` list): the edges of the stage graph, which the
    /// pictures follow to draw parallel branches side by side (`picture::Timeline`).
    pub after: Vec<String>,
    /// `after PARENT @ POSITION`: the stage starts from the parent's checkpoint after `step`
    /// of its steps, and runs beside the rest of the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchFrom>,
    pub phases: Vec<PhasePlan>,
    pub steps: u64,
    pub tokens: f64,
    /// Tokens actually trained: whole steps.
    pub trained_tokens: f64,
    /// Of the first phase (phases may differ).
    pub tokens_per_step: u64,
    pub seq_len: u64,
    pub rope_base: BTreeMap<String, f64>,
    /// Of the first phase, as `PhasePlan::rope_scaling`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rope_scaling: BTreeMap<String, rope::RopeScaling>,
    pub train: Vec<String>,
    pub freeze: Vec<String>,
    pub weights_from: Vec<WeightsFrom>,
    pub loss: String,
    pub schedule: ScheduleRef,
    pub lr: Lr,
    pub mix: MixSummary,
    /// Position of the stage's first token along the execution order (for plots).
    pub global_start: f64,
    /// Runs only vision models (the ViT branch).
    pub vision_branch: bool,
    /// The mixture as written (ramps, `rest`, groups), evaluated by `Plan::mix_at`.
    #[serde(rename = "mixture")]
    pub mix_tree: MixTree,
    /// Index of its schedule run in `schedules`.
    #[serde(rename = "schedule_run")]
    pub run: usize,
    /// Indices of the trained models in the checked pipeline.
    pub trained_ids: Vec<ModelId>,
    /// AdamW's settings for this stage: the pipeline's, with the stage's own arguments.
    #[serde(default)]
    pub optimizer: ir::Optimizer,
    /// `lr_scale`: a trained model's LR is the schedule's times its factor (1 when absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lr_scale: BTreeMap<String, f64>,
    /// The stage's own `seed`; `None`: the run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `average` or `ema`: the stage hands on averaged weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaging: Option<StageAverage>,
    /// One of the variants of a `vary` (`mid[42]`): its group and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<VariantOf>,
    /// A soup (`= average(...)`): its inputs and their weights (adding up to 1). It has no
    /// steps; its weights are the weighted mean of the inputs' final weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub average: Vec<AverageInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantOf {
    pub group: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AverageInput {
    pub stage: String,
    pub weight: f64,
}

impl StagePlan {
    /// The LR factor of a model in this stage (`lr_scale`, 1 when not written).
    pub fn lr_factor(&self, model: &str) -> f64 {
        self.lr_scale.get(model).copied().unwrap_or(1.0)
    }

    pub fn is_soup(&self) -> bool {
        !self.average.is_empty()
    }

    /// The stage's name in file names: `mid-42` for `mid[42]` (`check::variants::file_name`).
    pub fn file_name(&self) -> String {
        crate::check::variants::file_name(&self.name)
    }
}

pub(crate) use walk::{Walk, walk};

/// The plan of a walked pipeline. The checker makes it only when the whole file has no errors
/// (`Checked::plan`): plans are made of sound pipelines.
pub(crate) fn resolve(p: &Pipeline, flow: &Walk) -> Plan {
    let sources: IndexVec<DataId, String> = p.data.iter().map(|d| d.name.clone()).collect();
    let name_of = |m: ModelId| p.models[m].name.clone();
    let mut stages = Vec::with_capacity(flow.order.len());
    let mut global = 0.0;
    for &s in &flow.order {
        let st = &p.stages[s];
        let sf = &flow.stages[s];
        let run = &flow.runs[sf.run.0];
        if let Some(inputs) = &st.average {
            let first: &StagePlan = stages
                .iter()
                .find(|x: &&StagePlan| x.id == inputs[0].0.value)
                .expect("a soup's inputs run before it");
            let end = first.phases.last();
            let soup = StagePlan {
                name: st.name.clone(),
                id: s,
                after: inputs
                    .iter()
                    .map(|(i, _)| p.stages[i.value].name.clone())
                    .collect(),
                phases: vec![],
                steps: 0,
                tokens: 0.0,
                trained_tokens: 0.0,
                tokens_per_step: 0,
                seq_len: end.map_or(first.seq_len, |ph| ph.seq_len),
                rope_base: end.map_or(first.rope_base.clone(), |ph| ph.rope_base.clone()),
                rope_scaling: end.map_or(first.rope_scaling.clone(), |ph| ph.rope_scaling.clone()),
                train: first.train.clone(),
                freeze: first.freeze.clone(),
                weights_from: vec![],
                loss: first.loss.clone(),
                schedule: ScheduleRef {
                    offset: first.schedule.offset + first.tokens,
                    resumed: true,
                    ..first.schedule.clone()
                },
                lr: Lr {
                    start: first.lr.end,
                    peak: first.lr.end,
                    end: first.lr.end,
                },
                mix: MixSummary {
                    start: BTreeMap::new(),
                    end: BTreeMap::new(),
                },
                global_start: global,
                vision_branch: first.vision_branch,
                mix_tree: MixTree::new(&[], p.data.len()),
                run: first.run,
                trained_ids: first.trained_ids.clone(),
                optimizer: first.optimizer,
                lr_scale: BTreeMap::new(),
                seed: None,
                averaging: None,
                branch: None,
                variant: None,
                average: inputs
                    .iter()
                    .map(|(i, w)| AverageInput {
                        stage: p.stages[i.value].name.clone(),
                        weight: *w,
                    })
                    .collect(),
            };
            stages.push(soup);
            continue;
        }
        let tree = MixTree::new(&st.mix, p.data.len());
        let mut phases = Vec::with_capacity(sf.phases.len());
        let mut first_step = 0;
        for ph in &sf.phases {
            let a = sf.offset + ph.start;
            let b = a + ph.tokens;
            let fa = ph.start / sf.tokens;
            let fb = (ph.start + ph.tokens) / sf.tokens;
            phases.push(PhasePlan {
                name: ph.name.clone(),
                first_step,
                steps: ph.steps,
                tokens: ph.tokens,
                start_tokens: ph.start,
                batch: ph.batch,
                batch_end: (ph.runs.len() > 1).then(|| ph.runs[ph.runs.len() - 1].batch),
                seq_len: ph.seq_len,
                tokens_per_step: ph.tokens_per_step,
                rope_base: ph.rope.iter().map(|(m, b)| (name_of(*m), *b)).collect(),
                rope_scaling: ph
                    .scaling
                    .iter()
                    .filter(|(_, s)| !s.is_none())
                    .map(|(m, s)| (name_of(*m), *s))
                    .collect(),
                lr: Lr {
                    start: run.curve.at(a),
                    peak: run.curve.peak_between(a, b),
                    end: run.curve.at(b),
                },
                mix: MixSummary {
                    start: tree.named(fa, &sources),
                    end: tree.named(fb, &sources),
                },
                trained_tokens: ph.trained,
                runs: ph.runs.clone(),
            });
            first_step += ph.steps;
        }
        let a = sf.offset;
        let b = a + sf.tokens;
        let trained: f64 = sf.phases.iter().map(|ph| ph.trained).sum();
        // The ViT branch: stages where no decoder learns next-token prediction.
        let vision_branch = matches!(st.loss.value, ir::Loss::Coca { .. })
            || !st
                .train
                .iter()
                .any(|m| matches!(p.models[m.value].kind, ir::ModelKind::Decoder(_)));
        stages.push(StagePlan {
            name: st.name.clone(),
            id: s,
            after: st
                .after
                .iter()
                .map(|a| p.stages[a.value].name.clone())
                .collect(),
            branch: sf.branch.map(|b| BranchFrom {
                parent: p.stages[b.parent].name.clone(),
                step: b.step,
                tokens: b.tokens,
            }),
            steps: first_step,
            tokens: sf.tokens,
            trained_tokens: trained,
            tokens_per_step: sf.phases[0].tokens_per_step,
            seq_len: sf.phases[0].seq_len,
            rope_base: phases[0].rope_base.clone(),
            rope_scaling: phases[0].rope_scaling.clone(),
            train: st.train.iter().map(|m| name_of(m.value)).collect(),
            freeze: st.freeze.iter().map(|m| name_of(m.value)).collect(),
            weights_from: sf
                .weights_from
                .iter()
                .map(|(m, from)| WeightsFrom {
                    model: name_of(*m),
                    from: from.map(|f| p.stages[f].name.clone()),
                    init: match from {
                        None => p.models[*m].init.as_ref().map(|i| i.value.clone()),
                        Some(_) => None,
                    },
                })
                .collect(),
            loss: match st.loss.value {
                ir::Loss::NextToken => "next_token".into(),
                ir::Loss::Coca { caption_weight } => {
                    format!("coca(caption_weight = {caption_weight})")
                }
            },
            schedule: ScheduleRef {
                name: run.name.clone(),
                span: run.span,
                offset: sf.offset,
                resumed: run.stages[0] != s,
            },
            lr: Lr {
                start: run.curve.at(a),
                peak: run.curve.peak_between(a, b),
                end: run.curve.at(b),
            },
            // The first phase starts where the stage does, and the last one ends where it ends
            // (when its share adds up exactly): their shares are the stage's, already made.
            mix: MixSummary {
                start: match phases.first() {
                    Some(ph) if ph.start_tokens == 0.0 => ph.mix.start.clone(),
                    _ => tree.named(0.0, &sources),
                },
                end: match phases.last() {
                    Some(ph) if ph.start_tokens + ph.tokens == sf.tokens => ph.mix.end.clone(),
                    _ => tree.named(1.0, &sources),
                },
            },
            global_start: global,
            vision_branch,
            mix_tree: tree,
            run: sf.run.0,
            trained_ids: st.train.iter().map(|m| m.value).collect(),
            optimizer: p.optimizer_of(st),
            lr_scale: st
                .lr_scale
                .iter()
                .map(|(m, f)| (name_of(m.value), f.value))
                .collect(),
            seed: st.seed.map(|s| s.value),
            averaging: sf.average,
            variant: st.variant.as_ref().map(|v| VariantOf {
                group: v.group.clone(),
                key: v.key.clone(),
            }),
            average: vec![],
            phases,
        });
        global += sf.tokens;
    }
    let schedules = flow
        .runs
        .iter()
        .map(|r| SchedulePlan {
            name: r.name.clone(),
            span: r.span,
            stages: r.stages.iter().map(|&s| p.stages[s].name.clone()).collect(),
            curve: r.curve.clone(),
        })
        .collect();
    let (sequential_tokens, sequential_steps) = longest_chain(p, &stages);
    Plan {
        pipeline: p.name.clone(),
        profile: p.profile.clone(),
        seed: p.seed.value,
        total_tokens: global,
        total_steps: stages.iter().map(|s| s.steps).sum(),
        sequential_tokens,
        sequential_steps,
        stages,
        schedules,
        sources,
        optimizer: p.optimizer.value,
    }
}

/// Tokens and steps along the longest chain of `after` edges (stages in execution order, so
/// every predecessor is done before its successors).
fn longest_chain(p: &Pipeline, stages: &[StagePlan]) -> (f64, u64) {
    let mut end: IndexVec<StageId, (f64, u64)> = p.stages.iter().map(|_| (0.0, 0)).collect();
    let mut best = (0.0, 0);
    for s in stages {
        let start = p.stages[s.id]
            .after
            .iter()
            .map(|a| end[a.value])
            .fold((0.0, 0), |m: (f64, u64), e| if e.0 > m.0 { e } else { m });
        let e = (start.0 + s.tokens, start.1 + s.steps);
        if e.0 > best.0 {
            best = e;
        }
        end[s.id] = e;
    }
    best
}

impl Plan {
    /// Reads back what `pipe plan --format json` wrote.
    pub fn from_json(text: &str) -> Result<Plan, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn stage(&self, name: &str) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// A stable hash of the plan's JSON (recorded by runs to detect a changed plan).
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{:x}", Sha256::digest(json.as_bytes()))
    }
}
