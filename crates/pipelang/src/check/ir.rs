//! The typed pipeline: what a checked `.pipe` file means. Every value keeps the span it came
//! from (after a profile, the span of the profile's override), so later passes can point at it.

use serde::{Deserialize, Serialize};

pub use crate::idx::{Idx, IndexVec};
use crate::syntax::Span;

pub use crate::plan::rope::RopeScaling;

crate::newtype_index! {
    /// A model's place in `Pipeline::models` (declaration order).
    pub struct ModelId;
}
crate::newtype_index! {
    /// A data source's place in `Pipeline::data` (declaration order).
    pub struct DataId;
}
crate::newtype_index! {
    /// A named schedule's place in `Pipeline::schedules` (declaration order).
    pub struct ScheduleId;
}
crate::newtype_index! {
    /// A stage's place in `Pipeline::stages` (declaration order, not execution order).
    pub struct StageId;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Sp { value, span }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    pub name: String,
    pub name_span: Span,
    pub seed: Sp<u64>,
    pub batch: Sp<u64>,
    /// The pipeline's `seq_len`; a stand-in of 1K while it is missing or unreadable.
    pub seq_len: Sp<u64>,
    /// Whether `seq_len` was read: checks against the stand-in are not made.
    pub seq_len_written: bool,
    pub models: IndexVec<ModelId, Model>,
    pub data: IndexVec<DataId, Data>,
    pub schedules: IndexVec<ScheduleId, Schedule>,
    pub stages: IndexVec<StageId, Stage>,
    /// Named mixtures, in written order (stages hold copies of the ones they use).
    pub mixtures: Vec<NamedMix>,
    pub profiles: Vec<ProfileDecl>,
    /// Where data globs are resolved (a profile can point every source at sample data).
    pub data_root: Option<Sp<String>>,
    /// Generate sample data into `data_root` when it is missing.
    pub sample_data: bool,
    /// The profile applied to this pipeline, if any.
    pub profile: Option<String>,
    /// Every stage's AdamW settings, unless the stage writes its own.
    pub optimizer: Sp<Optimizer>,
}

impl Pipeline {
    pub fn model_id(&self, name: &str) -> Option<ModelId> {
        self.models.position(|m| m.name == name)
    }
    pub fn data_id(&self, name: &str) -> Option<DataId> {
        self.data.position(|d| d.name == name)
    }
    pub fn schedule_id(&self, name: &str) -> Option<ScheduleId> {
        self.schedules.position(|s| s.name == name)
    }
    pub fn stage_id(&self, name: &str) -> Option<StageId> {
        self.stages.position(|s| s.name == name)
    }
    /// A stage's AdamW settings: the pipeline's, with the arguments the stage writes.
    pub fn optimizer_of(&self, st: &Stage) -> Optimizer {
        let mut o = self.optimizer.value;
        for (i, v) in st.optimizer.iter().flat_map(|x| &x.value) {
            o.set(*i, *v);
        }
        o
    }
}

/// AdamW's settings, in the order of `schema::optimizer::PARAMS`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Optimizer {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global gradient-norm threshold; 0 does not clip.
    pub clip: f64,
}

impl Default for Optimizer {
    fn default() -> Self {
        let d = |i: usize| crate::schema::optimizer::PARAMS[i].default;
        Optimizer {
            beta1: d(0),
            beta2: d(1),
            eps: d(2),
            weight_decay: d(3),
            clip: d(4),
        }
    }
}

impl Optimizer {
    /// Argument `i` of `schema::optimizer::PARAMS`.
    pub fn set(&mut self, i: usize, v: f64) {
        *self.slot(i) = v;
    }
    pub fn get(mut self, i: usize) -> f64 {
        *self.slot(i)
    }
    fn slot(&mut self, i: usize) -> &mut f64 {
        match i {
            0 => &mut self.beta1,
            1 => &mut self.beta2,
            2 => &mut self.eps,
            3 => &mut self.weight_decay,
            _ => &mut self.clip,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    pub kind: ModelKind,
    /// `init = "PATH"`: the weights it starts from when no stage hands any over.
    pub init: Option<Sp<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub enum ModelKind {
    Decoder(DecoderSpec),
    Vit(VitSpec),
    Projector(ProjectorSpec),
}

impl ModelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Decoder(_) => "decoder",
            ModelKind::Vit(_) => "vit",
            ModelKind::Projector(_) => "projector",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mlp {
    SwiGlu,
    Gelu,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecoderSpec {
    pub vocab: Sp<u64>,
    pub d_model: Sp<u64>,
    pub layers: Sp<u64>,
    pub heads: Sp<u64>,
    pub experts: Option<Sp<u64>>,
    pub active_experts: Option<Sp<u64>>,
    pub rope_base: Sp<f64>,
    /// `none` unless written.
    pub rope_scaling: Sp<RopeScaling>,
    pub mlp: Sp<Mlp>,
    /// `None`: as many as `heads`.
    pub kv_heads: Option<Sp<u64>>,
    /// `None`: the MLP kind's usual width.
    pub ffn: Option<Sp<u64>>,
    pub tie_embeddings: Sp<bool>,
    pub qk_norm: Sp<bool>,
    pub shared_experts: Option<Sp<u64>>,
    pub dense_layers: Option<Sp<u64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VitSpec {
    pub patch: Sp<u64>,
    pub d_model: Sp<u64>,
    pub layers: Sp<u64>,
    pub heads: Sp<u64>,
    /// Largest image side in pixels; larger images are resized down.
    pub max_image_side: Sp<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectorSpec {
    pub from: Sp<ModelId>,
    pub to: Sp<ModelId>,
    pub pixel_shuffle: Sp<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DataKind {
    Text,
    ImageText,
    Interleaved,
    Video,
}

impl DataKind {
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Text => "text",
            DataKind::ImageText => "image_text",
            DataKind::Interleaved => "interleaved",
            DataKind::Video => "video",
        }
    }
    pub fn has_images(self) -> bool {
        self != DataKind::Text
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Data {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    pub kind: DataKind,
    pub globs: Vec<Sp<String>>,
    pub tokenizer: Option<Sp<String>>,
    /// The string column of Parquet files (`schema::data::DEFAULT_COLUMN` when not written).
    pub column: Option<Sp<String>>,
    /// The caption field of WebDataset samples' `.json` (`None`: the `.txt` entry).
    pub caption: Option<Sp<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    pub segments: Vec<Segment>,
}

/// A duration inside an LR schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Duration {
    Tokens(f64),
    /// A fraction (0..=1) of the schedule's span.
    Share(f64),
    Steps(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum DecayShape {
    Linear,
    Cosine,
    Sqrt,
    /// Halves every `half_life` from the peak, never below `min`.
    Exponential {
        half_life: Sp<Duration>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub enum SegmentKind {
    Constant {
        lr: Sp<f64>,
    },
    /// `from` absent: start from the LR where the segment starts (the previous segment's end,
    /// or the hand-over LR when it starts the schedule).
    Linear {
        from: Option<Sp<f64>>,
        to: Sp<f64>,
    },
    /// `peak` absent: start from the LR where the segment starts, as `linear` without `from`.
    /// `horizon`: where the curve reaches `min`, counted from the segment's start (warmup
    /// included); the segment may end before it (the curve is cut) or after it (holds `min`).
    Cosine {
        peak: Option<Sp<f64>>,
        warmup: Option<Sp<Duration>>,
        min: Sp<f64>,
        horizon: Option<Sp<Duration>>,
    },
    Wsd {
        peak: Sp<f64>,
        warmup: Sp<Duration>,
        decay: Sp<Duration>,
        min: Sp<f64>,
        shape: DecayShape,
    },
    /// Lasts the segment's `over` (or runs `until`), also as the last segment.
    Rewarmup {
        to: Sp<f64>,
    },
    /// Halves every `half_life` from `from` (absent: the LR where it starts), never below `min`.
    Exponential {
        from: Option<Sp<f64>>,
        half_life: Sp<Duration>,
        min: Sp<f64>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub kind: SegmentKind,
    /// The segment's length; every segment but the last needs one (the last fills the span),
    /// or an `until`.
    pub over: Option<Sp<Duration>>,
    /// Where the segment ends: a position in the schedule's span (tokens from its start, a
    /// share of the span, or steps). At most one of `over` and `until` is set.
    pub until: Option<Sp<Duration>>,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum StageLr {
    /// Starts a new schedule, written inline (anonymous, named after the stage).
    Inline(Vec<Segment>),
    /// Starts a named schedule.
    Start(Sp<ScheduleId>),
    /// Continues a schedule: `None` for plain `resume` (the single predecessor's schedule);
    /// `Some` for `resume(schedule)` or `resume(stage)` (that stage's schedule).
    Resume {
        target: Option<Sp<ResumeTarget>>,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResumeTarget {
    Schedule(ScheduleId),
    Stage(StageId),
}

/// `a -> b` (the left side is the value the stage inherits, checked) or a plain value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Transition<T> {
    pub from: Option<Sp<T>>,
    pub to: Sp<T>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Weight {
    Fixed(f64),
    Rest,
    Ramp(f64, f64),
}

#[derive(Debug, Clone, Serialize)]
pub enum MixTarget {
    Source(DataId),
    Group(Vec<MixNode>),
}

#[derive(Debug, Clone, Serialize)]
pub struct MixNode {
    pub name: String,
    pub span: Span,
    pub weight: Sp<Weight>,
    pub target: MixTarget,
    /// A group that copies the mixture of this name (a `mix NAME { ... }` or a stage's):
    /// its members were checked where they are written, and problems with its sources in
    /// this stage are reported at `span`, the reference. (Empty after an error at the name.)
    pub copy_of: Option<String>,
}

/// Every source of a mixture with where the mixture names it: a source inside a copied
/// mixture is named by the reference (`mix = web`), where a problem in this stage is caused.
pub fn mix_sources(nodes: &[MixNode]) -> Vec<(DataId, Span)> {
    fn walk(nodes: &[MixNode], at: Option<Span>, out: &mut Vec<(DataId, Span)>) {
        for n in nodes {
            match &n.target {
                MixTarget::Source(d) => out.push((*d, at.unwrap_or(n.span))),
                MixTarget::Group(g) => {
                    let here = at.or(n.copy_of.as_ref().map(|_| n.span));
                    walk(g, here, out)
                }
            }
        }
    }
    let mut out = vec![];
    walk(nodes, None, &mut out);
    out
}

/// `mix NAME { ... }`: a mixture stages use by name (`mix = NAME`, or `NAME = 60%` inside
/// another mixture).
#[derive(Debug, Clone, Serialize)]
pub struct NamedMix {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    pub nodes: Vec<MixNode>,
}

/// Weights averaged along a stage (`average`, `ema`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Averaging {
    /// `average = last(D)`: the final D of the stage (a `Share` is of the stage's budget).
    Last(Duration),
    /// `ema = DECAY`, 0 < DECAY < 1.
    Ema(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Loss {
    NextToken,
    Coca { caption_weight: f64 },
}

/// A stage's budget: tokens, or optimizer steps (their tokens follow the batch where each
/// step falls, so the planner counts them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Budget {
    Tokens(f64),
    Steps(u64),
}

impl Budget {
    /// Whether lowering produced a value (a missing budget is `Tokens(NaN)`).
    pub fn is_known(self) -> bool {
        match self {
            Budget::Tokens(t) => t.is_finite(),
            Budget::Steps(_) => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum PhaseBudget {
    Tokens(f64),
    /// A fraction (0..=1) of the stage's budget, in the stage's unit (`50%`, `1/6`).
    Share(f64),
    Steps(u64),
    /// What the other phases leave of the stage's budget (the last phase only).
    Rest,
}

/// The batch of a stage or phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Batch {
    /// `batch = N`: sequences per step.
    Sequences(u64),
    /// `batch = ramp(from -> to, over = T)`: sequences, the linear value at the token position
    /// where a step starts (counted from the start of the stage or phase that writes it),
    /// rounded down; `to` once `over` tokens have passed.
    Ramp { from: u64, to: u64, over: f64 },
    /// `batch_tokens = T`: tokens per step; the sequences follow each phase's seq_len.
    Tokens(f64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    pub budget: Sp<PhaseBudget>,
    pub seq_len: Option<Transition<u64>>,
    pub rope_base: Option<Transition<f64>>,
    pub rope_scaling: Option<Transition<RopeScaling>>,
    pub batch: Option<Sp<Batch>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    /// The header up to `{`: where whole-stage problems are reported.
    pub header: Span,
    pub after: Vec<Sp<StageId>>,
    /// `after PARENT @ POSITION`: the stage starts from a checkpoint inside `PARENT`.
    pub branch: Option<Branch>,
    pub train: Vec<Sp<ModelId>>,
    pub freeze: Vec<Sp<ModelId>>,
    pub budget: Sp<Budget>,
    pub batch: Option<Sp<Batch>>,
    pub seq_len: Option<Transition<u64>>,
    pub rope_base: Option<Transition<f64>>,
    pub rope_scaling: Option<Transition<RopeScaling>>,
    pub loss: Sp<Loss>,
    pub lr: StageLr,
    pub lr_span: Span,
    /// The mixture's top level (one node for `data = src`).
    pub mix: Vec<MixNode>,
    pub mix_span: Span,
    pub phases: Vec<Phase>,
    /// `weights { model = stage }`: where a model's weights come from, when predecessors disagree.
    pub weights: Vec<(Sp<ModelId>, Sp<StageId>)>,
    pub checkpoint_every: Option<Sp<u64>>,
    /// The `adamw(...)` arguments the stage writes (indices into `schema::optimizer::PARAMS`).
    pub optimizer: Option<Sp<Vec<(usize, f64)>>>,
    /// `lr_scale { model = factor }`: the model's LR is the schedule's times the factor.
    pub lr_scale: Vec<(Sp<ModelId>, Sp<f64>)>,
    pub seed: Option<Sp<u64>>,
    /// `average = last(D)` or `ema = DECAY`: what the stage hands on is averaged weights.
    pub averaging: Option<Sp<Averaging>>,
    /// `train` or `freeze` named a model that is not declared (reported there): checks that
    /// need the stage's models are skipped rather than report its consequences.
    pub unknown_models: bool,
    /// `after` named a stage that is not declared: what would flow from it (weights, the
    /// schedule to resume) is not reported missing.
    pub unknown_after: bool,
    /// One of the stages a `vary` expands into (`mid[42]`).
    pub variant: Option<Variant>,
    /// A soup: its inputs and their weights (fractions adding up to 1). It trains nothing;
    /// its weights are the weighted mean of the inputs' final weights.
    pub average: Option<Vec<(Sp<StageId>, f64)>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// The stage as written (`mid`), which names the whole group.
    pub group: String,
    /// The value as written in the list (`42`): the variant is `group[key]`.
    pub key: String,
    /// Its place in the list: the first variant stands for the group in checks made once.
    pub index: usize,
}

/// A branch point: a position inside another stage, where that stage's checkpoint is taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Branch {
    pub parent: Sp<StageId>,
    /// Tokens or steps into the parent; counted back from its end when `from_end`.
    pub at: Sp<Budget>,
    pub from_end: bool,
}

impl Stage {
    /// Whether this is the variant (or stage) that checks of the declaration are made on:
    /// the others are copies of it with another seed.
    pub fn is_declaration(&self) -> bool {
        self.variant.as_ref().is_none_or(|v| v.index == 0)
    }
    pub fn uses(&self, m: ModelId) -> bool {
        self.train.iter().chain(&self.freeze).any(|x| x.value == m)
    }
    pub fn trains(&self, m: ModelId) -> bool {
        self.train.iter().any(|x| x.value == m)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileDecl {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
}
