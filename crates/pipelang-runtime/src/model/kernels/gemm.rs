//! Single-precision matrix multiply for the fused ops: `C (+)= A B` with packed panels and a
//! register-blocked micro-kernel, AVX-512 where the CPU has it.
//!
//! candle's matmul goes through the `gemm` crate, which on stable Rust stops at AVX2 and whose
//! every call in the backward pass also costs a transpose node, a zeroed gradient buffer and an
//! add. The linear layers and the attention blocks call this instead. Each element of C is
//! summed over k in the same order whatever the thread count, so results are reproducible.

use rayon::prelude::*;
use std::cell::RefCell;

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with `ld` elements between rows.
    pub fn rows(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: ld,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `ld` elements between its rows.
    pub fn cols(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: ld,
        }
    }

    /// The view starting at element `(i, j)`.
    fn from(self, i: usize, j: usize) -> Self {
        Self {
            data: &self.data[i * self.rs + j * self.cs..],
            ..self
        }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Micro-tile: 12 rows x 32 columns is 24 of the 32 AVX-512 registers as accumulators.
const MR: usize = 12;
const NR: usize = 32;
/// Depth of one packed block: an A micro-panel (12 KiB) stays in L1, a B block in L2.
const KC: usize = 256;
/// Depth of one chunk of a split product (see [`sgemm_split_k`]).
const KSPLIT: usize = 2048;

thread_local! {
    /// Packed B, kept per thread between calls: fresh large buffers cost page faults.
    static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `C = A B` (or `C += A B` with `accumulate`) for `A [m, k]`, `B [k, n]`, `C` row-major with
/// `ldc` elements between rows. `parallel` spreads row panels over rayon's threads; leave it
/// off inside an already parallel loop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    parallel: bool,
) {
    sgemm_with(m, n, k, a, b, c, ldc, accumulate, parallel, has_avx512());
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_with(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    parallel: bool,
    avx512: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "sgemm: C too small"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * ldc..i * ldc + n].fill(0.0);
            }
        }
        return;
    }
    if parallel && k >= 2 * KSPLIT {
        return sgemm_split_k(m, n, k, a, b, c, ldc, accumulate, avx512);
    }
    let panels = n.div_ceil(NR);
    // Whole panels of a row-major B are read in place when packing would not pay: its rows
    // are already a panel's (`n == NR`, the attention's per-head operands), or at most a few
    // row panels reuse it (the attention's 64-query blocks). A weight gradient's `x` (m of
    // 128 to 512) is faster packed: measured 52 against 55 ms per step.
    let direct_b = avx512 && b.cs == 1 && n.is_multiple_of(NR) && (m <= 64 || b.rs == NR);
    PACKED_B.with(|cell| {
        let mut bp = cell.borrow_mut();
        let need = if direct_b { 0 } else { panels * KC.min(k) * NR };
        if bp.len() < need {
            bp.resize(need, 0.0);
        }
        let c = &mut c[..(m - 1) * ldc + n];
        let mut overwrite = !accumulate;
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let bp = &mut bp[..if direct_b { 0 } else { panels * kc * NR }];
            if !direct_b {
                pack_b(b, p0, kc, n, bp, parallel && n * kc >= 1 << 15);
            }
            let bp = &*bp;
            let task = |(ip, cc): (usize, &mut [f32])| {
                let i0 = ip * MR;
                let m_eff = MR.min(m - i0);
                // Assigned only where A is packed: zeroing 12 KiB per tile cost ~9% of a step.
                let mut ap;
                // Full row panels of a row- or column-major A are read in place: packing them
                // costs as much as the multiply when B is a single narrow panel (attention).
                let direct = avx512 && m_eff == MR && (a.cs == 1 || (a.rs == 1 && panels <= 2));
                let (a_blk, a_ld, row_major) = if direct {
                    let start = i0 * a.rs + p0 * a.cs;
                    let span = (MR - 1) * a.rs + (kc - 1) * a.cs + 1;
                    let ld = if a.cs == 1 { a.rs } else { a.cs };
                    (&a.data[start..start + span], ld, a.cs == 1)
                } else {
                    ap = [0f32; MR * KC];
                    pack_a(a, i0, m_eff, p0, kc, &mut ap);
                    (&ap[..kc * MR], MR, false)
                };
                for jp in 0..panels {
                    let j0 = jp * NR;
                    let n_eff = NR.min(n - j0);
                    let tile = &mut cc[j0..];
                    let b_op = if direct_b {
                        let start = p0 * b.rs + j0;
                        BPanel {
                            data: &b.data[start..start + (kc - 1) * b.rs + NR],
                            ld: b.rs,
                        }
                    } else {
                        BPanel {
                            data: &bp[jp * kc * NR..(jp + 1) * kc * NR],
                            ld: NR,
                        }
                    };
                    let a_op = APanel {
                        data: a_blk,
                        ld: a_ld,
                        row_major,
                    };
                    micro(kc, a_op, b_op, tile, ldc, m_eff, n_eff, overwrite, avx512);
                }
            };
            if parallel && m > MR {
                c.par_chunks_mut(MR * ldc)
                    .enumerate()
                    .with_min_len(2)
                    .for_each(task);
            } else {
                c.chunks_mut(MR * ldc).enumerate().for_each(task);
            }
            overwrite = false;
        }
    });
}

/// A deep product with few rows (a weight gradient `g^T x`, `k` = tokens) split over `k`
/// instead of rows: row panels are too few to feed every thread, and each `KC` block would
/// end in a join. Each chunk of `KSPLIT` is one thread's serial product; the partial sums are
/// added in chunk order, so the result does not depend on the thread count.
#[allow(clippy::too_many_arguments)]
fn sgemm_split_k(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    avx512: bool,
) {
    let parts: Vec<Vec<f32>> = (0..k.div_ceil(KSPLIT))
        .into_par_iter()
        .map(|chunk| {
            let p0 = chunk * KSPLIT;
            // Overwritten whole by the chunk's product.
            let mut part = super::uninit(m * n);
            let (a, b) = (a.from(0, p0), b.from(p0, 0));
            let kc = KSPLIT.min(k - p0);
            sgemm_with(m, n, kc, a, b, &mut part, n, false, false, avx512);
            part
        })
        .collect();
    c[..(m - 1) * ldc + n]
        .par_chunks_mut(ldc)
        .enumerate()
        .for_each(|(i, row)| {
            let row = &mut row[..n];
            let mut parts = parts.iter().map(|p| &p[i * n..(i + 1) * n]);
            if !accumulate {
                row.copy_from_slice(parts.next().expect("k > 0: at least one chunk"));
            }
            for part in parts {
                row.iter_mut().zip(part).for_each(|(c, p)| *c += p);
            }
        });
}

/// Packs rows `p0..p0+kc` of B into `[panel][p][NR]`, zero-padded past column `n`.
fn pack_b(b: Mat, p0: usize, kc: usize, n: usize, bp: &mut [f32], parallel: bool) {
    let one = |(jp, dst): (usize, &mut [f32])| {
        let j0 = jp * NR;
        let n_eff = NR.min(n - j0);
        if b.cs == 1 {
            for p in 0..kc {
                let src = &b.data[(p0 + p) * b.rs + j0..];
                let row: &mut [f32; NR] = (&mut dst[p * NR..(p + 1) * NR]).try_into().expect("NR");
                if n_eff == NR {
                    // A fixed-size copy is a few vector moves; a slice copy is a memcpy call.
                    *row = src[..NR].try_into().expect("NR");
                } else {
                    row[..n_eff].copy_from_slice(&src[..n_eff]);
                    row[n_eff..].fill(0.0);
                }
            }
        } else {
            if n_eff < NR {
                dst.fill(0.0);
            }
            for jj in 0..n_eff {
                for p in 0..kc {
                    dst[p * NR + jj] = b.at(p0 + p, j0 + jj);
                }
            }
        }
    };
    if parallel {
        bp.par_chunks_mut(kc * NR).enumerate().for_each(one);
    } else {
        bp.chunks_mut(kc * NR).enumerate().for_each(one);
    }
}

/// Packs rows `i0..i0+m_eff`, columns `p0..p0+kc` of A into `[p][MR]`, zero-padded.
fn pack_a(a: Mat, i0: usize, m_eff: usize, p0: usize, kc: usize, ap: &mut [f32; MR * KC]) {
    if m_eff < MR {
        ap[..kc * MR].fill(0.0);
    }
    if a.rs == 1 {
        for p in 0..kc {
            let src = &a.data[(p0 + p) * a.cs + i0..];
            let dst = &mut ap[p * MR..(p + 1) * MR];
            if m_eff == MR {
                let dst: &mut [f32; MR] = dst.try_into().expect("MR");
                *dst = src[..MR].try_into().expect("MR");
            } else {
                dst[..m_eff].copy_from_slice(&src[..m_eff]);
            }
        }
    } else {
        for ii in 0..m_eff {
            for p in 0..kc {
                ap[p * MR + ii] = a.at(i0 + ii, p0 + p);
            }
        }
    }
}

/// The A operand of one micro-tile: `MR` rows by `kc`, element `(i, p)` at `i * ld + p` when
/// row-major, at `p * ld + i` otherwise (the packed layout is the latter with `ld = MR`).
#[derive(Clone, Copy)]
struct APanel<'a> {
    data: &'a [f32],
    ld: usize,
    row_major: bool,
}

/// The B operand of one micro-tile: `kc` rows of `NR` columns, row `p` at `p * ld` (packed:
/// `ld = NR`).
#[derive(Clone, Copy)]
struct BPanel<'a> {
    data: &'a [f32],
    ld: usize,
}

/// Where a micro-tile's results go: `m_eff` rows of `n_eff` columns, `ldc` apart.
#[derive(Clone, Copy)]
struct Tile {
    ldc: usize,
    m_eff: usize,
    n_eff: usize,
    overwrite: bool,
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn micro(
    kc: usize,
    a: APanel,
    b: BPanel,
    c: &mut [f32],
    ldc: usize,
    m_eff: usize,
    n_eff: usize,
    overwrite: bool,
    avx512: bool,
) {
    let need = if a.row_major {
        (MR - 1) * a.ld + kc
    } else {
        (kc - 1) * a.ld + MR
    };
    assert!(
        a.data.len() >= need && b.ld >= NR && b.data.len() >= (kc - 1) * b.ld + NR,
        "sgemm: short panel"
    );
    assert!(c.len() >= (m_eff - 1) * ldc + n_eff, "sgemm: short C tile");
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: the CPU has AVX-512F (checked by the caller); the asserts above bound every
        // read of A and B, and the kernel writes only `m_eff` rows of `n_eff` columns of `c`.
        unsafe {
            let (ap, bp, cp) = (a.data.as_ptr(), b.data.as_ptr(), c.as_mut_ptr());
            if a.row_major {
                micro_avx512::<true>(kc, ap, a.ld, bp, b.ld, cp, ldc, m_eff, n_eff, overwrite)
            } else {
                micro_avx512::<false>(kc, ap, a.ld, bp, b.ld, cp, ldc, m_eff, n_eff, overwrite)
            }
        };
        return;
    }
    let _ = avx512;
    let tile = Tile {
        ldc,
        m_eff,
        n_eff,
        overwrite,
    };
    micro_portable(kc, a, b, c, tile);
}

simd_fn!(
    fn micro_portable(kc: usize, a: APanel, b: BPanel, c: &mut [f32], tile: Tile) {
        let Tile {
            ldc,
            m_eff,
            n_eff,
            overwrite,
        } = tile;
        let APanel {
            data: ap,
            ld,
            row_major,
        } = a;
        let mut acc = [[0f32; NR]; MR];
        for p in 0..kc {
            let bv = &b.data[p * b.ld..p * b.ld + NR];
            for i in 0..MR {
                let av = if row_major {
                    ap[i * ld + p]
                } else {
                    ap[p * ld + i]
                };
                for j in 0..NR {
                    acc[i][j] += av * bv[j];
                }
            }
        }
        for (i, acc) in acc.iter().enumerate().take(m_eff) {
            let row = &mut c[i * ldc..i * ldc + n_eff];
            if overwrite {
                row.copy_from_slice(&acc[..n_eff]);
            } else {
                row.iter_mut().zip(acc).for_each(|(c, a)| *c += a);
            }
        }
    }
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_avx512<const ROW_MAJOR: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    m_eff: usize,
    n_eff: usize,
    overwrite: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    // SAFETY (whole body): pointer ranges are those `micro` checked.
    unsafe {
        for p in 0..kc {
            let b0 = _mm512_loadu_ps(b.add(p * ldb));
            let b1 = _mm512_loadu_ps(b.add(p * ldb + 16));
            for (i, acc) in acc.iter_mut().enumerate() {
                let at = if ROW_MAJOR { i * lda + p } else { p * lda + i };
                let av = _mm512_set1_ps(*a.add(at));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        let lanes = |from: usize| -> __mmask16 {
            let k = n_eff.saturating_sub(from).min(16);
            ((1u32 << k) - 1) as __mmask16
        };
        let (k0, k1) = (lanes(0), lanes(16));
        for (i, acc) in acc.iter().enumerate().take(m_eff) {
            let row = c.add(i * ldc);
            let (mut x0, mut x1) = (acc[0], acc[1]);
            if !overwrite {
                x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(k0, row));
                x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(k1, row.add(16)));
            }
            _mm512_mask_storeu_ps(row, k0, x0);
            _mm512_mask_storeu_ps(row.add(16), k1, x1);
        }
    }
}

/// Whether the AVX-512 kernel can run (checked once, then cached).
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: Mat, b: Mat) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a.at(i, p) as f64 * b.at(p, j) as f64)
                    .sum::<f64>() as f32;
            }
        }
        c
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_naive_for_every_layout_and_kernel() {
        let kernels: &[bool] = if has_avx512() {
            &[false, true]
        } else {
            &[false]
        };
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 7, 3),
            (13, 33, 40),
            (30, 70, 300),
            (100, 64, 513),
            (20, 40, 2 * KSPLIT + 7),
            (30, 64, 300),
            (40, 32, 77),
        ] {
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                let am = if a_t {
                    Mat::cols(&a, m)
                } else {
                    Mat::rows(&a, k)
                };
                let bm = if b_t {
                    Mat::cols(&b, k)
                } else {
                    Mat::rows(&b, n)
                };
                let want = naive(m, n, k, am, bm);
                for &avx512 in kernels {
                    for parallel in [false, true] {
                        // A wider C (ldc > n) whose padding must stay untouched.
                        let ldc = n + 3;
                        let mut c = vec![7f32; m * ldc];
                        sgemm_with(m, n, k, am, bm, &mut c, ldc, false, parallel, avx512);
                        let mut acc = vec![1f32; m * ldc];
                        sgemm_with(m, n, k, am, bm, &mut acc, ldc, true, parallel, avx512);
                        for i in 0..m {
                            for j in 0..ldc {
                                let (got, sum) = (c[i * ldc + j], acc[i * ldc + j]);
                                if j >= n {
                                    assert_eq!((got, sum), (7.0, 1.0), "padding written");
                                    continue;
                                }
                                let w = want[i * n + j];
                                let tol = 1e-4 * (1.0 + w.abs()) * (k as f32).sqrt();
                                assert!(
                                    (got - w).abs() <= tol && (sum - 1.0 - w).abs() <= tol,
                                    "{m}x{n}x{k} a_t {a_t} b_t {b_t} avx512 {avx512}: ({i}, {j}) = {got}, {sum}, want {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
