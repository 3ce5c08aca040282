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
//! The CPU computes these with the kernels of `cpu::conv` (im2col + GEMM, or the direct
//! stride-1 sums of `cpu::direct`); the GPU with `cuda::conv` (same names).

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cpu::conv::*;
use crate::cpu::direct;
use crate::cuda::{self, LAUNCH_FAILED};
use crate::geom::ConvGeom;
use crate::tensor::Tensor;

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
        let mut y = Tensor::output_on(&[n, c_out, g.oh, g.ow], &xv.device());
        match xv {
            Tensor::Cpu(_) => {
                conv2d_forward(xv.as_slice(), wv.as_slice(), bv.map(Tensor::as_slice), y.as_slice_mut(), &g, c_out)
            }
            Tensor::Cuda(xc) => cuda::conv::conv2d_forward(
                xc.gpu(),
                xc.slice(),
                wv.cuda(),
                bv.map(Tensor::cuda),
                y.cuda_mut(),
                &g,
                c_out,
            )
            .expect(LAUNCH_FAILED),
        }
        self.push(y, Op::Conv2d { x, w, b, stride, padding })
    }

    /// conv_transpose2d (no output padding); weight (c_in, c_out, kh, kw), bias (c_out).
    pub fn conv_transpose2d(&mut self, x: Var, w: Var, b: Option<Var>, stride: usize, padding: usize) -> Var {
        let (xv, wv) = (self.value(x), self.value(w));
        let g = conv_transpose2d_geom(xv.shape(), wv.shape(), stride, padding);
        let (n, c_in) = (xv.shape()[0], xv.shape()[1]);
        let bv = b.map(|b| self.value(b));
        check_bias(bv, g.c);
        let mut y = Tensor::output_on(&[n, g.c, g.h, g.w], &xv.device());
        match xv {
            Tensor::Cpu(_) => conv_transpose2d_forward(
                xv.as_slice(),
                wv.as_slice(),
                bv.map(Tensor::as_slice),
                y.as_slice_mut(),
                &g,
                c_in,
            ),
            Tensor::Cuda(xc) => cuda::conv::conv_transpose2d_forward(
                xc.gpu(),
                xc.slice(),
                wv.cuda(),
                bv.map(Tensor::cuda),
                y.cuda_mut(),
                &g,
                c_in,
            )
            .expect(LAUNCH_FAILED),
        }
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
            let dout = dout.as_slice();
            if let Some(dx) = g.grad_mut(x) {
                conv2d_backward_input(dout, wv.as_slice(), dx, &geom, c_out);
            }
            if let Some(dw) = g.grad_mut(w) {
                conv2d_backward_weight(dout, xv.as_slice(), dw, &geom, c_out);
            }
            if let Some(db) = b.and_then(|b| g.grad_mut(b)) {
                conv_backward_bias(dout, db, geom.col_cols());
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
            let dout = dout.as_slice();
            // Off the direct path both gradients read im2col(dout): built once for the two.
            let cols = (!direct::applies(&geom)).then(|| batch_columns(dout, &geom));
            if let Some(dx) = g.grad_mut(x) {
                match &cols {
                    Some(cols) => input_grad_from_columns(cols, wv.as_slice(), dx, &geom, c_in),
                    None => conv_transpose2d_backward_input(dout, wv.as_slice(), dx, &geom, c_in),
                }
            }
            if let Some(dw) = g.grad_mut(w) {
                match &cols {
                    Some(cols) => weight_grad_from_columns(cols, xv.as_slice(), dw, &geom, c_in),
                    None => conv_transpose2d_backward_weight(dout, xv.as_slice(), dw, &geom, c_in),
                }
            }
            if let Some(db) = b.and_then(|b| g.grad_mut(b)) {
                conv_backward_bias(dout, db, geom.h * geom.w);
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
