//! A plan lowered into engine runs: one per stage, phase and mixture piece, in plan order.
//! Each run carries everything its engine needs (model dims, RoPE base, seq_len, batch,
//! mixture, the LR from its first token, where its weights and optimizer state come from), so
//! an exporter renders it and computes nothing. The rules are the candle runtime's: a model's
//! weights come from the stage the plan names; `resume` carries the optimizer state of the
//! stage before on the schedule, a new schedule starts a fresh optimizer. An engine's step
//! counter and data position never cross runs: every run starts its own at zero.

use pipelang::check::ir::{self, ModelKind, Pipeline};
use pipelang::diag::{Code, Diagnostic};
use pipelang::plan::rope::RopeScaling;
use pipelang::plan::{Plan, lr::Piece as LrPiece};
use serde::{Deserialize, Serialize};

use crate::pieces;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Pieces per phase whose mixture moves (`--ramp-pieces`); `None`: the fewest that keep
    /// every share within `pieces::MAX_ERROR` of the plan.
    pub ramp_pieces: Option<u64>,
    /// The engine the runs are for: what it can train decides which stages are refused.
    pub target: Target,
    /// Stages left out of the export (`--skip STAGE[=PATH]`): trained elsewhere, their models
    /// read from `PATH` by the stages that take them.
    pub skip: Vec<Skip>,
}

/// A stage the export leaves out, and where the weights it would have trained are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub stage: String,
    pub weights: Option<String>,
}

/// A model whose weights come from a skipped stage, read from the path the user gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Given {
    pub model: String,
    pub stage: String,
    pub path: String,
}

/// The engines a plan is lowered for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Target {
    #[default]
    OlmoCore,
    /// Megatron-LM: its multimodal example (`examples/multimodal/train.py`) trains a ViT and
    /// projector with the decoder, with `--freeze-LM` / `--freeze-ViT`.
    Megatron,
    /// torchtitan 0.3.0: a decoder alone, or in its Kimi-VL container (MoonViT + projector).
    Torchtitan,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::OlmoCore => "OLMo-core",
            Target::Megatron => "Megatron-LM",
            Target::Torchtitan => "torchtitan",
        }
    }
    /// Whether the export maps a RoPE scaling exactly (the engine's own frequencies, checked
    /// against `pipelang::plan::rope` by the `*_real` tests). OLMo-core has all three
    /// (`PIRoPEScalingConfig`, `YaRNRoPEScalingConfig`, `StepwiseRoPEScalingConfig`);
    /// torchtitan has Llama 3.1's (`RoPE.Config(scaling = "llama")`), but no position
    /// interpolation, and its attention has no YaRN temperature; Megatron-LM has position
    /// interpolation by a whole factor (`--rotary-seq-len-interpolation-factor` is an int) and
    /// Llama 3.1's with the released model's bands only (`--use-rope-scaling` takes the factor;
    /// low 1, high 4 and the original 8,192 are fixed in megatron-core). megatron-core 0.16.1
    /// has a YaRN class for GPT models, but Megatron-LM core_v0.16.1's `--position-embedding-type`
    /// cannot select it (its `--rope-type yarn` is for multi-latent attention only).
    pub fn maps_rope_scaling(self, s: &RopeScaling) -> bool {
        match (self, s) {
            (_, RopeScaling::None) | (Target::OlmoCore, _) => true,
            (Target::Torchtitan, RopeScaling::Llama3 { .. }) => true,
            (Target::Megatron, RopeScaling::Linear { factor }) => factor.fract() == 0.0,
            (
                Target::Megatron,
                RopeScaling::Llama3 {
                    low_freq,
                    high_freq,
                    original,
                    ..
                },
            ) => *low_freq == 1.0 && *high_freq == 4.0 && *original == MEGATRON_LLAMA3_ORIGINAL,
            _ => false,
        }
    }
    /// Whether the engine trains vision models (a ViT, a projector) beside the decoder.
    pub fn vision(self) -> bool {
        matches!(self, Target::Megatron | Target::Torchtitan)
    }
}

/// The original context megatron-core's Llama 3.1 scaling assumes (`_apply_scaling`).
pub const MEGATRON_LLAMA3_ORIGINAL: u64 = 8192;

/// A decoder as the engine builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDims {
    pub name: String,
    pub vocab: u64,
    pub d_model: u64,
    pub layers: u64,
    pub heads: u64,
    /// Key/value heads: `heads` without grouped-query attention, 1 for multi-query.
    pub kv_heads: u64,
    /// SwiGLU (three matrices) rather than GELU (two).
    pub swiglu: bool,
    /// Hidden width of the MLP (of each expert under MoE): `ffn`, else the runtime's default.
    pub mlp_hidden: u64,
    pub experts: Option<u64>,
    pub active_experts: Option<u64>,
    /// Under MoE: experts every token also goes through (one MLP `shared_experts x
    /// mlp_hidden` wide), and the first `dense_layers` blocks with a dense MLP.
    pub shared_experts: u64,
    pub dense_layers: u64,
    /// RMSNorm over each head's queries and keys (weights of width `d_model / heads`).
    pub qk_norm: bool,
    /// The output head is the embedding matrix.
    pub tie_embeddings: bool,
    /// Parameters of the model as pipelang builds it (embedding, blocks, final norm, the head
    /// unless tied; no biases).
    pub params: u64,
}

impl ModelDims {
    fn of(name: &str, d: &ir::DecoderSpec) -> Self {
        let dm = d.d_model.value;
        let swiglu = d.mlp.value == ir::Mlp::SwiGlu;
        // pipelang-runtime's `default_mlp_hidden`: 8/3 d rounded up to a multiple of 8 for
        // SwiGLU (the parameters of a 4 d GELU MLP), 4 d for GELU.
        let hidden = d.ffn.map_or_else(
            || {
                if swiglu {
                    (8 * dm).div_ceil(3).div_ceil(8) * 8
                } else {
                    4 * dm
                }
            },
            |f| f.value,
        );
        let heads = d.heads.value;
        let kv = d.kv_heads.map_or(heads, |k| k.value);
        let hd = dm / heads;
        let qk_norm = d.qk_norm.value;
        let experts = d.experts.map(|e| e.value);
        let shared = d.shared_experts.map_or(0, |s| s.value);
        let layers = d.layers.value;
        let dense_layers = if experts.is_some() {
            d.dense_layers.map_or(0, |n| n.value)
        } else {
            0
        };
        let mlp = |width: u64| if swiglu { 3 } else { 2 } * dm * width;
        let attention = 2 * dm * dm + 2 * dm * kv * hd + if qk_norm { 2 * hd } else { 0 };
        let dense_block = 2 * dm + attention + mlp(hidden);
        let moe_block = experts.map_or(dense_block, |e| {
            2 * dm + attention + e * mlp(hidden) + e * dm + mlp(shared * hidden)
        });
        let v = d.vocab.value;
        let tied = d.tie_embeddings.value;
        ModelDims {
            name: name.to_string(),
            vocab: v,
            d_model: dm,
            layers,
            heads,
            kv_heads: kv,
            swiglu,
            mlp_hidden: hidden,
            experts,
            active_experts: d.active_experts.map(|e| e.value),
            shared_experts: if experts.is_some() { shared } else { 0 },
            dense_layers,
            qk_norm,
            tie_embeddings: tied,
            params: if tied { 1 } else { 2 } * v * dm
                + dense_layers * dense_block
                + (layers - dense_layers) * moe_block
                + dm,
        }
    }
}

/// One source of a run's mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub source: String,
    /// Index in `Plan::sources`.
    pub index: usize,
    /// The piece's static share (the mean of the plan's over its steps).
    pub share: f64,
}

/// The LR of a run: `curve` evaluated at `offset + k * tokens_per_step` for its step `k`.
/// `pieces` are the schedule's pieces that the run's steps fall in, unchanged (positions on
/// the schedule's span), so a piece entered part-way keeps its own formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLr {
    pub schedule: String,
    /// Position on the schedule's span of the run's first token.
    pub offset: f64,
    pub span: f64,
    pub pieces: Vec<LrPiece>,
}

/// Where a run's weights (and optimizer state) come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Init {
    /// Freshly initialised from the pipeline's seed.
    Fresh,
    /// The final weights of an earlier run; `optimizer`: its AdamW state too.
    From { run: String, optimizer: bool },
}

/// The stage's AdamW settings as the plan states them (`clip_norm = 0`: no clipping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Optimizer {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub clip_norm: f64,
}

impl From<&ir::Optimizer> for Optimizer {
    fn from(o: &ir::Optimizer) -> Self {
        Optimizer {
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            clip_norm: o.clip,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRun {
    /// `STAGE[.PHASE][.pK]`: unique, and the name of the run's directory.
    pub name: String,
    pub stage: String,
    /// Index in `Plan::stages`.
    pub stage_index: usize,
    pub phase: Option<String>,
    /// This run's piece of its phase, and how many there are.
    pub piece: u64,
    pub pieces: u64,
    /// First step of the run, counted within the stage.
    pub first_step: u64,
    pub steps: u64,
    /// Steps before this run along the whole plan (metrics count steps globally).
    pub global_first_step: u64,
    /// Tokens into the stage where the run starts.
    pub start_tokens: f64,
    pub batch: u64,
    pub seq_len: u64,
    pub tokens_per_step: u64,
    pub rope_base: f64,
    /// The decoder's RoPE scaling in this run (each engine maps it or refuses the run, P0901).
    #[serde(default, skip_serializing_if = "RopeScaling::is_none")]
    pub rope_scaling: RopeScaling,
    pub model: ModelDims,
    pub mixture: Vec<Share>,
    /// The largest distance of a share from the plan's over the run's steps.
    pub mixture_error: f64,
    pub lr: RunLr,
    pub init: Init,
    /// Vision models of the run's stage whose weights come from a skipped stage (first run of
    /// the stage only: later runs continue it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<Given>,
    pub optimizer: Optimizer,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lowering {
    pub pipeline: String,
    pub profile: Option<String>,
    pub sources: Vec<String>,
    pub runs: Vec<EngineRun>,
    /// Stages the engine cannot take; a run or an export refuses while there are any.
    #[serde(skip)]
    pub unmappable: Vec<Unmappable>,
    /// Warnings about what the export takes from outside the plan (`--skip STAGE=PATH`).
    #[serde(skip)]
    pub notes: Vec<Diagnostic>,
}

/// A stage the engine cannot train, reported at the stage before anything runs.
#[derive(Debug, Clone)]
pub struct Unmappable {
    pub stage: String,
    pub diagnostic: Diagnostic,
}

pub(crate) fn cannot(p: &Pipeline, t: Target, stage: ir::StageId, why: String) -> Unmappable {
    let st = &p.stages[stage];
    let takes = if t.vision() {
        "stages with next-token loss that train or freeze one decoder, with a ViT and projector"
    } else {
        "stages that train one text decoder with next-token loss"
    };
    Unmappable {
        stage: st.name.clone(),
        diagnostic: Diagnostic::new(
            Code::ENGINE_CANNOT_TRAIN,
            format!("{} cannot train stage `{}`: {why}", t.name(), st.name),
        )
        .label(st.header, "this stage")
        .help(format!(
            "train this recipe with pipelang's own runtime (`pipe run` without `--engine`); \
             {} takes {takes} (docs/engines.md)",
            t.name()
        )),
    }
}

/// A RoPE scaling the engine does not map, in any phase of the stage: refused at the field
/// that states it (the stage's or a phase's `rope_scaling`, else the decoder's, else the stage
/// header for a scaling handed over), never dropped.
fn scaling_refused(
    p: &Pipeline,
    t: Target,
    plan: &Plan,
    si: usize,
    model: &str,
    dec: &ir::DecoderSpec,
) -> Option<Unmappable> {
    let st = &plan.stages[si];
    let ph = st.phases.iter().find(|ph| {
        ph.rope_scaling
            .get(model)
            .is_some_and(|s| !t.maps_rope_scaling(s))
    })?;
    let s = ph.rope_scaling[model];
    let ir_st = &p.stages[st.id];
    let span = ir_st
        .phases
        .iter()
        .find(|x| Some(&x.name) == ph.name.as_ref())
        .and_then(|x| x.rope_scaling)
        .or(ir_st.rope_scaling)
        .map(|t| t.to.span)
        .or((dec.rope_scaling.value == s).then_some(dec.rope_scaling.span))
        .unwrap_or(ir_st.header);
    let d = Diagnostic::new(
        Code::ENGINE_CANNOT_TRAIN,
        format!(
            "{} cannot train stage `{}`: its decoder `{model}` runs with `rope_scaling = {s}`, \
             which the export does not map",
            t.name(),
            st.name
        ),
    )
    .label(span, "this RoPE scaling")
    .help(format!(
        "train this recipe with pipelang's own runtime (`pipe run` without `--engine`), or \
         export it to OLMo-core, which maps every RoPE scaling; {} (docs/engines.md)",
        match t {
            Target::Torchtitan => "torchtitan takes `llama3` only",
            Target::Megatron =>
                "Megatron-LM takes `linear` with a whole factor and \
                 `llama3(factor = F, low_freq = 1, high_freq = 4, original = 8K)`, the bands \
                 megatron-core fixes; core_v0.16.1 has no `--position-embedding-type yarn` \
                 (its YaRN is multi-latent attention's only)",
            Target::OlmoCore => "OLMo-core takes every one",
        }
    ));
    Some(Unmappable {
        stage: st.name.clone(),
        diagnostic: d,
    })
}

/// The one decoder a stage trains, or why the engine cannot take the stage.
fn decoder_of<'p>(
    p: &'p Pipeline,
    t: Target,
    plan: &Plan,
    si: usize,
) -> Result<(&'p str, &'p ir::DecoderSpec), Unmappable> {
    let cannot = |p, stage, why| cannot(p, t, stage, why);
    let st = &plan.stages[si];
    let ir = &p.stages[st.id];
    if let ir::Loss::Coca { .. } = ir.loss.value {
        return Err(cannot(p, st.id, "its loss is CoCa (a vision loss)".into()));
    }
    // The engines read their own checkpoint formats (OLMo-core's and torchtitan's DCP folders,
    // Megatron's `--load`), not a safetensors file under pipelang's names.
    if let Some(w) = st.weights_from.iter().find(|w| w.init.is_some()) {
        let mut u = cannot(
            p,
            st.id,
            format!(
                "`{}` starts from `init = \"{}\"`; a safetensors `init` is not converted to the engine's checkpoint format yet",
                w.model,
                w.init.as_deref().unwrap_or_default()
            ),
        );
        if let Some(i) = p.model_id(&w.model).and_then(|m| p.models[m].init.as_ref()) {
            u.diagnostic = u.diagnostic.label(i.span, "the `init`");
        }
        return Err(u);
    }
    // An engine run starts from the last checkpoint of the run before it; a checkpoint saved
    // at a given step inside another run is not lowered yet.
    if let (Some(b), Some(from)) = (&ir.branch, &st.branch) {
        let mut u = cannot(
            p,
            st.id,
            format!(
                "it branches from `{}` after {} of its steps; engine runs start from the end of                  the run before them, and branch points are not lowered yet",
                from.parent, from.step
            ),
        );
        u.diagnostic = u.diagnostic.label(b.at.span, "the branch point");
        return Err(u);
    }
    // Engine runs have one batch each; a ramp would need a run per batch value (thousands).
    if let Some(ph) = st.phases.iter().find(|ph| ph.runs.len() > 1) {
        return Err(cannot(
            p,
            st.id,
            format!(
                "its batch ramps ({} -> {} sequences); an engine run has one batch, and batch \
                 ramps are not lowered yet",
                ph.runs[0].batch,
                ph.runs[ph.runs.len() - 1].batch
            ),
        ));
    }
    // None of the pinned engines averages weights along a run (no EMA or checkpoint averaging
    // in OLMo-core 3.0, megatron-core 0.16 or torchtitan 0.3): dropping it would hand on other
    // weights than the recipe says.
    if let Some(a) = ir.averaging {
        let mut u = cannot(
            p,
            st.id,
            "it averages its weights (`average` / `ema`), which the engine does not do".into(),
        );
        u.diagnostic = u.diagnostic.label(a.span, "averaging here");
        return Err(u);
    }
    // Per-model LR factors would need a parameter group per model in the engine's optimizer.
    if let Some((m, f)) = st.lr_scale.iter().find(|(_, f)| **f != 1.0) {
        return Err(cannot(
            p,
            st.id,
            format!(
                "its `lr_scale` gives `{m}` {f} x the LR; per-model LR factors are not lowered yet"
            ),
        ));
    }
    let all: Vec<_> = ir.train.iter().chain(&ir.freeze).map(|m| m.value).collect();
    let is_decoder = |m: &ir::ModelId| matches!(p.models[*m].kind, ModelKind::Decoder(_));
    let used: Vec<_> = if t.vision() {
        all.iter().copied().filter(is_decoder).collect()
    } else {
        all.clone()
    };
    if let Some(&m) = used.iter().find(|m| !is_decoder(m)) {
        let k = match p.models[m].kind {
            ModelKind::Vit(_) => "a ViT",
            _ => "a projector",
        };
        return Err(cannot(
            p,
            st.id,
            format!(
                "it uses `{}`, {k}: the engine has no vision models",
                p.models[m].name
            ),
        ));
    }
    if used.len() != 1 || (!t.vision() && !ir.freeze.is_empty()) {
        return Err(cannot(
            p,
            st.id,
            "it uses more than one model; an engine run trains one decoder".into(),
        ));
    }
    if let Some(d) = p
        .data
        .iter_enumerated()
        .find(|(i, d)| !t.vision() && d.kind.has_images() && st.mix_tree.used_sources().contains(i))
    {
        return Err(cannot(
            p,
            st.id,
            format!("its data `{}` is {}, not text", d.1.name, d.1.kind.name()),
        ));
    }
    let ModelKind::Decoder(d) = &p.models[used[0]].kind else {
        unreachable!("checked above")
    };
    if matches!(t, Target::OlmoCore | Target::Torchtitan) && d.mlp.value != ir::Mlp::SwiGlu {
        return Err(cannot(
            p,
            st.id,
            format!(
                "its decoder's MLP is GELU; {}'s feed-forward is SwiGLU",
                t.name()
            ),
        ));
    }
    Ok((&p.models[used[0]].name, d))
}

/// Lowers the plan. Every stage the engine cannot take is reported (all of them, not the
/// first), with the stages that take weights from one of them left out.
pub fn lower(p: &Pipeline, plan: &Plan, opts: &Options) -> Lowering {
    let mut runs: Vec<EngineRun> = vec![];
    let mut problems = vec![];
    let mut notes = vec![];
    // The last run of every stage: where later stages take weights and optimizer state from.
    let mut last_of: Vec<Option<String>> = vec![None; plan.stages.len()];
    let mut global = 0;
    let skipped = |name: &str| opts.skip.iter().find(|s| s.stage == name);
    for (si, st) in plan.stages.iter().enumerate() {
        if skipped(&st.name).is_some() {
            global += st.steps;
            continue;
        }
        // A soup averages finished runs' weights: no engine training step does that, and
        // dropping it would hand the stages after it one variant's weights instead.
        if st.is_soup() {
            let inputs: Vec<&str> = st.average.iter().map(|a| a.stage.as_str()).collect();
            problems.push(cannot(
                p,
                opts.target,
                st.id,
                format!(
                    "it is a soup, the average of {}, and the export does not compute weight \
                     averages yet",
                    inputs.join(", ")
                ),
            ));
            continue;
        }
        let (model_name, dec) = match decoder_of(p, opts.target, plan, si) {
            Ok(x) => x,
            Err(u) => {
                problems.push(u);
                global += st.steps;
                continue;
            }
        };
        if let Some(u) = scaling_refused(p, opts.target, plan, si, model_name, dec) {
            problems.push(u);
            global += st.steps;
            continue;
        }
        let dims = ModelDims::of(model_name, dec);
        let sched = &plan.schedules[st.run];
        // The stage's first run: weights from where the plan says, AdamW state with them when
        // the stage resumes its schedule from that same stage.
        let from = st
            .weights_from
            .iter()
            .find(|w| w.model == model_name)
            .and_then(|w| w.from.clone());
        let schedule_from = st
            .schedule
            .resumed
            .then(|| {
                let i = sched.stages.iter().position(|n| n == &st.name)?;
                i.checked_sub(1).map(|i| sched.stages[i].clone())
            })
            .flatten();
        let ir_st = &p.stages[st.id];
        let mut given = vec![];
        let mut blocked = false;
        for w in &st.weights_from {
            let Some(sk) = w.from.as_deref().and_then(skipped) else {
                continue;
            };
            let d = |msg: String, help: String| {
                Diagnostic::new(Code::ENGINE_SKIPPED_STAGE, msg)
                    .label(ir_st.header, "this stage")
                    .help(help)
            };
            if w.model == model_name {
                blocked = true;
                problems.push(Unmappable {
                    stage: st.name.clone(),
                    diagnostic: d(
                        format!(
                            "stage `{}` takes its decoder `{}` from the skipped stage `{}`",
                            st.name, w.model, sk.stage
                        ),
                        "skip only stages whose models are vision models that later stages \
                         take (a decoder's checkpoint is the engine's own chain)"
                            .into(),
                    ),
                });
            } else if let Some(path) = &sk.weights {
                notes.push(
                    d(
                        format!(
                            "stage `{}` reads `{}` from `{path}`: the stage `{}` that trains it \
                             is skipped",
                            st.name, w.model, sk.stage
                        ),
                        "the file must hold the weights the skipped stage would have handed \
                         over, under the engine's names for the model (docs/engines.md)"
                            .into(),
                    )
                    .severity(pipelang::diag::Severity::Warning),
                );
                given.push(Given {
                    model: w.model.clone(),
                    stage: sk.stage.clone(),
                    path: path.clone(),
                });
            } else {
                blocked = true;
                problems.push(Unmappable {
                    stage: st.name.clone(),
                    diagnostic: d(
                        format!(
                            "stage `{}` takes `{}` from the skipped stage `{}`, whose weights \
                             the export does not have",
                            st.name, w.model, sk.stage
                        ),
                        format!(
                            "give them by path: `--skip {}=/abs/path/to/checkpoint` \
                             (docs/engines.md)",
                            sk.stage
                        ),
                    ),
                });
            }
        }
        if blocked {
            global += st.steps;
            continue;
        }
        let mut init = match &from {
            None => Init::Fresh,
            Some(f) => {
                let fi = plan.stage_index(f).expect("the plan names its own stages");
                match &last_of[fi] {
                    Some(run) => Init::From {
                        run: run.clone(),
                        optimizer: schedule_from.as_deref() == Some(f.as_str()),
                    },
                    None => {
                        // Its source stage was not lowered (reported already).
                        global += st.steps;
                        continue;
                    }
                }
            }
        };
        if schedule_from.is_some() && schedule_from != from {
            problems.push(cannot(
                p,
                opts.target,
                st.id,
                "it resumes the optimizer of one stage and takes its weights from another; an \
                 engine run loads both from one checkpoint"
                    .into(),
            ));
        }
        let several = st.phases.len() > 1;
        for ph in &st.phases {
            let cut = pieces::split(plan, si, ph, opts.ramp_pieces);
            let n = cut.len() as u64;
            for (k, pc) in cut.iter().enumerate() {
                // `mid[42]` is `mid-42` in folder and module names.
                let mut name = st.file_name();
                if several {
                    name += &format!(".{}", ph.name.as_deref().unwrap_or("phase"));
                }
                if n > 1 {
                    name += &format!(".p{k}");
                }
                let start_tokens = st.tokens_at(pc.first_step);
                let offset = st.schedule.offset + start_tokens;
                let end = offset + (pc.steps * ph.tokens_per_step) as f64;
                let lr_pieces = sched
                    .curve
                    .pieces
                    .iter()
                    .filter(|q| q.end > offset && q.start < end)
                    .copied()
                    .collect::<Vec<_>>();
                let lr_pieces = if lr_pieces.is_empty() {
                    // Past the end of the span: the curve holds its last piece's end.
                    sched.curve.pieces.last().copied().into_iter().collect()
                } else {
                    lr_pieces
                };
                let mixture = pc
                    .shares
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s > 0.0)
                    .map(|(i, s)| Share {
                        source: plan.sources[ir::DataId::new(i)].clone(),
                        index: i,
                        share: *s,
                    })
                    .collect();
                runs.push(EngineRun {
                    name: name.clone(),
                    stage: st.name.clone(),
                    stage_index: si,
                    phase: ph.name.clone(),
                    piece: k as u64,
                    pieces: n,
                    first_step: pc.first_step,
                    steps: pc.steps,
                    global_first_step: global + pc.first_step,
                    start_tokens,
                    batch: ph.batch,
                    seq_len: ph.seq_len,
                    tokens_per_step: ph.tokens_per_step,
                    rope_base: ph
                        .rope_base
                        .get(model_name)
                        .copied()
                        .unwrap_or(dec.rope_base.value),
                    rope_scaling: ph.rope_scaling.get(model_name).copied().unwrap_or_default(),
                    model: dims.clone(),
                    mixture,
                    mixture_error: pc.max_error,
                    lr: RunLr {
                        schedule: sched.name.clone(),
                        offset,
                        span: sched.span,
                        pieces: lr_pieces,
                    },
                    init: init.clone(),
                    given: std::mem::take(&mut given),
                    optimizer: Optimizer::from(&st.optimizer),
                    seed: st.seed.unwrap_or(plan.seed),
                });
                // The stage's next run continues this one: weights and AdamW state.
                init = Init::From {
                    run: name,
                    optimizer: true,
                };
            }
        }
        last_of[si] = runs.last().map(|r| r.name.clone());
        global += st.steps;
    }
    Lowering {
        pipeline: plan.pipeline.clone(),
        profile: plan.profile.clone(),
        sources: plan.sources.as_raw().to_vec(),
        runs,
        unmappable: problems,
        notes,
    }
}

impl Lowering {
    /// What a run is, for the header of its engine file: "run `joint_pretrain.p3` of pipeline
    /// `kimi_vl` (profile `smoke`), stage `joint_pretrain`, piece 4 of 8: 120 steps of 16 x
    /// 512 tokens". `steps` is the count in the engine's own word (Megatron's iterations).
    pub fn describe(&self, run: &EngineRun, steps: &str) -> String {
        format!(
            "run `{}` of pipeline `{}`{}, stage `{}`{}, piece {} of {}: {} {steps} of {} x {} tokens",
            run.name,
            self.pipeline,
            self.profile
                .as_ref()
                .map(|p| format!(" (profile `{p}`)"))
                .unwrap_or_default(),
            run.stage,
            run.phase
                .as_ref()
                .map(|p| format!(", phase `{p}`"))
                .unwrap_or_default(),
            run.piece + 1,
            run.pieces,
            run.steps,
            run.batch,
            run.seq_len,
        )
    }
}

impl EngineRun {
    /// The LR at the run's step `k` as the plan has it (the curve at the step's first token).
    pub fn plan_lr(&self, k: u64) -> f64 {
        let x = (self.lr.offset + (k * self.tokens_per_step) as f64).clamp(0.0, self.lr.span);
        let i = self
            .lr
            .pieces
            .partition_point(|p| p.end <= x)
            .min(self.lr.pieces.len() - 1);
        self.lr.pieces[i].at(x)
    }
}
