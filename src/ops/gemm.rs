//! Matrix products: the one primitive that carries almost all the arithmetic.
//!
//! `gemm` computes C = A B + beta C for row-major C (m x n), with A (m x k) and B (k x n)
//! each described by a slice and two strides, so that a transpose is free: A^T is the same
//! slice with its row and column strides swapped (`Mat::t`). The inner kernel is
//! `matrixmultiply`'s packed, cache-blocked, SIMD sgemm.
//!
//! `par_gemm` splits C into bands of rows (or of columns) and gives each band to a rayon task.
//! Each band is an independent product (A's rows for that band times all of B, or all of A
//! times B's columns for that band), so the bands are disjoint writes and every element of C
//! is computed by the same kernel over the same k order: the result does not depend on the
//! number of threads. Callers that already run in parallel
//! (conv, over the batch) call `gemm` instead: one level of parallelism.

use rayon::prelude::*;

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose: same storage, strides swapped.
    pub fn t(self) -> Mat<'a> {
        Mat { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Rows `r0 .. r0 + count`.
    fn rows_from(self, r0: usize, count: usize) -> Mat<'a> {
        Mat { data: &self.data[r0 * self.rs..], rows: count, ..self }
    }

    /// Columns `c0 .. c0 + count`.
    fn cols_from(self, c0: usize, count: usize) -> Mat<'a> {
        Mat { data: &self.data[c0 * self.cs..], cols: count, ..self }
    }

    /// Every element this view can touch lies inside `data`: what makes the raw call sound.
    fn check_bounds(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view {}x{} (strides {}, {}) overruns {} values", self.rows, self.cols, self.rs, self.cs, self.data.len());
        }
    }
}

/// C (m x n, row-major) = A B + beta C, single-threaded. `beta` is 0 (overwrite; C need not
/// be initialised) or 1 (accumulate, as backward rules do).
pub fn gemm(a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: A is {m}x{k} but B is {}x{n}", b.rows);
    assert_eq!(c.len(), m * n, "gemm: C must hold {m}x{n} values");
    a.check_bounds();
    b.check_bounds();
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the bounds of A and B were checked above, C is exactly m x n with row stride n,
    // and the three slices cannot alias (C is borrowed mutably).
    unsafe {
        matrixmultiply::sgemm(
            m, k, n,
            1.0,
            a.data.as_ptr(), a.rs as isize, a.cs as isize,
            b.data.as_ptr(), b.rs as isize, b.cs as isize,
            beta,
            c.as_mut_ptr(), n as isize, 1,
        );
    }
}

/// `gemm` with C split into bands across the rayon pool, along its longer side: each task
/// packs (copies into the kernel's cache-friendly layout) only its own slice of the operand
/// that side comes from. Splitting a 64 x 512 output by rows would make every task pack all
/// of the 784 x 512 weight matrix; splitting by columns packs each part once.
pub fn par_gemm(a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    let (m, n) = (a.rows, b.cols);
    assert_eq!(c.len(), m * n, "par_gemm: C must hold {m}x{n} values");
    let threads = rayon::current_num_threads();
    // Bands of at least 16 rows or columns: below that, a task's share of the arithmetic no
    // longer pays for packing the other operand again.
    let band = m.max(n).div_ceil(threads).max(16);
    if band >= m.max(n) || m == 0 || n == 0 {
        gemm(a, b, beta, c)
    } else if m >= n {
        c.par_chunks_mut(band * n).enumerate().for_each(|(i, c_band)| {
            gemm(a.rows_from(i * band, c_band.len() / n), b, beta, c_band);
        });
    } else {
        // A band of columns is not contiguous in row-major C, so each task computes into a
        // buffer of its own (starting from C's values when accumulating), copied back after.
        let starts: Vec<usize> = (0..n).step_by(band).collect();
        let c_in: &[f32] = c;
        let bands: Vec<Vec<f32>> = starts
            .par_iter()
            .map(|&j0| {
                let width = band.min(n - j0);
                let mut part: Vec<f32> = if beta == 0.0 { vec![0.0; m * width] } else { c_in.chunks_exact(n).flat_map(|row| &row[j0..j0 + width]).copied().collect() };
                gemm(a, b.cols_from(j0, width), beta, &mut part);
                part
            })
            .collect();
        for (&j0, part) in starts.iter().zip(&bands) {
            let width = part.len() / m;
            for (row, src) in c.chunks_exact_mut(n).zip(part.chunks_exact(width)) {
                row[j0..j0 + width].copy_from_slice(src);
            }
        }
    }
}
