//! C += A B with B's rows contiguous, as scaled rows of B added up: `thin`'s second kernel
//! (see `thin.rs` for the mathematics), used for a linear layer's two gradients and for its
//! forward computed transposed. AVX-512 only, like `thin`.

use super::gemm::{for_each_band, Mat, SendPtr};
use super::thin::{applies, lanes_below, LANES, ROWS, WIDE};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::ops::Range;

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
