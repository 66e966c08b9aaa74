//! OLMo-core 3.0: each engine run rendered as a JSON config that `driver.py` (kept here as a
//! real Python file, written beside the configs) turns into OLMo-core's model, optimizer,
//! scheduler, data loader and trainer; and the launch scripts that run them in plan order.

pub mod launch;
pub mod lr;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipelang::check::ir::{DataId, Pipeline};
use pipelang::plan::Plan;
use pipelang::plan::rope::RopeScaling;
use pipelang::schema::tokenizer;
use serde_json::{Value, json};

use crate::runs::{EngineRun, Init, Lowering};

/// The driver every run's config is handed to.
pub const DRIVER: &str = include_str!("driver.py");

/// Steps between the periodic checkpoints of a run (its final one is always written).
const CHECKPOINT_EVERY: u64 = 100;

/// What OLMo-core is told the RoPE base is: `rope_theta` is an integer.
pub fn rope_theta(base: f64) -> u64 {
    base.round().max(1.0) as u64
}

/// A RoPE scaling as OLMo-core's `RoPEScalingConfig` subclass and its fields (`null`: none).
/// YaRN's `alpha`/`beta` are OLMo-core's `beta_slow`/`beta_fast`; Llama 3's `low_freq` and
/// `high_freq` factors are its proportions `1 - 1/low_freq` and `1/high_freq` (it computes the
/// factors back as `1/(1 - p)` and `1/p`); `olmo_core_real.rs` holds the frequencies OLMo-core
/// computes from these to `pipelang::plan::rope`.
pub fn rope_scaling(s: &RopeScaling) -> Value {
    match *s {
        RopeScaling::None => Value::Null,
        RopeScaling::Linear { factor } => {
            json!({ "class": "PIRoPEScalingConfig", "factor": factor })
        }
        RopeScaling::Yarn {
            factor,
            original,
            alpha,
            beta,
        } => json!({
            "class": "YaRNRoPEScalingConfig",
            "factor": factor,
            "beta_fast": beta,
            "beta_slow": alpha,
            "old_context_len": original,
        }),
        RopeScaling::Llama3 {
            factor,
            low_freq,
            high_freq,
            original,
        } => json!({
            "class": "StepwiseRoPEScalingConfig",
            "factor": factor,
            "low_freq_proportion": 1.0 - 1.0 / low_freq,
            "high_freq_proportion": 1.0 / high_freq,
            "old_context_len": original,
        }),
    }
}

/// A run's directory under the export: `runs/NN-NAME`, numbered in plan order.
pub fn run_dir(index: usize, run: &EngineRun) -> String {
    format!("runs/{index:02}-{}", run.name)
}

/// Where a source's token files are expected: `data/SOURCE/*.npy` under the export
/// (`pipe prepare-data FILE --format olmo-core --out DIR/data` writes them).
pub fn data_glob(source: &str) -> String {
    format!("data/{source}/*.npy")
}

/// What a source's prepared token files are (`pipe prepare-data`'s manifest says it): the
/// array's dtype and the tokenizer's end-of-document and padding ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFiles {
    pub dtype: String,
    pub eos: u32,
    pub pad: u32,
}

/// [`TokenFiles`] by source name; empty where no data has been prepared yet.
pub type DataFacts = BTreeMap<String, TokenFiles>;

/// The token files every source of a run shares, or why they cannot be one dataset (OLMo-core
/// reads a run's sources with one dtype and one EOS). `None` when some source is not prepared.
pub fn run_token_files<'a>(
    run: &EngineRun,
    facts: &'a DataFacts,
) -> Result<Option<&'a TokenFiles>, String> {
    let mut first: Option<(&str, &TokenFiles)> = None;
    for s in &run.mixture {
        let Some(f) = facts.get(&s.source) else {
            return Ok(None);
        };
        match first {
            None => first = Some((&s.source, f)),
            Some((name, g)) if g != f => {
                return Err(format!(
                    "sources `{name}` ({} tokens, EOS {}) and `{}` ({} tokens, EOS {}) of run \
                     `{}` were tokenized differently, and OLMo-core reads one run's sources as \
                     one array type with one EOS: give them the same tokenizer",
                    g.dtype, g.eos, s.source, f.dtype, f.eos, run.name
                ));
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, f)| f))
}

/// The end-of-document and padding ids of the sources a run reads, when the language knows
/// them: the byte tokenizer's (its specials follow the 256 byte ids). A source with its own
/// tokenizer file gets `null` unless its prepared files are known ([`DataFacts`]).
fn special_ids(p: &Pipeline, run: &EngineRun) -> (Value, Value) {
    let byte = run
        .mixture
        .iter()
        .all(|s| p.data[DataId::new(s.index)].tokenizer.is_none());
    if byte {
        let eos = tokenizer::BYTE_BASE;
        (json!(eos), json!(eos + tokenizer::SPECIALS - 1))
    } else {
        (Value::Null, Value::Null)
    }
}

/// The config of one run, as the driver reads it (paths relative to the run's directory). The
/// dtype and special ids come from the prepared data where `facts` has them (a disagreement
/// among a run's sources is the caller's to refuse, [`run_token_files`]).
pub fn config(p: &Pipeline, l: &Lowering, index: usize, facts: &DataFacts) -> Value {
    let run = &l.runs[index];
    let prepared = run_token_files(run, facts).ok().flatten();
    let (eos, pad) = match prepared {
        Some(f) => (json!(f.eos), json!(f.pad)),
        None => special_ids(p, run),
    };
    let init = match &run.init {
        Init::Fresh => json!({"kind": "fresh"}),
        Init::From {
            run: from,
            optimizer,
        } => {
            let fi = l
                .runs
                .iter()
                .position(|r| &r.name == from)
                .expect("an earlier run");
            json!({
                "kind": "from",
                "run": from,
                "checkpoint": format!("../../{}/checkpoint", run_dir(fi, &l.runs[fi])),
                "optimizer": optimizer,
            })
        }
    };
    // `pipe prepare-data` picks the array type by the tokenizer's ids, not the model's
    // vocabulary: the byte tokenizer's fit uint16; a tokenizer file's are known from the
    // manifest only (`null` until then, like its EOS).
    let dtype = match prepared {
        Some(f) => json!(f.dtype),
        None if eos.is_null() => Value::Null,
        None => json!("uint16"),
    };
    let mut cfg = json!({
        "pipeline": l.pipeline,
        "profile": l.profile,
        "run": run.name,
        "stage": run.stage,
        "phase": run.phase,
        "piece": run.piece,
        "pieces": run.pieces,
        "first_step": run.first_step,
        "global_first_step": run.global_first_step,
        "steps": run.steps,
        "batch": run.batch,
        "seq_len": run.seq_len,
        "tokens_per_step": run.tokens_per_step,
        // One sequence per micro-batch per rank: memory, not arithmetic (the step's batch is
        // the global one whatever the split).
        "rank_microbatch_size": 1,
        "checkpoint_every": CHECKPOINT_EVERY,
        "seed": run.seed,
        "model": run.model,
        "rope_base": run.rope_base,
        "rope_theta": rope_theta(run.rope_base),
        "first_lr": run.plan_lr(0),
        "scheduler": lr::Scheduler::of(run),
        "optimizer": run.optimizer,
        "moe_balance_weight": pipelang::schema::decoder::MOE_BALANCE_WEIGHT,
        "mixture_error": run.mixture_error,
        "data": {
            "dtype": dtype,
            "eos_token_id": eos,
            "pad_token_id": pad,
            "sources": run.mixture.iter().map(|s| json!({
                "name": s.source,
                "share": s.share,
                "paths": [format!("../../{}", data_glob(&s.source))],
            })).collect::<Vec<_>>(),
        },
        "init": init,
    });
    // Only where there is one: configs without a scaling read as before.
    if !run.rope_scaling.is_none() {
        cfg["rope_scaling"] = rope_scaling(&run.rope_scaling);
    }
    cfg
}

/// Every file of an export, relative to its directory, in the order they are written; `facts`
/// as for [`config`].
pub fn files(p: &Pipeline, plan: &Plan, l: &Lowering, facts: &DataFacts) -> Vec<(PathBuf, String)> {
    let mut out = vec![
        (PathBuf::from("driver.py"), DRIVER.to_string()),
        (
            PathBuf::from("plan.json"),
            serde_json::to_string_pretty(plan).expect("a plan serialises"),
        ),
    ];
    for (i, run) in l.runs.iter().enumerate() {
        let cfg = serde_json::to_string_pretty(&config(p, l, i, facts)).expect("json");
        out.push((Path::new(&run_dir(i, run)).join("config.json"), cfg + "\n"));
    }
    out.extend(launch::scripts(l));
    out
}

/// Writes the export under `dir`, every file atomically.
pub fn write(dir: &Path, files: &[(PathBuf, String)]) -> std::io::Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        pipelang::atomic::write(&path, text.as_bytes())?;
        if rel.extension().is_some_and(|e| e == "sh" || e == "sbatch") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}
