//! The torchtitan export against torchtitan 0.3.0 itself: `pipelang_titan.py --check` loads
//! every exported run module through torchtitan's own ConfigManager, builds the model on the
//! meta device, and steps the LR container built by torchtitan's build path (our LR class in
//! `lr_scheduler`) as `Trainer.train_step` steps it. The decoder's parameter count must be
//! pipelang's, the RoPE theta, seq_len and batch the plan's, frozen models without trainable
//! parameters, every hand-over's checkpoint options as docs/engines.md says, and every step's
//! LR the plan's within 1e-6 relative.

use std::path::PathBuf;
use std::process::Command;

use pipelang::check::check_with;
use pipelang::check::ir::ModelKind;
use pipelang::diag::Diagnostic;
use pipelang_engine::parallel::Layout;
use pipelang_engine::runs::{Init, Lowering, Options, Skip, Target};
use pipelang_engine::torchtitan;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The pinned engines' Python; a test that needs it fails (never skips) without it.
fn python() -> PathBuf {
    let p = std::env::var_os("PIPE_ENGINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/engines/bin/python"));
    assert!(
        p.exists(),
        "{} not found: install the pinned engines with scripts/install-engines.sh \
         (or set PIPE_ENGINE_PYTHON)",
        p.display()
    );
    p
}

fn check(file: &str, profile: Option<&str>, skip: Vec<Skip>) {
    let src = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    check_source(&src, profile, skip);
}

fn check_source(src: &str, profile: Option<&str>, skip: Vec<Skip>) {
    let c = check_with(src, profile);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Torchtitan,
        skip,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    assert!(l.unmappable.is_empty(), "{:?}", l.unmappable);
    assert!(torchtitan::refusals(&p, &plan, &l).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = torchtitan::files(&p, &plan, &l, &Layout::default());
    pipelang_engine::olmo_core::write(dir.path(), &files).unwrap();
    let modules: Vec<String> = (0..l.runs.len())
        .map(|i| torchtitan::module(i, &l.runs[i]))
        .collect();
    let out = dir.path().join("check.jsonl");
    let run = Command::new(python())
        .current_dir(dir.path())
        .env("PYTHONPATH", dir.path())
        .arg("pipelang_titan.py")
        .arg("--check")
        .arg(&out)
        .args(&modules)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "pipelang_titan.py --check failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), l.runs.len());
    let mut steps = 0;
    for (i, (line, r)) in lines.iter().zip(&l.runs).enumerate() {
        let name = &r.name;
        assert_eq!(
            line["decoder_params"], r.model.params,
            "{name}: decoder parameters"
        );
        assert_eq!(
            line["rope_theta"].as_f64().unwrap(),
            r.rope_base,
            "{name}: RoPE"
        );
        // The frequencies torchtitan's RoPE rotates with (its float32 cache) against
        // pipelang's, pair by pair.
        let rope = plan
            .step(r.stage_index, r.first_step)
            .rope(&r.model.name)
            .unwrap();
        let want = rope.inv_freqs((r.model.d_model / r.model.heads) as usize);
        let got = line["rope_freqs"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: RoPE pairs");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let g = g.as_f64().unwrap();
            assert!(
                (g - w).abs() <= 1e-6 * w.abs() + 1e-12,
                "{name}: pair {i}: torchtitan {g}, pipelang {w} ({})",
                line["rope_scaling"]
            );
        }
        assert_eq!(
            line["rope_scaling"] == "llama",
            !r.rope_scaling.is_none(),
            "{name}: {}",
            line["rope_scaling"]
        );
        assert_eq!(line["seq_len"], r.seq_len, "{name}: seq_len");
        assert_eq!(line["global_batch"], r.batch, "{name}: batch");
        let st = &plan.stages[r.stage_index];
        let frozen = |m: &str| st.freeze.iter().any(|f| f == m);
        let trainable = |g: &str| line["trainable"][g].as_u64().unwrap();
        let total = |g: &str| line["groups"][g].as_u64().unwrap();
        assert_eq!(
            trainable("decoder"),
            if frozen(&r.model.name) {
                0
            } else {
                r.model.params
            },
            "{name}: trainable decoder"
        );
        if line["vision_params"].as_u64().unwrap() > 0 {
            // MoonViT as torchtitan builds it has the parameters the export computes for it.
            let model = |kind: &str| {
                st.train
                    .iter()
                    .chain(&st.freeze)
                    .filter_map(|n| p.model_id(n))
                    .map(|id| &p.models[id].kind)
                    .find(|k| k.name() == kind)
            };
            let (Some(ModelKind::Vit(v)), Some(ModelKind::Projector(pr))) =
                (model("vit"), model("projector"))
            else {
                panic!("{name}: vision parameters without a ViT and a projector")
            };
            let moon = torchtitan::MoonVit::new(v, pr.pixel_shuffle.value, r.model.d_model);
            assert_eq!(
                (total("vit"), total("projector")),
                moon.params(),
                "{name}: MoonViT's parameters for {moon:?}"
            );
            for (g, kind) in [("vit", "vit"), ("projector", "projector")] {
                let m = st.train.iter().chain(&st.freeze).find(|n| {
                    p.model_id(n)
                        .is_some_and(|id| p.models[id].kind.name() == kind)
                });
                let want = match m {
                    Some(m) if !frozen(m) => total(g),
                    _ => 0,
                };
                assert!(total(g) > 0, "{name}: no {g} parameters");
                assert_eq!(trainable(g), want, "{name}: trainable {g}");
            }
        }
        // Hand-overs: absolute paths, the optimizer where the plan carries it, this run's own
        // counters, and the optimizer saved where a later run loads it.
        let dump = line["dump_folder"].as_str().unwrap();
        assert!(dump.starts_with('/') && dump.ends_with(&torchtitan::run_dir(i, r)));
        match &r.init {
            Init::Fresh if r.given.is_empty() => {
                assert!(line["initial_load_path"].is_null(), "{name}")
            }
            _ => {
                let path = line["initial_load_path"].as_str().unwrap();
                assert!(path.starts_with('/'), "{name}: {path}");
            }
        }
        let model_only = line["initial_load_model_only"].as_bool().unwrap();
        if matches!(
            r.init,
            Init::From {
                optimizer: true,
                ..
            }
        ) {
            assert!(!model_only, "{name}: the plan carries the optimizer");
        }
        if !model_only {
            assert_eq!(
                line["exclude_from_loading"],
                serde_json::json!(["lr_scheduler", "dataloader", "train_state"])
            );
        }
        let loaded_with_optimizer = lines.iter().zip(&l.runs).any(|(x, y)| {
            !x["initial_load_model_only"].as_bool().unwrap()
                && matches!(&y.init, Init::From { run, .. } if run == name)
        });
        if loaded_with_optimizer {
            assert!(!line["last_save_model_only"].as_bool().unwrap(), "{name}");
        }
        tokenizer(&p, r, line);
        let lrs = line["lrs"].as_array().unwrap();
        assert_eq!(lrs.len() as u64, r.steps);
        for (k, lr) in lrs.iter().enumerate() {
            let got = lr.as_f64().unwrap();
            let want = plan.lr_at(r.stage_index, r.first_step + k as u64);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{name} step {k}: torchtitan sets {got}, the plan says {want}"
            );
        }
        steps += lrs.len() as u64;
    }
    let skipped: u64 = plan
        .stages
        .iter()
        .filter(|s| opts.skip.iter().any(|k| k.stage == s.name))
        .map(|s| s.steps)
        .sum();
    assert_eq!(steps + skipped, plan.total_steps);
}

/// A byte-level run's tokenizer, as torchtitan builds it from the export's folder, gives the
/// ids `pipe run` trains on: each byte its value, the end of document after each document, the
/// image specials where torchtitan's multimodal tokenizer asks for them.
fn tokenizer(
    p: &pipelang::check::ir::Pipeline,
    r: &pipelang_engine::EngineRun,
    line: &serde_json::Value,
) {
    use pipelang::schema::tokenizer::{BYTE_BASE, BYTE_IDS};
    let bytes = r.mixture.iter().all(|sh| {
        p.data[pipelang::check::ir::DataId::new(sh.index)]
            .tokenizer
            .is_none()
    });
    let t = &line["tokenizer"];
    if !bytes {
        return;
    }
    let name = &r.name;
    assert!(
        line["hf_assets_path"]
            .as_str()
            .unwrap()
            .ends_with("/tokenizer-bytes"),
        "{name}: {}",
        line["hf_assets_path"]
    );
    let text = t["text"].as_str().unwrap();
    let mut want: Vec<u64> = text.bytes().map(u64::from).collect();
    want.push(BYTE_BASE);
    let got: Vec<u64> = t["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(got, want, "{name}: torchtitan's ids of {text:?}");
    assert_eq!(t["decoded"], text, "{name}: decoded");
    assert_eq!(t["eos_id"], BYTE_BASE, "{name}: EOS");
    assert_eq!(t["vocab_size"], BYTE_IDS, "{name}: vocabulary");
    assert!(r.model.vocab >= BYTE_IDS, "{name}: model vocab");
    if line["vision_params"].as_u64().unwrap() > 0 {
        for (k, id) in [
            ("image_id", 1),
            ("vision_start_id", 2),
            ("vision_end_id", 3),
            ("pad_id", 4),
        ] {
            assert_eq!(t[k], BYTE_BASE + id, "{name}: {k}");
        }
    }
}

/// tiny_modern's dense decoder (grouped-query attention, QK-norm, tied embeddings, a stated
/// FFN width) built by torchtitan: the engine's own model has pipelang's parameter count, so
/// each field is mapped, not dropped (the tied head is counted once, as pipelang counts it).
#[test]
fn torchtitan_builds_a_modern_dense_decoder_with_pipelangs_parameter_count() {
    let src = std::fs::read_to_string(root().join("pipelines/tiny_modern.pipe")).unwrap();
    let dense = src.split("model moe").next().unwrap().to_string()
        + "data web = text(\"corpus/text/*.jsonl\")\n\
           stage dense_pretrain {\n  train = [dense]\n  budget = 30_720\n  \
           lr = cosine(peak = 3e-3, warmup = 5%, min = 3e-4)\n  data = web\n}\n";
    for field in [
        "kv_heads       = 2",
        "qk_norm        = true",
        "tie_embeddings = true",
        "ffn            = 192",
    ] {
        assert!(
            dense.contains(field),
            "tiny_modern's dense decoder sets {field}"
        );
    }
    check_source(&dense, None, vec![]);
}

/// The whole of tiny_modern, its MoE decoder included: multi-query attention, a shared expert
/// and a dense first block built by torchtitan (Qwen3 blocks with torchtitan's `MoE` and its
/// `shared_experts` feed-forward, the first block dense) with pipelang's parameter count, so
/// neither field is dropped or sized differently.
#[test]
fn torchtitan_builds_a_moe_decoder_with_shared_experts_and_dense_layers() {
    let src = std::fs::read_to_string(root().join("pipelines/tiny_modern.pipe")).unwrap();
    for field in [
        "shared_experts = 1",
        "dense_layers   = 1",
        "experts        = 4",
    ] {
        assert!(
            src.contains(field),
            "tiny_modern's MoE decoder sets {field}"
        );
    }
    check_source(&src, None, vec![]);
}

/// Llama 3.1's RoPE scaling switched on in a later stage (as `llama3_long_context.pipe`
/// does), at the toy scale of tiny_text: torchtitan's `scaling = "llama"` frequencies equal
/// pipelang's in every pair, and the stage before runs unscaled.
#[test]
fn torchtitan_scales_rope_as_llama_3_1() {
    let src = "pipeline t { seed = 1, batch = 4, seq_len = 64 }\n\
               model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 2, rope_base = 500_000 }\n\
               data web = text(\"corpus/*.jsonl\")\n\
               stage pre { train = [lm], budget = 2_560, data = web, lr = cosine(peak = 1e-3, warmup = 10%, min = 1e-4) }\n\
               stage long after pre {\n  train = [lm]\n  budget = 2_560\n  data = web\n  lr = resume\n  \
               seq_len = 64 -> 128\n  \
               rope_scaling = none -> llama3(factor = 8, low_freq = 1, high_freq = 4, original = 64)\n}\n";
    check_source(src, None, vec![]);
}

#[test]
fn torchtitan_loads_every_run_of_tiny_text() {
    check("tiny_text.pipe", None, vec![]);
}

#[test]
fn torchtitan_loads_every_run_of_kimi_vl_smoke_with_vit_coca_skipped() {
    check(
        "kimi_vl.pipe",
        Some("smoke"),
        vec![Skip {
            stage: "vit_coca".into(),
            weights: Some("/weights/vit_coca".into()),
        }],
    );
}

/// `kimi_vl.pipe --profile smoke` exported for torchtitan into `dir`, `vit_coca` skipped with
/// its ViT given as `dir/given_vit.pt`: the runs and the export's warnings.
fn export_kimi_smoke(dir: &std::path::Path) -> (Lowering, Vec<Diagnostic>) {
    let (p, plan) = kimi_smoke();
    let opts = Options {
        target: Target::Torchtitan,
        skip: vec![Skip {
            stage: "vit_coca".into(),
            weights: Some(dir.join("given_vit.pt").display().to_string()),
        }],
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let (files, notes) = torchtitan::files(&p, &plan, &l, &Layout::default());
    pipelang_engine::olmo_core::write(dir, &files).unwrap();
    (l, notes)
}

/// `kimi_vl.pipe --profile smoke`, checked and planned.
fn kimi_smoke() -> (pipelang::check::ir::Pipeline, pipelang::plan::Plan) {
    let src = std::fs::read_to_string(root().join("pipelines/kimi_vl.pipe")).unwrap();
    let c = check_with(&src, Some("smoke"));
    (c.pipeline.clone().unwrap(), c.into_plan().unwrap())
}

/// Python that builds a run module's model and initialises it on CPU as torchtitan does, with
/// a seed.
const BUILD: &str = "
import importlib, torch
def build(mod, seed):
    cfg = importlib.import_module(mod).config()
    torch.manual_seed(seed)
    m = cfg.model_spec.model.build()
    m.init_weights(buffer_device=None)
    return m
";

/// Runs `code` with the engines' Python in `dir` (on its path), failing with its stderr.
fn python_in(dir: &std::path::Path, code: &str) {
    let out = Command::new(python())
        .current_dir(dir)
        .env("PYTHONPATH", dir)
        .arg("-c")
        .arg(code)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exported `launch.sh` run from its first run to its last on this CPU, with `$PYTHON` a
/// wrapper that starts `tests/titan_cpu_run.py` where launch.sh starts torchrun (torchtitan's
/// own config, model, optimizer, LR container and `CheckpointManager`, synthetic gradients in
/// place of the forward and backward passes; see that file) and the engines' Python for the
/// rest (`pipelang_titan.py assemble`). Gives that script's line per run, in launch order.
fn launch_on_cpu(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let tests = root().join("crates/pipelang-engine/tests");
    let wrapper = dir.join("python-cpu");
    std::fs::write(
        &wrapper,
        format!(
            "#!/usr/bin/env bash\n\
             if [ \"$1\" = -m ] && [ \"$2\" = torch.distributed.run ]; then\n  \
             exec {py} {tests}/titan_cpu_run.py \"$@\"\nfi\nexec {py} \"$@\"\n",
            py = python().display(),
            tests = tests.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.join("cpu-runs.jsonl");
    let run = Command::new("bash")
        .arg(dir.join("launch.sh"))
        .env("PYTHON", &wrapper)
        .env("TITAN_CPU_OUT", &out)
        .env("PYTHONPATH", &tests)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "launch.sh on CPU:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Holds what torchtitan's checkpointer loaded at the start of each run (`lines`, from
/// `launch_on_cpu`) to the plan: each model group from where the plan takes that model (the
/// last run of the stage it comes from, the run before in the same stage, a skipped stage's
/// given weights, or the run's own initialisation), the AdamW state carried exactly where the
/// plan carries it (and zero on the same step count for models the stage adds), the counters
/// and the LR schedule the run's own, every step's LR the plan's, frozen groups unchanged.
fn hand_overs(
    p: &pipelang::check::ir::Pipeline,
    plan: &pipelang::plan::Plan,
    l: &Lowering,
    lines: &[serde_json::Value],
    given: &std::collections::HashMap<&str, String>,
) {
    assert_eq!(lines.len(), l.runs.len());
    let index = |name: &str| l.runs.iter().position(|r| r.name == name).unwrap();
    let group_of = |m: &str| p.models[p.model_id(m).unwrap()].kind.name();
    for (i, (line, r)) in lines.iter().zip(&l.runs).enumerate() {
        let name = &r.name;
        assert_eq!(line["module"], torchtitan::module(i, r), "{name}");
        assert_eq!(line["step_after_load"], 0, "{name}: the step counter");
        assert_eq!(
            line["scheduler_epoch_after_load"], 0,
            "{name}: the LR schedule"
        );
        assert_eq!(
            line["final_checkpoint"], true,
            "{name}: no final checkpoint"
        );
        let st = &plan.stages[r.stage_index];
        let prev_in_stage = match &r.init {
            Init::From { run, .. } if l.runs[index(run)].stage == r.stage => Some(index(run)),
            _ => None,
        };
        // Where each group's weights come from: a run's line and its saved model, or a digest.
        let mut want: Vec<(&str, String)> = Vec::new();
        for w in &st.weights_from {
            let g = group_of(&w.model);
            let digest = if let Some(j) = prev_in_stage {
                lines[j]["saved_model"][g].as_str().unwrap().to_string()
            } else if let Some(d) = r.given.iter().find(|x| x.model == w.model) {
                given[d.path.as_str()].clone()
            } else if let Some(s) = &w.from {
                let j = l.runs.iter().rposition(|x| &x.stage == s).unwrap();
                lines[j]["saved_model"][g].as_str().unwrap().to_string()
            } else {
                line["fresh"][g].as_str().unwrap().to_string()
            };
            want.push((g, digest));
        }
        assert!(!want.is_empty(), "{name}");
        for (g, d) in &want {
            assert_eq!(
                line["model_after_load"][g].as_str().unwrap(),
                d,
                "{name}: the {g}'s weights after torchtitan's load"
            );
        }
        let fresh_start = want.iter().all(|(g, d)| line["fresh"][g] == **d);
        assert_eq!(line["loaded"], !fresh_start, "{name}: load() said");
        // The AdamW state.
        let opt = &line["optimizer_after_load"];
        match &r.init {
            Init::From {
                run,
                optimizer: true,
            } => {
                let j = index(run);
                let src = &lines[j]["saved_optimizer"];
                let steps = &src["decoder"]["steps"];
                assert!(src["decoder"]["count"].as_u64().unwrap() > 0, "{name}");
                // A group the source run trained has its moments there; one it did not train
                // (a ViT from a stage of its own, a fresh projector) starts from zero.
                let trained_there = &plan.stages[l.runs[j].stage_index].train;
                for (g, _) in &want {
                    if trained_there.iter().any(|m| group_of(m) == *g) {
                        assert_eq!(opt[g], src[g], "{name}: the {g}'s AdamW state");
                    } else {
                        assert_eq!(opt[g]["zero"], true, "{name}: the {g}'s new moments");
                        assert_eq!(&opt[g]["steps"], steps, "{name}: the {g}'s step count");
                    }
                }
            }
            _ => {
                for (g, _) in &want {
                    assert_eq!(opt[g]["count"], 0, "{name}: a fresh AdamW for the {g}");
                }
            }
        }
        // Training moved the trained groups, each AdamW step count by the run's steps, and
        // left the frozen ones as loaded, outside the optimizer.
        for (g, _) in &want {
            let m = st
                .train
                .iter()
                .chain(&st.freeze)
                .find(|m| group_of(m) == *g)
                .unwrap();
            let frozen = st.freeze.contains(m);
            assert_eq!(
                line["saved_model"][g] == line["model_after_load"][g],
                frozen,
                "{name}: the {g} (frozen: {frozen}) after {} steps",
                r.steps
            );
            let saved = &line["saved_optimizer"][g];
            if frozen {
                assert_eq!(saved["count"], 0, "{name}: the frozen {g} in the optimizer");
            } else {
                let before = opt[g]["steps"].get(0).map_or(0.0, |v| v.as_f64().unwrap());
                assert_eq!(
                    saved["steps"],
                    serde_json::json!([before + r.steps as f64]),
                    "{name}: the {g}'s AdamW step count"
                );
            }
        }
        let lrs = line["lrs"].as_array().unwrap();
        assert_eq!(lrs.len() as u64, r.steps, "{name}");
        for (k, lr) in lrs.iter().enumerate() {
            let got = lr.as_f64().unwrap();
            let want = plan.lr_at(r.stage_index, r.first_step + k as u64);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{name} step {k}: after torchtitan's load the LR is {got}, the plan says {want}"
            );
        }
    }
}

/// Every hand-over of tiny_text through torchtitan's own checkpointer: its 13 runs started by
/// the exported launch.sh, each loading the run before it as the export configured it.
#[test]
fn torchtitans_checkpointer_carries_every_hand_over_of_tiny_text() {
    let src = std::fs::read_to_string(root().join("pipelines/tiny_text.pipe")).unwrap();
    let c = check_with(&src, None);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Torchtitan,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = torchtitan::files(&p, &plan, &l, &Layout::default());
    pipelang_engine::olmo_core::write(dir.path(), &files).unwrap();
    let lines = launch_on_cpu(dir.path());
    hand_overs(&p, &plan, &l, &lines, &Default::default());
}

/// Every hand-over of `kimi_vl.pipe --profile smoke` through torchtitan's own checkpointer, its
/// 25 runs started by the exported launch.sh (`vit_coca` skipped, its ViT given as a
/// `torch.save` file): `vit_align` assembled from `text_pretrain`'s decoder, the given ViT and a
/// fresh projector; `joint_pretrain.p0` from `text_pretrain`'s decoder and AdamW state and
/// `vit_align`'s ViT and projector; every later run from the one before.
#[test]
fn torchtitans_checkpointer_carries_every_hand_over_of_kimi_vl_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let (l, _) = export_kimi_smoke(dir.path());
    let (p, plan) = kimi_smoke();
    let given = dir.path().join("given_vit.pt");
    python_in(
        dir.path(),
        &format!(
            "{BUILD}
import sys
sys.path.insert(0, {tests:?})
import pipelang_titan, titan_cpu_run
vit = {{k: v for k, v in build('pipelang_runs.r01_vit_align', 2).state_dict().items()
       if pipelang_titan.GROUPS['vit'](k)}}
torch.save(vit, 'given_vit.pt')
open('given.digest', 'w').write(titan_cpu_run.digest(vit.items()))
",
            tests = root()
                .join("crates/pipelang-engine/tests")
                .display()
                .to_string()
        ),
    );
    let digest = std::fs::read_to_string(dir.path().join("given.digest")).unwrap();
    let given = [(given.to_str().unwrap(), digest)].into_iter().collect();
    let lines = launch_on_cpu(dir.path());
    hand_overs(&p, &plan, &l, &lines, &given);
}
