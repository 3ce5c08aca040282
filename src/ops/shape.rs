//! The small glue the models need: reshape, sum of two values, scaling by a constant.
//!
//! ```text
//!     reshape: y = x viewed with another shape      dx += dout viewed with x's shape
//!     add:     y = a + b (same shape)               da += dout,  db += dout
//!     scale:   y = s x                              dx += s dout
//! ```
//!
//! Reshape moves no data: tensors are row-major, so the flat order is unchanged and the
//! output shares the input's storage. On the GPU, add, scale and the accumulation of all
//! three backwards are the kernels of the same names in `cuda::elementwise`.

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cuda::{self, LAUNCH_FAILED};
use crate::tensor::Tensor;

impl Tape {
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Var {
        let y = self.value(x).reshape(shape);
        self.push(y, Op::Reshape { x })
    }

    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a), self.value(b));
        assert_eq!(av.shape(), bv.shape(), "add: shapes differ");
        let y = match av {
            Tensor::Cpu(_) => {
                Tensor::from_vec(av.shape(), av.as_slice().iter().zip(bv.as_slice()).map(|(a, b)| a + b).collect())
            }
            Tensor::Cuda(ac) => {
                let mut y = Tensor::output_on(av.shape(), &av.device());
                cuda::elementwise::add(ac.gpu(), ac.slice(), bv.cuda(), y.cuda_mut()).expect(LAUNCH_FAILED);
                y
            }
        };
        self.push(y, Op::Add { a, b })
    }

    pub fn scale(&mut self, x: Var, factor: f32) -> Var {
        let xv = self.value(x);
        let y = match xv {
            Tensor::Cpu(_) => Tensor::from_vec(xv.shape(), xv.as_slice().iter().map(|v| v * factor).collect()),
            Tensor::Cuda(xc) => {
                let mut y = Tensor::output_on(xv.shape(), &xv.device());
                cuda::elementwise::scale(xc.gpu(), xc.slice(), factor, y.cuda_mut()).expect(LAUNCH_FAILED);
                y
            }
        };
        self.push(y, Op::Scale { x, factor })
    }
}

fn add_into(d: &mut [f32], dout: &[f32], factor: f32) {
    d.iter_mut().zip(dout).for_each(|(d, &g)| *d += factor * g);
}

/// grad(v) += factor * dout, on dout's device: the whole of all three backward rules.
fn accumulate(g: &mut Grads, v: Var, dout: &Tensor, factor: f32) {
    match dout {
        Tensor::Cpu(_) => {
            if let Some(d) = g.grad_mut(v) {
                add_into(d, dout.as_slice(), factor);
            }
        }
        Tensor::Cuda(dc) => {
            if let Some(d) = g.grad_mut_cuda(v) {
                cuda::elementwise::add_into(dc.gpu(), d, dc.slice(), factor).expect(LAUNCH_FAILED);
            }
        }
    }
}

pub(crate) fn reshape_backward(g: &mut Grads, dout: &Tensor, x: Var) {
    accumulate(g, x, dout, 1.0);
}

pub(crate) fn add_backward(g: &mut Grads, dout: &Tensor, a: Var, b: Var) {
    for v in [a, b] {
        accumulate(g, v, dout, 1.0);
    }
}

pub(crate) fn scale_backward(g: &mut Grads, dout: &Tensor, x: Var, factor: f32) {
    accumulate(g, x, dout, factor);
}
