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

use super::gemm::{for_each_band, Mat, SendPtr};
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::ops::Range;

/// Values per step: one AVX-512 register.
const LANES: usize = 16;
/// Rows per block (of x and W for dot products, of C for scaled rows): 16 sums and 8 loaded
/// registers fit AVX-512's 32.
const ROWS: usize = 4;
/// Columns per block of scaled rows: 4 registers.
const WIDE: usize = 4 * LANES;

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

/// C (m x n, row-major) += A (m x depth) B (depth x n), where B's rows are contiguous
/// (`b.cs == 1`) and A is any view (a transpose included).
///
/// # Panics
/// If the processor lacks AVX-512 (check `applies` first) or the sizes do not fit.
pub fn par_a_b(a: Mat, b: Mat, c: &mut [f32]) {
    par_a_b_terms(a, b, c, Terms::All);
}

/// Which terms of C += A B a product computes, when the caller knows the rest to be zero.
#[derive(Clone, Copy, Debug)]
pub enum Terms<'a> {
    /// All of them.
    All,
    /// Only the rows r of C listed (and so of A); the other rows of A are zeros.
    Rows(&'a [usize]),
    /// Only the steps t of each sum listed, `A[r][t] B[t][..]`; A's other columns are zeros.
    Steps(&'a [usize]),
}

/// `par_a_b` with only some of its terms computed (`Terms`): C's listed rows, or the listed
/// steps of every sum, in increasing order. The terms left out are products with zeros, so
/// C comes out with the same bits as from all of them (a zero added to a sum leaves it as
/// it was; non-finite values in B, whose products with zero would be NaN, excepted).
///
/// # Panics
/// As `par_a_b`, and if a list is not increasing or names a row or step past A's.
pub fn par_a_b_terms(a: Mat, b: Mat, c: &mut [f32], terms: Terms) {
    assert!(applies(), "thin::par_a_b needs AVX-512; check thin::applies() first");
    let (m, depth, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == depth && b.cs == 1,
        "A B: A is {m}x{depth}, B {}x{n} with column stride {} (want {depth} rows, stride 1)",
        b.rows,
        b.cs
    );
    assert_eq!(c.len(), m * n, "A B: C must hold {m}x{n} values");
    a.check_bounds();
    b.check_bounds();
    let increasing_below =
        |list: &[usize], end: usize| list.windows(2).all(|p| p[0] < p[1]) && list.last().is_none_or(|&l| l < end);
    let (rows, steps) = match terms {
        Terms::All => (None, None),
        Terms::Rows(rows) => {
            assert!(increasing_below(rows, m), "A B: the rows to compute must increase and lie below {m}");
            (Some(rows), None)
        }
        Terms::Steps(steps) => {
            assert!(increasing_below(steps, depth), "A B: the steps to compute must increase and lie below {depth}");
            (None, Some(steps))
        }
    };
    if m == 0 || n == 0 || depth == 0 {
        return;
    }
    let computed_rows = rows.map_or(m, <[usize]>::len);
    let c = SendPtr(c.as_mut_ptr());
    let band = |cols: Range<usize>, span: Range<usize>| {
        // SAFETY: as in par_x_wt: AVX-512 present, every element of A and B that the views
        // reach lies inside them (checked above, the lists within A's rows and columns), C is
        // m x n and borrowed mutably, and no two bands share an element of C.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            match steps {
                None => a_b_band(a, b, c.at(0), n, cols, span, rows, depth),
                Some(steps) => a_b_band(a, b, c.at(0), n, cols, span, rows, steps),
            }
        }
    };
    // Bands of columns when C is wide (dx and dW); bands of rows when its columns fit in one
    // block of 64 (y^T = W x^T for a batch of 64, `linear::forward_transposed`).
    if n > WIDE {
        for_each_band(n, LANES, WIDE, |cols| band(cols, 0..computed_rows));
    } else {
        for_each_band(computed_rows, ROWS, 4 * ROWS, |span| band(0..n, span));
    }
}

/// The steps of a sum that `scaled_rows` walks: all of 0..n (a `usize`), or a list of them.
/// A trait, so that the whole sum's loop compiles without the list's load.
trait Steps: Copy {
    fn len(self) -> usize;
    /// The step taken s-th. # Safety: s < len.
    unsafe fn at(self, s: usize) -> usize;
}

impl Steps for usize {
    fn len(self) -> usize {
        self
    }
    unsafe fn at(self, s: usize) -> usize {
        s
    }
}

impl Steps for &[usize] {
    fn len(self) -> usize {
        <[usize]>::len(self)
    }
    unsafe fn at(self, s: usize) -> usize {
        // SAFETY: s < len (the caller's contract).
        unsafe { *self.get_unchecked(s) }
    }
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

/// Columns `cols` of rows `span` of C += A B (the rows of C, or the entries of the list
/// `rows`), in segments of 64 columns (4 registers) by blocks of 4 rows; a segment narrower
/// than 64 goes 16 columns at a time, the last masked. Each sum walks `steps`.
///
/// # Safety
/// AVX-512 present; A and B's views in bounds, C points to A.rows x ldc values; `cols`
/// within 0..ldc, `span` within 0..A.rows or the list; the rows listed below A.rows and the
/// steps below A.cols.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn a_b_band(
    a: Mat,
    b: Mat,
    c: *mut f32,
    ldc: usize,
    cols: Range<usize>,
    span: Range<usize>,
    rows: Option<&[usize]>,
    steps: impl Steps,
) {
    let (rsa, csa, ldb) = (a.rs, a.cs, b.rs);
    let row = |i: usize| rows.map_or(i, |rows| rows[i]);
    for j in cols.clone().step_by(WIDE) {
        let width = WIDE.min(cols.end - j);
        for i in span.clone().step_by(ROWS) {
            let height = ROWS.min(span.end - i);
            // SAFETY (every call): the rows of A and C named, and columns j .. j + width of B
            // and C, lie inside them (the caller's contract); masked lanes touch nothing.
            unsafe {
                let b = b.data.as_ptr().add(j);
                // Where row r of the block starts in A, and where it meets column j in C.
                let a_row = |r: usize| a.data.as_ptr().add(row(i + r) * rsa);
                let c_row = |r: usize| c.add(row(i + r) * ldc + j);
                // The rows past the last whole block of 4 go as blocks of one row.
                if width == WIDE {
                    match height {
                        ROWS => scaled_rows::<ROWS, 4>(
                            std::array::from_fn(a_row),
                            csa,
                            steps,
                            b,
                            ldb,
                            std::array::from_fn(c_row),
                            !0,
                        ),
                        _ => (0..height)
                            .for_each(|r| scaled_rows::<1, 4>([a_row(r)], csa, steps, b, ldb, [c_row(r)], !0)),
                    }
                } else {
                    for q in (0..width).step_by(LANES) {
                        let (b, mask) = (b.add(q), lanes_below((width - q).min(LANES)));
                        match height {
                            ROWS => scaled_rows::<ROWS, 1>(
                                std::array::from_fn(a_row),
                                csa,
                                steps,
                                b,
                                ldb,
                                std::array::from_fn(|r| c_row(r).add(q)),
                                mask,
                            ),
                            _ => (0..height).for_each(|r| {
                                scaled_rows::<1, 1>([a_row(r)], csa, steps, b, ldb, [c_row(r).add(q)], mask)
                            }),
                        }
                    }
                }
            }
        }
    }
}

/// C[r][..] += sum_t A[r][t] B[t][..] over the steps t of `steps`, for an R x (C x 16)
/// block, the lanes of `mask` in each register: row r of A at `a[r]` (its values `csa`
/// apart), row t of B at `b + t * ldb`, row r of C at `c[r]`. The sums start at zero and are
/// added into C at the end.
///
/// # Safety
/// Every element named above valid (C's for writing); AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn scaled_rows<const R: usize, const C: usize>(
    a: [*const f32; R],
    csa: usize,
    steps: impl Steps,
    b: *const f32,
    ldb: usize,
    c: [*mut f32; R],
    mask: __mmask16,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut sums = [[_mm512_setzero_ps(); C]; R];
        for s in 0..steps.len() {
            let t = steps.at(s);
            let bs: [__m512; C] = std::array::from_fn(|q| _mm512_maskz_loadu_ps(mask, b.add(t * ldb + q * LANES)));
            for (row, a) in sums.iter_mut().zip(a) {
                let ar = _mm512_set1_ps(*a.add(t * csa));
                for (sum, &bq) in row.iter_mut().zip(&bs) {
                    *sum = _mm512_fmadd_ps(ar, bq, *sum);
                }
            }
        }
        for (row, c) in sums.iter().zip(c) {
            for (q, &s) in row.iter().enumerate() {
                let at = c.add(q * LANES);
                _mm512_mask_storeu_ps(at, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, at), s));
            }
        }
    }
}

/// dst (cols x rows) = src (rows x cols)^T, both row-major, in tiles of 16 x 16 (`tile_16`)
/// and the values past the last whole tile one at a time; parallel over bands of 16 rows of
/// dst. The linear layer's forward product runs on x^T, and gives y^T.
///
/// # Panics
/// If the processor lacks AVX-512 (check `applies` first) or the sizes do not fit.
pub fn par_transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(applies(), "thin::par_transpose needs AVX-512; check thin::applies() first");
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "transpose: {} and {} values for {rows} x {cols}",
        src.len(),
        dst.len()
    );
    if rows == 0 || cols == 0 {
        return;
    }
    dst.par_chunks_mut(LANES * rows).enumerate().for_each(|(band, dst)| {
        // Rows first.. of dst, columns first.. of src.
        let (first, width) = (band * LANES, dst.len() / rows);
        let whole = if width == LANES { rows - rows % LANES } else { 0 };
        for r in (0..whole).step_by(LANES) {
            // SAFETY: AVX-512 is present (asserted above); rows r .. r + 16 of src hold
            // columns first .. first + 16, and rows 0 .. 16 of this band of dst columns
            // r .. r + 16 (rows of dst are `rows` long).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                tile_16(src.as_ptr().add(r * cols + first), cols, dst.as_mut_ptr().add(r), rows)
            }
        }
        for (c, dst) in dst.chunks_exact_mut(rows).enumerate() {
            for (r, d) in dst.iter_mut().enumerate().skip(whole) {
                *d = src[r * cols + first + c];
            }
        }
    });
}

/// The 16 x 16 block at src (rows `lds` apart), transposed into the one at dst (rows `ldd`
/// apart): 16 loads, four rounds of 16 shuffles, 16 stores. A register is four 128-bit
/// chunks of 4 values; what register i holds after each round, for rows r of src and
/// columns c of src (chunk l of 4):
///
/// ```text
///     round 1  t: i = 2p + e: rows 2p and 2p+1 interleaved, columns 4l, 4l+1 (e = 0) or 4l+2, 4l+3
///     round 2  u: i = 4g + c, c < 4: column 4l + c of rows 4g .. 4g+3 in chunk l
///     round 3  v: i = 8h + c, c < 8: columns c and c + 8 of rows 8h .. 8h+7
///     round 4     column i of rows 0 .. 15, which is row i of dst
/// ```
///
/// # Safety
/// 16 rows of 16 values at src and at dst valid (dst's for writing); AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_16(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
    // SAFETY: the caller's contract; the rest is register arithmetic.
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * lds)));
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // u[4g + c]: from t[4g + (0 or 1)] and t[4g + (2 or 3)], the low or high 64 bits.
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (g, c) = (i / 4, i % 4);
            let (a, b) = (t[4 * g + c / 2], t[4 * g + 2 + c / 2]);
            if c % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(a, b)
            } else {
                _mm512_shuffle_ps::<0xEE>(a, b)
            }
        });
        // v[8h + c]: chunks 0 and 2 (c < 4) or 1 and 3 (c >= 4) of u[8h + c % 4] and u[8h + 4 + c % 4].
        let v: [__m512; 16] = std::array::from_fn(|i| {
            let (h, c) = (i / 8, i % 8);
            let (a, b) = (u[8 * h + c % 4], u[8 * h + 4 + c % 4]);
            if c < 4 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xDD>(a, b)
            }
        });
        // Row i of dst: column i of src, from v[i % 8] and v[8 + i % 8], chunks 0 and 2 (i < 8) or 1 and 3.
        for i in 0..16 {
            let (a, b) = (v[i % 8], v[8 + i % 8]);
            let row = if i < 8 { _mm512_shuffle_f32x4::<0x88>(a, b) } else { _mm512_shuffle_f32x4::<0xDD>(a, b) };
            _mm512_storeu_ps(dst.add(i * ldd), row);
        }
    }
}

/// The mask of the lowest `count` lanes (1 to 16).
#[cfg(target_arch = "x86_64")]
fn lanes_below(count: usize) -> __mmask16 {
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
mod tests {
    use super::*;
    use crate::cpu::gemm::exact::{assert_close, reference, values};

    /// The shapes cover every kind of block and edge: rows below, at and past a block of 4;
    /// depths below, at and past 16 lanes; widths below, at and past 16 and 64 columns.
    const SHAPES: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (3, 15, 5),
        (4, 16, 4),
        (5, 17, 3),
        (64, 30, 128),
        (67, 784, 33),
        (8, 900, 21),
        (2, 48, 70),
        (9, 64, 100),
    ];

    /// The 16 trees at once give each sum's bits as `add_lanes` alone does, in lane 4r + c.
    #[test]
    fn sixteen_sums_added_across_at_once_are_each_added_across() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512");
            return;
        }
        // Values of mixed sizes, so that pairs added in another order would round differently.
        let lanes: Vec<f32> =
            values(ROWS * ROWS * LANES, 7).iter().enumerate().map(|(i, v)| v * [1.0, 1e-3, 1e3, 3e-7][i % 4]).collect();
        // SAFETY: AVX-512 is present (checked above); each load reads 16 of the values.
        unsafe {
            let sums: [[__m512; ROWS]; ROWS] = std::array::from_fn(|r| {
                std::array::from_fn(|c| _mm512_loadu_ps(lanes[(ROWS * r + c) * LANES..].as_ptr()))
            });
            let mut got = [0.0f32; ROWS * ROWS];
            _mm512_storeu_ps(got.as_mut_ptr(), add_lanes_4x4(&sums));
            for (q, got) in got.iter().enumerate() {
                assert_eq!(got.to_bits(), add_lanes(sums[q / ROWS][q % ROWS]).to_bits(), "sum {q}");
            }
        }
    }

    #[test]
    fn x_wt_matches_f64_sums_on_every_edge() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512, so linear layers take par_gemm");
            return;
        }
        for (m, k, n) in SHAPES {
            let (x, w, start) = (values(m * k, 1), values(n * k, 2), values(m * n, 3));
            let mut y = start.clone();
            par_x_wt(&x, &w, &mut y, k, n);
            let want = reference(Mat::new(&x, m, k), Mat::new(&w, n, k).t(), &start);
            assert_close(&format!("x W^T {m}x{k}x{n}"), &y, want, k);
        }
    }

    /// Both uses: A as stored (dout W) and A transposed (dout^T x).
    #[test]
    fn a_b_matches_f64_sums_on_every_edge() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512, so linear layers take par_gemm");
            return;
        }
        for (m, depth, n) in SHAPES {
            let (a, b, start) = (values(m * depth, 4), values(depth * n, 5), values(m * n, 6));
            for a_view in [Mat::new(&a, m, depth), Mat::new(&a, depth, m).t()] {
                let mut c = start.clone();
                par_a_b(a_view, Mat::new(&b, depth, n), &mut c);
                let want = reference(a_view, Mat::new(&b, depth, n), &start);
                assert_close(
                    &format!("A B {m}x{depth}x{n}, A strides ({}, {})", a_view.rs, a_view.cs),
                    &c,
                    want,
                    depth,
                );
            }
        }
    }

    /// Rows and steps left out where A is zero: the same bits as the whole product, and the
    /// rows of C not listed untouched. Every third row (or column) of A is zero and left out,
    /// and on the shapes with more than 4 of them so is the whole first block of 4. A is
    /// taken as stored and transposed (dW lists rows of dout^T, dx steps of dout).
    #[test]
    fn terms_left_out_where_a_is_zero_change_no_bit() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512");
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let kept = |i: usize, len: usize| i % 3 != 1 && !(len > 4 && i < 4);
        for (m, depth, n) in SHAPES {
            let (b, start) = (values(depth * n, 5), values(m * n, 6));
            let b = Mat::new(&b, depth, n);
            let rows: Vec<usize> = (0..m).filter(|&i| kept(i, m)).collect();
            let steps: Vec<usize> = (0..depth).filter(|&t| kept(t, depth)).collect();
            let full = values(m * depth, 4);
            for (terms, by_rows) in [(Terms::Rows(&rows), true), (Terms::Steps(&steps), false)] {
                // A (m x depth), zero in the rows or columns left out, stored as is and transposed.
                let at = |i: usize, t: usize| {
                    if (by_rows && !kept(i, m)) || (!by_rows && !kept(t, depth)) {
                        0.0
                    } else {
                        full[i * depth + t]
                    }
                };
                let stored: Vec<f32> = (0..m * depth).map(|e| at(e / depth, e % depth)).collect();
                let transposed: Vec<f32> = (0..depth * m).map(|e| at(e % m, e / m)).collect();
                for a in [Mat::new(&stored, m, depth), Mat::new(&transposed, depth, m).t()] {
                    let (mut all, mut some) = (start.clone(), start.clone());
                    par_a_b(a, b, &mut all);
                    par_a_b_terms(a, b, &mut some, terms);
                    assert_eq!(bits(&all), bits(&some), "{terms:?} of {m}x{depth}x{n}, A strides ({}, {})", a.rs, a.cs);
                }
            }
        }
    }

    /// A list out of order, or naming a row past A's, is refused, not computed.
    #[test]
    fn lists_out_of_order_or_past_the_end_are_refused() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512");
            return;
        }
        let (a, b) = (values(8 * 4, 1), values(4 * 16, 2));
        for terms in
            [Terms::Rows(&[3, 1]), Terms::Rows(&[2, 2]), Terms::Rows(&[8]), Terms::Steps(&[1, 0]), Terms::Steps(&[4])]
        {
            let refused = std::panic::catch_unwind(|| {
                par_a_b_terms(Mat::new(&a, 8, 4), Mat::new(&b, 4, 16), &mut vec![0.0; 8 * 16], terms)
            });
            let message =
                refused.expect_err("a bad list was taken").downcast::<String>().map(|m| *m).unwrap_or_default();
            assert!(message.contains("must increase"), "{terms:?}: {message}");
        }
    }

    /// Against the definition, on whole tiles, ragged edges and the layers' shapes.
    #[test]
    fn transpose_moves_every_value_to_its_place() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512");
            return;
        }
        for (rows, cols) in
            [(1, 1), (16, 16), (17, 33), (5, 16), (16, 5), (32, 48), (64, 784), (64, 900), (900, 64), (30, 64)]
        {
            let src = values(rows * cols, 9);
            let mut dst = vec![f32::NAN; rows * cols];
            par_transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r].to_bits(), src[r * cols + c].to_bits(), "{rows}x{cols}: ({r}, {c})");
                }
            }
        }
    }

    /// The same bits on 1 and 3 threads (bands of other widths and places).
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !applies() {
            eprintln!("skipped: this processor has no AVX-512");
            return;
        }
        let (m, k, n) = (64, 784, 100);
        let (x, w) = (values(m * k, 7), values(n * k, 8));
        let steps: Vec<usize> = (0..k).filter(|t| t % 3 != 0).collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (mut y, mut dx, mut dw) = (vec![0.5; m * n], vec![0.5; m * k], vec![0.5; n * k]);
            let (mut xt, mut yt) = (vec![0.0; k * m], vec![0.5; n * m]);
            pool.install(|| {
                par_x_wt(&x, &w, &mut y, k, n);
                par_a_b(Mat::new(&y, m, n), Mat::new(&w, n, k), &mut dx);
                par_a_b(Mat::new(&y, m, n).t(), Mat::new(&x, m, k), &mut dw);
                // The forward transposed: C 64 columns wide, in bands of rows.
                par_transpose(&x, m, k, &mut xt);
                par_a_b_terms(Mat::new(&w, n, k), Mat::new(&xt, k, m), &mut yt, Terms::Steps(&steps));
            });
            [y, dx, dw, yt].map(|v| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        };
        assert_eq!(run(1), run(3));
    }
}
