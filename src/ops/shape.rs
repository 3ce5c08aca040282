//! The small glue the models need: reshape, sum of two values, scaling by a constant.
//!
//! ```text
//!     reshape: y = x viewed with another shape      dx += dout viewed with x's shape
//!     add:     y = a + b (same shape)               da += dout,  db += dout
//!     scale:   y = s x                              dx += s dout
//! ```
//!
//! Reshape moves no data: tensors are row-major, so the flat order is unchanged and the
//! output shares the input's storage.

use crate::autograd::{Grads, Op, Tape, Var};
use crate::tensor::Tensor;

impl Tape {
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Var {
        let y = self.value(x).reshape(shape);
        self.push(y, Op::Reshape { x })
    }

    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a), self.value(b));
        assert_eq!(av.shape(), bv.shape(), "add: shapes differ");
        let sum = av.as_slice().iter().zip(bv.as_slice()).map(|(a, b)| a + b).collect();
        let y = Tensor::from_vec(av.shape(), sum);
        self.push(y, Op::Add { a, b })
    }

    pub fn scale(&mut self, x: Var, factor: f32) -> Var {
        let xv = self.value(x);
        let y = Tensor::from_vec(xv.shape(), xv.as_slice().iter().map(|v| v * factor).collect());
        self.push(y, Op::Scale { x, factor })
    }
}

fn add_into(d: &mut [f32], dout: &[f32], factor: f32) {
    d.iter_mut().zip(dout).for_each(|(d, &g)| *d += factor * g);
}

pub(crate) fn reshape_backward(g: &mut Grads, dout: &[f32], x: Var) {
    if let Some(dx) = g.grad_mut(x) {
        add_into(dx, dout, 1.0);
    }
}

pub(crate) fn add_backward(g: &mut Grads, dout: &[f32], a: Var, b: Var) {
    for v in [a, b] {
        if let Some(d) = g.grad_mut(v) {
            add_into(d, dout, 1.0);
        }
    }
}

pub(crate) fn scale_backward(g: &mut Grads, dout: &[f32], x: Var, factor: f32) {
    if let Some(dx) = g.grad_mut(x) {
        add_into(dx, dout, factor);
    }
}
