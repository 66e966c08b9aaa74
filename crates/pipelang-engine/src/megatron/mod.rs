//! Megatron-LM (core_v0.16.1, with megatron-core 0.16.1): each engine run rendered as a bash
//! launch script (`runs/NN-NAME/train.sh`) that hands Megatron-LM's own training script its
//! flags, and `launch.sh`, which runs them in plan order.
//!
//! Megatron-LM keeps its counters across a checkpoint it resumes: the iteration, the samples
//! consumed and the scheduler's position (samples). A run that carries the optimizer state of
//! the run before therefore continues that run's counters: `--train-samples` is cumulative
//! along the chain, the LR positions are placed on the chain's sample axis (`lr::Axis`), and
//! `--override-opt-param-scheduler` makes the checkpoint's stored warm-up, decay and style
//! give way to this run's (Megatron-LM #118: an unchanged checkpoint value is asserted equal,
//! and `--train-samples` grows). Megatron 0.16.1 keeps the LR bounds stored with the optimizer's
//! parameter groups whatever the override says (#963, #1138), so every run of a chain gets the
//! chain's `--lr` and `--min-lr`, and the shape goes into the positions. A run with weights only
//! (a new schedule) takes them through `--pretrained-checkpoint`, which Megatron loads as
//! `--finetune` while the run's own checkpoint folder is empty: iteration, samples and
//! scheduler start at zero, the optimizer fresh; `--no-load-optim` is never used (#1533).

pub mod lr;
pub mod script;

use std::path::PathBuf;

use pipelang::check::ir::{ModelKind, Pipeline};
use pipelang::diag::{Code, Diagnostic};
use pipelang::plan::Plan;
use serde::{Deserialize, Serialize};

use crate::runs::{EngineRun, Init, Lowering};

/// The Megatron-LM release the flags are written for (the one megatron-core 0.16.1 ships with).
pub const MEGATRON_LM: &str = "core_v0.16.1";

/// Iterations between a run's periodic checkpoints (Megatron also saves at the end).
pub const SAVE_INTERVAL: u64 = 1000;

/// A share of a run's LR error above which the export warns (`P0903`).
pub const LR_TOLERANCE: f64 = 1e-6;

/// How a run starts from the checkpoint of another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Load {
    /// Fresh weights; the run's own folder is `--load` only to continue after an interruption.
    Fresh,
    /// Weights, optimizer, scheduler, iteration and samples of run `from` (`--load`).
    Resume { from: usize },
    /// Weights of run `from` only (`--pretrained-checkpoint`).
    Weights { from: usize },
}

/// What Megatron-LM's training script a run goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// `pretrain_gpt.py`: the decoder alone.
    Gpt,
    /// `examples/multimodal/train.py`: decoder, ViT and projector, `--freeze-LM` / `--freeze-ViT`.
    Multimodal {
        vit: String,
        freeze_lm: bool,
        freeze_vit: bool,
    },
}

/// One run as Megatron-LM takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MegaRun {
    pub name: String,
    /// Iteration and scheduler samples loaded at the run's start.
    pub i0: u64,
    pub n0: u64,
    pub global_batch: u64,
    pub seq_len: u64,
    pub iterations: u64,
    /// `--train-samples` (cumulative along a chain).
    pub train_samples: u64,
    /// `--exit-interval`, when `--train-samples` alone would not stop the run at its last
    /// iteration (the global batch changed within a chain).
    pub exit_interval: Option<u64>,
    pub load: Load,
    pub override_scheduler: bool,
    pub lr: lr::Fit,
    /// `--rotary-base` (an integer in Megatron-LM) and the plan's base.
    pub rotary_base: u64,
    pub rope_base: f64,
    pub entry: Entry,
}

#[derive(Debug, Clone, Default)]
pub struct Export {
    pub runs: Vec<MegaRun>,
    /// Errors refuse the export; warnings state each approximation with its bound.
    pub diagnostics: Vec<Diagnostic>,
}

impl Export {
    pub fn refused(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == pipelang::diag::Severity::Error)
    }
}

fn entry(p: &Pipeline, plan: &Plan, run: &EngineRun) -> Entry {
    let st = &plan.stages[run.stage_index];
    fn vision<'a>(p: &Pipeline, names: &'a [String]) -> Option<&'a String> {
        names.iter().find(|n| {
            p.model_id(n)
                .is_some_and(|m| matches!(p.models[m].kind, ModelKind::Vit(_)))
        })
    }
    let vit = vision(p, &st.train).or(vision(p, &st.freeze));
    let projector = st.train.iter().chain(&st.freeze).any(|n| {
        p.model_id(n)
            .is_some_and(|m| matches!(p.models[m].kind, ModelKind::Projector(_)))
    });
    match vit {
        None if !projector => Entry::Gpt,
        _ => Entry::Multimodal {
            vit: vit.cloned().unwrap_or_default(),
            freeze_lm: st.freeze.contains(&run.model.name),
            freeze_vit: vit.is_some_and(|v| st.freeze.contains(v)),
        },
    }
}

/// The runs of a lowering as Megatron-LM takes them, with what it cannot say.
pub fn export(p: &Pipeline, plan: &Plan, l: &Lowering) -> Export {
    let mut out = Export::default();
    // The bounds stored with each run's optimizer state: (--lr, --min-lr).
    let mut bounds: Vec<(f64, f64)> = vec![];
    for run in &l.runs {
        let ir = &p.stages[plan.stages[run.stage_index].id];
        let from = match &run.init {
            Init::Fresh => None,
            Init::From { run: f, optimizer } => {
                let fi = l
                    .runs
                    .iter()
                    .position(|r| &r.name == f)
                    .expect("earlier run");
                Some((fi, *optimizer))
            }
        };
        let (load, i0, n0) = match from {
            None => (Load::Fresh, 0, 0),
            Some((fi, false)) => (Load::Weights { from: fi }, 0, 0),
            Some((fi, true)) => {
                let f = &out.runs[fi];
                (
                    Load::Resume { from: fi },
                    f.i0 + f.iterations,
                    f.n0 + f.iterations * f.global_batch,
                )
            }
        };
        let gbs = run.batch;
        let sched = plan
            .schedules
            .iter()
            .find(|s| s.name == run.lr.schedule)
            .expect("the run's schedule");
        let ax = lr::Axis {
            n0,
            offset: run.lr.offset,
            seq_len: run.seq_len,
        };
        let chain = match load {
            Load::Resume { from } => Some(bounds[from]),
            _ => None,
        };
        let min_default = chain.map_or(0.0, |c| c.1);
        let plan_lr = |k: u64| run.plan_lr(k);
        let fit = lr::fit(
            &sched.curve.pieces,
            &ax,
            gbs,
            run.steps,
            min_default,
            &plan_lr,
        );
        let Some(fit) = fit else {
            out.diagnostics.push(
                Diagnostic::new(
                    Code::ENGINE_LR_UNEXPRESSIBLE,
                    format!(
                        "Megatron-LM's scheduler cannot follow the LR of run `{}`: schedule \
                         `{}` over its steps is not a warm-up, a flat peak, one decay and a \
                         floor",
                        run.name, run.lr.schedule
                    ),
                )
                .label(ir.lr_span, "this LR")
                .help(
                    "Megatron-LM has one warm-up and one decay per run (linear, cosine, WSD \
                     with linear, cosine or 1-sqrt decay); give the stage such a schedule, or \
                     export to OLMo-core, which takes any pieces (docs/engines.md)",
                ),
            );
            bounds.push((0.0, 0.0));
            continue;
        };
        if let Some((max, min)) = chain {
            let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
            if !same(max, fit.sched.max) || !same(min, fit.sched.min) {
                out.diagnostics.push(
                    Diagnostic::new(
                        Code::ENGINE_LR_UNEXPRESSIBLE,
                        format!(
                            "run `{}` resumes an optimizer whose stored LR bounds are {max:e} \
                             and {min:e}, but its LR needs {:e} and {:e}: Megatron-LM keeps \
                             the stored bounds (#963)",
                            run.name, fit.sched.max, fit.sched.min
                        ),
                    )
                    .label(ir.lr_span, "this LR")
                    .help(
                        "start a new schedule here (`rewarmup(...)`), which starts a fresh \
                         optimizer, or keep the peak and floor of the schedule it resumes",
                    ),
                );
            }
        }
        bounds.push((fit.sched.max, fit.sched.min));
        let rotary = run.rope_base.round().max(1.0) as u64;
        // Megatron stops at `train_samples / global_batch` iterations counted from the
        // checkpoint's iteration; when the batch changed in the chain those two disagree.
        let need = i0 + run.steps;
        let train_samples = (n0 + run.steps * gbs).max(need * gbs);
        let exit_interval = (train_samples / gbs > need).then_some(need);
        out.runs.push(MegaRun {
            name: run.name.clone(),
            i0,
            n0,
            global_batch: gbs,
            seq_len: run.seq_len,
            iterations: run.steps,
            train_samples,
            exit_interval,
            override_scheduler: matches!(load, Load::Resume { .. }),
            load,
            lr: fit,
            rotary_base: rotary,
            rope_base: run.rope_base,
            entry: entry(p, plan, run),
        });
    }
    approximations(p, plan, l, &mut out);
    out
}

/// One warning per stage whose runs round the LR's positions, and one per stage whose RoPE
/// base is not a whole number, each with the largest error over the stage's runs.
fn approximations(p: &Pipeline, plan: &Plan, l: &Lowering, out: &mut Export) {
    let rope_error = |m: &MegaRun| (m.rotary_base as f64 - m.rope_base).abs() / m.rope_base;
    for (si, st) in plan.stages.iter().enumerate() {
        let ir = &p.stages[st.id];
        let runs: Vec<(&MegaRun, &EngineRun)> = out
            .runs
            .iter()
            .zip(&l.runs)
            .filter(|(_, r)| r.stage_index == si)
            .collect();
        let lr_off: Vec<_> = runs
            .iter()
            .filter(|(m, _)| m.lr.max_rel_error > LR_TOLERANCE)
            .collect();
        if let Some((worst, _)) = lr_off
            .iter()
            .max_by(|a, b| a.0.lr.max_rel_error.total_cmp(&b.0.lr.max_rel_error))
        {
            let seq = lr_off.iter().map(|(m, _)| m.seq_len).min().unwrap_or(1);
            let d = Diagnostic::new(
                Code::ENGINE_APPROXIMATION,
                format!(
                    "stage `{}`: Megatron-LM places the LR in whole samples; rounding the \
                     schedule's positions by up to {:.3} samples puts the LR of {} of its {} \
                     runs up to {:.3e} (relative) off the plan (run `{}`)",
                    st.name,
                    worst.lr.max_rounding,
                    lr_off.len(),
                    runs.len(),
                    worst.lr.max_rel_error,
                    worst.name
                ),
            )
            .label(ir.lr_span, "this LR")
            .help(format!(
                "make warm-up, decay and phase boundaries whole multiples of the sequence \
                 length ({seq} tokens) for an exact schedule"
            ));
            out.diagnostics.push(d);
        }
        let rope_off = runs
            .iter()
            .filter(|(m, _)| rope_error(m) > 1e-9)
            .max_by(|a, b| rope_error(a.0).total_cmp(&rope_error(b.0)));
        if let Some((m, r)) = rope_off {
            let dec = p
                .model_id(&r.model.name)
                .and_then(|id| match &p.models[id].kind {
                    ModelKind::Decoder(d) => Some(d.rope_base.span),
                    _ => None,
                });
            let span = ir
                .rope_base
                .as_ref()
                .map(|t| t.to.span)
                .or(dec)
                .unwrap_or(ir.header);
            let d = Diagnostic::new(
                Code::ENGINE_APPROXIMATION,
                format!(
                    "stage `{}`: `--rotary-base` is an integer in Megatron-LM; the RoPE base {} \
                     becomes {} ({:.2e} relative)",
                    st.name,
                    m.rope_base,
                    m.rotary_base,
                    rope_error(m)
                ),
            )
            .label(span, "this RoPE base")
            .help("give the RoPE base as a whole number (in the profile too) for an exact export");
            out.diagnostics.push(d);
        }
    }
}

/// A run's directory under the export: `runs/NN-NAME`, numbered in plan order.
pub fn run_dir(index: usize, run: &EngineRun) -> String {
    format!("runs/{index:02}-{}", run.name)
}

/// Every file of an export, relative to its directory.
pub fn files(
    p: &Pipeline,
    plan: &Plan,
    l: &Lowering,
    x: &Export,
    par: &crate::parallel::Layout,
) -> Vec<(PathBuf, String)> {
    let mut out = vec![
        (
            PathBuf::from("plan.json"),
            serde_json::to_string_pretty(plan).expect("a plan serialises") + "\n",
        ),
        (
            PathBuf::from("export.json"),
            serde_json::to_string_pretty(&x.runs).expect("runs serialise") + "\n",
        ),
    ];
    for (i, run) in l.runs.iter().enumerate() {
        let dir = PathBuf::from(run_dir(i, run));
        out.push((dir.join("train.sh"), script::train(plan, l, x, i, par)));
        if let Some(blend) = script::energon_blend(p, run, &x.runs[i]) {
            out.push((dir.join("blend.yaml"), blend));
        }
    }
    out.push((PathBuf::from("launch.sh"), script::launch(l, x)));
    out
}
