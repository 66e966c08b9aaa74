//! The pages of P0902, P0903 and P0904 are executable against the export: the example's
//! first ```pipe block makes the export report the page's code, located in the recipe, and
//! the fix (the second block) exports without it.

use pipelang::check::check_with;
use pipelang_engine::megatron;
use pipelang_engine::parallel::{self, Layout};
use pipelang_engine::runs::{Options, Target};

fn blocks(code: &str) -> Vec<String> {
    let path = format!("{}/../../docs/errors/{code}.md", env!("CARGO_MANIFEST_DIR"));
    let md = std::fs::read_to_string(path).unwrap();
    md.split("```pipe\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// The codes the export reports for `src`, each with the text its primary label points at.
fn exported(src: &str, layout: &Layout) -> Vec<(String, String)> {
    let c = check_with(src, None);
    assert!(!c.has_errors(), "{:#?}", c.diagnostics);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Megatron,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let mut ds = parallel::check(&p, &plan, &l, layout);
    ds.extend(megatron::export(&p, &plan, &l).diagnostics);
    ds.iter()
        .map(|d| {
            let s = d.labels[0].span;
            (d.code.as_str().to_string(), src[s.start..s.end].to_string())
        })
        .collect()
}

#[test]
fn p0902_an_exponential_decay_is_refused_at_the_lr() {
    let b = blocks("P0902");
    let got = exported(&b[0], &Layout::default());
    assert!(
        got.iter()
            .any(|(c, at)| c == "P0902" && at.contains("exponential")),
        "{got:?}"
    );
    let fixed = exported(&b[1], &Layout::default());
    assert!(fixed.is_empty(), "{fixed:?}");
}

#[test]
fn p0903_rounded_positions_and_rope_base_are_warned_with_their_bound() {
    let b = blocks("P0903");
    let got = exported(&b[0], &Layout::default());
    assert!(
        got.iter()
            .any(|(c, at)| c == "P0903" && at.starts_with("cosine")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(c, at)| c == "P0903" && at == "10_000.5"),
        "{got:?}"
    );
    let fixed = exported(&b[1], &Layout::default());
    assert!(fixed.is_empty(), "{fixed:?}");
}

#[test]
fn p0904_layers_and_batch_that_do_not_divide_are_located() {
    let b = blocks("P0904");
    let layout = Layout {
        gpus_per_node: 8,
        pp: 2,
        ..Layout::default()
    };
    let got = exported(&b[0], &layout);
    assert!(got.contains(&("P0904".into(), "3".into())), "{got:?}");
    assert!(got.contains(&("P0904".into(), "6".into())), "{got:?}");
    let fixed = exported(&b[1], &layout);
    assert!(fixed.is_empty(), "{fixed:?}");
    // Heads by tensor size, experts by expert size.
    let src = "pipeline t { seed = 1, batch = 8, seq_len = 1K }\n\
               model lm = decoder { vocab = 512, d_model = 96, layers = 4, heads = 6, experts = 6, active_experts = 2 }\n\
               data web = text(\"corpus/*.jsonl\")\n\
               stage pre { train = [lm], budget = 1B, data = web, lr = cosine(peak = 1e-3, warmup = 1%, min = 1e-5) }\n";
    let layout = Layout {
        gpus_per_node: 8,
        tp: 4,
        ep: 4,
        ..Layout::default()
    };
    let got = exported(src, &layout);
    let codes: Vec<_> = got.iter().filter(|(c, _)| c == "P0904").collect();
    assert_eq!(codes.len(), 2, "{got:?}");
    // Key-value heads too: 8 query heads split by --tp 4, their 2 key-value heads do not.
    let gqa = "pipeline t { seed = 1, batch = 8, seq_len = 1K }\n\
               model lm = decoder { vocab = 512, d_model = 128, layers = 4, heads = 8, kv_heads = 2 }\n\
               data web = text(\"corpus/*.jsonl\")\n\
               stage pre { train = [lm], budget = 1B, data = web, lr = cosine(peak = 1e-3, warmup = 1%, min = 1e-5) }\n";
    let layout = Layout {
        gpus_per_node: 4,
        tp: 4,
        ..Layout::default()
    };
    let got: Vec<_> = exported(gqa, &layout)
        .into_iter()
        .filter(|(c, _)| c == "P0904")
        .collect();
    assert_eq!(got, [("P0904".to_string(), "2".to_string())]);
}

/// `--skip`: P0905's page against both vision engines. Its example skipped without a path is an
/// error at the stage that takes the skipped stage's ViT; with a path it is a warning there,
/// nothing else is refused, and the run's launch file names the path.
#[test]
fn p0905_a_skipped_stage_needs_its_weights_by_path_in_both_engines() {
    let src = &blocks("P0905")[0];
    let c = check_with(src, None);
    assert!(!c.has_errors(), "{:#?}", c.diagnostics);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    for target in [Target::Megatron, Target::Torchtitan] {
        let lower = |weights: Option<&str>| {
            let opts = Options {
                target,
                skip: vec![pipelang_engine::Skip {
                    stage: "coca".into(),
                    weights: weights.map(String::from),
                }],
                ..Default::default()
            };
            pipelang_engine::lower(&p, &plan, &opts)
        };
        let refused = lower(None);
        let codes: Vec<_> = refused
            .unmappable
            .iter()
            .map(|u| {
                let s = u.diagnostic.labels[0].span;
                (u.diagnostic.code.as_str(), &src[s.start..s.end])
            })
            .collect();
        assert_eq!(
            codes,
            [("P0905", "stage align after coca, pre ")],
            "{target:?}"
        );
        let l = lower(Some("/w/coca"));
        assert!(l.unmappable.is_empty(), "{target:?}: {:?}", l.unmappable);
        assert_eq!(l.notes.len(), 1);
        assert_eq!(l.notes[0].severity, pipelang::diag::Severity::Warning);
        assert!(l.runs.iter().all(|r| r.stage != "coca"));
        let align = l.runs.iter().find(|r| r.stage == "align").unwrap();
        assert_eq!(align.given.len(), 1);
        assert_eq!(align.given[0].model, "vit");
        let text = match target {
            Target::Megatron => {
                let x = megatron::export(&p, &plan, &l);
                assert!(!x.refused(), "{:?}", x.diagnostics);
                megatron::files(&p, &plan, &l, &x, &Layout::default())
            }
            _ => pipelang_engine::torchtitan::files(&p, &plan, &l, &Layout::default()).0,
        };
        let named = text
            .iter()
            .filter(|(f, t)| f.to_string_lossy().contains("align") && t.contains("/w/coca"))
            .count()
            + text
                .iter()
                .filter(|(f, t)| f.ends_with("launch.sh") && t.contains("vit=\"/w/coca\""))
                .count();
        assert!(
            named >= 1,
            "{target:?}: no launch file names the given weights"
        );
    }
}
