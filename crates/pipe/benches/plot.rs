//! `cargo bench -p pipe --bench plot`: drawing the reference recipe's plan (PNG and SVG).
//! The language benchmarks (parse, check, plan, --at) are in crates/pipelang/benches.

use std::time::{Duration, Instant};

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    f();
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines/kimi_vl.pipe");
    let reference = std::fs::read_to_string(path).expect("the reference recipe");
    let plan = pipelang::check::check(&reference)
        .into_plan()
        .expect("it plans");
    for ext in ["png", "svg"] {
        let out = std::env::temp_dir().join(format!("pipelang-bench-plot.{ext}"));
        let t = median(|| pipe::plot::plan::plot(&plan, &out).unwrap(), 5);
        println!(
            "plot ({ext})                {:>10.2} ms",
            t.as_secs_f64() * 1e3
        );
    }
}
