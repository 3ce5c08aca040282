//! Matrix products: the one primitive that carries almost all the arithmetic.
//!
//! `gemm` computes C = A B + beta C for row-major C (m x n), with A (m x k) and B (k x n)
//! each described by a slice and two strides, so that a transpose is free: A^T is the same
//! slice with its row and column strides swapped (`Mat::t`). The inner kernel is
//! `matrixmultiply`'s packed, cache-blocked, SIMD sgemm (dgemm for f64, which PCA uses).
//!
//! `par_gemm` splits C into bands of rows (or of columns) and gives each band to a rayon task.
//! Each band is an independent product (A's rows for that band times all of B, or all of A
//! times B's columns for that band), so the bands are disjoint writes and every element of C
//! is computed by the same kernel over the same k order: the result does not depend on the
//! number of threads. Callers that already run in parallel
//! (conv, over the batch) call `gemm` instead: one level of parallelism.

use rayon::prelude::*;

/// The element types of the products: f32 for the networks, f64 for PCA's covariance.
pub trait Scalar: Copy + Send + Sync {
    /// matrixmultiply's kernel for this type, with its arguments (sgemm or dgemm).
    ///
    /// # Safety
    /// As `matrixmultiply::sgemm`: every element the strides reach is valid, and C is
    /// writable and aliases neither A nor B.
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Scalar for f32 {
    unsafe fn kernel(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: the caller's contract is sgemm's.
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

impl Scalar for f64 {
    unsafe fn kernel(
        m: usize,
        k: usize,
        n: usize,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: the caller's contract is dgemm's.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T = f32> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose: same storage, strides swapped.
    pub fn t(self) -> Self {
        Mat { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Rows `r0 .. r0 + count`.
    pub(super) fn rows_from(self, r0: usize, count: usize) -> Self {
        let empty = count == 0 || self.cols == 0;
        Mat { data: if empty { &[] } else { &self.data[r0 * self.rs..] }, rows: count, ..self }
    }

    /// Columns `c0 .. c0 + count`. An empty view holds no storage: a matrix of no rows (the
    /// live rows of a layer whose every unit is dead) has none to offset into.
    pub(super) fn cols_from(self, c0: usize, count: usize) -> Self {
        let empty = count == 0 || self.rows == 0;
        Mat { data: if empty { &[] } else { &self.data[c0 * self.cs..] }, cols: count, ..self }
    }

    /// Every element this view can touch lies inside `data`: what makes the raw call sound.
    pub(super) fn check_bounds(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(
                last < self.data.len(),
                "matrix view {}x{} (strides {}, {}) overruns {} values",
                self.rows,
                self.cols,
                self.rs,
                self.cs,
                self.data.len()
            );
        }
    }
}

/// C (m x n, row-major) = A B + beta C, single-threaded. `beta` is 0 (overwrite; C need not
/// be initialised) or 1 (accumulate, as backward rules do).
pub fn gemm<T: Scalar>(a: Mat<T>, b: Mat<T>, beta: T, c: &mut [T]) {
    let (m, n) = (a.rows, b.cols);
    assert_eq!(c.len(), m * n, "gemm: C must hold {m}x{n} values");
    gemm_block(a, b, beta, c, n);
}

/// `gemm` into a block of a larger row-major matrix: C is the m x n block at the start of
/// `c`, whose rows are `ldc` apart (PCA adds products into blocks of its Gram matrix).
pub fn gemm_block<T: Scalar>(a: Mat<T>, b: Mat<T>, beta: T, c: &mut [T], ldc: usize) {
    let (m, n) = (a.rows, b.cols);
    assert!(
        n <= ldc && (m == 0 || n == 0 || (m - 1) * ldc + n <= c.len()),
        "gemm: a {m}x{n} block with row stride {ldc} overruns {} values",
        c.len()
    );
    // SAFETY: the block lies inside c (checked above), which is borrowed mutably, so
    // nothing else reads or writes it meanwhile.
    unsafe { gemm_into(a, b, beta, c.as_mut_ptr(), ldc) }
}

/// The product into the m x n block of row-major storage at `c` with row stride `ldc`.
///
/// # Safety
/// `c` must point to storage in which every `c + i * ldc + j` (i < m, j < n) is valid for
/// reads and writes, and no other thread may touch those elements during the call.
unsafe fn gemm_into<T: Scalar>(a: Mat<T>, b: Mat<T>, beta: T, c: *mut T, ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: A is {m}x{k} but B is {}x{n}", b.rows);
    a.check_bounds();
    b.check_bounds();
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the bounds of A and B were checked above, C's by the caller, and C cannot
    // alias A or B (the caller holds it mutably).
    unsafe {
        T::kernel(
            m,
            k,
            n,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c,
            ldc as isize,
            1,
        );
    }
}

/// A pointer that may cross to rayon's threads: the tasks of `par_gemm` and of `thin`'s
/// products write disjoint bands (of columns, or of rows) of one matrix through it.
#[derive(Clone, Copy)]
pub(super) struct SendPtr(pub(super) *mut f32);
// SAFETY: only used by `par_gemm` and `thin`, whose tasks write disjoint elements.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Through a method, so that a closure captures the whole `SendPtr` (which is `Send`)
    /// rather than its raw-pointer field (which is not).
    pub(super) fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay inside the matrix the pointer was taken from.
        unsafe { self.0.add(offset) }
    }
}

/// `gemm` with C split into bands across the rayon pool, along its longer side: each task
/// packs (copies into the kernel's cache-friendly layout) only its own slice of the operand
/// that side comes from. Splitting a 64 x 512 output by rows would make every task pack all
/// of the 784 x 512 weight matrix; splitting by columns packs each part once.
pub fn par_gemm(a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    let (m, n) = (a.rows, b.cols);
    assert_eq!(c.len(), m * n, "par_gemm: C must hold {m}x{n} values");
    // SAFETY: c holds the m x n values, and is borrowed mutably for the call.
    unsafe { par_gemm_into(a, b, beta, c.as_mut_ptr()) }
}

/// C = A B into a new buffer, `par_gemm` with beta = 0: matrixmultiply then writes every value
/// of C without reading it ("if beta is zero, C does not need to be initialized"), so the
/// buffer is not cleared first, a pass over memory saved (a first gradient, `cpu::linear`).
/// The same bits as `par_gemm` onto zeros with beta = 1: each sum starts from +0 and cannot
/// end at -0, so adding it to a zero changes nothing.
pub fn par_gemm_new(a: Mat, b: Mat) -> Vec<f32> {
    let len = a.rows * b.cols;
    let mut c = Vec::with_capacity(len);
    // SAFETY: the capacity holds the m x n values, which nothing else can see; with beta = 0
    // the product writes each of them once, so all are set before the length says so.
    unsafe {
        par_gemm_into(a, b, 0.0, c.as_mut_ptr());
        c.set_len(len);
    }
    c
}

/// The product of `par_gemm` into the m x n row-major storage at `c`.
///
/// # Safety
/// `c` must be valid for writes of m x n values (and reads, unless beta is 0), which no other
/// thread touches during the call.
unsafe fn par_gemm_into(a: Mat, b: Mat, beta: f32, c: *mut f32) {
    let (m, n) = (a.rows, b.cols);
    // Bands of at least 16 rows or columns: below that, a task's share of the arithmetic no
    // longer pays for packing the other operand again.
    let band = m.max(n).div_ceil(rayon::current_num_threads()).max(16);
    let c = SendPtr(c);
    // SAFETY (each call below): a band of rows, or of columns, of C lies inside the m x n
    // values at c (the caller's contract), C's rows are n apart, and the bands are disjoint,
    // so no two tasks touch the same value.
    if band >= m.max(n) || m == 0 || n == 0 {
        unsafe { gemm_into(a, b, beta, c.0, n) }
    } else if m >= n {
        for_each_band(m, 1, 16, |rows| unsafe {
            gemm_into(a.rows_from(rows.start, rows.len()), b, beta, c.at(rows.start * n), n)
        });
    } else {
        for_each_band(n, 1, 16, |cols| unsafe {
            gemm_into(a, b.cols_from(cols.start, cols.len()), beta, c.at(cols.start), n)
        });
    }
}

/// Splits `0..n` (columns, or rows) into one band per thread, each a multiple of `unit` wide
/// and at least `min` (below that a task no longer pays for itself), and runs `band` on each
/// across the rayon pool: `par_gemm`'s column bands, and `thin`'s bands of columns or rows.
pub(super) fn for_each_band(n: usize, unit: usize, min: usize, band: impl Fn(std::ops::Range<usize>) + Sync) {
    let width = n.div_ceil(rayon::current_num_threads()).next_multiple_of(unit).max(min);
    (0..n.div_ceil(width)).into_par_iter().for_each(|b| band(b * width..n.min((b + 1) * width)));
}

/// Exact sums for the tests of the products here and in `thin` and `linear`.
#[cfg(test)]
pub(crate) mod exact {
    use super::Mat;

    /// `len` fixed values in [-1, 1], a different run of them for each seed.
    pub(crate) fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104729) % 2003) as f32 / 1001.0 - 1.0).collect()
    }

    /// C + A B in f64, and the sizes of its terms (the scale of f32's rounding error).
    pub(crate) fn reference(a: Mat, b: Mat, c: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (m, depth, n) = (a.rows, a.cols, b.cols);
        let at = |m: Mat, i: usize, j: usize| m.data[i * m.rs + j * m.cs] as f64;
        let (mut want, mut size) = (vec![0.0; m * n], vec![0.0; m * n]);
        for i in 0..m {
            for j in 0..n {
                let terms = (0..depth).map(|t| at(a, i, t) * at(b, t, j));
                want[i * n + j] = c[i * n + j] as f64 + terms.clone().sum::<f64>();
                size[i * n + j] = c[i * n + j].abs() as f64 + terms.map(f64::abs).sum::<f64>();
            }
        }
        (want, size)
    }

    /// Within f32 rounding of a sum of `depth` terms, relative to the terms' sizes.
    pub(crate) fn assert_close(what: &str, got: &[f32], (want, size): (Vec<f64>, Vec<f64>), depth: usize) {
        for (e, ((&g, w), s)) in got.iter().zip(&want).zip(&size).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 2e-7 * s * (depth as f64).sqrt() + 1e-30,
                "{what}: element {e} is {g}, want {w}"
            );
        }
    }
}
