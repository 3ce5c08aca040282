//! ReLU: y = max(x, 0), elementwise, any shape.
//!
//! ```text
//!     dx = dout  where x > 0,   0 where x <= 0
//! ```
//!
//! At the kink x = 0 we take the subgradient 0, as PyTorch does. Since y > 0 exactly when
//! x > 0, backward reads the saved output y rather than keeping x alive.
//! Example: x = [-1, 0, 2] gives y = [0, 0, 2]; dout = [5, 5, 5] gives dx = [0, 0, 5].

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cpu;
use crate::cuda::{self, LAUNCH_FAILED};
use crate::ops::Kernels;
use crate::tensor::Tensor;

/// y = max(x, 0). (`cpu::relu` computes the same in parallel chunks.)
pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    for i in 0..x.len() {
        y[i] = x[i].max(0.0);
    }
}

/// dx += dout where y > 0.
pub fn relu_backward(y: &[f32], dout: &[f32], dx: &mut [f32]) {
    assert!(y.len() == dout.len() && dout.len() == dx.len());
    for i in 0..dx.len() {
        if y[i] > 0.0 {
            dx[i] += dout[i];
        }
    }
}

impl Tape {
    pub fn relu(&mut self, x: Var) -> Var {
        let xv = self.value(x);
        let mut y = Tensor::output_on(xv.shape(), &xv.device());
        match xv {
            Tensor::Cpu(_) => match self.kernels() {
                Kernels::Reference => relu_forward(xv.as_slice(), y.as_slice_mut()),
                Kernels::Fast => cpu::relu::relu_forward(xv.as_slice(), y.as_slice_mut()),
            },
            Tensor::Cuda(xc) => {
                cuda::elementwise::relu_forward(xc.gpu(), xc.slice(), y.cuda_mut()).expect(LAUNCH_FAILED)
            }
        }
        self.push(y, Op::Relu { x })
    }
}

pub(crate) fn relu_backward_tape(g: &mut Grads, dout: &Tensor, y: &Tensor, x: Var) {
    match dout {
        Tensor::Cpu(_) => {
            let kernels = g.kernels;
            if let Some(dx) = g.grad_mut(x) {
                match kernels {
                    Kernels::Reference => relu_backward(y.as_slice(), dout.as_slice(), dx),
                    Kernels::Fast => cpu::relu::relu_backward(y.as_slice(), dout.as_slice(), dx),
                }
            }
        }
        Tensor::Cuda(dc) => {
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::elementwise::relu_backward(dc.gpu(), y.cuda(), dc.slice(), dx).expect(LAUNCH_FAILED);
            }
        }
    }
}
