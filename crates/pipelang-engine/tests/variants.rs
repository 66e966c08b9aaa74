//! Variants lower to runs of their own (one per seed, folders without brackets); a soup is
//! refused with P0901 at its header, never dropped.

use pipelang::check::check;
use pipelang_engine::runs::{Options, lower};

const SRC: &str = r#"
pipeline t { seed = 1, batch = 2, seq_len = 64 }
model lm = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage pre { train = [lm], budget = 6 steps, lr = constant(1e-3), data = web }
stage mid after pre vary seed = [1, 2] { train = [lm], budget = 4 steps, lr = constant(1e-4), data = web }
stage soup = average(mid)
"#;

#[test]
fn variants_are_separate_runs_and_a_soup_is_refused_at_its_header() {
    let c = check(SRC);
    let (p, plan) = (c.pipeline.clone().unwrap(), c.into_plan().unwrap());
    let l = lower(&p, &plan, &Options::default());
    let names: Vec<(&str, &str)> = l
        .runs
        .iter()
        .map(|r| (r.name.as_str(), r.stage.as_str()))
        .collect();
    assert_eq!(
        names,
        [("pre", "pre"), ("mid-1", "mid[1]"), ("mid-2", "mid[2]")]
    );
    for r in &l.runs[1..] {
        assert_eq!(r.steps, 4);
    }
    assert_eq!(l.unmappable.len(), 1);
    let u = &l.unmappable[0];
    assert_eq!(u.stage, "soup");
    assert_eq!(u.diagnostic.code.as_str(), "P0901");
    assert!(
        u.diagnostic
            .message
            .contains("soup, the average of mid[1], mid[2]"),
        "{}",
        u.diagnostic.message
    );
    let at = u.diagnostic.primary_span();
    assert!(SRC[at.start..at.end].starts_with("stage soup = average(mid)"));
}
