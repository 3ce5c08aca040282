//! y += x W^T as dot products, with no packing: the forward product of a linear layer on
//! processors with AVX-512.
//!
//! A general matrix product (matrixmultiply's, `gemm.rs`) first copies both operands into
//! the layout its kernel streams, panels of 16 rows of A and of 16 columns of B. For
//! y = x W^T the columns of B = W^T are the rows of W, and gathering them is a strided copy
//! done one value at a time: a quarter of the forward product's time, repeated every step
//! because W changes every step. Yet each output is a dot product of two rows that are
//! already contiguous,
//!
//! ```text
//!     y[i][j] += sum_k x[i][k] W[j][k]        x (m, k), W (n, k), y (m, n), all row-major
//! ```
//!
//! so here they are read where they lie. A block of 4 x 4 outputs keeps its 16 sums in 16
//! AVX-512 registers of 16 lanes each (lane l sums the terms with k mod 16 = l); each step loads 16
//! values from each of 4 rows of x and 4 rows of W, and each value loaded feeds 4
//! multiply-adds. After the last step each sum's 16 lanes are added across, in a fixed
//! pairwise order. The blocks go along x's rows for a fixed group of 4 rows of W, so these
//! (4k values, 12.5 KB for k = 784) stay in the first-level cache while x (200 KB for a
//! batch of 64) comes from the second.
//!
//! Every `y[i][j]` is the same sequence of operations whichever block, band or thread computes
//! it (blocks at the edges are smaller, not differently summed), so results do not depend on
//! the number of threads. They differ from matrixmultiply's in the last bits, since the sums
//! run in another order: a run on a processor without AVX-512 takes `par_gemm` instead and
//! rounds differently.
//!
//! Example: x = [[1, 2]], W = [[3, 4], [5, 6]] (k = 2: one step, lanes 2 to 15 masked off)
//! gives y += [[1*3 + 2*4, 1*5 + 2*6]] = [[11, 17]].

use super::gemm::SendPtr;
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Values of k per step: one AVX-512 register.
const LANES: usize = 16;
/// Rows of x and of W per block: 4 x 4 sums plus 8 loaded rows fit AVX-512's 32 registers.
const ROWS: usize = 4;

/// Whether this processor takes the dot-product path (std caches the answer).
pub fn applies() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// y (m x n) += x (m x k) W^T, with W (n x k); all row-major. The columns of y are split
/// into bands of whole blocks across the rayon pool.
///
/// # Panics
/// If the processor lacks AVX-512 (check `applies` first) or the sizes do not fit.
pub fn par_x_wt(x: &[f32], w: &[f32], y: &mut [f32], k: usize, n: usize) {
    assert!(applies(), "dots::par_x_wt needs AVX-512; check dots::applies() first");
    let m = y.len().checked_div(n).unwrap_or(0);
    assert!(y.len() == m * n && x.len() == m * k && w.len() == n * k, "x W^T: x has {} values, W {}, y {} (want m x {k}, {n} x {k}, m x {n})", x.len(), w.len(), y.len());
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    // At least 16 columns per band: below that a task no longer pays for itself.
    let band = n.div_ceil(threads).next_multiple_of(ROWS).max(16);
    let y = SendPtr(y.as_mut_ptr());
    (0..n.div_ceil(band)).into_par_iter().for_each(|b| {
        let cols = b * band..n.min((b + 1) * band);
        // SAFETY: AVX-512 is present (asserted above); x, W and y have the sizes checked
        // above, and the bands' column ranges are disjoint, so no two tasks write the same
        // element of y, which is borrowed mutably for this call.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            band_avx512(x, w, y.at(0), m, k, n, cols)
        }
    });
}

/// Columns `cols` of y: every block of 4 rows of W against every block of 4 rows of x, the
/// ragged edges as blocks of one row or one column.
///
/// # Safety
/// AVX-512 present; x holds m x k values, W n x k, y points to m x n; `cols` within 0..n.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn band_avx512(x: &[f32], w: &[f32], y: *mut f32, m: usize, k: usize, n: usize, cols: std::ops::Range<usize>) {
    let (x, w) = (x.as_ptr(), w.as_ptr());
    for j in cols.clone().step_by(ROWS) {
        let width = ROWS.min(cols.end - j);
        for i in (0..m).step_by(ROWS) {
            let height = ROWS.min(m - i);
            // SAFETY (all four arms): rows i .. i + height of x, j .. j + width of W and the
            // outputs they meet lie inside the matrices (the caller's contract).
            unsafe {
                let (x, w, y) = (x.add(i * k), w.add(j * k), y.add(i * n + j));
                match (height, width) {
                    (ROWS, ROWS) => block::<ROWS, ROWS>(x, w, y, k, n),
                    (ROWS, _) => (0..width).for_each(|c| block::<ROWS, 1>(x, w.add(c * k), y.add(c), k, n)),
                    (_, ROWS) => (0..height).for_each(|r| block::<1, ROWS>(x.add(r * k), w, y.add(r * n), k, n)),
                    _ => {
                        for r in 0..height {
                            (0..width).for_each(|c| block::<1, 1>(x.add(r * k), w.add(c * k), y.add(r * n + c), k, n));
                        }
                    }
                }
            }
        }
    }
}

/// y[r][c] += (row r of x) . (row c of W) for an R x C block: x and W point to the block's
/// first rows (k apart), y to its first output (rows ldy apart). The last step loads only
/// the k mod 16 values left (masked lanes read nothing and add zeros).
///
/// # Safety
/// R rows of k values at x, C at w, and the R x C outputs at y, valid; AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block<const R: usize, const C: usize>(x: *const f32, w: *const f32, y: *mut f32, k: usize, ldy: usize) {
    // SAFETY: every load reads inside a row (the last one masked to the row's end), every
    // store writes one of the block's outputs: the caller's contract.
    unsafe {
        let mut sums = [[_mm512_setzero_ps(); C]; R];
        let whole = k - k % LANES;
        for at in (0..whole).step_by(LANES) {
            accumulate(&mut sums, x.add(at), w.add(at), k, !0);
        }
        if whole < k {
            accumulate(&mut sums, x.add(whole), w.add(whole), k, ((1u32 << (k - whole)) - 1) as __mmask16);
        }
        for (r, sums) in sums.iter().enumerate() {
            for (c, &s) in sums.iter().enumerate() {
                *y.add(r * ldy + c) += add_lanes(s);
            }
        }
    }
}

/// One step of a block: the lanes of `mask` from R rows at x and C rows at w (rows k apart),
/// multiplied pairwise into the sums. The mask is all ones but in the last step, where the
/// compiler's constant makes the loads plain ones.
///
/// # Safety
/// The masked lanes of every row lie inside it; AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn accumulate<const R: usize, const C: usize>(sums: &mut [[__m512; C]; R], x: *const f32, w: *const f32, k: usize, mask: __mmask16) {
    // SAFETY: the caller's contract.
    unsafe {
        let xs: [__m512; R] = std::array::from_fn(|r| _mm512_maskz_loadu_ps(mask, x.add(r * k)));
        let ws: [__m512; C] = std::array::from_fn(|c| _mm512_maskz_loadu_ps(mask, w.add(c * k)));
        for (row, &xr) in sums.iter_mut().zip(&xs) {
            for (sum, &wc) in row.iter_mut().zip(&ws) {
                *sum = _mm512_fmadd_ps(xr, wc, *sum);
            }
        }
    }
}

/// The 16 lanes added pairwise, halves first: ((l0 + l8) + (l4 + l12)) + ... in a fixed order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn add_lanes(v: __m512) -> f32 {
    let mut lanes = [0.0f32; LANES];
    // SAFETY: the store writes 16 floats into a 16-float array (unaligned store).
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) };
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104729) % 2003) as f32 / 1001.0 - 1.0).collect()
    }

    /// Against sums in f64 on shapes that cover every kind of block and every tail of k:
    /// m and n below, at and past a block of 4, k below, at and past 16 lanes. The bound is
    /// f32 rounding of a k-term sum, relative to the sum of the terms' sizes.
    #[test]
    fn matches_f64_sums_on_every_edge() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512, so linear layers take par_gemm");
            return;
        }
        for (m, k, n) in [(1, 1, 1), (3, 15, 5), (4, 16, 4), (5, 17, 3), (64, 30, 128), (67, 784, 33), (8, 900, 21), (2, 48, 70)] {
            let (x, w) = (values(m * k, 1), values(n * k, 2));
            let start = values(m * n, 3);
            let mut y = start.clone();
            par_x_wt(&x, &w, &mut y, k, n);
            for i in 0..m {
                for j in 0..n {
                    let terms = (0..k).map(|t| x[i * k + t] as f64 * w[j * k + t] as f64);
                    let want = start[i * n + j] as f64 + terms.clone().sum::<f64>();
                    let size = start[i * n + j].abs() as f64 + terms.map(f64::abs).sum::<f64>();
                    let got = y[i * n + j] as f64;
                    assert!((got - want).abs() <= 1e-6 * size * (k as f64).sqrt() + 1e-30, "{m}x{k}x{n} at ({i}, {j}): {got} vs {want}");
                }
            }
        }
    }

    /// The same bits on 1 and 3 threads (bands of different widths).
    #[test]
    fn does_not_depend_on_the_thread_count() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512");
            return;
        }
        let (m, k, n) = (64, 784, 100);
        let (x, w) = (values(m * k, 4), values(n * k, 5));
        let run = |threads| {
            let mut y = vec![0.5; m * n];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| par_x_wt(&x, &w, &mut y, k, n));
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(3));
    }
}
