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
//! All three are matrix products, parallel over bands of outputs: with AVX-512 the kernels
//! of `thin`, which read the operands where they lie, else `par_gemm` (matrixmultiply). Each
//! rule adds into its gradient (beta = 1), so a weight used twice would sum its uses.
//! On the GPU the same products run through `cuda::linear`, the functions of the same names.

use super::gemm::{par_gemm, Mat};
use super::thin;
use crate::autograd::{Grads, Op, Tape, Var};
use crate::cuda::{self, LAUNCH_FAILED};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// y (n, d_out) = x (n, d_in) W^T + b. The bias is written first and the product added
/// onto it, so the bias costs no extra pass.
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], d_in: usize, d_out: usize) {
    match b {
        Some(b) => y.par_chunks_mut(d_out).for_each(|row| row.copy_from_slice(b)),
        None => y.fill(0.0),
    }
    Products::for_this_cpu().x_wt(x, w, y, d_in, d_out);
}

/// dx (n, d_in) += dout (n, d_out) W (d_out, d_in).
pub fn linear_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    let n = dout.len() / d_out;
    Products::for_this_cpu().a_b(Mat::new(dout, n, d_out), Mat::new(w, d_out, d_in), dx);
}

/// dW (d_out, d_in) += dout^T (d_out, n) x (n, d_in).
pub fn linear_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], d_in: usize, d_out: usize) {
    let n = dout.len() / d_out;
    Products::for_this_cpu().a_b(Mat::new(dout, n, d_out).t(), Mat::new(x, n, d_in), dw);
}

/// Which kernels carry the products: `thin`'s, which read the operands where they lie, on
/// processors with AVX-512; matrixmultiply's packed ones (`par_gemm`) elsewhere. The unit
/// tests below run both on any processor that has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Products {
    Thin,
    Packed,
}

impl Products {
    fn for_this_cpu() -> Products {
        if thin::applies() { Products::Thin } else { Products::Packed }
    }

    /// y (n, d_out) += x (n, d_in) W^T.
    fn x_wt(self, x: &[f32], w: &[f32], y: &mut [f32], d_in: usize, d_out: usize) {
        match self {
            Products::Thin => thin::par_x_wt(x, w, y, d_in, d_out),
            Products::Packed => par_gemm(Mat::new(x, x.len() / d_in, d_in), Mat::new(w, d_out, d_in).t(), 1.0, y),
        }
    }

    /// C += A B, where B's rows are contiguous (W for dx, x for dW).
    fn a_b(self, a: Mat, b: Mat, c: &mut [f32]) {
        match self {
            Products::Thin => thin::par_a_b(a, b, c),
            Products::Packed => par_gemm(a, b, 1.0, c),
        }
    }
}

/// db (d_out) += the column sums of dout (n, d_out).
pub fn linear_backward_bias(dout: &[f32], db: &mut [f32]) {
    for row in dout.chunks_exact(db.len()) {
        db.iter_mut().zip(row).for_each(|(d, &g)| *d += g);
    }
}

/// (d_in, d_out) after checking that x, W and b fit together.
fn dims(x: &[usize], w: &[usize], b: Option<&[usize]>) -> (usize, usize) {
    assert!(x.len() == 2 && w.len() == 2 && x[1] == w[1], "linear: input {x:?} does not fit weight {w:?} (want (n, d_in) and (d_out, d_in))");
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
            Tensor::Cpu(_) => linear_forward(xv.as_slice(), wv.as_slice(), bv.map(Tensor::as_slice), y.as_slice_mut(), d_in, d_out),
            Tensor::Cuda(xc) => cuda::linear::linear_forward(xc.gpu(), xc.slice(), wv.cuda(), bv.map(Tensor::cuda), y.cuda_mut(), d_in, d_out).expect(LAUNCH_FAILED),
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
            if let Some(dx) = g.grad_mut(x) {
                linear_backward_input(dout, wv.as_slice(), dx, d_in, d_out);
            }
            if let Some(dw) = g.grad_mut(w) {
                linear_backward_weight(dout, xv.as_slice(), dw, d_in, d_out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gemm::exact::{assert_close, reference, values};

    /// Both kernels of each product against sums in f64, on a layer of the study and on
    /// ragged sizes: the path this processor does not take is tested too. The products add
    /// into what is there (beta = 1), so they start from values, not zeros.
    #[test]
    fn both_kinds_of_product_match_f64_sums() {
        let kinds: Vec<Products> = [Products::Thin, Products::Packed].into_iter().filter(|&k| k == Products::Packed || thin::applies()).collect();
        for (n, d_in, d_out) in [(64, 784, 30), (5, 17, 3), (7, 40, 70)] {
            let (x, w, dout) = (values(n * d_in, 1), values(d_out * d_in, 2), values(n * d_out, 3));
            let (y0, dx0, dw0) = (values(n * d_out, 4), values(n * d_in, 5), values(d_out * d_in, 6));
            let (xm, wm, doutm) = (Mat::new(&x, n, d_in), Mat::new(&w, d_out, d_in), Mat::new(&dout, n, d_out));
            for &kind in &kinds {
                let (mut y, mut dx, mut dw) = (y0.clone(), dx0.clone(), dw0.clone());
                kind.x_wt(&x, &w, &mut y, d_in, d_out);
                kind.a_b(doutm, wm, &mut dx);
                kind.a_b(doutm.t(), xm, &mut dw);
                let shape = format!("{kind:?} {n}x{d_in}->{d_out}");
                assert_close(&format!("{shape} y"), &y, reference(xm, wm.t(), &y0), d_in);
                assert_close(&format!("{shape} dx"), &dx, reference(doutm, wm, &dx0), d_out);
                assert_close(&format!("{shape} dW"), &dw, reference(doutm.t(), xm, &dw0), n);
            }
        }
    }
}
