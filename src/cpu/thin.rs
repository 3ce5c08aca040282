//! The three products of a linear layer, whose batch side is thin, computed without
//! packing: their fast path on processors with AVX-512.
//!
//! A general matrix product (matrixmultiply's, `gemm.rs`) first copies both operands into the
//! layout its kernel streams, panels of 16 rows of A and of 16 columns of B. That pays when
//! each value copied is used many times. In a linear layer with a batch of 64 each weight is
//! used 64 times per product, W is copied afresh in every product (it changes every step),
//! and for the forward product the copy is a gather, one value at a time, because the
//! columns of B = W^T are the rows of W. Here the operands are read where they lie:
//!
//! ```text
//!     forward  y  += x W^T       y[i][j]  = sum_k x[i][k] W[j][k]      dot products of rows
//!     input    dx += dout W      dx[i][:] = sum_j dout[i][j] W[j][:]   rows of W, scaled, added
//!     weight   dW += dout^T x    dW[j][:] = sum_i dout[i][j] x[i][:]   rows of x, scaled, added
//! ```
//!
//! **Dot products** (`par_x_wt`). A block of 4 x 4 outputs keeps its 16 sums in 16 AVX-512
//! registers of 16 lanes (lane l sums the terms with k mod 16 = l). Each step loads 16
//! values from each of 4 rows of x and 4 rows of W, and each value loaded feeds 4
//! multiply-adds; after the last step each sum's lanes are added across, in a fixed pairwise
//! order, the 16 sums of a block together (`add_lanes_4x4`). The blocks go along x's rows
//! for a fixed group of 4 rows of W, so these (12.5 KB for k = 784) stay in the first-level
//! cache while x (200 KB for a batch of 64) streams from the second.
//!
//! **Scaled rows** (`par_a_b`): C += A B with B row-major and A any strided view (dout for
//! dx, dout^T for dW). A block is 4 rows of C by 64 columns, 16 registers; each step t
//! broadcasts `A[r][t]` for its 4 rows, loads 64 values of row t of B, and does 16
//! multiply-adds. The block is added into C once, at the end. `par_a_b_terms` computes only
//! the rows of C, or the steps t, that a list names, when the caller knows the others' terms
//! to be zeros: a linear layer's backward leaves out the units that no image activates.
//! The same kernel gives the forward product transposed, y^T = W x^T (A = W, B = x^T from
//! `par_transpose`), whose steps are the input units, so that the dead ones can be left out.
//! Threads take bands of C's columns, or of its rows when its columns fit one block (y^T).
//!
//! Every output is the same sequence of operations whichever block, band or thread computes
//! it (the blocks at the edges are smaller or masked, not summed differently), so results do
//! not depend on the number of threads. They differ from matrixmultiply's in the last bits,
//! since the sums run in another order: a processor without AVX-512 takes `par_gemm` and
//! rounds differently.
//!
//! Example: x = [[1, 2]], W = [[3, 4], [5, 6]] (k = 2: one step, lanes 2 to 15 masked off)
//! gives y += [[1*3 + 2*4, 1*5 + 2*6]] = [[11, 17]]; with dout = [[1, 1]],
//! dx += dout W = [[3 + 5, 4 + 6]] = [[8, 10]].

use super::gemm::{for_each_band, SendPtr};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::ops::Range;

/// Values per step: one AVX-512 register.
pub(crate) const LANES: usize = 16;
/// Rows per block (of x and W for dot products, of C for scaled rows): 16 sums and 8 loaded
/// registers fit AVX-512's 32.
pub(crate) const ROWS: usize = 4;
/// Columns per block of scaled rows: 4 registers.
pub(crate) const WIDE: usize = 4 * LANES;

/// Whether this processor takes these kernels (std caches the answer).
pub fn applies() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// y (m x n) += x (m x k) W^T, with W (n x k); all row-major.
///
/// # Panics
/// If the processor lacks AVX-512 (check `applies` first) or the sizes do not fit.
pub fn par_x_wt(x: &[f32], w: &[f32], y: &mut [f32], k: usize, n: usize) {
    assert!(applies(), "thin::par_x_wt needs AVX-512; check thin::applies() first");
    let m = y.len().checked_div(n).unwrap_or(0);
    assert!(
        y.len() == m * n && x.len() == m * k && w.len() == n * k,
        "x W^T: x has {} values, W {}, y {} (want m x {k}, {n} x {k}, m x {n})",
        x.len(),
        w.len(),
        y.len()
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let y = SendPtr(y.as_mut_ptr());
    for_each_band(n, ROWS, 16, |cols| {
        // SAFETY: AVX-512 is present (asserted above); x, W and y have the sizes checked
        // above, and the bands' column ranges are disjoint, so no two tasks write the same
        // element of y, which is borrowed mutably for this call.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            x_wt_band(x, w, y.at(0), m, k, n, cols)
        }
    });
}

/// Columns `cols` of y = x W^T: every block of 4 rows of W against every block of 4 rows of
/// x; the ragged edges as blocks of one row or one column.
///
/// # Safety
/// AVX-512 present; x holds m x k values, W n x k, y points to m x n; `cols` within 0..n.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn x_wt_band(x: &[f32], w: &[f32], y: *mut f32, m: usize, k: usize, n: usize, cols: Range<usize>) {
    let (x, w) = (x.as_ptr(), w.as_ptr());
    for j in cols.clone().step_by(ROWS) {
        let width = ROWS.min(cols.end - j);
        for i in (0..m).step_by(ROWS) {
            let height = ROWS.min(m - i);
            // SAFETY (every arm): rows i .. i + height of x, j .. j + width of W and the
            // outputs they meet lie inside the matrices (the caller's contract).
            unsafe {
                let (x, w, y) = (x.add(i * k), w.add(j * k), y.add(i * n + j));
                match (height, width) {
                    (ROWS, ROWS) => dots::<ROWS, ROWS>(x, w, y, k, n),
                    (ROWS, _) => (0..width).for_each(|c| dots::<ROWS, 1>(x, w.add(c * k), y.add(c), k, n)),
                    (_, ROWS) => (0..height).for_each(|r| dots::<1, ROWS>(x.add(r * k), w, y.add(r * n), k, n)),
                    _ => {
                        for r in 0..height {
                            (0..width).for_each(|c| dots::<1, 1>(x.add(r * k), w.add(c * k), y.add(r * n + c), k, n));
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
unsafe fn dots<const R: usize, const C: usize>(x: *const f32, w: *const f32, y: *mut f32, k: usize, ldy: usize) {
    // SAFETY: every load reads inside a row (the last one masked to the row's end), every
    // store writes one of the block's outputs: the caller's contract.
    unsafe {
        let mut sums = [[_mm512_setzero_ps(); C]; R];
        let whole = k - k % LANES;
        for at in (0..whole).step_by(LANES) {
            dot_step(&mut sums, x.add(at), w.add(at), k, !0);
        }
        if whole < k {
            dot_step(&mut sums, x.add(whole), w.add(whole), k, lanes_below(k - whole));
        }
        if R == ROWS && C == ROWS {
            // A whole block: its 16 sums added across together (the same tree per sum).
            let block: [[__m512; ROWS]; ROWS] = std::array::from_fn(|r| std::array::from_fn(|c| sums[r][c]));
            let mut totals = [0.0f32; ROWS * ROWS];
            _mm512_storeu_ps(totals.as_mut_ptr(), add_lanes_4x4(&block));
            for (r, row) in totals.chunks_exact(ROWS).enumerate() {
                for (c, &t) in row.iter().enumerate() {
                    *y.add(r * ldy + c) += t;
                }
            }
        } else {
            for (r, sums) in sums.iter().enumerate() {
                for (c, &s) in sums.iter().enumerate() {
                    *y.add(r * ldy + c) += add_lanes(s);
                }
            }
        }
    }
}

/// One step of a block of dots: the lanes of `mask` from R rows at x and C rows at w (rows
/// k apart), multiplied pairwise into the sums. The mask is all ones but in the last step,
/// and the compiler turns the loads with that constant mask into plain ones.
///
/// # Safety
/// The masked lanes of every row lie inside it; AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_step<const R: usize, const C: usize>(
    sums: &mut [[__m512; C]; R],
    x: *const f32,
    w: *const f32,
    k: usize,
    mask: __mmask16,
) {
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

/// The mask of the lowest `count` lanes (1 to 16).
#[cfg(target_arch = "x86_64")]
pub(crate) fn lanes_below(count: usize) -> __mmask16 {
    ((1u32 << count) - 1) as __mmask16
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

/// `add_lanes` of the 16 sums of a 4 x 4 block at once: lane 4r + c of the result is
/// `add_lanes(sums[r][c])`, to the bit, by the same tree. Each level adds two registers
/// whose lanes hold the pairs it needs, laid out by a shuffle, so that the 16 trees take 15
/// additions instead of 240 (the difference shows when k is small: 128 is 8 steps).
///
/// ```text
///     level 1 (l, l + 8): 8 registers, each two sums' 8 partials  shuffle_f32x4 (128-bit chunks)
///     level 2 (l, l + 4): 4 registers, each four sums' 4          shuffle_f32x4
///     level 3 (l, l + 2): 2 registers, each eight sums' 2         shuffle_ps (within chunks)
///     level 4 (l, l + 1): 1 register, the 16 sums
/// ```
///
/// Taking the sums in the order q -> sums[q % 4][q / 4] makes chunk r of the result hold
/// row r of the block.
///
/// # Safety
/// AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn add_lanes_4x4(sums: &[[__m512; ROWS]; ROWS]) -> __m512 {
    // SAFETY: register arithmetic only, on a processor with AVX-512 (the caller's contract).
    // Each level: a register of the left terms of its pairs, one of the right terms, added.
    unsafe {
        let mut halves = [_mm512_setzero_ps(); 8];
        for (p, h) in halves.iter_mut().enumerate() {
            let (x, y) = (sums[(2 * p) % ROWS][(2 * p) / ROWS], sums[(2 * p + 1) % ROWS][(2 * p + 1) / ROWS]);
            *h = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(x, y), _mm512_shuffle_f32x4::<0xEE>(x, y));
        }
        let mut quarters = [_mm512_setzero_ps(); 4];
        for (p, q) in quarters.iter_mut().enumerate() {
            let (x, y) = (halves[2 * p], halves[2 * p + 1]);
            *q = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(x, y), _mm512_shuffle_f32x4::<0xDD>(x, y));
        }
        let mut pairs = [_mm512_setzero_ps(); 2];
        for (p, pair) in pairs.iter_mut().enumerate() {
            let (x, y) = (quarters[2 * p], quarters[2 * p + 1]);
            *pair = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(x, y), _mm512_shuffle_ps::<0xEE>(x, y));
        }
        let (x, y) = (pairs[0], pairs[1]);
        _mm512_add_ps(_mm512_shuffle_ps::<0x88>(x, y), _mm512_shuffle_ps::<0xDD>(x, y))
    }
}

#[cfg(test)]
#[path = "thin_tests.rs"]
mod tests;
