//! linear: y = x W^T + b, PyTorch's `nn.Linear`.
//!
//! Shapes: x (n, d_in), W (d_out, d_in) (one row per output unit), b (d_out), y (n, d_out).
//!
//! ```text
//!     y[i][j] = b[j] + sum_k x[i][k] W[j][k]
//! ```
//!
//! Gradients, for dout = dL/dy (n, d_out):
//!
//! ```text
//!     dx = dout W          (n, d_out) (d_out, d_in)
//!     dW = dout^T x        (d_out, n) (n, d_in)
//!     db = sum_i dout[i]
//! ```
//!
//! It is linear in x: <x W^T, v> = <x, v W>, the identity the adjoint test checks.
//! Example: `x = [1, 2], W = [[3, 4]], b = [5]` gives `y = [1*3 + 2*4 + 5] = [16]`; with
//! `dout = [1]`: `dx = [3, 4], dW = [[1, 2]], db = [1]`.
//!
//! The plain loops below are the definition; `cpu::linear` computes the same products fast
//! (AVX-512 or matrixmultiply, leaving out the units a batch leaves at zero), and on the GPU
//! `cuda::linear` has the functions of the same names.

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cpu;
use crate::cuda::{self, LAUNCH_FAILED};
use crate::ops::Kernels;
use crate::tensor::Tensor;

/// y (n, d_out) = x (n, d_in) W^T + b.
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], d_in: usize, d_out: usize) {
    let n = x.len() / d_in;
    for i in 0..n {
        for j in 0..d_out {
            let mut sum = b.map_or(0.0, |b| b[j]);
            for k in 0..d_in {
                sum += x[i * d_in + k] * w[j * d_in + k];
            }
            y[i * d_out + j] = sum;
        }
    }
}

/// dx (n, d_in) += dout (n, d_out) W (d_out, d_in).
pub fn linear_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    let n = dout.len() / d_out;
    for i in 0..n {
        for k in 0..d_in {
            let mut sum = 0.0;
            for j in 0..d_out {
                sum += dout[i * d_out + j] * w[j * d_in + k];
            }
            dx[i * d_in + k] += sum;
        }
    }
}

/// dW (d_out, d_in) += dout^T (d_out, n) x (n, d_in).
pub fn linear_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], d_in: usize, d_out: usize) {
    let n = dout.len() / d_out;
    for j in 0..d_out {
        for k in 0..d_in {
            let mut sum = 0.0;
            for i in 0..n {
                sum += dout[i * d_out + j] * x[i * d_in + k];
            }
            dw[j * d_in + k] += sum;
        }
    }
}

/// db (d_out) += the column sums of dout (n, d_out).
/// Both floors use this loop: it is one pass over dout, a fraction of the products' work.
pub fn linear_backward_bias(dout: &[f32], db: &mut [f32]) {
    let d_out = db.len();
    for i in 0..dout.len() / d_out {
        for j in 0..d_out {
            db[j] += dout[i * d_out + j];
        }
    }
}

/// (d_in, d_out) after checking that x, W and b fit together.
fn dims(x: &[usize], w: &[usize], b: Option<&[usize]>) -> (usize, usize) {
    assert!(
        x.len() == 2 && w.len() == 2 && x[1] == w[1],
        "linear: input {x:?} does not fit weight {w:?} (want (n, d_in) and (d_out, d_in))"
    );
    if let Some(b) = b {
        assert_eq!(b, [w[0]], "linear: bias must have d_out = {} values", w[0]);
    }
    (w[1], w[0])
}

impl Tape {
    /// y = x W^T + b, W of shape (d_out, d_in).
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        let (xv, wv, bv) = (self.value(x), self.value(w), b.map(|b| self.value(b)));
        let (d_in, d_out) = dims(xv.shape(), wv.shape(), bv.map(Tensor::shape));
        // linear_forward writes every value first (the bias, or zeros), then adds the product.
        let mut y = Tensor::output_on(&[xv.shape()[0], d_out], &xv.device());
        match xv {
            Tensor::Cpu(_) => {
                let forward = match self.kernels() {
                    Kernels::Reference => linear_forward,
                    Kernels::Fast => cpu::linear::linear_forward,
                };
                forward(xv.as_slice(), wv.as_slice(), bv.map(Tensor::as_slice), y.as_slice_mut(), d_in, d_out)
            }
            Tensor::Cuda(xc) => cuda::linear::linear_forward(
                xc.gpu(),
                xc.slice(),
                wv.cuda(),
                bv.map(Tensor::cuda),
                y.cuda_mut(),
                d_in,
                d_out,
            )
            .expect(LAUNCH_FAILED),
        }
        self.push(y, Op::Linear { x, w, b })
    }
}

pub(crate) fn linear_backward(g: &mut Grads, dout: &Tensor, x: Var, w: Var, b: Option<Var>) {
    let (xv, wv) = (g.value(x), g.value(w));
    let (d_in, d_out) = (wv.shape()[1], wv.shape()[0]);
    match dout {
        Tensor::Cpu(_) => {
            let dout = dout.as_slice();
            match g.kernels {
                Kernels::Reference => {
                    if let Some(dx) = g.grad_mut(x) {
                        linear_backward_input(dout, wv.as_slice(), dx, d_in, d_out);
                    }
                    if let Some(dw) = g.grad_mut(w) {
                        linear_backward_weight(dout, xv.as_slice(), dw, d_in, d_out);
                    }
                }
                Kernels::Fast => {
                    // The fast products leave out the output units no image sends a gradient
                    // back through, found once for both; and the first gradient to reach x or
                    // W is written into a new buffer, not added onto zeros written first.
                    let live = cpu::linear::Live::of(dout, d_out);
                    g.grad_new_or_add(
                        x,
                        || cpu::linear::backward_input_new(dout, wv.as_slice(), d_in, d_out, &live),
                        |dx| cpu::linear::backward_input(dout, wv.as_slice(), dx, d_in, d_out, &live),
                    );
                    g.grad_new_or_add(
                        w,
                        || cpu::linear::backward_weight_new(dout, xv.as_slice(), d_in, d_out, &live),
                        |dw| cpu::linear::backward_weight(dout, xv.as_slice(), dw, d_in, d_out, &live),
                    );
                }
            }
            if let Some(db) = b.and_then(|b| g.grad_mut(b)) {
                linear_backward_bias(dout, db);
            }
        }
        Tensor::Cuda(dc) => {
            let (gpu, dout) = (dc.gpu(), dc.slice());
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::linear::linear_backward_input(gpu, dout, wv.cuda(), dx, d_in, d_out).expect(LAUNCH_FAILED);
            }
            if let Some(dw) = g.grad_mut_cuda(w) {
                cuda::linear::linear_backward_weight(gpu, dout, xv.cuda(), dw, d_in, d_out).expect(LAUNCH_FAILED);
            }
            if let Some(db) = b.and_then(|b| g.grad_mut_cuda(b)) {
                cuda::linear::linear_backward_bias(gpu, dout, db).expect(LAUNCH_FAILED);
            }
        }
    }
}
