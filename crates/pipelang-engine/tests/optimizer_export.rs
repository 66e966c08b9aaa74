//! The recipe's optimizer reaches the engines: each run carries its stage's AdamW settings and
//! seed, the OLMo-core config and the Megatron flags state them, and a per-model LR factor
//! (which neither export lowers yet) is refused at the stage, not dropped.

use pipelang::check::check_with;
use pipelang_engine::parallel::Layout;
use pipelang_engine::runs::{Options, Target};
use pipelang_engine::{lower, megatron, olmo_core};

const SRC: &str = "pipeline t { seed = 3, batch = 4, seq_len = 1K, optimizer = adamw(beta1 = 0.85, beta2 = 0.99, eps = 1e-6, clip = 0.5) }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text(\"corpus/*.jsonl\")
stage pre {
  train  = [lm]
  budget = 100 steps
  data   = web
  lr     = constant(1e-4)
}
stage anneal after pre {
  train     = [lm]
  budget    = 50 steps
  data      = web
  lr        = linear(to = 0)
  seed      = 9
  optimizer = adamw(weight_decay = 0, clip = 0)
}
";

#[test]
fn every_run_carries_its_stages_optimizer_and_seed() {
    let c = check_with(SRC, None);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let l = lower(&p, &plan, &Options::default());
    assert!(l.unmappable.is_empty());
    let pre = l.runs.iter().find(|r| r.stage == "pre").unwrap();
    let anneal = l.runs.iter().find(|r| r.stage == "anneal").unwrap();
    let o = |r: &pipelang_engine::runs::EngineRun| {
        (
            r.optimizer.beta1,
            r.optimizer.beta2,
            r.optimizer.eps,
            r.optimizer.weight_decay,
            r.optimizer.clip_norm,
        )
    };
    assert_eq!(o(pre), (0.85, 0.99, 1e-6, 0.1, 0.5));
    assert_eq!(o(anneal), (0.85, 0.99, 1e-6, 0.0, 0.0));
    assert_eq!((pre.seed, anneal.seed), (3, 9));

    // OLMo-core: the driver's config (AdamWConfig betas/eps/weight_decay, max_grad_norm).
    let i = l.runs.iter().position(|r| r.stage == "anneal").unwrap();
    let cfg = olmo_core::config(&p, &l, i, &Default::default());
    assert_eq!(
        cfg["optimizer"],
        serde_json::json!({"beta1": 0.85, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.0, "clip_norm": 0.0})
    );
    assert_eq!(cfg["seed"], 9);

    // Megatron: the flags of each run's launch script.
    let opts = Options {
        target: Target::Megatron,
        ..Default::default()
    };
    let l = lower(&p, &plan, &opts);
    let x = megatron::export(&p, &plan, &l);
    let layout = Layout::default();
    let scripts: Vec<String> = megatron::files(&p, &plan, &l, &x, &layout)
        .into_iter()
        .filter(|(f, _)| f.extension().is_some_and(|e| e == "sh"))
        .map(|(_, t)| t)
        .collect();
    let pre = scripts
        .iter()
        .find(|t| t.contains("--adam-beta1 0.85") && t.contains("--weight-decay 0.1"))
        .expect("pre's script");
    for flag in [
        "--adam-beta2 0.99",
        "--adam-eps 1e-6",
        "--clip-grad 0.5",
        "--seed 3",
    ] {
        assert!(pre.contains(flag), "{flag} in\n{pre}");
    }
    let anneal = scripts
        .iter()
        .find(|t| t.contains("--weight-decay 0\n"))
        .expect("anneal's script");
    for flag in ["--clip-grad 0\n", "--seed 9"] {
        assert!(anneal.contains(flag), "{flag} in\n{anneal}");
    }
}

#[test]
fn a_per_model_lr_factor_is_refused_at_the_stage() {
    let src = SRC.replace(
        "  seed      = 9\n",
        "  seed      = 9\n  lr_scale { lm = 0.5 }\n",
    );
    let c = check_with(&src, None);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let l = lower(
        c.pipeline.as_ref().unwrap(),
        c.plan().unwrap(),
        &Options::default(),
    );
    assert_eq!(l.unmappable.len(), 1);
    assert_eq!(l.unmappable[0].stage, "anneal");
    assert!(
        l.unmappable[0].diagnostic.message.contains("lr_scale"),
        "{}",
        l.unmappable[0].diagnostic.message
    );
}
