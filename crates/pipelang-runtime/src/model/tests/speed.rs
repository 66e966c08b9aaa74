//! Throughput of the benchmark model (not a correctness test: run it by hand, optimised).
//!
//! `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test --lib runtime::model::tests::speed -- --ignored --nocapture`

use crate::model::{Kernels, bench};

#[test]
#[ignore = "benchmark: minutes, run by hand with an optimised build"]
fn bench_model_throughput() {
    let steps: usize = std::env::var("BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let kernels = match std::env::var("BENCH_KERNELS").as_deref() {
        Ok("fused") => vec![Kernels::Fused],
        Ok("reference") => vec![Kernels::Reference],
        _ => vec![Kernels::Fused, Kernels::Reference],
    };
    for k in kernels {
        let t = bench::measure(k, 2, steps).unwrap();
        let ms: Vec<String> = t
            .step_seconds
            .iter()
            .map(|s| format!("{:.0}", s * 1e3))
            .collect();
        println!(
            "{k:?}: {:.0} tokens/s (step ms {})",
            t.median_tokens_per_s,
            ms.join(" ")
        );
    }
}
