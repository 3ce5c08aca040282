//! conv2d and conv_transpose2d fast (`ops::conv` defines them): each convolution takes one
//! of two routes, chosen once from its geometry by `Route::of`.
//!
//! - `Route::Direct`: stride 1, a square kernel of at most 7x7 and p < k, which is every
//!   layer of the study but the strided transposed ones. The sums are computed as shifted
//!   planes (`direct.rs`), with no column matrix; the weight gradient by one of three
//!   loops chosen from the channel count (`direct::WeightLoop`), or by im2col where none fits.
//! - `Route::Im2col`: anything else. Per image, im2col and one GEMM (`gemm.rs`).
//!
//! Parallelism: the batch is split across rayon tasks, one image each, with its own column
//! buffer; the weight gradient, a sum over the batch, is formed as partial sums over fixed
//! groups of images added in order, so its bits do not depend on the thread count. On the
//! GPU, `cuda::conv` folds the loop over images into batched launches (same names).
//!
//! What each route buys over the reference (`cargo bench --bench ladder -- conv`, 2 threads,
//! forward + dx + dW at batch 64): conv2d 16 -> 8 on 14x14 takes 51.3 ms in the reference
//! loops, 2.15 by im2col + GEMM, 0.94 direct (55x); 1 -> 16 on 28x28 28.4, 0.94, 1.01 (28x);
//! the strided transposed 16 -> 8 k4 s2 22.0 ms, 1.17 by im2col + GEMM (19x). The whole
//! ladder is in docs/performance.md.

use super::direct::{self, Start, WeightLoop};
use super::gemm::{gemm, Mat};
use super::im2col::{col2im, im2col};
use crate::geom::ConvGeom;
use crate::tensor::zeros_vec;
use rayon::prelude::*;
use std::ops::Range;

/// Images per partial sum of a weight gradient: fixed, so results are thread-count free.
const IMAGES_PER_PARTIAL: usize = 4;

/// How the fast floor computes a convolution of geometry `g`: decided here and nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Direct,
    Im2col,
}

impl Route {
    pub fn of(g: &ConvGeom) -> Route {
        if direct::applies(g) {
            Route::Direct
        } else {
            Route::Im2col
        }
    }

    /// This route, after checking that it can compute `g` (im2col can compute any).
    fn suits(self, g: &ConvGeom) -> Route {
        assert!(self == Route::Im2col || direct::applies(g), "the direct route cannot compute {g:?}");
        self
    }

    /// The loop of a weight gradient on this route whose "output" has `channels` channels
    /// (c_out for conv2d, c_in for conv_transpose2d): direct where one of its loops fits.
    fn weight_loop(self, channels: usize) -> Option<WeightLoop> {
        match self {
            Route::Direct => WeightLoop::for_channels(channels),
            Route::Im2col => None,
        }
    }
}

/// y (n, c_out, oh, ow) = conv2d(x (n, g.c, g.h, g.w), w (c_out, g.c, g.kh, g.kw)) + b.
pub fn conv2d_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], g: &ConvGeom, c_out: usize) {
    conv2d_forward_by(Route::of(g), x, w, b, y, g, c_out)
}

/// `conv2d_forward` by the route given, which must suit `g` (`Route::suits`): for the
/// benchmarks and tests that compare the routes on one geometry.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_by(
    route: Route,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    g: &ConvGeom,
    c_out: usize,
) {
    if route.suits(g) == Route::Direct {
        return direct::conv(x, w, y, g, c_out, Start::Bias(b));
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    assert_eq!(w.len(), c_out * k);
    y.par_chunks_mut(c_out * p).zip(x.par_chunks(g.c * g.h * g.w)).for_each_init(
        || vec![0.0; k * p],
        |col, (y, x)| {
            im2col(x, g, col);
            fill_bias(y, b, p);
            gemm(Mat::new(w, c_out, k), Mat::new(col, k, p), 1.0, y);
        },
    );
}

/// `conv2d_forward` into a new buffer, for the tape: on the direct route each image's output
/// is made by the task that computes it (`direct::conv_new`), not cleared whole first.
pub fn conv2d_forward_new(x: &[f32], w: &[f32], b: Option<&[f32]>, g: &ConvGeom, c_out: usize) -> Vec<f32> {
    if Route::of(g) == Route::Direct {
        return direct::conv_new(x, w, b, g, c_out);
    }
    let mut y = zeros_vec(x.len() / (g.c * g.h * g.w) * c_out * g.oh * g.ow);
    conv2d_forward(x, w, b, &mut y, g, c_out);
    y
}

/// dx (n, g.c, g.h, g.w) += the conv2d input gradient of dout (n, c_out, oh, ow): on the
/// direct route, the full correlation of dout with the flipped, transposed kernel.
pub fn conv2d_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom, c_out: usize) {
    conv2d_backward_input_by(Route::of(g), dout, w, dx, g, c_out)
}

/// `conv2d_backward_input` by the route given (see `conv2d_forward_by`).
pub fn conv2d_backward_input_by(route: Route, dout: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom, c_out: usize) {
    if route.suits(g) == Route::Direct {
        let back = direct::gradient_geom(g, c_out);
        return direct::conv(dout, &direct::flip_transpose(w, c_out, g.c, g.kh), dx, &back, g.c, Start::Accumulate);
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    dx.par_chunks_mut(g.c * g.h * g.w).zip(dout.par_chunks(c_out * p)).for_each_init(
        || vec![0.0; k * p],
        |dcol, (dx, dout)| {
            gemm(Mat::new(w, c_out, k).t(), Mat::new(dout, c_out, p), 0.0, dcol);
            col2im(dcol, g, dx);
        },
    );
}

/// The first conv2d input gradient to reach x, into a new buffer: `conv2d_backward_input`
/// onto zeros, the same bits (`direct::conv_new` with no bias on the direct route).
pub fn conv2d_backward_input_new(dout: &[f32], w: &[f32], g: &ConvGeom, c_out: usize) -> Vec<f32> {
    if Route::of(g) == Route::Direct {
        let back = direct::gradient_geom(g, c_out);
        return direct::conv_new(dout, &direct::flip_transpose(w, c_out, g.c, g.kh), None, &back, g.c);
    }
    let mut dx = zeros_vec(dout.len() / (c_out * g.oh * g.ow) * g.c * g.h * g.w);
    conv2d_backward_input(dout, w, &mut dx, g, c_out);
    dx
}

/// `dw (c_out, g.c, g.kh, g.kw) += sum over the batch of dout[n] im2col(x[n])^T`.
pub fn conv2d_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_out: usize) {
    conv2d_backward_weight_by(Route::of(g), dout, x, dw, g, c_out)
}

/// `conv2d_backward_weight` by the route given (see `conv2d_forward_by`).
pub fn conv2d_backward_weight_by(route: Route, dout: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_out: usize) {
    if let Some(weight_loop) = route.suits(g).weight_loop(c_out) {
        return direct::weight_grad(dout, x, dw, g, c_out, weight_loop);
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    let image = g.c * g.h * g.w;
    sum_over_batch(x.len() / image, dw, k * p, |images, col, dw_part| {
        for i in images {
            im2col(&x[i * image..(i + 1) * image], g, col);
            gemm(Mat::new(&dout[i * c_out * p..(i + 1) * c_out * p], c_out, p), Mat::new(col, k, p).t(), 1.0, dw_part);
        }
    });
}

/// y (n, c_out, oh, ow) = conv_transpose2d(x (n, c_in, h, w), w (c_in, c_out, kh, kw)) + b,
/// where `g` is the geometry of the adjoint conv2d: an image (c_out, oh, ow) whose output
/// size (g.oh, g.ow) is (h, w).
pub fn conv_transpose2d_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], g: &ConvGeom, c_in: usize) {
    if Route::of(g) == Route::Direct {
        let back = direct::gradient_geom(g, c_in);
        return direct::conv(x, &direct::flip_transpose(w, c_in, g.c, g.kh), y, &back, g.c, Start::Bias(b));
    }
    let (k, p) = (g.col_rows(), g.col_cols());
    assert_eq!(w.len(), c_in * k);
    y.par_chunks_mut(g.c * g.h * g.w).zip(x.par_chunks(c_in * p)).for_each_init(
        || vec![0.0; k * p],
        |col, (y, x)| {
            gemm(Mat::new(w, c_in, k).t(), Mat::new(x, c_in, p), 0.0, col);
            fill_bias(y, b, g.h * g.w);
            col2im(col, g, y);
        },
    );
}

/// `conv_transpose2d_forward` into a new buffer, for the tape (see `conv2d_forward_new`).
pub fn conv_transpose2d_forward_new(x: &[f32], w: &[f32], b: Option<&[f32]>, g: &ConvGeom, c_in: usize) -> Vec<f32> {
    if Route::of(g) == Route::Direct {
        let back = direct::gradient_geom(g, c_in);
        return direct::conv_new(x, &direct::flip_transpose(w, c_in, g.c, g.kh), b, &back, g.c);
    }
    let mut y = zeros_vec(x.len() / (c_in * g.oh * g.ow) * g.c * g.h * g.w);
    conv_transpose2d_forward(x, w, b, &mut y, g, c_in);
    y
}

/// What both gradients of conv_transpose2d read on the im2col route: `im2col(dout[n])` for
/// every image, (n, K, oh*ow), built once for the two; nothing on the direct route.
pub struct DoutColumns(Option<Vec<f32>>);

impl DoutColumns {
    pub fn of(dout: &[f32], g: &ConvGeom) -> DoutColumns {
        DoutColumns((Route::of(g) == Route::Im2col).then(|| batch_columns(dout, g)))
    }
}

/// `dx (n, c_in, h, w) += w (c_in, K) im2col(dout[n])`: a conv2d of dout.
pub fn conv_transpose2d_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom, c_in: usize) {
    conv_transpose2d_backward_input_with(&DoutColumns::of(dout, g), dout, w, dx, g, c_in)
}

/// `conv_transpose2d_backward_input`, given the columns of dout.
pub fn conv_transpose2d_backward_input_with(
    cols: &DoutColumns,
    dout: &[f32],
    w: &[f32],
    dx: &mut [f32],
    g: &ConvGeom,
    c_in: usize,
) {
    match &cols.0 {
        None => direct::conv(dout, w, dx, g, c_in, Start::Accumulate),
        Some(cols) => input_grad_from_columns(cols, w, dx, g, c_in),
    }
}

/// The first conv_transpose2d input gradient to reach x, into a new buffer:
/// `conv_transpose2d_backward_input_with` onto zeros, the same bits.
pub fn conv_transpose2d_backward_input_new_with(
    cols: &DoutColumns,
    dout: &[f32],
    w: &[f32],
    g: &ConvGeom,
    c_in: usize,
) -> Vec<f32> {
    // No columns: the direct route, where the input gradient is `direct::conv` of dout.
    if cols.0.is_none() {
        return direct::conv_new(dout, w, None, g, c_in);
    }
    let mut dx = zeros_vec(dout.len() / (g.c * g.h * g.w) * c_in * g.oh * g.ow);
    conv_transpose2d_backward_input_with(cols, dout, w, &mut dx, g, c_in);
    dx
}

/// `dw (c_in, c_out, kh, kw) += sum over the batch of x[n] im2col(dout[n])^T`.
pub fn conv_transpose2d_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_in: usize) {
    conv_transpose2d_backward_weight_with(&DoutColumns::of(dout, g), dout, x, dw, g, c_in)
}

/// `conv_transpose2d_backward_weight`, given the columns of dout. On the direct route with
/// a channel count none of its weight loops takes, the columns are built here after all.
pub fn conv_transpose2d_backward_weight_with(
    cols: &DoutColumns,
    dout: &[f32],
    x: &[f32],
    dw: &mut [f32],
    g: &ConvGeom,
    c_in: usize,
) {
    match (&cols.0, Route::of(g).weight_loop(c_in)) {
        (_, Some(weight_loop)) => direct::weight_grad(x, dout, dw, g, c_in, weight_loop),
        (Some(cols), None) => weight_grad_from_columns(cols, x, dw, g, c_in),
        (None, None) => weight_grad_from_columns(&batch_columns(dout, g), x, dw, g, c_in),
    }
}

/// `im2col(dout[n])` for every image, (n, K, oh*ow).
fn batch_columns(dout: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (k, p, image) = (g.col_rows(), g.col_cols(), g.c * g.h * g.w);
    let mut cols = zeros_vec(dout.len() / image * k * p);
    cols.par_chunks_mut(k * p).zip(dout.par_chunks(image)).for_each(|(col, dout)| im2col(dout, g, col));
    cols
}

/// `dx[n] += w (c_in, K) cols[n] (K, oh*ow)`.
fn input_grad_from_columns(cols: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom, c_in: usize) {
    let (k, p) = (g.col_rows(), g.col_cols());
    dx.par_chunks_mut(c_in * p).zip(cols.par_chunks(k * p)).for_each(|(dx, col)| {
        gemm(Mat::new(w, c_in, k), Mat::new(col, k, p), 1.0, dx);
    });
}

/// `dw += sum over n of x[n] (c_in, oh*ow) cols[n]^T`.
fn weight_grad_from_columns(cols: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_in: usize) {
    let (k, p) = (g.col_rows(), g.col_cols());
    sum_over_batch(cols.len() / (k * p), dw, 0, |images, _, dw_part| {
        for i in images {
            gemm(
                Mat::new(&x[i * c_in * p..(i + 1) * c_in * p], c_in, p),
                Mat::new(&cols[i * k * p..(i + 1) * k * p], k, p).t(),
                1.0,
                dw_part,
            );
        }
    });
}

/// `db[c]` += the sum of dout over the batch and plane of channel c (both convolutions).
/// Each plane is summed in f32 over 8 interleaved partial sums (independent additions that
/// the processor overlaps), and the planes' sums are added in f64, image by image.
pub fn conv_backward_bias(dout: &[f32], db: &mut [f32], plane: usize) {
    let c = db.len();
    let plane_sum = |p: &[f32]| {
        let (lanes, rest) = p.as_chunks::<8>();
        let mut sums = [0.0f32; 8];
        for lane in lanes {
            sums.iter_mut().zip(lane).for_each(|(s, &v)| *s += v);
        }
        sums.iter().chain(rest).map(|&s| s as f64).sum::<f64>()
    };
    db.par_iter_mut().enumerate().for_each(|(ci, db)| {
        let sum: f64 = dout.chunks_exact(plane).skip(ci).step_by(c).map(plane_sum).sum();
        *db += sum as f32;
    });
}

/// Each channel's output plane starts at its bias (or zero), and the product adds onto it.
fn fill_bias(y: &mut [f32], b: Option<&[f32]>, plane: usize) {
    match b {
        Some(b) => y.chunks_exact_mut(plane).zip(b).for_each(|(y, &b)| y.fill(b)),
        None => y.fill(0.0),
    }
}

/// dw += sum over images 0..n of what `add_group(images, scratch, dw_part)` adds into
/// `dw_part` (zeroed) for each fixed group of `IMAGES_PER_PARTIAL` images, in parallel, the
/// groups' partial sums then added in order. `scratch` is the length of a buffer of the
/// task's own that `add_group` may use.
pub(crate) fn sum_over_batch(
    n: usize,
    dw: &mut [f32],
    scratch: usize,
    add_group: impl Fn(Range<usize>, &mut [f32], &mut [f32]) + Sync,
) {
    let partials: Vec<Vec<f32>> = (0..n.div_ceil(IMAGES_PER_PARTIAL))
        .into_par_iter()
        .map(|group| {
            let mut part = vec![0.0; dw.len()];
            let mut col = vec![0.0; scratch];
            add_group(group * IMAGES_PER_PARTIAL..((group + 1) * IMAGES_PER_PARTIAL).min(n), &mut col, &mut part);
            part
        })
        .collect();
    for part in partials {
        dw.iter_mut().zip(part).for_each(|(d, p)| *d += p);
    }
}
