//! torchtitan 0.3.0: each engine run rendered as a Python config module
//! (`pipelang_runs/rNN_NAME.py`, loaded with `--module pipelang_runs.rNN_NAME --config config`)
//! that calls the shipped helper `pipelang_titan.py` with the run's numbers, and `launch.sh`,
//! which runs them under torchrun in plan order.
//!
//! Hand-overs follow torchtitan's checkpoint rules: every run has its own checkpoint folder
//! (`runs/NN-NAME/checkpoint`), so `initial_load_path` (absolute, computed from the export's
//! own location at launch) is never shadowed by a checkpoint of another run; a run whose
//! optimizer state a later run takes saves its last checkpoint with the optimizer
//! (`last_save_model_only = False`); a run that loads it excludes the scheduler, data loader and
//! step counter (every run counts its own steps). A run whose models come from more than one
//! place is given one checkpoint by the helper's `assemble` step before it starts: torchtitan
//! loads exactly one checkpoint and refuses missing keys.

use std::path::PathBuf;

use pipelang::check::ir::{ModelKind, Pipeline};
use pipelang::diag::{Code, Diagnostic};
use pipelang::plan::Plan;
use pipelang::plan::lr::Shape;

use crate::parallel::Layout;
use crate::runs::{EngineRun, Init, Lowering, Unmappable, cannot};

mod tokenizer;

/// The helper every run module imports.
pub const HELPER: &str = include_str!("pipelang_titan.py");

/// A run's directory under the export (checkpoints and logs): `runs/NN-NAME`.
pub fn run_dir(index: usize, run: &EngineRun) -> String {
    format!("runs/{index:02}-{}", run.name)
}

/// A run's config module, importable (`pipelang_runs.rNN_NAME`).
pub fn module(index: usize, run: &EngineRun) -> String {
    let name: String = run
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("pipelang_runs.r{index:02}_{name}")
}

/// The model groups of a run, as torchtitan's model holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Decoder,
    Vit,
    Projector,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Decoder => "decoder",
            Group::Vit => "vit",
            Group::Projector => "projector",
        }
    }
}

/// The ViT and projector of a run's stage, when it has them.
fn vision<'p>(
    p: &'p Pipeline,
    plan: &Plan,
    run: &EngineRun,
) -> (
    Option<(&'p str, &'p pipelang::check::ir::VitSpec)>,
    Option<(&'p str, u64)>,
) {
    let st = &plan.stages[run.stage_index];
    let mut vit = None;
    let mut proj = None;
    for n in st.train.iter().chain(&st.freeze) {
        let Some(m) = p.model_id(n) else { continue };
        match &p.models[m].kind {
            ModelKind::Vit(v) => vit = Some((p.models[m].name.as_str(), v)),
            ModelKind::Projector(pr) => {
                proj = Some((p.models[m].name.as_str(), pr.pixel_shuffle.value))
            }
            ModelKind::Decoder(_) => {}
        }
    }
    (vit, proj)
}

/// A recipe's ViT and projector as torchtitan's MoonViT (`kimi_k2_7._vision_encoder_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoonVit {
    pub dim: u64,
    /// The MLP's hidden width: 4 x `dim`, the GELU MLP of pipelang's ViT.
    pub ffn: u64,
    pub layers: u64,
    pub heads: u64,
    pub patch: u64,
    /// Side of the learnable position table, in patches: `max_image_side / patch`.
    pub side: u64,
    /// The projector merges `merge x merge` patches (`pixel_shuffle`).
    pub merge: u64,
    /// The decoder's width, which the projector maps to.
    pub text_dim: u64,
}

impl MoonVit {
    pub fn new(v: &pipelang::check::ir::VitSpec, merge: u64, text_dim: u64) -> MoonVit {
        MoonVit {
            dim: v.d_model.value,
            ffn: 4 * v.d_model.value,
            layers: v.layers.value,
            heads: v.heads.value,
            patch: v.patch.value,
            side: v.max_image_side.value / v.patch.value,
            merge,
            text_dim,
        }
    }

    /// The parameters torchtitan builds: (the ViT without its projector, the projector).
    /// Every linear and LayerNorm of MoonViT has a bias; its 2D RoPE is a buffer. MoonViT is
    /// not pipelang's ViT (which has no biases, no position table and no RoPE), so these are
    /// not the runtime's counts.
    pub fn params(&self) -> (u64, u64) {
        let (d, f) = (self.dim, self.ffn);
        let linear = |i: u64, o: u64| i * o + o;
        let norm = 2 * d;
        let block = 2 * norm + 4 * linear(d, d) + linear(d, f) + linear(f, d);
        let vit = linear(3 * self.patch * self.patch, d)
            + self.side * self.side * d
            + self.layers * block
            + norm;
        let merged = d * self.merge * self.merge;
        let projector = norm + linear(merged, merged) + linear(merged, self.text_dim);
        (vit, projector)
    }
}

/// What the lowering carries that this export does not map, at each stage (once): a decoder
/// torchtitan's blocks cannot build.
pub fn refusals(p: &Pipeline, plan: &Plan, l: &Lowering) -> Vec<Unmappable> {
    let mut out: Vec<Unmappable> = vec![];
    for r in &l.runs {
        if out.iter().any(|u| u.stage == r.stage) {
            continue;
        }
        let Some(ModelKind::Decoder(d)) = p.model_id(&r.model.name).map(|m| &p.models[m].kind)
        else {
            continue;
        };
        // torchtitan's blocks have SwiGLU feed-forwards only.
        if d.mlp.value != pipelang::check::ir::Mlp::SwiGlu {
            out.push(cannot(
                p,
                crate::Target::Torchtitan,
                plan.stages[r.stage_index].id,
                format!(
                    "its decoder `{}` sets `mlp`: torchtitan's blocks have SwiGLU \
                     feed-forwards only",
                    r.model.name
                ),
            ));
        }
    }
    out
}

/// Where each model group of a run comes from: `None` fresh.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Run(usize),
    Path(String),
}

/// How a run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// Model groups and their sources (`None`: freshly initialised).
    groups: Vec<(Group, Option<Source>)>,
    /// One earlier run's final checkpoint holds every group: loaded as it is.
    direct: Option<usize>,
    /// AdamW state with the weights: the whole state of the `direct` run, or (assembled) the
    /// decoder's from its source with zero moments for the other groups.
    optimizer: bool,
}

impl Start {
    fn assembled(&self) -> bool {
        self.direct.is_none() && self.groups.iter().any(|(_, s)| s.is_some())
    }
}

fn groups_of(p: &Pipeline, plan: &Plan, run: &EngineRun) -> Vec<Group> {
    let (vit, proj) = vision(p, plan, run);
    if vit.is_some() || proj.is_some() {
        vec![Group::Decoder, Group::Vit, Group::Projector]
    } else {
        vec![Group::Decoder]
    }
}

/// Every run's start.
pub fn starts(p: &Pipeline, plan: &Plan, l: &Lowering) -> Vec<Start> {
    let mut out = vec![];
    let index = |name: &str| l.runs.iter().position(|r| r.name == name);
    for (i, run) in l.runs.iter().enumerate() {
        let st = &plan.stages[run.stage_index];
        let mine = groups_of(p, plan, run);
        let (vit, proj) = vision(p, plan, run);
        let (decoder_from, optimizer) = match &run.init {
            Init::Fresh => (None, false),
            Init::From { run: f, optimizer } => (index(f), *optimizer),
        };
        let continues = i > 0 && l.runs[i - 1].stage_index == run.stage_index;
        let groups: Vec<(Group, Option<Source>)> = mine
            .iter()
            .map(|&g| {
                if g == Group::Decoder || continues {
                    return (g, decoder_from.map(Source::Run));
                }
                let model = match g {
                    Group::Vit => vit.map(|v| v.0),
                    _ => proj.map(|v| v.0),
                };
                let Some(model) = model else {
                    return (g, None);
                };
                if let Some(given) = run.given.iter().find(|x| x.model == model) {
                    return (g, Some(Source::Path(given.path.clone())));
                }
                let from = st
                    .weights_from
                    .iter()
                    .find(|w| w.model == model)
                    .and_then(|w| w.from.as_ref())
                    .and_then(|s| l.runs.iter().rposition(|r| &r.stage == s));
                (g, from.map(Source::Run))
            })
            .collect();
        let one = match groups.first() {
            Some((_, Some(Source::Run(r)))) => Some(*r),
            _ => None,
        };
        let direct = one.filter(|&r| {
            groups.iter().all(|(_, s)| s == &Some(Source::Run(r)))
                && groups_of(p, plan, &l.runs[r]) == mine
        });
        out.push(Start {
            groups,
            direct,
            // Assembled runs take the decoder's moments from its source and start the
            // other groups' at zero on the same step count, as `pipe run` does.
            optimizer,
        });
    }
    out
}

/// A warning per stage whose runs read images: torchtitan's multimodal loader takes one
/// dataset (`pipelang_titan.data` gives it the run's first image source), so the mixture's
/// other sources, text included, are not read. Each dropped source is named with its largest
/// share in a run of the stage, at its entry in the stage's mixture.
fn one_image_source(p: &Pipeline, l: &Lowering) -> Vec<Diagnostic> {
    use pipelang::check::ir::{DataId, DataKind, MixNode, MixTarget};
    fn entry(nodes: &[MixNode], d: DataId) -> Option<pipelang::syntax::Span> {
        nodes.iter().find_map(|n| match &n.target {
            MixTarget::Source(x) if *x == d => Some(n.span),
            MixTarget::Group(g) => entry(g, d),
            _ => None,
        })
    }
    let kind = |index: usize| p.data[DataId::new(index)].kind;
    let mut out = vec![];
    let mut done: Vec<usize> = vec![];
    for run in &l.runs {
        if done.contains(&run.stage_index) {
            continue;
        }
        let Some(read) = run
            .mixture
            .iter()
            .find(|sh| kind(sh.index) != DataKind::Text)
        else {
            continue;
        };
        done.push(run.stage_index);
        let runs: Vec<&EngineRun> = l
            .runs
            .iter()
            .filter(|r| r.stage_index == run.stage_index)
            .collect();
        // Source index -> its largest share in a run of the stage.
        let mut dropped: Vec<(usize, &str, f64)> = vec![];
        for sh in runs.iter().flat_map(|r| &r.mixture) {
            if sh.index == read.index || sh.share <= 0.0 {
                continue;
            }
            match dropped.iter_mut().find(|d| d.0 == sh.index) {
                Some(d) => d.2 = d.2.max(sh.share),
                None => dropped.push((sh.index, &sh.source, sh.share)),
            }
        }
        if dropped.is_empty() {
            continue;
        }
        let Some(stage) = p.stages.iter().find(|s| s.name == run.stage) else {
            continue;
        };
        let pct = |x: f64| format!("{}%", pipelang::check::units::trim2(x * 100.0));
        let names: Vec<String> = dropped
            .iter()
            .map(|(_, n, sh)| format!("`{n}` (up to {})", pct(*sh)))
            .collect();
        let mut d = Diagnostic::new(
            Code::ENGINE_APPROXIMATION,
            format!(
                "torchtitan's runs of stage `{}` read only `{}`: its multimodal loader takes one \
                 dataset, so {} {} not read",
                stage.name,
                read.source,
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            ),
        )
        .label(
            entry(&stage.mix, DataId::new(read.index)).unwrap_or(stage.mix_span),
            format!("the one source the {} run(s) read", runs.len()),
        );
        for (index, name, share) in &dropped {
            if let Some(span) = entry(&stage.mix, DataId::new(*index)) {
                d = d.label(
                    span,
                    format!("`{name}` is not read (up to {} of a run)", pct(*share)),
                );
            }
        }
        out.push(d.help(
            "train this stage with `pipe run` to follow its mixture, or give it one image source \
             (docs/engines.md, torchtitan: approximations)",
        ));
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn py_f(x: f64) -> String {
    // Rust's shortest round-trip form reads back exactly in Python.
    let s = format!("{x:?}");
    if s.contains('e') && !s.contains('.') {
        s.replace('e', ".0e")
    } else {
        s
    }
}

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

fn piece(q: &pipelang::plan::lr::Piece) -> String {
    let (kind, vals) = match q.shape {
        Shape::Linear { from, to } => ("linear", vec![from, to]),
        Shape::Cosine { from, to } => ("cosine", vec![from, to]),
        Shape::CosinePart { from, to, part } => ("cosine_part", vec![from, to, part]),
        Shape::Sqrt { from, to } => ("sqrt", vec![from, to]),
        Shape::Exponential { from, halvings } => ("exponential", vec![from, halvings]),
    };
    let vals: Vec<String> = vals.into_iter().map(py_f).collect();
    format!(
        "(\"{kind}\", {}, {}, {}),",
        py_f(q.start),
        py_f(q.end),
        vals.join(", ")
    )
}

/// The config module of one run.
pub fn config(
    p: &Pipeline,
    plan: &Plan,
    l: &Lowering,
    starts: &[Start],
    i: usize,
    par: &Layout,
) -> String {
    let run = &l.runs[i];
    let start = &starts[i];
    let m = &run.model;
    let st = &plan.stages[run.stage_index];
    let (vit, proj) = vision(p, plan, run);
    let frozen = |n: &str| st.freeze.iter().any(|f| f == n);
    // Every piece is monotone, so its largest value is at one of its ends.
    let peak = run
        .lr
        .pieces
        .iter()
        .flat_map(|q| [q.at(q.start), q.at(q.end)])
        .fold(0.0, f64::max);
    let peak = if peak > 0.0 { peak } else { 1.0 };
    let saves_optimizer = l.runs.iter().enumerate().any(|(j, r)| {
        starts[j].optimizer && matches!(&r.init, Init::From { run: f, .. } if f == &run.name)
    });
    let mut s = format!(
        "\"\"\"{}.\n\n\
         Written by `pipe export --engine torchtitan` for torchtitan 0.3.0; launch.sh runs it as\n\
         `torchrun ... -m torchtitan.train --module {} --config config`. Plan steps {}..{}.\n\"\"\"\n\n\
         import pipelang_titan as pt\n\n",
        capitalised(&l.describe(run, "steps")),
        module(i, run),
        run.global_first_step,
        run.global_first_step + run.steps,
    );
    s += &format!("RUN_DIR = {}\n", py_str(&run_dir(i, run)));
    s += &format!("STEPS = {}\n", run.steps);
    if let Some((name, v)) = vit {
        let t = MoonVit::new(v, proj.map_or(1, |x| x.1), m.d_model);
        let (vit_params, proj_params) = t.params();
        s += &format!(
            "\n# `{name}` as torchtitan's MoonViT (Kimi-VL's vision tower; GELU MLP of 4 x d_model),\n\
             # its projector merging {merge} x {merge} patches into the decoder's width:\n\
             # {vit_params} parameters in the ViT, {proj_params} in the projector.\n\
             VIT = dict(\n    dim={},\n    ffn_dim={},\n    num_layers={},\n    num_heads={},\n    \
             patch_size={},\n    init_pos_emb_height={side},\n    init_pos_emb_width={side},\n    \
             merge_kernel_size=[{merge}, {merge}],\n)\n",
            t.dim,
            t.ffn,
            t.layers,
            t.heads,
            t.patch,
            side = t.side,
            merge = t.merge,
        );
    }
    s += "\n# The plan's LR over this run: its schedule's pieces (shape, start, end, values) on the\n\
          # schedule's token span; step k runs at the curve at OFFSET + k x TOKENS_PER_STEP.\n";
    s += &format!(
        "LR = pt.PlanLR.Config(\n    peak={},\n    offset={},\n    tokens_per_step={},\n    span={},\n    pieces=(\n",
        py_f(peak),
        py_f(run.lr.offset),
        run.tokens_per_step,
        py_f(run.lr.span)
    );
    for q in &run.lr.pieces {
        s += &format!("        {}\n", piece(q));
    }
    s += "    ),\n)\n";
    s += &format!(
        "\n# (source, share, files under the data root, kind); largest share error {:.2e}.\nSOURCES = [\n",
        run.mixture_error
    );
    for sh in &run.mixture {
        let d = &p.data[pipelang::check::ir::DataId::new(sh.index)];
        let globs: Vec<&str> = d.globs.iter().map(|g| g.value.as_str()).collect();
        s += &format!(
            "    ({}, {}, {}, {}),\n",
            py_str(&sh.source),
            py_f(sh.share),
            py_str(&globs.join(",")),
            py_str(d.kind.name())
        );
    }
    s += "]\n\n";
    // Where the run's weights come from.
    let load = match (start.direct, start.assembled()) {
        (Some(r), _) => format!(
            "pt.final_checkpoint({}, {})",
            py_str(&run_dir(r, &l.runs[r])),
            l.runs[r].steps
        ),
        (None, true) => "pt.run_folder(RUN_DIR) + \"/initial\"".to_string(),
        (None, false) => "None".to_string(),
    };
    s += "# Weights: ";
    s += &start
        .groups
        .iter()
        .map(|(g, src)| {
            format!(
                "{} {}",
                g.name(),
                match src {
                    None => "fresh".to_string(),
                    Some(Source::Run(r)) => format!("from run `{}`", l.runs[*r].name),
                    Some(Source::Path(path)) => format!("from `{path}` (skipped stage)"),
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if start.assembled() {
        s += ";\n# assembled into one checkpoint by launch.sh before the run (pipelang_titan.assemble)";
    }
    s += ".\n";
    let freeze = [
        (Group::Decoder, frozen(&m.name)),
        (Group::Vit, vit.is_some_and(|v| frozen(v.0))),
        (Group::Projector, proj.is_some_and(|v| frozen(v.0))),
    ];
    let freeze: Vec<String> = freeze
        .iter()
        .filter(|(_, f)| *f)
        .map(|(g, _)| format!("{}=True", g.name()))
        .collect();
    s += &format!(
        "\n\ndef config():\n    return pt.trainer(\n        run_dir=RUN_DIR,\n        spec=pt.model(\n            \
         vocab={},\n            dim={},\n            layers={},\n            heads={},\n            \
         hidden={},\n            experts={},\n            top_k={},\n            rope_theta={},\n            \
         max_seq_len={},\n            kv_heads={},\n            qk_norm={},\n            \
         tie_embeddings={},\n",
        m.vocab,
        m.d_model,
        m.layers,
        m.heads,
        m.mlp_hidden,
        m.experts.map_or("None".into(), |e| e.to_string()),
        m.active_experts.map_or("None".into(), |e| e.to_string()),
        py_f(run.rope_base),
        run.seq_len,
        m.kv_heads,
        py_bool(m.qk_norm),
        py_bool(m.tie_embeddings),
    );
    if let pipelang::plan::rope::RopeScaling::Llama3 {
        factor,
        low_freq,
        high_freq,
        original,
    } = run.rope_scaling
    {
        s += &format!(
            "            rope_scaling=dict(\n                scaling=\"llama\",\n                \
             scaling_factor={},\n                low_freq_factor={},\n                \
             high_freq_factor={},\n                original_max_position_embeddings={original},\n            ),\n",
            py_f(factor),
            py_f(low_freq),
            py_f(high_freq),
        );
    }
    if m.experts.is_some() {
        s += &format!(
            "            shared_experts={},\n            dense_layers={},\n",
            m.shared_experts, m.dense_layers
        );
    }
    if vit.is_some() {
        s += "            vit=VIT,\n";
    }
    if !freeze.is_empty() {
        s += &format!(
            "            freeze=pt.PlanFreeze.Config({}),\n",
            freeze.join(", ")
        );
    }
    s += "        ),\n";
    s += &format!(
        "        lr=LR,\n        steps=STEPS,\n        global_batch={},\n        local_batch={},\n        \
         seq_len={},\n        sources=SOURCES,\n        seed={},\n        load={load},\n        \
         load_optimizer={},\n        save_optimizer={},\n        tp={},\n        pp={},\n        ep={},\n        \
         dp={},\n        tokenizer=pt.asset({}),\n",
        run.batch,
        par.micro_batch,
        run.seq_len,
        run.seed,
        py_bool(start.optimizer),
        py_bool(saves_optimizer),
        par.tp,
        par.pp,
        par.ep,
        par.dp(),
        // Byte-level sources read through the export's own tokenizer folder; a source with a
        // tokenizer file through the HF folder the user gives as `DIR/tokenizer`.
        py_str(
            if run
                .mixture
                .iter()
                .all(|sh| p.data[pipelang::check::ir::DataId::new(sh.index)]
                    .tokenizer
                    .is_none())
            {
                tokenizer::DIR
            } else {
                "tokenizer"
            }
        ),
    );
    if vit.is_some() {
        s += "        vit=VIT,\n";
    }
    s += "    )\n";
    s
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// `launch.sh`: every run in plan order under torchrun, each skipped once it is `DONE`; the
/// assemble step before each run that needs one.
pub fn launch(l: &Lowering, starts: &[Start], par: &Layout) -> String {
    let mut s = format!(
        "#!/usr/bin/env bash\n\
         # Written by `pipe export --engine torchtitan`: the {} runs of pipeline `{}` in plan order,\n\
         # each under torchrun ({} node(s) x {} GPU(s); tensor {} x pipeline {} x data {}, expert {}).\n\
         # A run killed part-way continues from its own checkpoint folder when started again.\n\
         # Multi-node: run this on every node with NODE_RANK, MASTER_ADDR and MASTER_PORT set.\n\
         set -euo pipefail\n\
         EXPORT=\"$(cd \"$(dirname \"${{BASH_SOURCE[0]}}\")\" && pwd)\"\n\
         PY=\"${{PYTHON:-python}}\"\n\
         export PYTHONPATH=\"$EXPORT${{PYTHONPATH:+:$PYTHONPATH}}\"\n\n\
         run() {{\n  \
           local dir=\"$EXPORT/$1\" module=\"$2\"\n  \
           if [ -f \"$dir/DONE\" ]; then echo \"$1: done\"; return; fi\n  \
           mkdir -p \"$dir\"\n  \
           \"$PY\" -m torch.distributed.run --nnodes {} --nproc-per-node {} \\\n    \
             --node-rank \"${{NODE_RANK:-0}}\" --master-addr \"${{MASTER_ADDR:-127.0.0.1}}\" \\\n    \
             --master-port \"${{MASTER_PORT:-29500}}\" \\\n    \
             -m torchtitan.train --module \"$module\" --config config\n  \
           touch \"$dir/DONE\"\n}}\n\n\
         # One checkpoint from several (earlier runs, a skipped stage's weights, fresh models).\n\
         assemble() {{\n  \
           local dir=\"$EXPORT/$1\" module=\"$2\"; shift 2\n  \
           if [ -f \"$dir/DONE\" ] || [ -d \"$dir/initial\" ]; then return; fi\n  \
           mkdir -p \"$dir\"\n  \
           \"$PY\" \"$EXPORT/pipelang_titan.py\" assemble \"$dir/initial.tmp\" \"$module\" \"$@\"\n  \
           mv \"$dir/initial.tmp\" \"$dir/initial\"\n}}\n\n",
        l.runs.len(),
        l.pipeline,
        par.nodes,
        par.gpus_per_node,
        par.tp,
        par.pp,
        par.dp(),
        par.ep,
        par.nodes,
        par.gpus_per_node,
    );
    for (i, run) in l.runs.iter().enumerate() {
        let st = &starts[i];
        if st.assembled() {
            let srcs: Vec<String> = st
                .groups
                .iter()
                .filter_map(|(g, src)| {
                    let path = match src.as_ref()? {
                        Source::Run(r) => format!(
                            "\"$EXPORT/{}/checkpoint/step-{}\"",
                            run_dir(*r, &l.runs[*r]),
                            l.runs[*r].steps
                        ),
                        Source::Path(p) => format!("{p:?}"),
                    };
                    Some(format!("{}={path}", g.name()))
                })
                .collect();
            s += &format!(
                "assemble {} {}{} \\\n  {}\n",
                run_dir(i, run),
                module(i, run),
                if st.optimizer { " --optimizer" } else { "" },
                srcs.join(" \\\n  ")
            );
        }
        s += &format!("run {} {}\n", run_dir(i, run), module(i, run));
    }
    s
}

/// Every file of an export, relative to its directory.
pub fn files(
    p: &Pipeline,
    plan: &Plan,
    l: &Lowering,
    par: &Layout,
) -> (Vec<(PathBuf, String)>, Vec<Diagnostic>) {
    let starts = starts(p, plan, l);
    let notes = one_image_source(p, l);
    let mut out = tokenizer::files();
    out.extend([
        (PathBuf::from("pipelang_titan.py"), HELPER.to_string()),
        (
            PathBuf::from("plan.json"),
            serde_json::to_string_pretty(plan).expect("a plan serialises") + "\n",
        ),
        (
            PathBuf::from("pipelang_runs/__init__.py"),
            "\"\"\"One config module per run (pipe export --engine torchtitan).\"\"\"\n".into(),
        ),
    ]);
    for (i, run) in l.runs.iter().enumerate() {
        let path = format!("{}.py", module(i, run).replace('.', "/"));
        out.push((PathBuf::from(path), config(p, plan, l, &starts, i, par)));
    }
    out.push((PathBuf::from("launch.sh"), launch(l, &starts, par)));
    (out, notes)
}
