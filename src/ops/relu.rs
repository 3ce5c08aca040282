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
        let y = match (xv, self.kernels()) {
            (Tensor::Cpu(_), Kernels::Reference) => {
                let mut y = Tensor::zeros(xv.shape());
                relu_forward(xv.as_slice(), y.as_slice_mut());
                y
            }
            (Tensor::Cpu(_), Kernels::Fast) => Tensor::from_vec(xv.shape(), cpu::relu::relu_forward_new(xv.as_slice())),
            (Tensor::Cuda(xc), _) => {
                let mut y = Tensor::output_on(xv.shape(), &xv.device());
                cuda::elementwise::relu_forward(xc.gpu(), xc.slice(), y.cuda_mut()).expect(LAUNCH_FAILED);
                y
            }
        };
        self.push(y, Op::Relu { x })
    }
}

pub(crate) fn relu_backward_tape(g: &mut Grads, dout: &Tensor, y: &Tensor, x: Var) {
    match dout {
        Tensor::Cpu(_) => {
            let (y, dout) = (y.as_slice(), dout.as_slice());
            match g.kernels {
                Kernels::Reference => {
                    if let Some(dx) = g.grad_mut(x) {
                        relu_backward(y, dout, dx)
                    }
                }
                Kernels::Fast => g.grad_new_or_add(
                    x,
                    || cpu::relu::relu_backward_new(y, dout),
                    |dx| cpu::relu::relu_backward(y, dout, dx),
                ),
            }
        }
        Tensor::Cuda(dc) => {
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::elementwise::relu_backward(dc.gpu(), y.cuda(), dc.slice(), dx).expect(LAUNCH_FAILED);
            }
        }
    }
}
