//! The bash a Megatron export is: one `train.sh` per run (its flags one per line in `ARGS`,
//! readable and diffable; `PIPE_PRINT_ARGS=1` prints them instead of training, which is how
//! the tests drive megatron-core's scheduler with exactly these flags), and `launch.sh`.

use std::fmt::Write;

use pipelang::check::ir::Pipeline;
use pipelang::plan::Plan;
use pipelang::plan::rope::RopeScaling;

use super::lr::Style;
use super::{Entry, Export, Load, MEGATRON_LM, MegaRun, SAVE_INTERVAL, run_dir};
use crate::parallel::Layout;
use crate::runs::{EngineRun, Lowering};

/// Where a source's Megatron indexed dataset is expected: the prefix (`.bin` / `.idx`) that
/// `pipe prepare-data FILE --format megatron --out DIR/data` writes for it.
pub fn data_prefix(source: &str) -> String {
    format!("$DATA/{source}")
}

/// The shortest decimal that reads back as the same f64 (Rust's `Display` for floats), so
/// Python's `float()` gets the exact value.
fn num(x: f64) -> String {
    format!("{x}")
}

/// A mixture share for `--data-path` (Megatron normalises the weights): 10 decimals suffice.
fn share(x: f64) -> String {
    let s = format!("{x:.10}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn flag(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {name} {value}");
}

fn load_lines(l: &Lowering, m: &MegaRun) -> (String, Vec<String>) {
    let dir_of = |i: usize| format!("\"$ROOT/{}/checkpoint\"", run_dir(i, &l.runs[i]));
    match &m.load {
        Load::Fresh => (
            "# Fresh weights. An interrupted run continues from its own checkpoint.\nLOAD=\"$SAVE\"\n"
                .into(),
            vec![],
        ),
        Load::Weights { from } => (
            format!(
                "# Weights of `{}` only, a fresh optimizer and schedule: Megatron-LM loads\n\
                 # --pretrained-checkpoint as --finetune while this run's own checkpoint folder is\n\
                 # empty (iteration, samples and scheduler from 0), and its own checkpoint after an\n\
                 # interruption.\nLOAD=\"$SAVE\"\n",
                l.runs[*from].name
            ),
            vec![format!("--pretrained-checkpoint {}", dir_of(*from))],
        ),
        Load::Resume { from } => (
            format!(
                "# Weights, optimizer and scheduler of `{}`: its counters continue (iteration {},\n\
                 # {} samples), so --train-samples is cumulative; --override-opt-param-scheduler\n\
                 # gives this run's warm-up, decay and style precedence over the stored ones.\n\
                 LOAD={}\n\
                 if [ -e \"$SAVE/latest_checkpointed_iteration.txt\" ]; then LOAD=\"$SAVE\"; fi\n",
                l.runs[*from].name,
                m.i0,
                m.n0,
                dir_of(*from)
            ),
            vec!["--override-opt-param-scheduler".into()],
        ),
    }
}

fn data_args(run: &EngineRun, m: &MegaRun) -> Vec<String> {
    match m.entry {
        Entry::Gpt => {
            let mut v = vec!["--data-path".to_string()];
            for s in &run.mixture {
                v.push(format!("{} \"{}\"", share(s.share), data_prefix(&s.source)));
            }
            vec![v.join(" "), "--split 100,0,0".into()]
        }
        Entry::Multimodal { .. } => vec![
            "--data-path \"$HERE/blend.yaml\"".into(),
            "--dataloader-type external".into(),
        ],
    }
}

/// An Energon metadataset (`MetadatasetV2`) with the run's mixture, for the multimodal runs.
pub fn energon_blend(_p: &Pipeline, run: &EngineRun, m: &MegaRun) -> Option<String> {
    if m.entry == Entry::Gpt {
        return None;
    }
    let mut s = format!(
        "# Written by `pipe export --engine megatron`: the mixture of run `{}` as an Energon\n\
         # metadataset; each path is a source prepared for Energon under the export's data/.\n\
         __module__: megatron.energon\n__class__: MetadatasetV2\nsplits:\n  train:\n    blend:\n",
        run.name
    );
    for sh in &run.mixture {
        let _ = write!(
            s,
            "      - weight: {}\n        path: ../../data/{}\n",
            share(sh.share),
            sh.source
        );
    }
    Some(s)
}

/// The largest sequence length any run gives the model: `--max-position-embeddings`.
fn max_seq(l: &Lowering, model: &str) -> u64 {
    l.runs
        .iter()
        .filter(|r| r.model.name == model)
        .map(|r| r.seq_len)
        .max()
        .unwrap_or(1)
}

pub fn train(plan: &Plan, l: &Lowering, x: &Export, i: usize, par: &Layout) -> String {
    let run = &l.runs[i];
    let m = &x.runs[i];
    let d = &run.model;
    let f = &m.lr;
    let s = &f.sched;
    let mut head = format!(
        "#!/usr/bin/env bash\n\
         # Written by `pipe export --engine megatron` for Megatron-LM {MEGATRON_LM}:\n# {}.\n",
        l.describe(run, "iterations"),
    );
    let _ = write!(
        head,
        "# LR: megatron-core's OptimizerParamScheduler counts samples; iteration k runs at sample\n\
         # {} + k x {} and the plan's positions are placed there. Largest LR error against the\n\
         # plan over this run: {:.2e} relative (positions rounded by up to {:.3} samples).\n",
        m.n0, m.global_batch, f.max_rel_error, f.max_rounding
    );
    if m.rotary_base as f64 != m.rope_base {
        let _ = writeln!(
            head,
            "# RoPE base {} rounded to {} (--rotary-base is an integer).",
            m.rope_base, m.rotary_base
        );
    }
    let (load, extra) = load_lines(l, m);
    let mut a = String::new();
    // Model.
    flag(&mut a, "--num-layers", d.layers);
    flag(&mut a, "--hidden-size", d.d_model);
    flag(&mut a, "--num-attention-heads", d.heads);
    if d.kv_heads != d.heads {
        a += "  --group-query-attention\n";
        flag(&mut a, "--num-query-groups", d.kv_heads);
    }
    if d.qk_norm {
        // Megatron's QK layernorm normalises each head over its own width, with one gain for
        // all heads, as pipelang's does; RMSNorm follows --normalization.
        a += "  --qk-layernorm\n";
    }
    flag(&mut a, "--ffn-hidden-size", d.mlp_hidden);
    if d.swiglu {
        a += "  --swiglu\n";
    }
    a += "  --normalization RMSNorm\n  --disable-bias-linear\n";
    if !d.tie_embeddings {
        a += "  --untie-embeddings-and-output-weights\n";
    }
    a += "  --position-embedding-type rope\n  --rotary-percent 1.0\n";
    flag(&mut a, "--rotary-base", m.rotary_base);
    match run.rope_scaling {
        // Positions divided by the factor: every frequency divided by it, as `linear` is.
        RopeScaling::Linear { factor } => flag(
            &mut a,
            "--rotary-seq-len-interpolation-factor",
            factor as u64,
        ),
        // The bands are megatron-core's fixed ones (`Target::maps_rope_scaling`).
        RopeScaling::Llama3 { factor, .. } => {
            a += "  --use-rope-scaling\n";
            flag(&mut a, "--rope-scaling-factor", factor);
        }
        _ => {}
    }
    flag(&mut a, "--max-position-embeddings", max_seq(l, &d.name));
    if let (Some(e), Some(k)) = (d.experts, d.active_experts) {
        flag(&mut a, "--num-experts", e);
        flag(&mut a, "--moe-router-topk", k);
        flag(&mut a, "--moe-ffn-hidden-size", d.mlp_hidden);
        if d.shared_experts > 0 {
            flag(
                &mut a,
                "--moe-shared-expert-intermediate-size",
                d.shared_experts * d.mlp_hidden,
            );
        }
        if d.dense_layers > 0 {
            // Dense first blocks (their MLP `--ffn-hidden-size` wide), then MoE blocks.
            let freq = format!(
                "\"([0]*{}+[1]*{})\"",
                d.dense_layers,
                d.layers - d.dense_layers
            );
            flag(&mut a, "--moe-layer-freq", freq);
        }
    }
    // NullTokenizer adds its end-of-document id after `--vocab-size` ids: the model's vocabulary.
    a += "  --tokenizer-type NullTokenizer\n";
    flag(&mut a, "--vocab-size", d.vocab - 1);
    a += "  --make-vocab-size-divisible-by 1\n";
    a += "  --attention-dropout 0.0\n  --hidden-dropout 0.0\n  --bf16\n";
    // Batch, length and parallelism.
    flag(&mut a, "--seq-length", m.seq_len);
    flag(&mut a, "--global-batch-size", m.global_batch);
    flag(&mut a, "--micro-batch-size", par.micro_batch);
    flag(&mut a, "--tensor-model-parallel-size", par.tp);
    flag(&mut a, "--pipeline-model-parallel-size", par.pp);
    if d.experts.is_some() {
        flag(&mut a, "--expert-model-parallel-size", par.ep);
    }
    flag(&mut a, "--train-samples", m.train_samples);
    if let Some(e) = m.exit_interval {
        flag(&mut a, "--exit-interval", e);
    }
    // Optimizer and LR.
    let o = &run.optimizer;
    a += "  --optimizer adam\n";
    flag(&mut a, "--adam-beta1", o.beta1);
    flag(&mut a, "--adam-beta2", o.beta2);
    flag(&mut a, "--adam-eps", format!("{:e}", o.eps));
    flag(&mut a, "--weight-decay", o.weight_decay);
    flag(&mut a, "--clip-grad", o.clip_norm);
    flag(&mut a, "--lr", num(s.max));
    flag(&mut a, "--min-lr", num(s.min));
    flag(&mut a, "--lr-warmup-init", num(s.init));
    flag(&mut a, "--lr-warmup-samples", s.warmup);
    flag(&mut a, "--lr-decay-samples", s.decay);
    flag(&mut a, "--lr-decay-style", s.style.flag());
    if let (Style::Wsd, Some((n, ws))) = (s.style, s.wsd) {
        flag(&mut a, "--lr-wsd-decay-samples", n);
        flag(&mut a, "--lr-wsd-decay-style", ws.flag());
    }
    flag(&mut a, "--seed", run.seed);
    // Checkpoints.
    a += "  --save \"$SAVE\"\n  --load \"$LOAD\"\n";
    for e in &extra {
        let _ = writeln!(a, "  {e}");
    }
    flag(
        &mut a,
        "--save-interval",
        SAVE_INTERVAL.min(m.iterations.max(1)),
    );
    a += "  --ckpt-format torch_dist\n";
    // Data.
    for e in data_args(run, m) {
        let _ = writeln!(a, "  {e}");
    }
    a += "  --eval-iters 0\n  --log-interval 1\n";
    let script = match &m.entry {
        Entry::Gpt => "pretrain_gpt.py".to_string(),
        Entry::Multimodal {
            vit,
            freeze_lm,
            freeze_vit,
        } => {
            if *freeze_lm {
                a += "  --freeze-LM\n";
            }
            if *freeze_vit {
                a += "  --freeze-ViT\n";
            }
            let _ = write!(
                head,
                "# Vision: Megatron-LM's multimodal example runs `{}` with the ViT `{vit}` and the\n\
                 # projector (--freeze-LM / --freeze-ViT as the stage freezes them); its ViT comes\n\
                 # from --vision-model-type (examples/multimodal/config.py): set VISION_ARGS to the\n\
                 # type whose dims match the recipe's ViT.\n",
                run.model.name
            );
            for g in &run.given {
                let _ = write!(
                    head,
                    "# Weights: `{}` is read from {} (stage `{}` is skipped: `--skip`); Megatron-LM's\n\
                     # multimodal example loads the decoder and the ViT from one checkpoint, so combine\n\
                     # it with the checkpoint below first (examples/multimodal/combine_state_dicts.py).\n",
                    g.model, g.path, g.stage
                );
            }
            "examples/multimodal/train.py".to_string()
        }
    };
    let _ = plan;
    format!(
        "{head}set -euo pipefail\n\
         HERE=\"$(cd \"$(dirname \"$0\")\" && pwd)\"\n\
         ROOT=\"$(cd \"$HERE/../..\" && pwd)\"\n\
         DATA=\"${{DATA:-$ROOT/data}}\"\n\
         SAVE=\"$HERE/checkpoint\"\n\
         {load}\n\
         ARGS=(\n{a})\n\n\
         if [ \"${{PIPE_PRINT_ARGS:-}}\" = 1 ]; then printf '%s\\n' \"${{ARGS[@]}}\"; exit 0; fi\n\
         MEGATRON_LM=\"${{MEGATRON_LM:?set MEGATRON_LM to a Megatron-LM checkout at {MEGATRON_LM}}}\"\n\
         # Set TORCHRUN_ARGS for a cluster (see launch.sh).\n\
         exec torchrun ${{TORCHRUN_ARGS:---standalone --nproc-per-node {gpus}}} \\\n  \
         \"$MEGATRON_LM/{script}\" \"${{ARGS[@]}}\"{vision}\n",
        gpus = par.gpus_per_node,
        vision = if script.starts_with("examples") {
            " ${VISION_ARGS:?set VISION_ARGS}"
        } else {
            ""
        },
    )
}

pub fn launch(l: &Lowering, x: &Export) -> String {
    let mut s = format!(
        "#!/usr/bin/env bash\n\
         # Written by `pipe export --engine megatron`: the runs of `{}` in plan order, each with\n\
         # Megatron-LM {MEGATRON_LM} (set MEGATRON_LM to its checkout). Data under data/\n\
         # (`pipe prepare-data FILE --format megatron --out data`, or set DATA). A run that\n\
         # finished leaves DONE in its folder and is skipped when this is started again.\n\
         # On a cluster run this on every node with TORCHRUN_ARGS set, e.g.\n\
         #   TORCHRUN_ARGS=\"--nnodes $NNODES --node-rank $NODE_RANK --nproc-per-node 8 \\\n\
         #     --rdzv-backend c10d --rdzv-endpoint $MASTER_ADDR:29500\"\n\
         set -euo pipefail\ncd \"$(dirname \"$0\")\"\n\n",
        l.pipeline
    );
    for (i, r) in l.runs.iter().enumerate() {
        let dir = run_dir(i, r);
        let m = &x.runs[i];
        let _ = write!(
            s,
            "# {} ({} iterations of {} x {} tokens, stage `{}`)\n\
             if [ ! -e {dir}/DONE ]; then\n  bash {dir}/train.sh\n  touch {dir}/DONE\nfi\n",
            r.name, m.iterations, m.global_batch, m.seq_len, r.stage
        );
    }
    s
}
