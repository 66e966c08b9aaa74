//! Fused CPU kernels as candle custom ops, each with a backward pass.
//!
//! Every op works on contiguous f32 storage, spreads its rows over rayon's threads in chunks of
//! fixed size (so sums are taken in the same order on every run: training is deterministic),
//! and is checked against the differentiable reference in `reference.rs`.

/// Defines `fn $name(args) -> ret` that runs `$body` compiled for AVX-512 or AVX2 + FMA when
/// the CPU has them, and for the baseline target otherwise (same code, so same results up to the
/// instruction set's rounding, which never changes within one machine).
macro_rules! simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }
            if $crate::model::kernels::gemm::has_avx512() {
                // SAFETY: the CPU supports the features `avx512` is compiled for.
                unsafe { avx512($($arg),*) }
            } else if $crate::model::kernels::has_avx2() {
                // SAFETY: the CPU supports the features `avx2` is compiled for.
                unsafe { avx2($($arg),*) }
            } else {
                imp($($arg),*)
            }
        }
    };
}

pub mod activation;
pub mod attention;
pub(crate) mod gemm;
pub mod linear;
pub mod prof;
pub mod rmsnorm;
pub mod rope;
pub mod xent;

use candle_core::{CpuStorage, Layout, Result, Shape, bail};

/// Runs candle's own elementwise ops (adds of gradients, residual adds) on the calling thread
/// unless `CANDLE_NUM_THREADS` says otherwise. candle splits them over a second pool of
/// spinning workers, one fewer than the cores, beside rayon's pool that the fused ops and the
/// matmuls use: on a 2-core machine its caller spun waiting for a worker that rayon's threads
/// kept off the cores, about a sixth of the training step. The ops are memory-bound and gain
/// little from a second thread.
///
/// # Safety
/// Sets an environment variable: call it before any other thread exists (first thing in
/// `main`), as for [`std::env::set_var`].
pub unsafe fn candle_elementwise_on_one_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: the caller guarantees that no other thread reads the environment now.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

/// Makes glibc keep freed memory for reuse instead of unmapping it. A training step allocates
/// and frees the same few hundred megabytes of activations and gradients (a fresh buffer for
/// every node's gradient, and another for each later contribution added to it: see
/// vendor/candle-core/PIPELANG.md); with glibc's defaults each buffer above the dynamic mmap
/// threshold is a fresh mapping, and every page of it a page fault, about a tenth of a step.
/// Called by the model constructors; idempotent.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // 32 MiB is the largest mmap threshold glibc accepts on 64-bit; larger buffers are
            // rare here. The trim threshold stops the heap top from being handed back.
            // SAFETY: mallopt only changes allocator parameters; it takes the arena locks.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

/// The contiguous f32 data behind a custom op's argument.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => bail!("{op}: expects f32 tensors"),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expects contiguous tensors (call .contiguous() first)"),
    }
}

/// `C = A B` for row-major `A [m, k]`, `B [k, n]`, `C [m, n]` on the packed kernel the fused
/// ops use, over all of rayon's threads (for measuring the machine, as `pipe bench` does).
pub fn matmul_f32(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    use gemm::{Mat, sgemm};
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "matmul_f32: short operands"
    );
    sgemm(m, n, k, Mat::rows(a, k), Mat::rows(b, n), c, n, false, true);
}

/// A buffer of `len` floats for a kernel that writes every element before anything reads it.
/// Zeroing it first (`vec![0.0; len]`) cost about a tenth of the forward pass in memset: glibc
/// hands back reused heap memory, which `calloc` must clear.
/// candle's CPU backend allocates its own op outputs the same way.
#[allow(clippy::uninit_vec)]
pub(crate) fn uninit(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: the capacity is `len`, and every bit pattern is an f32; every caller writes each
    // element before reading it (each call site says why), so no stale value is observed.
    unsafe { v.set_len(len) };
    v
}

pub(crate) fn out(data: Vec<f32>, shape: impl Into<Shape>) -> Result<(CpuStorage, Shape)> {
    Ok((CpuStorage::F32(data), shape.into()))
}

/// Dot product with eight independent accumulators, so the compiler can vectorise it
/// (a single running f32 sum cannot be reordered).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `sum(a * b * c)` with eight independent accumulators, like [`dot`].
#[inline(always)]
pub(crate) fn dot3(a: &[f32], b: &[f32], c: &[f32]) -> f32 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [0f32; 8];
    let body = n - n % 8;
    for i in (0..body).step_by(8) {
        for l in 0..8 {
            acc[l] += a[i + l] * b[i + l] * c[i + l];
        }
    }
    let mut tail = 0f32;
    for i in body..n {
        tail += a[i] * b[i] * c[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Rows per rayon task for row-wise kernels: enough work to amortise scheduling, and fixed so
/// reductions over chunks are reproducible.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (16384 / row_len.max(1)).clamp(1, 256)
}

/// `e^x` in f32 without a libm call, so loops over it vectorise: range reduction to
/// `x = n ln2 + r`, a degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits.
/// Relative error below 2e-7 on [-87, 88]; inputs below give 0 (as masked scores need).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to nearest without a `roundf` call, which
    // baseline x86-64 lacks and which would stop the loop from vectorising.
    const ROUND: f32 = 12_582_912.0;
    let underflow = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // `t` holds `n` in its low mantissa bits: reading it there keeps the loop vectorised,
    // where `n as i32` (a saturating cast) is done lane by lane.
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let bits = (ni.wrapping_add(127) as u32) << 23;
    let v = p * f32::from_bits(bits);
    if underflow { 0.0 } else { v }
}

/// Whether the hot loops can run their AVX2 + FMA builds (checked once, then cached).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Maximum with eight lanes (`f32::max` in one running value does not vectorise).
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for l in 0..8 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = it
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for a in acc {
        m = m.max(a);
    }
    m
}

/// Sum with eight lanes, in a fixed order.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    let tail: f32 = it.remainder().iter().sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
