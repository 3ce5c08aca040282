//! The parallel matrix product against the single-threaded one (bit for bit, whatever the
//! thread count and the split) and against a naive triple loop.

mod common;

use autoencoders::cpu::gemm::{gemm, par_gemm, Mat};
use common::*;

fn naive(a: Mat, b: Mat, beta: f32, c: &[f32]) -> Vec<f32> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64).sum();
            out[i * n + j] = (s + beta as f64 * c[i * n + j] as f64) as f32;
        }
    }
    out
}

#[test]
fn par_gemm_is_gemm_bit_for_bit() {
    let mut rng = rng(21);
    // Shapes of the models (wide and tall), and awkward ones.
    for (m, k, n) in [(64, 784, 512), (512, 64, 784), (64, 30, 128), (100, 37, 300), (300, 5, 17), (1, 9, 1)] {
        for transpose_a in [false, true] {
            for beta in [0.0f32, 1.0] {
                let a_data = normal(&[m * k], &mut rng);
                let b_data = normal(&[k * n], &mut rng);
                let c0 = normal(&[m * n], &mut rng);
                let a =
                    if transpose_a { Mat::new(a_data.as_slice(), k, m).t() } else { Mat::new(a_data.as_slice(), m, k) };
                let b = Mat::new(b_data.as_slice(), k, n);
                let mut want = c0.to_vec();
                gemm(a, b, beta, &mut want);
                for (x, y) in want.iter().zip(naive(a, b, beta, c0.as_slice())) {
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "gemm {m}x{k}x{n}: {x} vs {y}");
                }
                for threads in [1, 2, 3, 5] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let mut got = c0.to_vec();
                    pool.install(|| par_gemm(a, b, beta, &mut got));
                    assert!(
                        got == want,
                        "par_gemm {m}x{k}x{n} (A^T: {transpose_a}, beta {beta}) on {threads} threads differs from gemm"
                    );
                }
            }
        }
    }
}
