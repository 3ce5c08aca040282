//! `thin`'s kernels, `thin_rows`' and the transpose against f64 sums, on every edge shape.

use super::*;
use crate::cpu::gemm::exact::{assert_close, reference, values};
use crate::cpu::gemm::Mat;
use crate::cpu::thin_rows::*;
use crate::cpu::transpose::*;

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
        let sums: [[__m512; ROWS]; ROWS] =
            std::array::from_fn(|r| std::array::from_fn(|c| _mm512_loadu_ps(lanes[(ROWS * r + c) * LANES..].as_ptr())));
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
            assert_close(&format!("A B {m}x{depth}x{n}, A strides ({}, {})", a_view.rs, a_view.cs), &c, want, depth);
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
        let message = refused.expect_err("a bad list was taken").downcast::<String>().map(|m| *m).unwrap_or_default();
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
