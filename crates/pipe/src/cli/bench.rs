//! `pipe bench`: training throughput of the runtime on the benchmark model
//! (`bench/throughput.pipe`), through exactly the code `pipe run` uses: the pipeline is checked,
//! planned and run, and tokens/s come from its own metrics. Prints a `RESULT` line that
//! `bench/compare.sh` reads.

use std::process::ExitCode;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::EXIT_USAGE;
use pipelang_runtime::{RunOptions, Runner};

const PIPELINE: &str = include_str!("../../../../bench/throughput.pipe");
const TOKENS_PER_STEP: f64 = 16.0 * 256.0;

/// Median GFLOP/s of a 512^3 fp32 matmul: on the CPU through the packed kernel the fused ops
/// use (the fastest this build has, as torch_reference.py measures torch's own), on a GPU
/// through candle (cuBLAS).
fn sgemm_gflops(dev: &Device) -> candle_core::Result<f64> {
    const N: usize = 512;
    let mut t = vec![];
    if dev.is_cpu() {
        let a: Vec<f32> = (0..N * N).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut c = vec![0f32; N * N];
        for _ in 0..50 {
            let s = Instant::now();
            pipelang_runtime::model::kernels::matmul_f32(N, N, N, &a, &a, &mut c);
            std::hint::black_box(&c);
            t.push(s.elapsed().as_secs_f64());
        }
    } else {
        let a = Tensor::randn(0f32, 1.0, (N, N), dev)?;
        for _ in 0..50 {
            let s = Instant::now();
            let c = a.matmul(&a)?;
            std::hint::black_box(c.sum_all()?.to_scalar::<f32>()?);
            t.push(s.elapsed().as_secs_f64());
        }
    }
    let t = sorted(t);
    Ok(2.0 * (N as f64).powi(3) / t[t.len() / 2] / 1e9)
}

/// Model FLOPs per step, the formula of `bench/torch_reference.py`: 6 N T for the
/// non-embedding parameters plus causal attention 12 L d S T / 2.
fn flops_per_step() -> f64 {
    let (d, l, s, v) = (128.0, 4.0, 256.0, 261.0);
    let per_layer = 4.0 * d * d + 2.0 * d * 4.0 * d + 2.0 * d;
    let n = l * per_layer + d + v * d;
    6.0 * n * TOKENS_PER_STEP + 12.0 * l * d * s * TOKENS_PER_STEP / 2.0
}

/// Training throughput of the runtime on the benchmark model (bench/throughput.pipe).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 30)]
    steps: u64,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where to train: `cpu`, or `cuda` (a build with `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// Also print the wall time per step of each fused op (CPU kernels).
    #[arg(long)]
    ops: bool,
}

pub fn run(a: Args) -> ExitCode {
    if let Some(t) = a.threads {
        // SAFETY: set before any thread pool starts, on the main thread.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", t.to_string()) };
    }
    let (steps, warmup, cuda, ops) = (a.steps.max(1), a.warmup, a.device == "cuda", a.ops);
    let dir = match tempfile_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let total = steps + warmup;
    let sample = repo.join("sample_data/kimi_vl");
    let source = PIPELINE
        .replace("STEPS", &format!("{}", total * TOKENS_PER_STEP as u64))
        .replace("../sample_data/kimi_vl", sample.to_str().unwrap_or("."));
    let file = dir.join("throughput.pipe");
    if let Err(e) = std::fs::write(&file, source) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let opts = RunOptions {
        file,
        profile: None,
        out: dir.join("run"),
        resume: false,
        cuda,
        kernels: None,
        seed: None,
        checkpoint_every: u64::MAX,
        checkpoint_wall: None,
        keep_checkpoints: 1,
        stop: Default::default(),
        progress: false,
    };
    let mut runner = match Runner::new(opts, Box::new(|m| eprintln!("{m}"))) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if ops {
        pipelang_runtime::model::kernels::prof::enable();
    }
    if let Err(e) = runner.run(&mut |_, _| None) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let text = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap_or_default();
    let timed: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["step"].as_u64().is_some_and(|s| s >= warmup))
        .collect();
    let tps = sorted(
        timed
            .iter()
            .filter_map(|v| v["tokens_per_s"].as_f64())
            .collect(),
    );
    let part = |name: &str| {
        let t = sorted(
            timed
                .iter()
                .filter_map(|v| v["time_ms"][name].as_f64())
                .collect(),
        );
        t.get(t.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (data, fwd) = (part("data"), part("forward"));
    let (bwd, opt) = (part("backward"), part("optimizer"));
    let _ = std::fs::remove_dir_all(&dir);
    if tps.is_empty() {
        eprintln!("error: no timed steps");
        return ExitCode::from(EXIT_USAGE);
    }
    let median = tps[tps.len() / 2];
    let dev = if cuda {
        Device::new_cuda(0).unwrap_or(Device::Cpu)
    } else {
        Device::Cpu
    };
    let gflops = sgemm_gflops(&dev).unwrap_or(f64::NAN);
    let mfu = median / TOKENS_PER_STEP * flops_per_step() / (gflops * 1e9);
    println!(
        "pipelang runtime: {median:.0} tokens/s (median of {} steps after {warmup} warm-up; min {:.0}, max {:.0})",
        tps.len(),
        tps[0],
        tps[tps.len() - 1]
    );
    println!(
        "step (median ms): data {data:.1}, forward {fwd:.1}, backward {bwd:.1}, optimizer {opt:.1}"
    );
    if ops {
        print_op_times(total);
    }
    println!(
        "sgemm 512^3: {gflops:.1} GFLOP/s; model FLOP utilisation {:.1}%",
        mfu * 100.0
    );
    println!(
        "RESULT framework=pipelang tokens_per_s={median:.1} tokens_per_s_min={:.1} tokens_per_s_max={:.1} mfu={mfu:.4} sgemm_gflops={gflops:.1}",
        tps[0],
        tps[tps.len() - 1]
    );
    ExitCode::SUCCESS
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("pipe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Milliseconds per step of each fused op, over all `steps` (warm-up included).
fn print_op_times(steps: u64) {
    let totals = pipelang_runtime::model::kernels::prof::totals();
    if totals.is_empty() {
        println!("fused ops: none ran (they are the CPU kernels)");
        return;
    }
    println!("fused ops (ms per step, over all {steps} steps):");
    let mut sum = 0.0;
    for (name, d, calls) in totals {
        let ms = d.as_secs_f64() * 1e3 / steps as f64;
        sum += ms;
        println!("  {name:<26} {ms:>8.1}  ({} calls per step)", calls / steps);
    }
    println!("  {:<26} {sum:>8.1}", "all fused ops");
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}
