//! Benchmarks of the language side (not timed tests): check a generated 100k-line pipeline (and
//! plan it) and the reference in-process, plan and summarise the reference, one `--at` query (and two in
//! DeepSeek-V3's 15,000-step batch ramp), one plot, and the rendering of a thousand-odd
//! diagnostics of the 100k-line file.
//! Run: `cargo bench --bench language`. Each figure is the median of repeated runs.

use std::fmt::Write;

// The allocator of the `pipe` binary, so the figures are what `pipe check` gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
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

/// A long chain of stages in the style of the reference, about `lines` lines.
fn generated(lines: usize) -> String {
    let mut s = String::from("pipeline big {\n  seed = 1\n  batch = 512\n  seq_len = 8K\n}\n\n");
    s.push_str("model llm = decoder {\n  vocab = 32_000\n  d_model = 1024\n  layers = 16\n  heads = 16\n  rope_base = 10_000\n}\n\n");
    for d in 0..20 {
        let _ = writeln!(s, "data src{d} = text(\"corpus/{d}/*.jsonl\")");
    }
    s.push_str("schedule main = wsd(peak = 3e-4, warmup = 1%, decay = 10%, min = 3e-5)\n\n");
    let mut i = 0;
    // Counted as written (each stage is 15 lines), not by recounting the text each time.
    let mut count = s.lines().count();
    while count < lines {
        let after = if i == 0 {
            String::new()
        } else {
            format!(" after s{}", i - 1)
        };
        let lr = if i == 0 { "main" } else { "resume" };
        let _ = write!(
            s,
            "// stage {i}\nstage s{i}{after} {{\n  train  = [llm]\n  budget = 100B\n  lr     = {lr}\n  mix {{\n    src{a} = rest\n    src{b} = ramp(10% -> 30%)\n    group = 20% {{\n      src{c} = 50%\n      src{d} = 50%\n    }}\n  }}\n}}\n\n",
            a = i % 20,
            b = (i + 1) % 20,
            c = (i + 2) % 20,
            d = (i + 3) % 20,
        );
        i += 1;
        count += 15;
    }
    s
}

fn main() {
    let reference = std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap();
    let big = generated(100_000);
    let checked = pipelang::check::check(&big);
    assert!(
        !checked.has_errors(),
        "the generated pipeline must be valid"
    );
    println!(
        "generated pipeline: {} lines, {} stages",
        big.lines().count(),
        checked.pipeline.as_ref().unwrap().stages.len()
    );

    let t = median(|| drop(pipelang::syntax::parse(&big)), 7);
    println!(
        "parse 100k lines          {:>10.2} ms",
        t.as_secs_f64() * 1e3
    );
    let t = median(|| drop(pipelang::check::check(&big)), 7);
    println!(
        "check 100k lines          {:>10.2} ms",
        t.as_secs_f64() * 1e3
    );
    // What the language server and `pipe plan` pay: the plan is resolved on demand.
    let t = median(|| drop(pipelang::check::check(&big).into_plan()), 7);
    println!(
        "check + plan 100k lines   {:>10.2} ms",
        t.as_secs_f64() * 1e3
    );
    let t = median(|| drop(pipelang::check::check(&reference)), 51);
    println!(
        "check reference           {:>10.3} ms",
        t.as_secs_f64() * 1e3
    );
    let t = median(
        || {
            let c = pipelang::check::check(&reference);
            let _ = pipelang::plan::table::render(c.plan().unwrap());
        },
        51,
    );
    println!(
        "check + plan + table ref  {:>10.3} ms",
        t.as_secs_f64() * 1e3
    );
    // A file with many mistakes: a misspelt field in every 7th stage (about 950 stages, two
    // diagnostics each), rendered as `pipe check` prints them.
    let mut n = 0;
    let broken: String = big
        .split_inclusive('\n')
        .map(|l| {
            let budget = l.starts_with("  budget = ");
            n += usize::from(budget);
            match budget && n % 7 == 0 {
                true => l.replacen("budget", "budgte", 1),
                false => l.to_string(),
            }
        })
        .collect();
    let diags = pipelang::check::check(&broken).diagnostics;
    let t = median(
        || {
            drop(pipelang::diag::render_human_plain(
                &diags, "big.pipe", &broken,
            ))
        },
        7,
    );
    println!(
        "render {:>5} diagnostics  {:>10.2} ms",
        diags.len(),
        t.as_secs_f64() * 1e3
    );

    let plan = pipelang::check::check(&reference).into_plan().unwrap();
    let q: pipelang::plan::PointQuery = "joint_pretrain@50%".parse().unwrap();
    let n = 100_000;
    let s = Instant::now();
    for _ in 0..n {
        std::hint::black_box(plan.query(std::hint::black_box(&q)).unwrap());
    }
    println!(
        "one --at query            {:>10.3} us",
        s.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    // DeepSeek-V3's batch ramp: about 15,000 steps of changing batch, one run per batch value.
    let deepseek = std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/deepseek_v3.pipe"
    ))
    .unwrap();
    let plan = pipelang::check::check(&deepseek).into_plan().unwrap();
    for (name, at) in [("step", "pretrain@7500"), ("tokens", "pretrain@200B")] {
        let q: pipelang::plan::PointQuery = at.parse().unwrap();
        let s = Instant::now();
        for _ in 0..n {
            std::hint::black_box(plan.query(std::hint::black_box(&q)).unwrap());
        }
        println!(
            "--at in a batch ramp ({name:<6}) {:>6.3} us",
            s.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
