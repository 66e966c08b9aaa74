//! Training throughput of the benchmark decoder (issue 6) through the model code the runtime
//! uses: forward, backward and AdamW, tokens/s as the median of timed steps after warm-up.
//!
//! `cargo bench --bench model_throughput -- [--kernels fused|reference|both] [--steps N] [--warmup N]`

use pipelang_runtime::model::{Kernels, bench};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or(default.to_string())
    };
    let steps: usize = value("--steps", "10")
        .parse()
        .expect("--steps takes a number");
    let warmup: usize = value("--warmup", "2")
        .parse()
        .expect("--warmup takes a number");
    let kernels = match value("--kernels", "fused").as_str() {
        "fused" => vec![Kernels::Fused],
        "reference" => vec![Kernels::Reference],
        "both" => vec![Kernels::Fused, Kernels::Reference],
        other => panic!("--kernels: {other} is not fused, reference or both"),
    };
    for k in kernels {
        let t = bench::measure(k, warmup, steps).expect("benchmark step failed");
        let ms: Vec<String> = t
            .step_seconds
            .iter()
            .map(|s| format!("{:.0}", s * 1e3))
            .collect();
        println!(
            "{k:?}: {:.0} tokens/s (median of {steps} steps after {warmup} warm-up; batch {} x seq {}; step ms: {})",
            t.median_tokens_per_s,
            bench::BATCH,
            bench::SEQ,
            ms.join(" ")
        );
    }
}
