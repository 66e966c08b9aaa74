//! Weight averaging along a stage (`average = last(D)`, `ema`) in the plan: the steps a window
//! covers, computed here by hand from the recipe's numbers.

use pipelang::check::check_with;
use pipelang::plan::{Plan, StageAverage};

fn plan(src: &str) -> Plan {
    let c = check_with(src, None);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    c.into_plan().expect("plans")
}

/// Llama 3 (§3.1.3 "Annealing"): the last 40M tokens anneal the LR to 0 and the checkpoints of
/// the anneal are averaged (Polyak averaging); here 4 x 1,024 = 4,096 tokens per step.
fn llama3_like(window: &str) -> String {
    format!(
        r#"
pipeline t {{ seed = 1, batch = 4, seq_len = 1K }}
model lm = decoder {{ vocab = 512, d_model = 64, layers = 2, heads = 4 }}
data web = text("web/*.jsonl")
data hq  = text("hq/*.jsonl")
stage pretrain {{ train = [lm], budget = 400M, lr = cosine(peak = 3e-4, warmup = 1%, min = 3e-5), data = web }}
stage anneal after pretrain {{
  train   = [lm]
  budget  = 40M
  lr      = linear(to = 0)
  data    = hq
  average = {window}
}}
"#
    )
}

fn average(p: &Plan, stage: &str) -> Option<StageAverage> {
    p.stage(stage).unwrap().averaging
}

#[test]
fn a_llama3_like_anneal_averages_every_step_of_its_window() {
    // ceil(40e6 / 4096) = 9,766 steps; the whole anneal: every step starts in it.
    let p = plan(&llama3_like("last(40M)"));
    assert_eq!(p.stage("anneal").unwrap().steps, 9766);
    assert_eq!(
        average(&p, "anneal"),
        Some(StageAverage::Last {
            first_step: 0,
            steps: 9766
        })
    );
    assert_eq!(average(&p, "pretrain"), None);
    // The last 10%: steps starting at or after token 36M: ceil(36e6 / 4096) = 8,790.
    let p = plan(&llama3_like("last(10%)"));
    assert_eq!(
        average(&p, "anneal"),
        Some(StageAverage::Last {
            first_step: 8790,
            steps: 976
        })
    );
    // In steps, and a window of one step's tokens: the last step starts at 9,765 x 4,096 =
    // 39,997,440, after 40M - 4,096.
    let p = plan(&llama3_like("last(100 steps)"));
    assert_eq!(
        average(&p, "anneal"),
        Some(StageAverage::Last {
            first_step: 9666,
            steps: 100
        })
    );
    let p = plan(&llama3_like("last(4096)"));
    assert_eq!(
        average(&p, "anneal"),
        Some(StageAverage::Last {
            first_step: 9765,
            steps: 1
        })
    );
    let table = pipelang::plan::table::render(&p);
    assert!(
        table.contains("average anneal: hands on the mean of the weights after its last 1 steps (steps 9,765..=9,765)"),
        "{table}"
    );
}

#[test]
fn a_window_across_phases_counts_each_phases_steps() {
    // ctx_1k: 4,096,000 tokens in 1,000 steps of 4,096; ctx_2k: 4,096,000 in 500 of 8,192.
    // The last 6M start at token 2,192,000: ceil(2,192,000 / 4,096) = 536, so 1,500 - 536.
    let p = plan(
        r#"
pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web = text("web/*.jsonl")
stage s {
  train   = [lm]
  budget  = 8_192_000
  lr      = constant(1e-4)
  data    = web
  average = last(6M)
  phase ctx_1k { budget = 50% }
  phase ctx_2k { budget = rest, seq_len = 1K -> 2K }
}
"#,
    );
    assert_eq!(p.stage("s").unwrap().steps, 1500);
    assert_eq!(
        average(&p, "s"),
        Some(StageAverage::Last {
            first_step: 536,
            steps: 964
        })
    );
}

#[test]
fn ema_is_planned_with_its_decay_and_shows_in_the_table() {
    let p = plan(&llama3_like("last(40M)").replace("average = last(40M)", "ema     = 0.999"));
    assert_eq!(
        average(&p, "anneal"),
        Some(StageAverage::Ema { decay: 0.999 })
    );
    let table = pipelang::plan::table::render(&p);
    assert!(
        table.contains(
            "average anneal: hands on an exponential moving average of its weights, decay 0.999 per step"
        ),
        "{table}"
    );
}

#[test]
fn scale_tokens_scales_a_window_in_tokens() {
    // At 1/100: the anneal is 400K tokens, ceil(400,000 / 4,096) = 98 steps; the window of
    // 40M scales to 400K as well: every step.
    let src = llama3_like("last(40M)") + "profile smoke { scale tokens by 1/100 }\n";
    let c = check_with(&src, Some("smoke"));
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let p = c.into_plan().unwrap();
    assert_eq!(p.stage("anneal").unwrap().steps, 98);
    assert_eq!(
        average(&p, "anneal"),
        Some(StageAverage::Last {
            first_step: 0,
            steps: 98
        })
    );
}
