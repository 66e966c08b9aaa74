//! Named and relative mixtures through the planner, profiles, `pipe fmt` and hot reload. Every
//! expected share is computed here by hand from the shares written, not by the code.

use std::collections::BTreeMap;

use pipelang::check::check_with;
use pipelang::plan::Plan;
use pipelang::reload::{Outcome, Progress, evaluate};

const RECIPE: &str = r#"
pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web   = text("web/*.jsonl")
data code  = text("code/*.jsonl")
data math  = text("math/*.jsonl")
data books = text("books/*.jsonl")

// Used by two stages.
mix base { web = 70%, code = rest }
// A ramp in a named mixture runs over the stage that uses it.
mix anneal_mix { math = ramp(10% -> 30%), base = rest }

stage stage1 { train = [lm], budget = 4M, lr = constant(1e-4), mix = base }
stage stage2 after stage1 { train = [lm], budget = 4M, lr = constant(1e-4), mix = base }
stage anneal after stage2 { train = [lm], budget = 4M, lr = constant(1e-5), mix = anneal_mix }
// Relative to another stage's mixture: 40% books, the rest stage2's shares scaled to 60%.
stage long after stage2 {
  train  = [lm]
  budget = 4M
  lr     = constant(1e-5)
  mix    { books = 40%, stage2 = rest }
}

profile smoke {
  scale tokens by 1/1000
  mix base { web = 50%, code = 50% }
}
"#;

fn plan(src: &str, profile: Option<&str>) -> Plan {
    let c = check_with(src, profile);
    assert!(!c.has_errors(), "{:#?}", c.diagnostics);
    assert!(
        c.diagnostics.is_empty(),
        "no warnings expected: {:#?}",
        c.diagnostics
    );
    c.into_plan().expect("plans")
}

fn close(a: &BTreeMap<String, f64>, b: &[(&str, f64)]) {
    assert_eq!(
        a.keys().map(String::as_str).collect::<Vec<_>>(),
        b.iter().map(|x| x.0).collect::<Vec<_>>(),
        "{a:?}"
    );
    for (k, v) in b {
        assert!((a[*k] - v).abs() < 1e-12, "{k}: {} != {v} in {a:?}", a[*k]);
    }
}

#[test]
fn a_named_mixture_used_by_two_stages() {
    let p = plan(RECIPE, None);
    for st in ["stage1", "stage2"] {
        let m = &p.stage(st).unwrap().mix;
        close(&m.start, &[("code", 0.3), ("web", 0.7)]);
        close(&m.end, &[("code", 0.3), ("web", 0.7)]);
    }
}

#[test]
fn a_relative_mixture_scales_the_other_down() {
    let p = plan(RECIPE, None);
    let m = &p.stage("long").unwrap().mix;
    // books 40%; web 60% x 70% = 42%; code 60% x 30% = 18%.
    close(&m.start, &[("books", 0.4), ("code", 0.18), ("web", 0.42)]);
    close(&m.end, &[("books", 0.4), ("code", 0.18), ("web", 0.42)]);
}

#[test]
fn a_ramp_in_a_named_mixture_runs_over_the_stage_that_uses_it() {
    let p = plan(RECIPE, None);
    let m = &p.stage("anneal").unwrap().mix;
    // Start: math 10%, base 90% (web 63%, code 27%); end: math 30%, base 70%.
    close(&m.start, &[("code", 0.27), ("math", 0.1), ("web", 0.63)]);
    close(&m.end, &[("code", 0.21), ("math", 0.3), ("web", 0.49)]);
    // Half-way through the stage, at the token position where the step starts.
    let si = p.stage_index("anneal").unwrap();
    let st = p.stage("anneal").unwrap();
    let k = st.steps / 2;
    let f = (k * 4 * 1024) as f64 / 4e6;
    let math = 0.1 + 0.2 * f;
    let at = p.step(si, k).mix;
    close(
        &at,
        &[
            ("code", (1.0 - math) * 0.3),
            ("math", math),
            ("web", (1.0 - math) * 0.7),
        ],
    );
}

#[test]
fn a_profile_replaces_a_named_mixture_for_every_stage_that_uses_it() {
    let p = plan(RECIPE, Some("smoke"));
    for st in ["stage1", "stage2"] {
        close(
            &p.stage(st).unwrap().mix.end,
            &[("code", 0.5), ("web", 0.5)],
        );
    }
    // And for the stage relative to stage2.
    close(
        &p.stage("long").unwrap().mix.end,
        &[("books", 0.4), ("code", 0.3), ("web", 0.3)],
    );
}

#[test]
fn a_profile_stage_with_mix_name_replaces_its_own_mixture() {
    let src = RECIPE.replace(
        "  mix base { web = 50%, code = 50% }",
        "  stage long { mix = base }",
    );
    let p = plan(&src, Some("smoke"));
    close(
        &p.stage("long").unwrap().mix.end,
        &[("code", 0.3), ("web", 0.7)],
    );
}

#[test]
fn fmt_keeps_named_mixtures_and_is_stable() {
    let once = pipelang::fmt::format(RECIPE).expect("formats");
    assert!(
        once.contains("mix base { web = 70%, code = rest }"),
        "{once}"
    );
    assert_eq!(pipelang::fmt::format(&once).unwrap(), once);
    let (a, b) = (plan(RECIPE, None), plan(&once, None));
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn both_parsers_read_mix_items_alike() {
    let fast = pipelang::syntax::parse_fast(RECIPE).expect("the fast path takes it");
    let slow = pipelang::syntax::parse_recovering(RECIPE);
    assert!(slow.errors.is_empty());
    assert_eq!(format!("{:?}", fast.items), format!("{:?}", slow.items));
    let kinds: Vec<&str> = fast.items.iter().map(|i| i.keyword()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "mix").count(), 2);
    // `mix {` at column 0 inside a stage is the stage's own mixture, not an item.
    let src = "pipeline t { seed = 1, batch = 4, seq_len = 1K }\n\
               model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }\n\
               data web = text(\"w/*.jsonl\")\n\
               stage s { train = [lm], budget = 4M, lr = constant(1e-4)\n\
               mix { web = 100% }\n}\n";
    let c = check_with(src, None);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

fn reload(new: &str, progress: &Progress) -> Outcome {
    let c = check_with(RECIPE, None);
    evaluate(
        c.plan().unwrap(),
        c.pipeline.as_ref().unwrap(),
        progress,
        new,
        None,
    )
}

#[test]
fn editing_a_named_mixture_is_editing_the_mixture_of_every_stage_using_it() {
    let edited = RECIPE.replace(
        "mix base { web = 70%, code = rest }",
        "mix base { web = 60%, code = rest }",
    );
    // stage1 has started: its mixture would change under it.
    let started = Progress {
        done: vec![],
        running: Some("stage1".into()),
    };
    match reload(&edited, &started) {
        Outcome::Rejected(d) => {
            assert!(d.iter().all(|d| d.code.as_str() == "P0801"), "{d:#?}");
            let text = format!("{d:?}");
            assert!(text.contains("stage1") && text.contains("mix"), "{text}");
        }
        Outcome::Accepted(a) => panic!("accepted: {:?}", a.changes),
    }
    // Nothing started: every stage using `base` (and `long`, relative to stage2) changes.
    match reload(&edited, &Progress::default()) {
        Outcome::Accepted(a) => {
            let changed: Vec<&str> = a
                .changes
                .iter()
                .map(|c| c.split(':').next().unwrap())
                .collect();
            assert_eq!(
                changed,
                ["stage1", "stage2", "anneal", "long"],
                "{:?}",
                a.changes
            );
        }
        Outcome::Rejected(d) => panic!("{d:#?}"),
    }
    // A mixture only later stages use can change once stage1 runs.
    let edited = RECIPE.replace("ramp(10% -> 30%)", "ramp(10% -> 40%)");
    match reload(&edited, &started) {
        Outcome::Accepted(a) => {
            assert_eq!(a.changes.len(), 1, "{:?}", a.changes);
            assert!(a.changes[0].starts_with("anneal"), "{:?}", a.changes);
        }
        Outcome::Rejected(d) => panic!("{d:#?}"),
    }
}
