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
    let src = std::fs::read_to_string(root().join("pipelines/kimi_vl.pipe")).unwrap();
    let c = check_with(&src, Some("smoke"));
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
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

/// The Python the launch tests start with: a run module's model built and initialised on CPU
/// as torchtitan does, with a seed (and its config, for the optimizer).
const BUILD: &str = "
import importlib, torch
import torch.distributed.checkpoint as dcp
def build_with_config(mod, seed):
    cfg = importlib.import_module(mod).config()
    torch.manual_seed(seed)
    m = cfg.model_spec.model.build()
    m.init_weights(buffer_device=None)
    return cfg, m
def build(mod, seed):
    return build_with_config(mod, seed)[1]
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

/// Runs the exported `launch.sh` in `dir` up to (not including) the `run` line of `run_dir`,
/// and gives the part that ran.
fn launch_up_to(dir: &std::path::Path, run_dir: &str) -> String {
    let launch = std::fs::read_to_string(dir.join("launch.sh")).unwrap();
    let stop = launch
        .find(&format!("\nrun {run_dir} "))
        .unwrap_or_else(|| panic!("no run line for {run_dir}"));
    let upto = &launch[..stop + 1];
    std::fs::write(dir.join("upto.sh"), upto).unwrap();
    let run = Command::new("bash")
        .arg(dir.join("upto.sh"))
        .env("PYTHON", python())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "launch.sh up to {run_dir}:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    upto.to_string()
}

/// The hand-over of `vit_align` (decoder from `text_pretrain`, ViT from the skipped `vit_coca`,
/// a fresh projector) as launch.sh does it: a DCP checkpoint in `text_pretrain`'s final place,
/// the given ViT as a `torch.save` file, launch.sh run up to `vit_align` (`text_pretrain` marked
/// done), then the assembled checkpoint loaded into `vit_align`'s model with DCP's strict load,
/// as torchtitan's model-only initial load does: every group holds its source's tensors.
#[test]
fn launch_sh_assembles_vit_align_from_text_pretrain_the_given_vit_and_a_fresh_projector() {
    let dir = tempfile::tempdir().unwrap();
    let (l, _) = export_kimi_smoke(dir.path());
    let py = |code: &str| python_in(dir.path(), code);
    py(&format!(
        "{BUILD}
text = build('pipelang_runs.r00_text_pretrain', 1)
dcp.save(text.state_dict(), checkpoint_id='runs/00-text_pretrain/checkpoint/step-{}')
vis = build('pipelang_runs.r01_vit_align', 2)
torch.save({{k: v for k, v in vis.state_dict().items()
            if k.startswith('vision_encoder.') and not k.startswith('vision_encoder.projector.')}},
           'given_vit.pt')
open('runs/00-text_pretrain/DONE', 'w').close()
",
        l.runs[0].steps
    ));
    launch_up_to(dir.path(), "runs/01-vit_align");
    py(&format!(
        "{BUILD}
text = build('pipelang_runs.r00_text_pretrain', 1).state_dict()
vis = build('pipelang_runs.r01_vit_align', 2).state_dict()
fresh = build('pipelang_runs.r01_vit_align', 2025).state_dict()
target = build('pipelang_runs.r01_vit_align', 3)
sd = target.state_dict()
dcp.load(sd, checkpoint_id='runs/01-vit_align/initial')
groups = {{'decoder': 0, 'vit': 0, 'projector': 0}}
for k, v in sd.items():
    if k.startswith('vision_encoder.projector.'):
        want, g = fresh[k], 'projector'
    elif k.startswith('vision_encoder.'):
        want, g = vis[k], 'vit'
    else:
        want, g = text[k], 'decoder'
    assert torch.equal(v, want), k
    groups[g] += 1
assert all(groups.values()), groups
"
    ));
}

/// The hand-over of `joint_pretrain.p0`: its decoder and the decoder's AdamW state from
/// `text_pretrain` (the plan resumes that schedule), its ViT and projector from `vit_align`.
/// `text_pretrain`'s final checkpoint is written as torchtitan's checkpointer writes one
/// (flattened model state + its `OptimizersContainer`, after three real AdamW steps), launch.sh
/// is run up to `joint_pretrain.p0`, and the assembled checkpoint is loaded into that run's
/// model and optimizer container with DCP, as torchtitan's initial load does: the decoder's
/// moments and step are `text_pretrain`'s, the vision groups' moments are zero on the same
/// step count (as `pipe run` continues an optimizer to which a stage adds models).
#[test]
fn launch_sh_carries_the_decoders_adamw_state_into_joint_pretrain() {
    let dir = tempfile::tempdir().unwrap();
    let (l, notes) = export_kimi_smoke(dir.path());
    let joint = l
        .runs
        .iter()
        .position(|r| r.name == "joint_pretrain.p0")
        .unwrap();
    assert!(matches!(
        &l.runs[joint].init,
        Init::From { run, optimizer: true } if run == "text_pretrain"
    ));
    assert!(
        notes.iter().all(|d| !d.message.contains("AdamW")),
        "{:?}",
        notes
    );
    let py = |code: &str| python_in(dir.path(), code);
    py(&format!(
        "{BUILD}
cfg, text = build_with_config('pipelang_runs.r00_text_pretrain', 1)
opt = cfg.optimizer.build(model_parts=[text])
for _ in range(3):
    for p in text.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
dcp.save({{**text.state_dict(), 'optimizer': opt}},
         checkpoint_id='runs/00-text_pretrain/checkpoint/step-{}')
torch.save({{k: v.clone() for k, v in text.state_dict().items()}}, 'text_model.pt')
torch.save({{k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state_dict().items()}}, 'text_optim.pt')
vis = build('pipelang_runs.r01_vit_align', 2)
dcp.save(vis.state_dict(), checkpoint_id='runs/01-vit_align/checkpoint/step-{}')
torch.save(vis.state_dict(), 'vis_model.pt')
for r in ('00-text_pretrain', '01-vit_align'):
    open(f'runs/{{r}}/DONE', 'w').close()
",
        l.runs[0].steps,
        l.runs[1].steps
    ));
    let launch = launch_up_to(dir.path(), "runs/02-joint_pretrain.p0");
    assert!(
        launch.contains("pipelang_runs.r02_joint_pretrain_p0 --optimizer"),
        "{launch}"
    );
    py(&format!(
        "{BUILD}
text = torch.load('text_model.pt')
text_opt = torch.load('text_optim.pt')
vis = torch.load('vis_model.pt')
cfg, joint = build_with_config('pipelang_runs.r02_joint_pretrain_p0', 3)
opt = cfg.optimizer.build(model_parts=[joint])
sd = joint.state_dict()
dcp.load({{**sd, 'optimizer': opt}}, checkpoint_id='runs/02-joint_pretrain.p0/initial')
for k, v in sd.items():
    want = vis[k] if k.startswith('vision_encoder.') else text[k]
    assert torch.equal(v, want), k
got = opt.state_dict()
seen = {{'decoder': 0, 'vision': 0}}
for k, v in got.items():
    if not k.startswith('state.'):
        continue
    fqn, name = k[len('state.'):].rsplit('.', 1)
    if name == 'step':
        assert v.item() == 3, (k, v)
    elif fqn.startswith('vision_encoder.'):
        assert not v.any(), k
        seen['vision'] += 1
    else:
        assert torch.equal(v, text_opt[k]) and v.any(), k
        seen['decoder'] += 1
assert all(seen.values()), seen
assert {{k for k in got if k.startswith('state.') and not k.startswith('state.vision_encoder.')}} \
    == {{k for k in text_opt if k.startswith('state.')}}
"
    ));
}
