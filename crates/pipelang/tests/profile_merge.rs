//! How a profile's `stage NAME { ... }` block changes a stage: fields replace fields, a `mix`
//! replaces the whole mixture (and a `data` field replaces a `mix`, and the other way round),
//! a `phase NAME { ... }` merges into the phase of that name, field by field.

use pipelang::check::check_with;
use pipelang::plan::Plan;

const BASE: &str = r#"pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web  = text("web/*.jsonl")
data code = text("code/*.jsonl")
data math = text("math/*.jsonl")
stage pre {
  train  = [lm]
  budget = 1B
  lr     = constant(1e-4)
  mix { web = rest, code = ramp(10% -> 30%) }
  phase short { budget = 50%, seq_len = 1K }
  phase long  { budget = 50%, seq_len = 1K -> 4K }
}
"#;

fn planned(profile: &str) -> Plan {
    let src = format!("{BASE}profile p {{\n{profile}\n}}\n");
    let checked = check_with(&src, Some("p"));
    assert!(
        !checked.has_errors(),
        "{:#?}\n---\n{src}",
        checked.diagnostics
    );
    checked.into_plan().unwrap()
}

fn sources(p: &Plan) -> Vec<(String, f64)> {
    let s = p.stage("pre").unwrap();
    s.mix.end.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

#[test]
fn a_mix_replaces_the_whole_mixture() {
    let p = planned("  stage pre { mix { math = 60%, web = rest } }");
    assert_eq!(
        sources(&p),
        vec![("math".to_string(), 0.6), ("web".to_string(), 0.4)]
    );
}

#[test]
fn a_data_field_replaces_a_mix() {
    let p = planned("  stage pre { data = math }");
    assert_eq!(sources(&p), vec![("math".to_string(), 1.0)]);
}

#[test]
fn a_phase_merges_field_by_field() {
    let p = planned("  stage pre { phase long { seq_len = 1K -> 2K } }");
    let s = p.stage("pre").unwrap();
    assert_eq!(s.phases.len(), 2);
    assert_eq!(s.phases[1].name.as_deref(), Some("long"));
    assert_eq!(s.phases[1].seq_len, 2048);
    // The budget of the phase was not touched by the profile and still splits the stage.
    assert_eq!(s.phases[1].tokens, 0.5e9);
}

#[test]
fn data_root_and_sample_data_together_are_reported() {
    let src = format!("{BASE}profile p {{\n  data_root = \"/d\"\n  sample_data = \"s\"\n}}\n");
    let checked = check_with(&src, Some("p"));
    let codes: Vec<&str> = checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert!(codes.contains(&"P0102"), "{codes:?}");
}
