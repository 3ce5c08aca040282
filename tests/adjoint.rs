//! Every linear map against its transpose, <A u, v> = <u, A^T v>, and the fast paths
//! against naive loops written straight from the formulas.
//!
//! conv2d and conv_transpose2d are each other's adjoint in x; the unpool and the pool's
//! backward are each other's transpose. The inner products are summed in f64.

mod common;

use autoencoders::cpu::conv::*;
use autoencoders::cpu::im2col::{col2im, im2col};
use autoencoders::geom::{ConvGeom, POOL};
use autoencoders::ops::linear::*;
use autoencoders::ops::pool::*;
use autoencoders::Tape;
use common::*;
use proptest::prelude::*;

/// |<Au, v> - <u, A^T v>| small against the size of the terms.
fn assert_adjoint(what: &str, lhs: f64, rhs: f64, scale: f64) {
    assert!((lhs - rhs).abs() <= 1e-5 * scale.max(1.0), "{what}: <Au, v> = {lhs} but <u, A^T v> = {rhs}");
}

/// sum |a_i b_i|: the size of an inner product's terms, which bounds its f32 rounding.
fn mag(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum()
}

/// conv2d straight from its definition.
fn naive_conv2d(x: &[f32], w: &[f32], n: usize, c_out: usize, g: &ConvGeom) -> Vec<f32> {
    let mut y = vec![0.0; n * c_out * g.oh * g.ow];
    for b in 0..n {
        for co in 0..c_out {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = 0.0f64;
                    for ci in 0..g.c {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let iy = (oy * g.stride + ki) as isize - g.padding as isize;
                                let ix = (ox * g.stride + kj) as isize - g.padding as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xv = x[((b * g.c + ci) * g.h + iy as usize) * g.w + ix as usize];
                                acc += xv as f64 * w[((co * g.c + ci) * g.kh + ki) * g.kw + kj] as f64;
                            }
                        }
                    }
                    y[((b * c_out + co) * g.oh + oy) * g.ow + ox] = acc as f32;
                }
            }
        }
    }
    y
}

/// conv_transpose2d as PyTorch defines it: each input pixel scatters its kernel-weighted
/// copy onto the output at (iy*s - p + ki, ix*s - p + kj).
#[allow(clippy::too_many_arguments)] // a reference written as PyTorch states it: every size named
fn naive_conv_transpose2d(
    x: &[f32],
    w: &[f32],
    n: usize,
    c_in: usize,
    h: usize,
    wd: usize,
    c_out: usize,
    k: usize,
    s: usize,
    p: usize,
) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = ((h - 1) * s + k - 2 * p, (wd - 1) * s + k - 2 * p);
    let mut y = vec![0.0f64; n * c_out * oh * ow];
    for b in 0..n {
        for ci in 0..c_in {
            for iy in 0..h {
                for ix in 0..wd {
                    let xv = x[((b * c_in + ci) * h + iy) * wd + ix] as f64;
                    for co in 0..c_out {
                        for ki in 0..k {
                            for kj in 0..k {
                                let oy = (iy * s + ki) as isize - p as isize;
                                let ox = (ix * s + kj) as isize - p as isize;
                                if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                    continue;
                                }
                                y[((b * c_out + co) * oh + oy as usize) * ow + ox as usize] +=
                                    xv * w[((ci * c_out + co) * k + ki) * k + kj] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (y.into_iter().map(|v| v as f32).collect(), oh, ow)
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}: element {i} is {x}, want {y}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_matches_naive_and_is_adjoint(n in 1usize..3, c_in in 1usize..4, c_out in 1usize..4, h in 1usize..9, w in 1usize..9,
                                           k in 1usize..4, stride in 1usize..4, padding in 0usize..3, seed in any::<u64>()) {
        prop_assume!(h + 2 * padding >= k && w + 2 * padding >= k);
        let mut rng = rng(seed);
        let g = ConvGeom::new(c_in, h, w, k, k, stride, padding);
        let x = normal(&[n, c_in, h, w], &mut rng);
        let wt = normal(&[c_out, c_in, k, k], &mut rng);
        let v = normal(&[n, c_out, g.oh, g.ow], &mut rng);
        let mut y = vec![0.0; v.len()];
        conv2d_forward(x.as_slice(), wt.as_slice(), None, &mut y, &g, c_out);
        close(&y, &naive_conv2d(x.as_slice(), wt.as_slice(), n, c_out, &g), "conv2d vs naive");

        // In x: <conv2d(x), v> = <x, conv2d_backward_input(v)>.
        let mut xt = vec![0.0; x.len()];
        conv2d_backward_input(v.as_slice(), wt.as_slice(), &mut xt, &g, c_out);
        assert_adjoint("conv2d in x", dot(&y, v.as_slice()), dot(x.as_slice(), &xt), mag(&y, v.as_slice()));
        // In W: <conv2d(x; W), v> = <W, conv2d_backward_weight(v, x)>.
        let mut wtv = vec![0.0; wt.len()];
        conv2d_backward_weight(v.as_slice(), x.as_slice(), &mut wtv, &g, c_out);
        assert_adjoint("conv2d in W", dot(&y, v.as_slice()), dot(wt.as_slice(), &wtv), mag(&y, v.as_slice()));

        // Where conv2d's output size inverts exactly, conv_transpose2d with the same weight,
        // read as (c_in', c_out') = (c_out, c_in), *is* that adjoint.
        if (h + 2 * padding - k) % stride == 0 && (w + 2 * padding - k) % stride == 0 {
            let mut t = Tape::no_grad();
            let (vv, wv) = (t.input(v.clone()), t.input(wt.clone()));
            let convt = t.conv_transpose2d(vv, wv, None, stride, padding);
            close(t.value(convt).as_slice(), &xt, "conv_transpose2d vs conv2d's transpose");
        }
    }

    #[test]
    fn conv_transpose2d_matches_naive_and_is_adjoint(n in 1usize..3, c_in in 1usize..4, c_out in 1usize..4, h in 1usize..6, w in 1usize..6,
                                                     k in 1usize..5, stride in 1usize..4, padding in 0usize..3, seed in any::<u64>()) {
        prop_assume!((h - 1) * stride + k > 2 * padding && (w - 1) * stride + k > 2 * padding);
        let mut rng = rng(seed);
        let x = normal(&[n, c_in, h, w], &mut rng);
        let wt = normal(&[c_in, c_out, k, k], &mut rng);
        let mut t = Tape::no_grad();
        let (xv, wv) = (t.input(x.clone()), t.input(wt.clone()));
        let yv = t.conv_transpose2d(xv, wv, None, stride, padding);
        let y = t.value(yv).to_vec();
        let (want, oh, ow) = naive_conv_transpose2d(x.as_slice(), wt.as_slice(), n, c_in, h, w, c_out, k, stride, padding);
        close(&y, &want, "conv_transpose2d vs naive");

        let g = ConvGeom::new(c_out, oh, ow, k, k, stride, padding);
        let v = normal(&[n, c_out, oh, ow], &mut rng);
        let mut xt = vec![0.0; x.len()];
        conv_transpose2d_backward_input(v.as_slice(), wt.as_slice(), &mut xt, &g, c_in);
        assert_adjoint("conv_transpose2d in x", dot(&y, v.as_slice()), dot(x.as_slice(), &xt), mag(&y, v.as_slice()));
        let mut wtv = vec![0.0; wt.len()];
        conv_transpose2d_backward_weight(v.as_slice(), x.as_slice(), &mut wtv, &g, c_in);
        assert_adjoint("conv_transpose2d in W", dot(&y, v.as_slice()), dot(wt.as_slice(), &wtv), mag(&y, v.as_slice()));
    }

    #[test]
    fn im2col_col2im_adjoint(c in 1usize..4, h in 1usize..9, w in 1usize..9, k in 1usize..4, stride in 1usize..4, padding in 0usize..3, seed in any::<u64>()) {
        prop_assume!(h + 2 * padding >= k && w + 2 * padding >= k);
        let mut rng = rng(seed);
        let g = ConvGeom::new(c, h, w, k, k, stride, padding);
        let x = normal(&[c, h, w], &mut rng);
        let v = normal(&[g.col_rows(), g.col_cols()], &mut rng);
        let mut col = vec![0.0; v.len()];
        im2col(x.as_slice(), &g, &mut col);
        let mut back = vec![0.0; x.len()];
        col2im(v.as_slice(), &g, &mut back);
        assert_adjoint("im2col", dot(&col, v.as_slice()), dot(x.as_slice(), &back), mag(&col, v.as_slice()));
    }

    #[test]
    fn linear_adjoint(n in 1usize..6, d_in in 1usize..40, d_out in 1usize..40, seed in any::<u64>()) {
        let mut rng = rng(seed);
        let (x, wt, v) = (normal(&[n, d_in], &mut rng), normal(&[d_out, d_in], &mut rng), normal(&[n, d_out], &mut rng));
        let mut y = vec![0.0; n * d_out];
        linear_forward(x.as_slice(), wt.as_slice(), None, &mut y, d_in, d_out);
        let mut xt = vec![0.0; x.len()];
        linear_backward_input(v.as_slice(), wt.as_slice(), &mut xt, d_in, d_out);
        assert_adjoint("linear in x", dot(&y, v.as_slice()), dot(x.as_slice(), &xt), mag(&y, v.as_slice()));
        let mut wtv = vec![0.0; wt.len()];
        linear_backward_weight(v.as_slice(), x.as_slice(), &mut wtv, d_in, d_out);
        assert_adjoint("linear in W", dot(&y, v.as_slice()), dot(wt.as_slice(), &wtv), mag(&y, v.as_slice()));
    }

    #[test]
    fn unpool_is_the_transpose_of_the_pool(planes in 1usize..5, h in 2usize..10, w in 2usize..10, seed in any::<u64>()) {
        let mut rng = rng(seed);
        let x = distinct(&[planes, h, w], &mut rng);
        let (ph, pw) = (h / POOL, w / POOL);
        let mut pooled = vec![0.0; planes * ph * pw];
        let mut idx = vec![0u32; pooled.len()];
        maxpool2d_forward(x.as_slice(), &mut pooled, &mut idx, h, w);

        // With the indices fixed, the pool is a selection S; unpool is S^T.
        let u = normal(&[planes, ph, pw], &mut rng);
        let v = normal(&[planes, h, w], &mut rng);
        let mut su = vec![0.0; v.len()];
        maxunpool2d_forward(u.as_slice(), &idx, &mut su, ph, pw, h, w);
        let mut stv = vec![0.0; u.len()];
        maxunpool2d_backward(v.as_slice(), &idx, &mut stv, ph, pw, h, w);
        assert_adjoint("unpool", dot(&su, v.as_slice()), dot(u.as_slice(), &stv), mag(&su, v.as_slice()));

        // The pool's backward is the unpool to the input size, exactly.
        let mut dx = vec![0.0; x.len()];
        maxpool2d_backward(u.as_slice(), &idx, &mut dx, h, w);
        prop_assert_eq!(&dx, &su);
        // And the unpool's backward reads the pool's selection: unpool-backward of x is the pool.
        let mut sel = vec![0.0; pooled.len()];
        maxunpool2d_backward(x.as_slice(), &idx, &mut sel, ph, pw, h, w);
        prop_assert_eq!(&sel, &pooled);
    }
}

/// Ties go to the first maximum in row-major window order, in the forward indices and in
/// the gradient.
#[test]
fn pool_tie_goes_to_the_first_maximum() {
    // One 2x4 plane: window 0 is all ones (tie everywhere), window 1 ties at its second and
    // third elements (positions 3 and 6).
    let x = [
        1.0, 1.0, 0.0, 2.0, //
        1.0, 1.0, 2.0, -1.0,
    ];
    let mut y = [0.0; 2];
    let mut idx = [0u32; 2];
    maxpool2d_forward(&x, &mut y, &mut idx, 2, 4);
    assert_eq!(idx, [0, 3]);
    assert_eq!(y, [1.0, 2.0]);

    let mut t = Tape::new();
    let xv = t.param(autoencoders::Tensor::from_vec(&[1, 1, 2, 4], x.to_vec()));
    let (pooled, _) = t.max_pool2d(xv);
    t.backward_with(pooled, ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 1, 1, 2]), vec![5.0, 7.0]).unwrap());
    let dx = t.grad(xv).unwrap().to_vec();
    assert_eq!(dx, [5.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0]);
}

/// Unpooling trusts its indices to lie in their own windows; one that does not is named.
/// A 4x4 plane pooled to 2x2: window 3 covers positions 10, 11, 14 and 15. And a 6x6 plane
/// pooled to 3x3, where a window's number is its position modulo 9 (with 2x2 windows,
/// ph * pw and ph + pw are both 4): window 7 covers 26, 27, 32 and 33.
#[test]
fn an_index_outside_its_window_is_refused() {
    // Unpools a plane of `side` x `side` ones, the pooled side, to twice that side.
    let unpool = |side: usize, idx: Vec<u32>| {
        std::panic::catch_unwind(|| {
            let mut t = Tape::new();
            let x = t.input(autoencoders::Tensor::from_vec(&[1, 1, side, side], vec![1.0; side * side]));
            t.max_unpool2d(x, &Indices::from_vec([1, 1, side, side], idx), 2 * side, 2 * side);
        })
    };
    assert!(unpool(2, vec![0, 3, 9, 15]).is_ok());
    let message = unpool(2, vec![0, 3, 9, 12]).expect_err("12 is in window 2, not 3");
    assert_eq!(panic_message(&*message), Some("maxunpool2d: index 12 lies outside window 3 of a 4x4 plane"));
    assert!(unpool(2, vec![0, 3, 9, 9]).is_err(), "index 9 reused by window 3");
    assert!(unpool(2, vec![16, 3, 9, 15]).is_err(), "an index past the plane");
    assert!(unpool(3, vec![0, 2, 4, 12, 14, 16, 24, 26, 28]).is_ok());
    let message = unpool(3, vec![0, 2, 4, 12, 14, 16, 24, 0, 28]).expect_err("0 is in window 0, not 7");
    assert_eq!(panic_message(&*message), Some("maxunpool2d: index 0 lies outside window 7 of a 6x6 plane"));
}

/// The hand-checkable examples in the op files' opening comments.
#[test]
fn examples_from_the_docs() {
    // linear: x = [1, 2], W = [[3, 4]], b = [5] -> 16; dx = [3, 4], dW = [[1, 2]].
    let mut y = [0.0];
    linear_forward(&[1.0, 2.0], &[3.0, 4.0], Some(&[5.0]), &mut y, 2, 1);
    assert_eq!(y, [16.0]);
    // pool: the 2x3 plane [[1, 5, 9], [5, 2, 0]] pools to [5] at index 1.
    let (mut y, mut idx) = ([0.0], [0u32]);
    maxpool2d_forward(&[1.0, 5.0, 9.0, 5.0, 2.0, 0.0], &mut y, &mut idx, 2, 3);
    assert_eq!((y, idx), ([5.0], [1]));
    let mut up = [0.0; 4];
    maxunpool2d_forward(&[7.0], &idx, &mut up, 1, 1, 2, 2);
    assert_eq!(up, [0.0, 7.0, 0.0, 0.0]);
    // im2col: 3x3 image, 2x2 kernel: col2im of ones counts each pixel's uses.
    let g = ConvGeom::new(1, 3, 3, 2, 2, 1, 0);
    let mut counts = [0.0; 9];
    col2im(&[1.0; 16], &g, &mut counts);
    assert_eq!(counts, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
}
