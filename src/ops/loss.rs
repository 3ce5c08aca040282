//! Losses: the mean squared error and the mean absolute value (the L1 penalty).
//!
//! mse(x, t) = (1/N) sum_i (x_i - t_i)^2 over all N elements (PyTorch's reduction 'mean'),
//! a tensor of shape `[1]`.      dx = (2/N)(x - t) dout,   dt = -(2/N)(x - t) dout
//!
//! mean_abs(x) = (1/N) sum_i |x_i|, shape `[1]`.      dx = (1/N) sign(x) dout, with sign(0) = 0
//! (the subgradient PyTorch takes at the kink).
//!
//! The sparse autoencoder's penalty is the sum of |code| over the units, averaged over the
//! batch: for a code (n, units) that is units * mean_abs(code), which is how the models
//! build it (`Tape::scale`).
//!
//! Example: x = [1, 3], t = [0, 0]: mse = (1 + 9)/2 = 5, dx = [1, 3]; mean_abs = 2,
//! dx = [0.5, 0.5].
//!
//! The sums run in f64, so that a 50,000-pixel batch loses nothing to rounding before the
//! result is rounded to f32 once. (`cpu::loss` adds the same terms in parallel chunks.)

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cpu;
use crate::cuda::{self, LAUNCH_FAILED};
use crate::ops::Kernels;
use crate::tensor::Tensor;

pub fn mse_forward(x: &[f32], t: &[f32]) -> f32 {
    assert_eq!(x.len(), t.len());
    let mut sum = 0.0f64;
    for i in 0..x.len() {
        sum += ((x[i] - t[i]) as f64).powi(2);
    }
    (sum / x.len() as f64) as f32
}

/// d += scale * (x - t): the gradient of mse for x with scale = 2 dout / N, and for t with
/// scale = -2 dout / N.
pub fn mse_backward(x: &[f32], t: &[f32], scale: f32, d: &mut [f32]) {
    assert!(x.len() == t.len() && t.len() == d.len());
    for i in 0..d.len() {
        d[i] += scale * (x[i] - t[i]);
    }
}

pub fn mean_abs_forward(x: &[f32]) -> f32 {
    let mut sum = 0.0f64;
    for &v in x {
        sum += v.abs() as f64;
    }
    (sum / x.len() as f64) as f32
}

/// dx += scale * sign(x), with scale = dout / N and sign(0) = 0.
pub fn mean_abs_backward(x: &[f32], scale: f32, dx: &mut [f32]) {
    assert_eq!(x.len(), dx.len());
    for i in 0..dx.len() {
        // f32::signum(0.0) is 1; the subgradient at the kink is 0.
        if x[i] != 0.0 {
            dx[i] += scale * x[i].signum();
        }
    }
}

impl Tape {
    /// Mean squared error between x and a target of the same shape.
    pub fn mse(&mut self, x: Var, target: Var) -> Var {
        let (xv, tv) = (self.value(x), self.value(target));
        assert_eq!(xv.shape(), tv.shape(), "mse: prediction and target differ in shape");
        let loss = match xv {
            Tensor::Cpu(_) => Tensor::scalar(match self.kernels() {
                Kernels::Reference => mse_forward(xv.as_slice(), tv.as_slice()),
                Kernels::Fast => cpu::loss::mse_forward(xv.as_slice(), tv.as_slice()),
            }),
            // The loss stays on the GPU: a training loop reads it only when it logs.
            Tensor::Cuda(xc) => {
                let mut loss = Tensor::output_on(&[1], &xv.device());
                cuda::loss::mse_forward(xc.gpu(), xc.slice(), tv.cuda(), loss.cuda_mut()).expect(LAUNCH_FAILED);
                loss
            }
        };
        self.push(loss, Op::Mse { x, target })
    }

    /// Mean of |x| over all elements.
    pub fn mean_abs(&mut self, x: Var) -> Var {
        let xv = self.value(x);
        let loss = match xv {
            Tensor::Cpu(_) => Tensor::scalar(match self.kernels() {
                Kernels::Reference => mean_abs_forward(xv.as_slice()),
                Kernels::Fast => cpu::loss::mean_abs_forward(xv.as_slice()),
            }),
            Tensor::Cuda(xc) => {
                let mut loss = Tensor::output_on(&[1], &xv.device());
                cuda::loss::mean_abs_forward(xc.gpu(), xc.slice(), loss.cuda_mut()).expect(LAUNCH_FAILED);
                loss
            }
        };
        self.push(loss, Op::MeanAbs { x })
    }
}

pub(crate) fn mse_backward_tape(g: &mut Grads, dout: &Tensor, x: Var, target: Var) {
    match dout {
        Tensor::Cpu(_) => {
            let (xv, tv) = (g.value(x).as_slice(), g.value(target).as_slice());
            let scale = 2.0 * dout.as_slice()[0] / xv.len() as f32;
            let backward = match g.kernels {
                Kernels::Reference => mse_backward,
                Kernels::Fast => cpu::loss::mse_backward,
            };
            if let Some(dx) = g.grad_mut(x) {
                backward(xv, tv, scale, dx);
            }
            if let Some(dt) = g.grad_mut(target) {
                backward(xv, tv, -scale, dt);
            }
        }
        // The kernels form the same scale from dout on the device (factor 2, or -2).
        Tensor::Cuda(dc) => {
            let (gpu, xv, tv) = (dc.gpu(), g.value(x).cuda(), g.value(target).cuda());
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::loss::mse_backward(gpu, xv, tv, dc.slice(), 2.0, dx).expect(LAUNCH_FAILED);
            }
            if let Some(dt) = g.grad_mut_cuda(target) {
                cuda::loss::mse_backward(gpu, xv, tv, dc.slice(), -2.0, dt).expect(LAUNCH_FAILED);
            }
        }
    }
}

pub(crate) fn mean_abs_backward_tape(g: &mut Grads, dout: &Tensor, x: Var) {
    match dout {
        Tensor::Cpu(_) => {
            let xv = g.value(x).as_slice();
            let backward = match g.kernels {
                Kernels::Reference => mean_abs_backward,
                Kernels::Fast => cpu::loss::mean_abs_backward,
            };
            if let Some(dx) = g.grad_mut(x) {
                backward(xv, dout.as_slice()[0] / xv.len() as f32, dx);
            }
        }
        Tensor::Cuda(dc) => {
            let xv = g.value(x).cuda();
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::loss::mean_abs_backward(dc.gpu(), xv, dc.slice(), dx).expect(LAUNCH_FAILED);
            }
        }
    }
}
