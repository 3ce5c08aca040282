//! Tests of `covariance`, `jacobi_eigen` and `Pca` against quantities known by construction:
//! matrices built as Q diag(lambda) Q^T, data built to have a given covariance, naive loops.

use autoencoders::pca::{covariance, jacobi_eigen, Pca, SymmetricEigen};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f64 = 1e-12;
const MAX_SWEEPS: usize = 50;

fn frobenius(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// A random d x d orthogonal matrix (row-major): a product of d Householder reflections
/// I - 2 u u^T / (u^T u) with random u.
fn random_orthogonal(d: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut q = vec![0.0; d * d];
    for i in 0..d {
        q[i * d + i] = 1.0;
    }
    for _ in 0..d {
        let u: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let uu: f64 = u.iter().map(|x| x * x).sum();
        // Q <- Q H: each row r of Q loses 2 (r . u) / (u . u) u.
        for row in q.chunks_mut(d) {
            let f = 2.0 * row.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() / uu;
            row.iter_mut().zip(&u).for_each(|(a, b)| *a -= f * b);
        }
    }
    q
}

/// A = Q diag(lambda) Q^T, symmetrised so that rounding leaves no asymmetry.
fn with_spectrum(lambda: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
    let d = lambda.len();
    let q = random_orthogonal(d, rng);
    let mut a = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let aij: f64 = (0..d).map(|k| q[i * d + k] * lambda[k] * q[j * d + k]).sum();
            a[i * d + j] = aij;
            a[j * d + i] = aij;
        }
    }
    a
}

/// The defining identities: A V = V Lambda (relative to ||A||_F), V^T V = I, values descending.
/// Jacobi stops at off(A) <= TOL ||A||_F and the residual is about off(A), so it is held to
/// 10 TOL; orthogonality is lost only to rounding (1e-13 at d = 200), held to 1e-12.
fn check_decomposition(a: &[f64], d: usize, e: &SymmetricEigen) {
    assert_eq!(e.values.len(), d);
    assert_eq!(e.vectors.len(), d * d);
    for w in e.values.windows(2) {
        assert!(w[0] >= w[1], "eigenvalues not descending: {:?}", e.values);
    }
    let norm = frobenius(a).max(f64::MIN_POSITIVE);
    let (mut residual, mut orthogonality) = (0.0f64, 0.0f64);
    for j in 0..d {
        let v = e.vector(j);
        for i in 0..d {
            let av: f64 = (0..d).map(|k| a[i * d + k] * v[k]).sum();
            residual += (av - e.values[j] * v[i]).powi(2);
        }
        for l in 0..d {
            let dot: f64 = v.iter().zip(e.vector(l)).map(|(x, y)| x * y).sum();
            orthogonality += (dot - if l == j { 1.0 } else { 0.0 }).powi(2);
        }
    }
    let (residual, orthogonality) = (residual.sqrt() / norm, orthogonality.sqrt());
    assert!(residual <= 10.0 * TOL, "||A V - V Lambda|| / ||A|| = {residual:e} (d = {d})");
    assert!(orthogonality <= 1e-12, "||V^T V - I|| = {orthogonality:e} (d = {d})");
}

#[test]
fn jacobi_recovers_known_spectra() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for d in [1, 2, 3, 10, 50, 200] {
        let spectra: [Vec<f64>; 3] = [
            // distinct, spread over two orders of magnitude, some negative
            (0..d).map(|i| (i as f64 - d as f64 / 3.0) * 1.7 + 0.01 * i as f64).collect(),
            // five values repeated d/5 times each: -2, -1, 0, 1, 2
            (0..d).map(|i| (i % 5) as f64 - 2.0).collect(),
            // a cluster of near-equal values around 1 and a few large ones
            (0..d).map(|i| if i % 7 == 0 { 100.0 + i as f64 } else { 1.0 + 1e-9 * i as f64 }).collect(),
        ];
        for lambda in &spectra {
            let a = with_spectrum(lambda, &mut rng);
            let e = jacobi_eigen(&a, d, TOL, MAX_SWEEPS);
            assert!(e.sweeps < MAX_SWEEPS, "d = {d}: did not converge: off(A) = {:e}", e.off_diagonal);
            assert!(e.off_diagonal <= TOL * frobenius(&a));
            check_decomposition(&a, d, &e);
            let mut known = lambda.clone();
            known.sort_by(|x, y| y.total_cmp(x));
            let norm = frobenius(&a);
            for (got, want) in e.values.iter().zip(&known) {
                assert!((got - want).abs() <= 1e-12 * norm, "d = {d}: eigenvalue {got} vs {want}");
            }
        }
    }
}

#[test]
fn jacobi_typical_sweep_counts() {
    // Quadratic convergence: a dense 200 x 200 matrix needs well under 15 sweeps.
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let lambda: Vec<f64> = (0..200).map(|_| rng.random_range(-5.0..5.0)).collect();
    let e = jacobi_eigen(&with_spectrum(&lambda, &mut rng), 200, TOL, MAX_SWEEPS);
    assert!((5..15).contains(&e.sweeps), "{} sweeps", e.sweeps);
}

#[test]
fn jacobi_diagonal_input_needs_no_rotation() {
    let d = 5;
    let diagonal = [3.0, -1.0, 7.0, 0.0, 2.0];
    let mut a = vec![0.0; d * d];
    for i in 0..d {
        a[i * d + i] = diagonal[i];
    }
    let e = jacobi_eigen(&a, d, TOL, MAX_SWEEPS);
    assert_eq!(e.sweeps, 0);
    assert_eq!(e.values, vec![7.0, 3.0, 2.0, 0.0, -1.0]);
    // The eigenvectors are the unit vectors, permuted to match, exactly.
    for (j, &index) in [2, 0, 4, 3, 1].iter().enumerate() {
        let unit: Vec<f64> = (0..d).map(|i| if i == index { 1.0 } else { 0.0 }).collect();
        assert_eq!(e.vector(j), &unit[..], "eigenvector {j}");
    }
}

#[test]
fn jacobi_leaves_decoupled_indices_out() {
    // A coupled 5 x 5 block spread over indices 0, 2, 3, 5, 7 of an 8 x 8 matrix; indices 1, 4
    // and 6 have zero rows off the diagonal, so they are eigenvectors as they stand.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let block = with_spectrum(&[4.0, 1.0, -2.0, 0.5, 3.0], &mut rng);
    let coupled = [0, 2, 3, 5, 7];
    let d = 8;
    let mut a = vec![0.0; d * d];
    for (bi, &i) in coupled.iter().enumerate() {
        for (bj, &j) in coupled.iter().enumerate() {
            a[i * d + j] = block[bi * 5 + bj];
        }
    }
    (a[d + 1], a[4 * d + 4], a[6 * d + 6]) = (2.5, 0.0, -7.0);
    let e = jacobi_eigen(&a, d, TOL, MAX_SWEEPS);
    check_decomposition(&a, d, &e);
    let want = [4.0, 3.0, 2.5, 1.0, 0.5, 0.0, -2.0, -7.0];
    for (got, want) in e.values.iter().zip(want) {
        assert!((got - want).abs() < 1e-13, "{:?}", e.values);
    }
    assert_eq!(e.vector(2), &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(e.vector(7), &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn jacobi_two_by_two_by_hand() {
    // The module comment's example: theta = 0, t = 1, c = s = 1/sqrt(2), values 1 and 3.
    let e = jacobi_eigen(&[2.0, 1.0, 1.0, 2.0], 2, TOL, MAX_SWEEPS);
    assert_eq!(e.sweeps, 1);
    assert_eq!(e.off_diagonal, 0.0);
    assert!((e.values[0] - 3.0).abs() < 1e-15 && (e.values[1] - 1.0).abs() < 1e-15, "{:?}", e.values);
    let r = 0.5f64.sqrt();
    let (v0, v1) = (e.vector(0), e.vector(1));
    assert!((v0[0].abs() - r).abs() < 1e-15 && (v0[1] - v0[0]).abs() < 1e-15, "{v0:?}");
    assert!((v1[0].abs() - r).abs() < 1e-15 && (v1[1] + v1[0]).abs() < 1e-15, "{v1:?}");

    // [[0, 1], [1, 0]]: eigenvalues +1 and -1.
    let e = jacobi_eigen(&[0.0, 1.0, 1.0, 0.0], 2, TOL, MAX_SWEEPS);
    assert!((e.values[0] - 1.0).abs() < 1e-15 && (e.values[1] + 1.0).abs() < 1e-15, "{:?}", e.values);
}

#[test]
fn jacobi_stops_at_max_sweeps() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let lambda: Vec<f64> = (0..30).map(|i| i as f64).collect();
    let a = with_spectrum(&lambda, &mut rng);
    let e = jacobi_eigen(&a, 30, TOL, 1);
    assert_eq!(e.sweeps, 1);
    assert!(e.off_diagonal > TOL * frobenius(&a), "one sweep cannot reach 1e-12");
}

#[test]
#[should_panic(expected = "not symmetric")]
fn jacobi_rejects_an_asymmetric_matrix() {
    jacobi_eigen(&[1.0, 2.0, 3.0, 4.0], 2, TOL, MAX_SWEEPS);
}

/// Runs `f` on a rayon pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let lambda: Vec<f64> = (0..61).map(|_| rng.random_range(-3.0..3.0)).collect();
    let a = with_spectrum(&lambda, &mut rng);
    let (n, d) = (9000, 37); // more than one slab of rows
    let x: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>()).collect();
    let run = || (jacobi_eigen(&a, 61, TOL, MAX_SWEEPS), covariance(&x, n, d));
    let (e1, c1) = on_threads(1, run);
    for threads in [2, 3] {
        let (e, c) = on_threads(threads, run);
        assert_eq!(e.values, e1.values, "eigenvalues with {threads} threads");
        assert_eq!(e.vectors, e1.vectors, "eigenvectors with {threads} threads");
        assert_eq!(c, c1, "covariance with {threads} threads");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn jacobi_on_random_symmetric_matrices(d in 1usize..10, entries in prop::collection::vec(-10.0f64..10.0, 81)) {
        let mut a = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                a[i * d + j] = entries[i * 9 + j];
                a[j * d + i] = entries[i * 9 + j];
            }
        }
        let e = jacobi_eigen(&a, d, TOL, MAX_SWEEPS);
        prop_assert!(e.sweeps < MAX_SWEEPS);
        check_decomposition(&a, d, &e);
        let trace: f64 = (0..d).map(|i| a[i * d + i]).sum();
        let sum: f64 = e.values.iter().sum();
        prop_assert!((trace - sum).abs() <= 1e-12 * (1.0 + frobenius(&a)), "trace {trace} vs {sum}");
    }
}

#[test]
fn covariance_matches_a_naive_two_pass_loop() {
    // n and d chosen to end slabs, chunks and column blocks part-way (4096, 256, 128).
    let (n, d) = (4500, 133);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f32> = (0..n * d).map(|i| rng.random::<f32>() + (i % d) as f32 * 0.01).collect();
    let (mean, cov) = covariance(&x, n, d);
    let mut want_mean = vec![0.0f64; d];
    for row in x.chunks(d) {
        row.iter().zip(&mut want_mean).for_each(|(&v, m)| *m += v as f64 / n as f64);
    }
    for j in 0..d {
        assert!((mean[j] - want_mean[j]).abs() < 1e-12, "mean[{j}]: {} vs {}", mean[j], want_mean[j]);
    }
    for i in 0..d {
        for j in 0..d {
            let want: f64 =
                x.chunks(d).map(|r| (r[i] as f64 - want_mean[i]) * (r[j] as f64 - want_mean[j])).sum::<f64>()
                    / (n - 1) as f64;
            let got = cov[i * d + j];
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-3), "cov[{i}][{j}]: {got} vs {want}");
            assert_eq!(got, cov[j * d + i], "cov is not exactly symmetric at ({i}, {j})");
        }
    }
}

/// n x d data with mean `mu` and covariance exactly Q diag(sigma^2) Q^T (up to the f32 rounding
/// of the result): X = 1 mu^T + Z diag(sigma) Q_r^T, with the r columns of Z orthogonal, of
/// zero mean and of squared norm n - 1. Q_r is r columns of a random orthogonal matrix.
fn data_with_covariance(n: usize, d: usize, mu: &[f64], sigma: &[f64], rng: &mut ChaCha8Rng) -> Vec<f32> {
    let r = sigma.len();
    let q = random_orthogonal(d, rng);
    // Columns of Z, by modified Gram-Schmidt against the constant vector and each other.
    let mut z: Vec<Vec<f64>> = Vec::new();
    let ones = vec![1.0 / (n as f64).sqrt(); n];
    for _ in 0..r {
        let mut col: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        for basis in std::iter::once(&ones).chain(z.iter()) {
            let dot: f64 = col.iter().zip(basis).map(|(a, b)| a * b).sum();
            col.iter_mut().zip(basis).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = col.iter().map(|a| a * a).sum::<f64>().sqrt();
        col.iter_mut().for_each(|a| *a /= norm);
        z.push(col);
    }
    let scale = ((n - 1) as f64).sqrt();
    let mut x = vec![0.0f32; n * d];
    for i in 0..n {
        for c in 0..d {
            let v: f64 = (0..r).map(|j| z[j][i] * scale * sigma[j] * q[c * d + j]).sum();
            x[i * d + c] = (mu[c] + v) as f32;
        }
    }
    x
}

#[test]
fn pca_on_data_in_a_subspace_reconstructs_exactly() {
    let (n, d) = (2000, 40);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mu: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let sigma = [3.0, 2.5, 2.0, 1.5, 1.2, 1.0, 0.8, 0.6];
    let x = data_with_covariance(n, d, &mu, &sigma, &mut rng);
    let mean_square = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / (n * d) as f64;
    for k in [8, 10] {
        let pca = Pca::fit(&x, n, d, k);
        let mse = pca.reconstruction_mse(&x, n);
        // Only the f32 rounding of x, of the components and of the arithmetic remains:
        // errors of ~1e-7 |x|, squared ~1e-14 of the mean square.
        assert!(mse <= 1e-12 * mean_square, "k = {k}: mse {mse:e}, mean square {mean_square:e}");
    }
}

#[test]
fn pca_error_is_the_sum_of_the_discarded_eigenvalues() {
    let (n, d) = (3000, 30);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mu: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let sigma = [2.0, 1.7, 1.5, 1.3, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6];
    let x = data_with_covariance(n, d, &mu, &sigma, &mut rng);
    for k in [0, 1, 4, 9] {
        let pca = Pca::fit(&x, n, d, k);
        let discarded: f64 = sigma[k..].iter().map(|s| s * s).sum();
        let want = discarded * (n - 1) as f64 / (n * d) as f64;
        let mse = pca.reconstruction_mse(&x, n);
        // x is rounded to f32 (relative 6e-8 per entry) and so is the arithmetic of the
        // projection; the errors have random signs and mostly cancel in the sums (1e-9 is
        // seen). 1e-6 leaves room and still tells n - 1 from n (3e-4 apart here).
        assert!((mse - want).abs() <= 1e-6 * want, "k = {k}: mse {mse:e}, expected {want:e}");
        for (j, (&got, s)) in pca.explained_variance.iter().zip(&sigma).enumerate() {
            assert!((got - s * s).abs() <= 1e-6 * s * s, "k = {k}: variance {j}: {got} vs {}", s * s);
        }
        // Unit, orthogonal rows, each with its largest-magnitude entry positive.
        for i in 0..k {
            let row_i = &pca.components[i * d..(i + 1) * d];
            let big = row_i.iter().fold(0.0f32, |b, &v| if v.abs() > b.abs() { v } else { b });
            assert!(big > 0.0, "component {i}: largest entry {big} is negative");
            for j in 0..k {
                let row_j = &pca.components[j * d..(j + 1) * d];
                let dot: f64 = row_i.iter().zip(row_j).map(|(&a, &b)| a as f64 * b as f64).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-6, "components {i}, {j}: dot {dot}");
            }
        }
    }
}

#[test]
fn pca_small_example_by_hand() {
    // The module comment's example: (0, 0), (1, 1), (2, 2).
    let x = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0];
    let (mean, cov) = covariance(&x, 3, 2);
    assert_eq!(mean, vec![1.0, 1.0]);
    assert_eq!(cov, vec![1.0, 1.0, 1.0, 1.0]);
    let pca = Pca::fit(&x, 3, 2, 1);
    assert!((pca.explained_variance[0] - 2.0).abs() < 1e-15);
    let codes = pca.project(&x, 3);
    let r2 = 2.0f32.sqrt();
    for (got, want) in codes.iter().zip([-r2, 0.0, r2]) {
        assert!((got - want).abs() < 1e-6, "codes {codes:?}");
    }
    let back = pca.reconstruct(&codes, 3);
    for (got, want) in back.iter().zip(&x) {
        assert!((got - want).abs() < 1e-6, "reconstruction {back:?}");
    }
}

/// A component's sign is set by its first entry of largest magnitude, also when two entries
/// tie: points on the line (0, 2), (1, 1), (2, 0) give the component (1, -1) / sqrt 2, whose
/// entries have the same magnitude to the bit (checked, so the test knows it has a tie), and
/// the first one is made positive. Taking the last of the tied entries would flip it.
#[test]
fn a_tie_in_magnitude_goes_to_the_first_entry() {
    let x = [0.0, 2.0, 1.0, 1.0, 2.0, 0.0];
    let pca = Pca::fit(&x, 3, 2, 1);
    let c = &pca.components;
    assert_eq!(c[0].abs(), c[1].abs(), "no tie to break: {c:?}");
    assert!(c[0] > 0.0 && c[1] < 0.0, "the first of the tied entries is not the positive one: {c:?}");
}

/// With no components (the command line asks for at least one; the library allows none) a
/// code is empty and every reconstruction is the training mean.
#[test]
fn no_components_give_empty_codes_and_the_mean() {
    let x = [0.0, 2.0, 1.0, 1.0, 2.0, 6.0];
    let pca = Pca::fit(&x, 3, 2, 0);
    assert!(pca.components.is_empty() && pca.explained_variance.is_empty());
    let codes = pca.project(&x, 3);
    assert!(codes.is_empty(), "codes {codes:?}");
    assert_eq!(pca.reconstruct(&codes, 3), [1.0, 3.0, 1.0, 3.0, 1.0, 3.0]);
    // Squared deviations from the mean (1, 3): 1 + 1, 0 + 4, 1 + 9, over 6 entries.
    assert!((pca.reconstruction_mse(&x, 3) - 16.0 / 6.0).abs() < 1e-12);
}

#[test]
fn project_and_reconstruct_agree_with_naive_loops() {
    // n spans several parallel slabs (512 rows) and ends part-way through one.
    let (n, d, k) = (1300, 20, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>()).collect();
    let pca = Pca::fit(&x, n, d, k);
    let codes = pca.project(&x, n);
    let back = pca.reconstruct(&codes, n);
    let mut sum = 0.0f64;
    for i in 0..n {
        for j in 0..k {
            let want: f32 = (0..d).map(|c| (x[i * d + c] - pca.mean[c]) * pca.components[j * d + c]).sum();
            assert!((codes[i * k + j] - want).abs() < 1e-5, "code ({i}, {j})");
        }
        for c in 0..d {
            let want: f32 = pca.mean[c] + (0..k).map(|j| codes[i * k + j] * pca.components[j * d + c]).sum::<f32>();
            assert!((back[i * d + c] - want).abs() < 1e-5, "reconstruction ({i}, {c})");
            sum += (x[i * d + c] as f64 - back[i * d + c] as f64).powi(2);
        }
    }
    let mse = pca.reconstruction_mse(&x, n);
    assert!((mse - sum / (n * d) as f64).abs() <= 1e-6 * mse, "mse {mse} vs {}", sum / (n * d) as f64);
}
