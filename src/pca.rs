//! Principal component analysis: the covariance of the data, its eigenvectors by cyclic
//! Jacobi (`jacobi.rs`), and projection onto the leading ones.
//!
//! # The mathematics
//!
//! For n samples x_i in R^d (rows of X, n x d) with mean mu, the covariance is
//!
//! ```text
//! C = (X - 1 mu^T)^T (X - 1 mu^T) / (n - 1)          (d x d, symmetric, positive semidefinite)
//! ```
//!
//! divided by n - 1 as scikit-learn does. Its eigen-decomposition `C = V diag(lambda) V^T`
//! (lambda descending) gives the principal directions: v_1 is the direction of largest
//! variance lambda_1, v_2 the largest orthogonal to v_1, and so on. With the k leading
//! eigenvectors as the rows of W (k x d):
//!
//! ```text
//! code:           z   = W (x - mu)              (k)
//! reconstruction: x^  = mu + W^T z             (d)
//! residual:       sum_i ||x_i - x^_i||^2 = (n - 1) * sum_{j > k} lambda_j
//! ```
//!
//! so the mean squared error over all n*d pixels is `(n - 1) / (n d) * sum_{j > k} lambda_j`,
//! and no other k-dimensional affine subspace fits the training data better (Eckart-Young).
//!
//! # Shapes
//!
//! x: n x d row-major f32; mean: d; covariance: d x d row-major f64; components: k x d
//! row-major f32, unit rows; codes: n x k; reconstructions: n x d.
//!
//! # A tiny example to check by hand
//!
//! The three points (0, 0), (1, 1), (2, 2) have mean (1, 1) and covariance [[1, 1], [1, 1]]
//! (sum of squares 2, divided by n - 1 = 2). Its eigenvalues are 2 and 0 with eigenvectors
//! (1, 1)/sqrt(2) and (1, -1)/sqrt(2); with k = 1 the codes are -sqrt(2), 0, sqrt(2) and
//! the reconstruction is exact, as the points lie on a line.

use crate::cpu::gemm::{gemm, gemm_block, Mat};
use rayon::prelude::*;

pub use crate::jacobi::{jacobi_eigen, SymmetricEigen};

/// Rows per slab of the covariance sum: the unit of parallel work and of the fixed-order
/// reduction. A constant, not a function of the thread count, so neither is the rounding.
const SLAB_ROWS: usize = 4096;
/// Rows centred (and converted to f64) at a time inside a slab: 1024 x 784 x 8 B = 6.4 MB.
const CHUNK_ROWS: usize = 1024;
/// Width of the column blocks of the covariance. Only blocks on or above the diagonal are
/// multiplied (the rest is mirrored), 0.58 of the full product for d = 784.
const COLUMN_BLOCK: usize = 128;
/// Rows per task in `project`, `reconstruct` and `reconstruction_mse`.
const PROJECT_ROWS: usize = 512;
/// Jacobi stops when off(C) <= JACOBI_TOL * ||C||_F: eigenvalues and eigenvectors are then
/// good far beyond the f32 in which the components are kept, even across small gaps.
const JACOBI_TOL: f64 = 1e-12;
/// A safety stop; covariance matrices of a few hundred dimensions take 8 to 12 sweeps.
const JACOBI_MAX_SWEEPS: usize = 50;

/// Mean (d) and covariance (d x d row-major, divided by n - 1) of the n x d row-major `x`.
///
/// Why f64 (dgemm) rather than f32 (sgemm, even with f64 sums per chunk): in f32 the centred
/// values alone carry a relative error of 6e-8 and each partial sum of products another
/// 1e-7 to 1e-6, so every entry would be off by about 1e-7 of the largest. MNIST's spectrum
/// falls from 5.1 to 1e-8 before the exact zeros of its always-black pixels, and its last
/// hundred or so eigenvalues would be noise. In f64 the errors are 1e-16 relative, for about
/// twice the cost of sgemm (0.6 s for 60,000 x 784 on two cores).
///
/// Parallel over fixed slabs of rows; each slab's partial sum is kept and the partials are
/// added in slab order, so the result is bit-identical for any number of threads.
pub fn covariance(x: &[f32], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(x.len(), n * d, "covariance: x has {} values, expected n*d = {n}*{d}", x.len());
    assert!(n >= 2, "covariance: needs at least 2 samples to divide by n - 1, got {n}");

    let slab_sums: Vec<Vec<f64>> = x
        .par_chunks(SLAB_ROWS * d)
        .map(|slab| {
            let mut sum = vec![0.0; d];
            for row in slab.chunks(d) {
                sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
            }
            sum
        })
        .collect();
    let mut mean = vec![0.0; d];
    for sum in &slab_sums {
        mean.iter_mut().zip(sum).for_each(|(m, s)| *m += s);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);

    // Centre before multiplying: X^T X - n mu mu^T would subtract two large numbers.
    let slab_grams: Vec<Vec<f64>> = x
        .par_chunks(SLAB_ROWS * d)
        .map(|slab| {
            let mut gram = vec![0.0; d * d];
            let mut centred = vec![0.0; CHUNK_ROWS * d];
            for chunk in slab.chunks(CHUNK_ROWS * d) {
                let rows = chunk.len() / d;
                for (row_c, row_x) in centred.chunks_mut(d).zip(chunk.chunks(d)) {
                    for ((c, &v), m) in row_c.iter_mut().zip(row_x).zip(&mean) {
                        *c = v as f64 - m;
                    }
                }
                let centred_t = Mat::new(&centred[..rows * d], rows, d).t(); // d x rows
                for j0 in (0..d).step_by(COLUMN_BLOCK) {
                    let j1 = (j0 + COLUMN_BLOCK).min(d);
                    // gram[0..j1, j0..j1] += centred[:, 0..j1]^T centred[:, j0..j1]
                    let a = Mat { rows: j1, ..centred_t };
                    let b = Mat { data: &centred[j0..], rows, cols: j1 - j0, rs: d, cs: 1 };
                    gemm_block(a, b, 1.0, &mut gram[j0..], d);
                }
            }
            gram
        })
        .collect();
    let mut cov = vec![0.0; d * d];
    for gram in &slab_grams {
        cov.iter_mut().zip(gram).for_each(|(c, g)| *c += g);
    }
    for i in 0..d {
        for j in i..d {
            cov[i * d + j] /= (n - 1) as f64;
            cov[j * d + i] = cov[i * d + j]; // mirror the upper triangle: exactly symmetric
        }
    }
    (mean, cov)
}

/// A fitted PCA: `z = W (x - mean)` and `x^ = mean + W^T z`, W = `components`.
#[derive(Clone, Debug)]
pub struct Pca {
    /// The training mean, d.
    pub mean: Vec<f32>,
    /// k x d row-major: row j is the unit eigenvector of the j-th largest eigenvalue, signed so
    /// that its largest-magnitude entry is positive (eigenvectors are defined up to sign; this
    /// keeps pictures of them from flipping between runs or machines).
    pub components: Vec<f32>,
    /// The k largest eigenvalues of the covariance (variances along the components), k.
    pub explained_variance: Vec<f64>,
    /// Jacobi sweeps the fit took.
    pub sweeps: usize,
}

impl Pca {
    /// Fit k components to the n x d row-major `x`.
    pub fn fit(x: &[f32], n: usize, d: usize, k: usize) -> Pca {
        assert!(k <= d, "Pca::fit: k = {k} components asked of d = {d} dimensions");
        let (mean, cov) = covariance(x, n, d);
        let eigen = jacobi_eigen(&cov, d, JACOBI_TOL, JACOBI_MAX_SWEEPS);
        let mut components = Vec::with_capacity(k * d);
        for j in 0..k {
            let v = eigen.vector(j);
            // The first entry of largest magnitude decides the sign.
            let big = v.iter().fold(0.0, |big: f64, &x| if x.abs() > big.abs() { x } else { big });
            let sign = if big < 0.0 { -1.0 } else { 1.0 };
            components.extend(v.iter().map(|&x| (sign * x) as f32));
        }
        Pca {
            mean: mean.iter().map(|&m| m as f32).collect(),
            components,
            explained_variance: eigen.values[..k].to_vec(),
            sweeps: eigen.sweeps,
        }
    }

    fn d(&self) -> usize {
        self.mean.len()
    }

    fn k(&self) -> usize {
        self.explained_variance.len()
    }

    /// Codes of `rows` rows: `codes = (x - mean) W^T`, (rows x d)(d x k).
    fn project_rows(&self, x: &[f32], codes: &mut [f32]) {
        let (d, k) = (self.d(), self.k());
        if k == 0 {
            return; // no components, no codes
        }
        let rows = x.len() / d;
        let mut centred = x.to_vec();
        for row in centred.chunks_mut(d) {
            row.iter_mut().zip(&self.mean).for_each(|(v, m)| *v -= m);
        }
        let w = Mat::new(&self.components, k, d);
        gemm(Mat::new(&centred, rows, d), w.t(), 0.0, codes);
    }

    /// Reconstructions of `rows` codes: `x^ = mean + codes W`, (rows x k)(k x d).
    fn reconstruct_rows(&self, codes: &[f32], out: &mut [f32]) {
        let (d, k) = (self.d(), self.k());
        let rows = out.len() / d;
        for row in out.chunks_mut(d) {
            row.copy_from_slice(&self.mean);
        }
        // With no components the reconstruction is the mean, and there is nothing to multiply.
        if k > 0 {
            let w = Mat::new(&self.components, k, d);
            gemm(Mat::new(codes, rows, k), w, 1.0, out);
        }
    }

    /// The n x k codes of the n x d row-major `x`. Parallel over slabs of rows.
    pub fn project(&self, x: &[f32], n: usize) -> Vec<f32> {
        let (d, k) = (self.d(), self.k());
        assert_eq!(x.len(), n * d, "Pca::project: x has {} values, expected n*d = {n}*{d}", x.len());
        let mut codes = vec![0.0; n * k];
        if k > 0 {
            // Each task owns one slab of codes and reads the matching slab of x.
            codes
                .par_chunks_mut(PROJECT_ROWS * k)
                .zip(x.par_chunks(PROJECT_ROWS * d))
                .for_each(|(codes, x)| self.project_rows(x, codes));
        }
        codes
    }

    /// The n x d reconstructions of the n x k `codes`. Parallel over slabs of rows.
    pub fn reconstruct(&self, codes: &[f32], n: usize) -> Vec<f32> {
        let (d, k) = (self.d(), self.k());
        assert_eq!(codes.len(), n * k, "Pca::reconstruct: codes has {} values, expected n*k = {n}*{k}", codes.len());
        let mut out = vec![0.0; n * d];
        out.par_chunks_mut(PROJECT_ROWS * d).enumerate().for_each(|(slab, out)| {
            let rows = out.len() / d;
            self.reconstruct_rows(&codes[slab * PROJECT_ROWS * k..][..rows * k], out);
        });
        out
    }

    /// Mean over all n*d entries of `(x - reconstruct(project(x)))^2`, summed in f64 per slab
    /// and the slabs added in order, so it does not depend on the thread count.
    pub fn reconstruction_mse(&self, x: &[f32], n: usize) -> f64 {
        let (d, k) = (self.d(), self.k());
        assert_eq!(x.len(), n * d, "Pca::reconstruction_mse: x has {} values, expected n*d = {n}*{d}", x.len());
        let slab_sums: Vec<f64> = x
            .par_chunks(PROJECT_ROWS * d)
            .map(|x| {
                let rows = x.len() / d;
                let mut codes = vec![0.0; rows * k];
                let mut out = vec![0.0; rows * d];
                self.project_rows(x, &mut codes);
                self.reconstruct_rows(&codes, &mut out);
                x.iter().zip(&out).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum()
            })
            .collect();
        slab_sums.iter().sum::<f64>() / (n * d) as f64
    }
}
