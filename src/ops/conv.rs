//! conv2d and conv_transpose2d: two faces of one linear map.
//!
//! conv2d, x (n, c_in, h, w), weight (c_out, c_in, kh, kw), bias (c_out), stride s, zero
//! padding p, gives y (n, c_out, oh, ow) with oh = (h + 2p - kh) / s + 1 (floor):
//!
//! ```text
//!     y[n][co][oy][ox] = b[co] + sum_{ci,ki,kj} W[co][ci][ki][kj] * x[n][ci][oy*s-p+ki][ox*s-p+kj]
//! ```
//!
//! Per image that is one matrix product, `y[n] = W (c_out, K) * im2col(x[n]) (K, oh*ow)` with
//! K = c_in*kh*kw (see `im2col.rs`), and the gradients are the two other products:
//!
//! ```text
//!     dW += dout[n] (c_out, oh*ow) * im2col(x[n])^T        db[co] += sum dout[n][co]
//!     dx[n] += col2im( W^T (K, c_out) * dout[n] )
//! ```
//!
//! conv_transpose2d is the adjoint of conv2d in x: <conv2d(u, W), v> = <u, convT(v, W)>.
//! Its weight (c_in, c_out, kh, kw) is the weight of the conv2d that maps its *output* back
//! to its input, and its output size is oh = (h - 1)s - 2p + kh, the size that this conv2d
//! takes to h. So its forward is conv2d's input gradient and its input gradient is conv2d's
//! forward, the same three products with the roles exchanged:
//!
//! ```text
//!     y[n] = col2im( W^T (K', c_in) * x[n] (c_in, h*w) ) + b        K' = c_out*kh*kw
//!     dx[n] += W (c_in, K') * im2col(dout[n])     dW += x[n] * im2col(dout[n])^T
//! ```
//!
//! Example: a 1x1 image `[2]`, a 1x1 kernel `[3]`, s = 1, p = 0: conv2d gives `[6]`; convT of
//! `[6]` with the same kernel gives `[18]`, and `<[2]*3, [6]> = 36 = <[2], [6]*3>`.
//!
//! The plain loops below are the definition, one output (or one weight) at a time; the
//! fast floor, `cpu::conv`, computes the same sums by im2col + GEMM or by the direct
//! stride-1 sums of `cpu::direct`; the GPU by `cuda::conv` (same names).

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cpu;
use crate::cuda::{self, LAUNCH_FAILED};
use crate::geom::ConvGeom;
use crate::ops::Kernels;
use crate::tensor::Tensor;

/// Where in one image (c, h, w) tap (ki, kj) of output (oy, ox) reads channel ci, the flat
/// index of `[ci][oy*s - p + ki][ox*s - p + kj]`, or None where it falls on the zero padding.
fn tap(g: &ConvGeom, ci: usize, oy: usize, ox: usize, ki: usize, kj: usize) -> Option<usize> {
    let iy = (oy * g.stride + ki).checked_sub(g.padding).filter(|&iy| iy < g.h)?;
    let ix = (ox * g.stride + kj).checked_sub(g.padding).filter(|&ix| ix < g.w)?;
    Some((ci * g.h + iy) * g.w + ix)
}

/// y (n, c_out, oh, ow) = conv2d(x (n, g.c, g.h, g.w), w (c_out, g.c, g.kh, g.kw)) + b.
pub fn conv2d_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], g: &ConvGeom, c_out: usize) {
    let (image, out) = (g.c * g.h * g.w, c_out * g.oh * g.ow);
    for n in 0..x.len() / image {
        let (x, y) = (&x[n * image..][..image], &mut y[n * out..][..out]);
        for co in 0..c_out {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut sum = b.map_or(0.0, |b| b[co]);
                    for ci in 0..g.c {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                if let Some(i) = tap(g, ci, oy, ox, ki, kj) {
                                    sum += w[((co * g.c + ci) * g.kh + ki) * g.kw + kj] * x[i];
                                }
                            }
                        }
                    }
                    y[(co * g.oh + oy) * g.ow + ox] = sum;
                }
            }
        }
    }
}

/// dx (n, g.c, g.h, g.w) += the conv2d input gradient of dout (n, c_out, oh, ow): every
/// output's gradient flows back to the inputs its taps read, times the tap's weight.
pub fn conv2d_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom, c_out: usize) {
    let (image, out) = (g.c * g.h * g.w, c_out * g.oh * g.ow);
    for n in 0..dx.len() / image {
        let (dout, dx) = (&dout[n * out..][..out], &mut dx[n * image..][..image]);
        for co in 0..c_out {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let d = dout[(co * g.oh + oy) * g.ow + ox];
                    for ci in 0..g.c {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                if let Some(i) = tap(g, ci, oy, ox, ki, kj) {
                                    dx[i] += w[((co * g.c + ci) * g.kh + ki) * g.kw + kj] * d;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dw (c_out, g.c, g.kh, g.kw) += the sum over the batch and the output positions of
/// `dout[n][co][oy][ox]` times the input that tap read.
pub fn conv2d_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_out: usize) {
    let (image, out) = (g.c * g.h * g.w, c_out * g.oh * g.ow);
    for co in 0..c_out {
        for ci in 0..g.c {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let mut sum = 0.0;
                    for n in 0..x.len() / image {
                        let (x, dout) = (&x[n * image..][..image], &dout[n * out..][..out]);
                        for oy in 0..g.oh {
                            for ox in 0..g.ow {
                                if let Some(i) = tap(g, ci, oy, ox, ki, kj) {
                                    sum += dout[(co * g.oh + oy) * g.ow + ox] * x[i];
                                }
                            }
                        }
                    }
                    dw[((co * g.c + ci) * g.kh + ki) * g.kw + kj] += sum;
                }
            }
        }
    }
}

/// `db[c]` += the sum of dout (n, c, plane) over the batch and channel c's plane (both
/// convolutions).
pub fn conv_backward_bias(dout: &[f32], db: &mut [f32], plane: usize) {
    let c = db.len();
    for n in 0..dout.len() / (c * plane) {
        for ci in 0..c {
            for p in 0..plane {
                db[ci] += dout[(n * c + ci) * plane + p];
            }
        }
    }
}

/// y (n, c_out, oh, ow) = conv_transpose2d(x (n, c_in, h, w), w (c_in, c_out, kh, kw)) + b,
/// where `g` is the geometry of the adjoint conv2d: an image (c_out, oh, ow) whose output
/// size (g.oh, g.ow) is (h, w). By definition the adjoint: conv2d's input gradient of x,
/// onto the bias.
pub fn conv_transpose2d_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], g: &ConvGeom, c_in: usize) {
    let plane = g.h * g.w;
    for (i, y) in y.iter_mut().enumerate() {
        *y = b.map_or(0.0, |b| b[i / plane % g.c]);
    }
    conv2d_backward_input(x, w, y, g, c_in);
}

/// dx (n, c_in, h, w) += the conv2d of dout by w: the adjoint of the adjoint.
pub fn conv_transpose2d_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom, c_in: usize) {
    let mut y = vec![0.0; dx.len()];
    conv2d_forward(dout, w, None, &mut y, g, c_in);
    for (dx, y) in dx.iter_mut().zip(y) {
        *dx += y;
    }
}

/// dw (c_in, c_out, kh, kw) += conv2d's weight gradient with the roles of x and dout
/// exchanged: x plays conv2d's output gradient, dout its input.
pub fn conv_transpose2d_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_in: usize) {
    conv2d_backward_weight(x, dout, dw, g, c_in);
}

/// The conv2d geometry of input `x` under weight `w` (c_out, c_in, kh, kw).
fn conv2d_geom(x: &[usize], w: &[usize], stride: usize, padding: usize) -> ConvGeom {
    assert!(
        x.len() == 4 && w.len() == 4 && x[1] == w[1],
        "conv2d: input {x:?} and weight {w:?} disagree (want (n, c_in, h, w) and (c_out, c_in, kh, kw))"
    );
    ConvGeom::new(x[1], x[2], x[3], w[2], w[3], stride, padding)
}

/// The geometry of the conv2d adjoint to conv_transpose2d of `x` under weight `w`
/// (c_in, c_out, kh, kw): its image is convT's output, its output convT's input.
fn conv_transpose2d_geom(x: &[usize], w: &[usize], stride: usize, padding: usize) -> ConvGeom {
    assert!(
        x.len() == 4 && w.len() == 4 && x[1] == w[0],
        "conv_transpose2d: input {x:?} and weight {w:?} disagree (want (n, c_in, h, w) and (c_in, c_out, kh, kw))"
    );
    let size = |i: usize, k: usize| ((i - 1) * stride + k).checked_sub(2 * padding).filter(|&o| o > 0);
    let (Some(oh), Some(ow)) = (size(x[2], w[2]), size(x[3], w[3])) else {
        panic!("conv_transpose2d: padding {padding} leaves no output for input {x:?} and kernel {w:?}");
    };
    let g = ConvGeom::new(w[1], oh, ow, w[2], w[3], stride, padding);
    debug_assert_eq!((g.oh, g.ow), (x[2], x[3]));
    g
}

fn check_bias(b: Option<&Tensor>, c: usize) {
    if let Some(b) = b {
        assert_eq!(b.shape(), [c], "bias must have one value per output channel");
    }
}

impl Tape {
    /// conv2d with zero padding; weight (c_out, c_in, kh, kw), bias (c_out).
    pub fn conv2d(&mut self, x: Var, w: Var, b: Option<Var>, stride: usize, padding: usize) -> Var {
        let (xv, wv) = (self.value(x), self.value(w));
        let g = conv2d_geom(xv.shape(), wv.shape(), stride, padding);
        let (n, c_out) = (xv.shape()[0], wv.shape()[0]);
        let bv = b.map(|b| self.value(b));
        check_bias(bv, c_out);
        let shape = [n, c_out, g.oh, g.ow];
        let y = match (xv, self.kernels()) {
            (Tensor::Cpu(_), Kernels::Reference) => {
                let mut y = Tensor::zeros(&shape);
                conv2d_forward(xv.as_slice(), wv.as_slice(), bv.map(Tensor::as_slice), y.as_slice_mut(), &g, c_out);
                y
            }
            (Tensor::Cpu(_), Kernels::Fast) => Tensor::from_vec(
                &shape,
                cpu::conv::conv2d_forward_new(xv.as_slice(), wv.as_slice(), bv.map(Tensor::as_slice), &g, c_out),
            ),
            (Tensor::Cuda(xc), _) => {
                let mut y = Tensor::output_on(&shape, &xv.device());
                let (gpu, bias) = (xc.gpu(), bv.map(Tensor::cuda));
                cuda::conv::conv2d_forward(gpu, xc.slice(), wv.cuda(), bias, y.cuda_mut(), &g, c_out)
                    .expect(LAUNCH_FAILED);
                y
            }
        };
        self.push(y, Op::Conv2d { x, w, b, stride, padding })
    }

    /// conv_transpose2d (no output padding); weight (c_in, c_out, kh, kw), bias (c_out).
    pub fn conv_transpose2d(&mut self, x: Var, w: Var, b: Option<Var>, stride: usize, padding: usize) -> Var {
        let (xv, wv) = (self.value(x), self.value(w));
        let g = conv_transpose2d_geom(xv.shape(), wv.shape(), stride, padding);
        let (n, c_in) = (xv.shape()[0], xv.shape()[1]);
        let bv = b.map(|b| self.value(b));
        check_bias(bv, g.c);
        let shape = [n, g.c, g.h, g.w];
        let y = match (xv, self.kernels()) {
            (Tensor::Cpu(_), Kernels::Reference) => {
                let mut y = Tensor::zeros(&shape);
                conv_transpose2d_forward(
                    xv.as_slice(),
                    wv.as_slice(),
                    bv.map(Tensor::as_slice),
                    y.as_slice_mut(),
                    &g,
                    c_in,
                );
                y
            }
            (Tensor::Cpu(_), Kernels::Fast) => Tensor::from_vec(
                &shape,
                cpu::conv::conv_transpose2d_forward_new(
                    xv.as_slice(),
                    wv.as_slice(),
                    bv.map(Tensor::as_slice),
                    &g,
                    c_in,
                ),
            ),
            (Tensor::Cuda(xc), _) => {
                let mut y = Tensor::output_on(&shape, &xv.device());
                let (gpu, bias) = (xc.gpu(), bv.map(Tensor::cuda));
                cuda::conv::conv_transpose2d_forward(gpu, xc.slice(), wv.cuda(), bias, y.cuda_mut(), &g, c_in)
                    .expect(LAUNCH_FAILED);
                y
            }
        };
        self.push(y, Op::ConvTranspose2d { x, w, b, stride, padding })
    }
}

pub(crate) fn conv2d_backward(
    g: &mut Grads,
    dout: &Tensor,
    x: Var,
    w: Var,
    b: Option<Var>,
    stride: usize,
    padding: usize,
) {
    let (xv, wv) = (g.value(x), g.value(w));
    let geom = conv2d_geom(xv.shape(), wv.shape(), stride, padding);
    let c_out = wv.shape()[0];
    match dout {
        Tensor::Cpu(_) => {
            let (dout, kernels) = (dout.as_slice(), g.kernels);
            match kernels {
                Kernels::Reference => {
                    if let Some(dx) = g.grad_mut(x) {
                        conv2d_backward_input(dout, wv.as_slice(), dx, &geom, c_out)
                    }
                }
                // The first gradient to reach x made whole, not added onto zeros written first.
                Kernels::Fast => g.grad_new_or_add(
                    x,
                    || cpu::conv::conv2d_backward_input_new(dout, wv.as_slice(), &geom, c_out),
                    |dx| cpu::conv::conv2d_backward_input(dout, wv.as_slice(), dx, &geom, c_out),
                ),
            }
            if let Some(dw) = g.grad_mut(w) {
                match kernels {
                    Kernels::Reference => conv2d_backward_weight(dout, xv.as_slice(), dw, &geom, c_out),
                    Kernels::Fast => cpu::conv::conv2d_backward_weight(dout, xv.as_slice(), dw, &geom, c_out),
                }
            }
            if let Some(db) = b.and_then(|b| g.grad_mut(b)) {
                match kernels {
                    Kernels::Reference => conv_backward_bias(dout, db, geom.col_cols()),
                    Kernels::Fast => cpu::conv::conv_backward_bias(dout, db, geom.col_cols()),
                }
            }
        }
        Tensor::Cuda(dc) => {
            let (gpu, dout) = (dc.gpu(), dc.slice());
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::conv::conv2d_backward_input(gpu, dout, wv.cuda(), dx, &geom, c_out).expect(LAUNCH_FAILED);
            }
            if let Some(dw) = g.grad_mut_cuda(w) {
                cuda::conv::conv2d_backward_weight(gpu, dout, xv.cuda(), dw, &geom, c_out).expect(LAUNCH_FAILED);
            }
            if let Some(db) = b.and_then(|b| g.grad_mut_cuda(b)) {
                cuda::conv::conv_backward_bias(gpu, dout, db, geom.col_cols()).expect(LAUNCH_FAILED);
            }
        }
    }
}

pub(crate) fn conv_transpose2d_backward(
    g: &mut Grads,
    dout: &Tensor,
    x: Var,
    w: Var,
    b: Option<Var>,
    stride: usize,
    padding: usize,
) {
    let (xv, wv) = (g.value(x), g.value(w));
    let geom = conv_transpose2d_geom(xv.shape(), wv.shape(), stride, padding);
    let c_in = xv.shape()[1];
    match dout {
        Tensor::Cpu(_) => {
            let (dout, kernels) = (dout.as_slice(), g.kernels);
            // On the im2col route the fast floor's two gradients both read im2col(dout):
            // built once for the two (and not at all on the direct route).
            let cols = (kernels == Kernels::Fast).then(|| cpu::conv::DoutColumns::of(dout, &geom));
            match &cols {
                None => {
                    if let Some(dx) = g.grad_mut(x) {
                        conv_transpose2d_backward_input(dout, wv.as_slice(), dx, &geom, c_in)
                    }
                }
                // The first gradient to reach x made whole, not added onto zeros written first.
                Some(cols) => g.grad_new_or_add(
                    x,
                    || cpu::conv::conv_transpose2d_backward_input_new_with(cols, dout, wv.as_slice(), &geom, c_in),
                    |dx| cpu::conv::conv_transpose2d_backward_input_with(cols, dout, wv.as_slice(), dx, &geom, c_in),
                ),
            }
            if let Some(dw) = g.grad_mut(w) {
                match &cols {
                    None => conv_transpose2d_backward_weight(dout, xv.as_slice(), dw, &geom, c_in),
                    Some(cols) => {
                        cpu::conv::conv_transpose2d_backward_weight_with(cols, dout, xv.as_slice(), dw, &geom, c_in)
                    }
                }
            }
            if let Some(db) = b.and_then(|b| g.grad_mut(b)) {
                match kernels {
                    Kernels::Reference => conv_backward_bias(dout, db, geom.h * geom.w),
                    Kernels::Fast => cpu::conv::conv_backward_bias(dout, db, geom.h * geom.w),
                }
            }
        }
        Tensor::Cuda(dc) => {
            let (gpu, dout) = (dc.gpu(), dc.slice());
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::conv::conv_transpose2d_backward_input(gpu, dout, wv.cuda(), dx, &geom, c_in)
                    .expect(LAUNCH_FAILED);
            }
            if let Some(dw) = g.grad_mut_cuda(w) {
                cuda::conv::conv_transpose2d_backward_weight(gpu, dout, xv.cuda(), dw, &geom, c_in)
                    .expect(LAUNCH_FAILED);
            }
            if let Some(db) = b.and_then(|b| g.grad_mut_cuda(b)) {
                cuda::conv::conv_backward_bias(gpu, dout, db, geom.h * geom.w).expect(LAUNCH_FAILED);
            }
        }
    }
}
