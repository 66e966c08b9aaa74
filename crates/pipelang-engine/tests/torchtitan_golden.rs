//! Golden files of the torchtitan export: every run module and the launch script of the
//! reference recipe (its smoke profile, `vit_coca` skipped with its weights given) and of
//! tiny_text, with the diagnostics the export reports. The helper module and `plan.json` are
//! left out (the helper is a source file here; the plan has its own goldens).

use pipelang::check::check_with;
use pipelang_engine::parallel::Layout;
use pipelang_engine::runs::{Options, Skip, Target};
use pipelang_engine::torchtitan;

fn golden(file: &str, profile: Option<&str>, skip: Vec<Skip>, layout: &Layout) -> String {
    let path = format!("{}/../../pipelines/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).unwrap();
    let c = check_with(&src, profile);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let opts = Options {
        target: Target::Torchtitan,
        skip,
        ..Default::default()
    };
    let l = pipelang_engine::lower(&p, &plan, &opts);
    let (files, notes) = torchtitan::files(&p, &plan, &l, layout);
    let mut out = String::new();
    let refusals = torchtitan::refusals(&p, &plan, &l);
    for d in l
        .unmappable
        .iter()
        .chain(&refusals)
        .map(|u| &u.diagnostic)
        .chain(&l.notes)
        .chain(&notes)
        .chain(&pipelang_engine::parallel::check(&p, &plan, &l, layout))
    {
        let s = d.labels[0].span;
        out += &format!(
            "[{}] {} (at `{}`)\n",
            d.code.as_str(),
            d.message,
            &src[s.start..s.end].lines().next().unwrap_or("")
        );
    }
    for (f, text) in files {
        if f.extension().is_some_and(|e| e == "json") || f.ends_with("pipelang_titan.py") {
            continue;
        }
        out += &format!("\n==> {} <==\n{text}", f.display());
    }
    out
}

fn vit_coca() -> Vec<Skip> {
    vec![Skip {
        stage: "vit_coca".into(),
        weights: Some("/weights/vit_coca".into()),
    }]
}

#[test]
fn kimi_vl_smoke() {
    insta::assert_snapshot!(
        "torchtitan_kimi_vl_smoke",
        golden(
            "kimi_vl.pipe",
            Some("smoke"),
            vit_coca(),
            &Layout::default()
        )
    );
}

#[test]
fn kimi_vl_full_scale_on_64_nodes() {
    let layout = Layout {
        nodes: 64,
        gpus_per_node: 8,
        tp: 2,
        pp: 1,
        ep: 8,
        micro_batch: 2,
    };
    insta::assert_snapshot!(
        "torchtitan_kimi_vl_full",
        golden("kimi_vl.pipe", None, vit_coca(), &layout)
    );
}

#[test]
fn kimi_vl_without_the_weights_of_the_skipped_stage_is_refused_at_the_stage_that_needs_them() {
    let out = golden(
        "kimi_vl.pipe",
        None,
        vec![Skip {
            stage: "vit_coca".into(),
            weights: None,
        }],
        &Layout::default(),
    );
    assert!(
        out.starts_with(
            "[P0905] stage `vit_align` takes `vit` from the skipped stage `vit_coca`, whose \
             weights the export does not have (at `stage vit_align after vit_coca, text_pretrain `)"
        ),
        "{out}"
    );
}

#[test]
fn tiny_text() {
    insta::assert_snapshot!(
        "torchtitan_tiny_text",
        golden("tiny_text.pipe", None, vec![], &Layout::default())
    );
}
