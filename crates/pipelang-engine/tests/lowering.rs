//! Golden files of the lowering, and the rules it follows: weights and optimizer state across
//! runs, mixture pieces within the bound, vision stages reported at the stage.

use pipelang::check::check_with;
use pipelang_engine::runs::{Init, Lowering, Options};
use pipelang_engine::{lower, pieces};

fn lowered(file: &str, profile: Option<&str>, opts: &Options) -> (Lowering, pipelang::plan::Plan) {
    let path = format!("{}/../../pipelines/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).unwrap();
    let c = check_with(&src, profile);
    let plan = c.plan().cloned().expect("the recipe plans");
    (lower(c.pipeline.as_ref().unwrap(), &plan, opts), plan)
}

fn golden(l: &Lowering) -> String {
    let mut out = String::new();
    for u in &l.unmappable {
        out += &format!(
            "unmappable {}: [{}] {}\n  help: {}\n",
            u.stage,
            u.diagnostic.code.as_str(),
            u.diagnostic.message,
            u.diagnostic.help.as_deref().unwrap_or("")
        );
    }
    out + &serde_json::to_string_pretty(&l.runs).unwrap()
}

#[test]
fn kimi_vl_text_stages() {
    let (l, _) = lowered("kimi_vl.pipe", None, &Options::default());
    insta::assert_snapshot!("kimi_vl_full", golden(&l));
    let (l, _) = lowered("kimi_vl.pipe", Some("smoke"), &Options::default());
    insta::assert_snapshot!("kimi_vl_smoke", golden(&l));
    // Every vision stage is reported, none silently dropped: only text_pretrain lowers.
    let named: Vec<_> = l.unmappable.iter().map(|u| u.stage.as_str()).collect();
    assert_eq!(
        named,
        [
            "vit_coca",
            "vit_align",
            "joint_pretrain",
            "joint_cooldown",
            "joint_long_context"
        ]
    );
    assert!(l.runs.iter().all(|r| r.stage == "text_pretrain"));
}

#[test]
fn tiny_text() {
    let (l, _) = lowered("tiny_text.pipe", None, &Options::default());
    assert!(l.unmappable.is_empty());
    insta::assert_snapshot!("tiny_text", golden(&l));
}

#[test]
fn runs_cover_every_step_in_order_and_weights_flow() {
    let (l, plan) = lowered("tiny_text.pipe", None, &Options::default());
    let mut next = 0;
    for r in &l.runs {
        assert_eq!(r.global_first_step, next, "{}", r.name);
        next += r.steps;
    }
    assert_eq!(next, plan.total_steps);
    assert_eq!(l.runs[0].init, Init::Fresh);
    for w in l.runs.windows(2) {
        let Init::From { run, optimizer } = &w[1].init else {
            panic!("{} starts fresh", w[1].name)
        };
        assert_eq!(run, &w[0].name, "weights come from the run before");
        // The cooldown starts a new schedule (fresh AdamW); long_context resumes its schedule.
        let fresh = w[1].stage == "cooldown" && w[0].stage == "pretrain";
        assert_eq!(*optimizer, !fresh, "{}", w[1].name);
    }
}

#[test]
fn pieces_keep_every_share_within_the_bound_and_mean_the_plan() {
    let (l, plan) = lowered("tiny_text.pipe", None, &Options::default());
    let pre: Vec<_> = l.runs.iter().filter(|r| r.stage == "pretrain").collect();
    // hq ramps 10% -> 30% over 160 steps: 10 pieces of 16 steps, each within 1 point.
    assert_eq!(pre.len(), 10);
    for r in &l.runs {
        for k in 0..r.steps {
            let want = plan.mix_at(r.stage_index, r.first_step + k);
            for s in &r.mixture {
                let d = (want.as_raw()[s.index] - s.share).abs();
                assert!(
                    d <= pieces::MAX_ERROR + 1e-12,
                    "{} step {k} {}: {d}",
                    r.name,
                    s.source
                );
            }
        }
        let sum: f64 = r.mixture.iter().map(|s| s.share).sum();
        assert!((sum - 1.0).abs() < 1e-12, "{}: shares sum to {sum}", r.name);
    }
    // --ramp-pieces 2: two pieces, each with the mean of its 80 steps (10% + 20% x 39.5/159).
    let (l, _) = lowered(
        "tiny_text.pipe",
        None,
        &Options {
            ramp_pieces: Some(2),
            ..Options::default()
        },
    );
    let pre: Vec<_> = l.runs.iter().filter(|r| r.stage == "pretrain").collect();
    assert_eq!(pre.len(), 2);
    let hq = pre[0].mixture.iter().find(|s| s.source == "hq").unwrap();
    let want = 0.1 + 0.2 * 39.5 / 160.0;
    assert!((hq.share - want).abs() < 1e-12, "{} != {want}", hq.share);
}

#[test]
fn the_olmo_core_export_maps_kimi_vls_mixture_of_experts() {
    let path = format!(
        "{}/../../pipelines/kimi_vl.pipe",
        env!("CARGO_MANIFEST_DIR")
    );
    let src = std::fs::read_to_string(path).unwrap();
    let c = check_with(&src, None);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let l = lower(&p, &plan, &Options::default());
    let i = l
        .runs
        .iter()
        .position(|r| r.stage == "text_pretrain")
        .expect("text_pretrain is lowered");
    let cfg = pipelang_engine::olmo_core::config(&p, &l, i, &Default::default());
    assert_eq!(cfg["model"]["experts"], 64);
    assert_eq!(cfg["model"]["active_experts"], 6);
    assert_eq!(cfg["moe_balance_weight"], 0.01);
    // The vision stages stay refused, at their headers.
    assert!(l.unmappable.iter().all(|u| u.stage != "text_pretrain"));
}

/// A named mixture is a mixture: the runs of a recipe that uses `mix NAME` and a stage's
/// mixture relative to another's are those of the same recipe with the shares written out.
#[test]
fn named_mixtures_lower_as_if_written_out() {
    const HEAD: &str = r#"
pipeline t { seed = 1, batch = 8, seq_len = 32, sample_data = "../sample_data/kimi_vl" }
model lm = decoder { vocab = 512, d_model = 32, layers = 2, heads = 4 }
data web  = text("text/web/*.jsonl")
data hq   = text("text/hq/*.jsonl")
data long = text("text/long/*.jsonl")
"#;
    let named = format!(
        "{HEAD}
mix base {{ web = 80%, hq = rest }}
stage one {{ train = [lm], budget = 30_720, lr = constant(1e-3), mix = base }}
stage two after one {{ train = [lm], budget = 30_720, lr = constant(1e-3), mix = base }}
stage three after two {{
  train = [lm], budget = 30_720, lr = constant(1e-4)
  mix {{ long = 40%, two = rest }}
}}
"
    );
    let written = format!(
        "{HEAD}
stage one {{ train = [lm], budget = 30_720, lr = constant(1e-3), mix {{ web = 80%, hq = rest }} }}
stage two after one {{ train = [lm], budget = 30_720, lr = constant(1e-3), mix {{ web = 80%, hq = rest }} }}
stage three after two {{
  train = [lm], budget = 30_720, lr = constant(1e-4)
  mix {{ long = 40%, replay = rest {{ web = 80%, hq = rest }} }}
}}
"
    );
    let runs = |src: &str| {
        let c = check_with(src, None);
        assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
        let plan = c.plan().cloned().unwrap();
        let l = lower(c.pipeline.as_ref().unwrap(), &plan, &Options::default());
        assert!(l.unmappable.is_empty());
        serde_json::to_value(&l.runs).unwrap()
    };
    let (a, b) = (runs(&named), runs(&written));
    assert!(a.as_array().is_some_and(|r| r.len() == 3), "{a:#}");
    assert_eq!(a, b);
}

/// No pinned engine averages weights: a stage with `average` or `ema` is refused at the
/// field (P0901), never lowered as if it did not average.
#[test]
fn averaging_stages_are_refused_at_the_field() {
    for (field, text) in [("average", "average = last(10%)"), ("ema", "ema = 0.999")] {
        let src = format!(
            r#"
pipeline t {{ seed = 1, batch = 8, seq_len = 32 }}
model lm = decoder {{ vocab = 512, d_model = 32, layers = 2, heads = 4 }}
data web = text("text/web/*.jsonl")
stage one {{ train = [lm], budget = 30_720, lr = constant(1e-3), data = web }}
stage two after one {{ train = [lm], budget = 30_720, lr = constant(1e-4), data = web, {text} }}
"#
        );
        let c = check_with(&src, None);
        assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
        let plan = c.plan().cloned().unwrap();
        let l = lower(c.pipeline.as_ref().unwrap(), &plan, &Options::default());
        assert_eq!(l.unmappable.len(), 1, "{field}");
        let u = &l.unmappable[0];
        assert_eq!(u.stage, "two");
        assert_eq!(u.diagnostic.code.as_str(), "P0901");
        let at = src.find(text).unwrap() + text.find("= ").unwrap() + 2;
        assert!(
            u.diagnostic.labels.iter().any(|l| l.span.start == at),
            "{field}: {:#?}",
            u.diagnostic
        );
        assert!(l.runs.iter().all(|r| r.stage == "one"));
    }
}

/// tiny_text with `edit` applied: every engine refuses exactly `stage` with P0901, in a message
/// that says `says`, labelled at the text `at` (the construct itself).
fn refused_by_every_engine(edit: (&str, &str), stage: &str, says: &str, at: &str) {
    let path = format!(
        "{}/../../pipelines/tiny_text.pipe",
        env!("CARGO_MANIFEST_DIR")
    );
    let src = std::fs::read_to_string(path)
        .unwrap()
        .replace(edit.0, edit.1);
    assert!(src.contains(at), "the edit applies");
    let c = check_with(&src, None);
    let plan = c.plan().cloned().expect("the edited recipe plans");
    for target in [
        pipelang_engine::Target::OlmoCore,
        pipelang_engine::Target::Megatron,
        pipelang_engine::Target::Torchtitan,
    ] {
        let opts = Options {
            target,
            ..Options::default()
        };
        let l = lower(c.pipeline.as_ref().unwrap(), &plan, &opts);
        let refused: Vec<_> = l
            .unmappable
            .iter()
            .map(|u| (u.stage.as_str(), u.diagnostic.code.as_str()))
            .collect();
        assert_eq!(refused, [(stage, "P0901")], "{target:?}");
        let d = &l.unmappable[0].diagnostic;
        assert!(d.message.contains(says), "{}", d.message);
        let at = src.find(at).unwrap();
        assert!(
            d.labels.iter().any(|lb| lb.span.start == at),
            "{:?}",
            d.labels
        );
    }
}

#[test]
fn a_branch_point_is_refused_by_every_engine_at_the_branch() {
    refused_by_every_engine(
        (
            "stage cooldown after pretrain {",
            "stage cooldown after pretrain @ 80 steps {",
        ),
        "cooldown",
        "branches from `pretrain` after 80",
        "@ 80 steps",
    );
}

#[test]
fn a_model_with_init_is_refused_by_every_engine() {
    // Only the first stage starts from the file; the later ones take pretrain's weights.
    refused_by_every_engine(
        (
            "  rope_base = 10_000\n}",
            "  rope_base = 10_000\n  init      = \"base.safetensors\"\n}",
        ),
        "pretrain",
        "init = \"base.safetensors\"",
        "\"base.safetensors\"",
    );
}
