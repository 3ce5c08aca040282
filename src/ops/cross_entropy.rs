//! Log-softmax and the cross-entropy of a classifier's logits against class labels: what
//! trains the linear probe on a model's codes (`experiments::probe`).
//!
//! For logits x of shape (n, k) (n examples, k classes) and labels l_i in 0..k:
//!
//! ```text
//!     log_softmax(x)_ij = x_ij - m_i - log sum_j' exp(x_ij' - m_i),   m_i = max_j x_ij
//!     cross_entropy(x, l) = -(1/n) sum_i log_softmax(x)_{i, l_i}       shape [1]
//!     dx_ij = (dout / n) (softmax(x)_ij - [j == l_i])
//! ```
//!
//! This is PyTorch's `F.cross_entropy(x, l)` with reduction 'mean'. Subtracting the row's
//! maximum m_i changes nothing mathematically (it cancels between the two terms) but keeps
//! every exp() at most 1, so large logits cannot overflow; the log-sum-exp is formed in f64.
//! The labels are integers, not a value on the tape: nothing flows into them. Each row of
//! the gradient sums to zero (the softmax sums to 1), which a test checks.
//!
//! Example: `x = [[0, ln 3]]`, `l = [1]`: softmax = `[1/4, 3/4]`, loss = -ln(3/4) = 0.2877,
//! `dx = [[1/4, -1/4]]`.
//!
//! Only the plain loops exist (no fast floor, no GPU kernel): the probe's logits are a few
//! hundred thousand numbers, trained on the host.

use crate::autograd::{Grads, Op, Tape, Var};
use crate::tensor::Tensor;

/// y (n, k) = log_softmax of each row of x (n, k).
pub fn log_softmax_forward(x: &[f32], k: usize, y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "log_softmax: x has {} values, y {}", x.len(), y.len());
    for (x, y) in x.chunks_exact(k).zip(y.chunks_exact_mut(k)) {
        let lse = log_sum_exp(x);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x as f64 - lse) as f32;
        }
    }
}

/// log sum_j exp(x_j) for one row, in f64, shifted by the row's maximum.
fn log_sum_exp(x: &[f32]) -> f64 {
    let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    m + x.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln()
}

/// The mean over the n rows of x (n, k) of -log_softmax(x)_{i, labels_i}.
pub fn cross_entropy_forward(x: &[f32], labels: &[usize], k: usize) -> f32 {
    let n = labels.len();
    assert_eq!(x.len(), n * k, "cross_entropy: x has {} values, expected n*k = {n}*{k}", x.len());
    let mut sum = 0.0f64;
    for (x, &l) in x.chunks_exact(k).zip(labels) {
        assert!(l < k, "cross_entropy: label {l} is not below k = {k}");
        sum += log_sum_exp(x) - x[l] as f64;
    }
    (sum / n as f64) as f32
}

/// dx += scale * (softmax(x) - onehot(labels)), with scale = dout / n.
pub fn cross_entropy_backward(x: &[f32], labels: &[usize], k: usize, scale: f32, dx: &mut [f32]) {
    assert_eq!(x.len(), dx.len(), "cross_entropy: x has {} values, dx {}", x.len(), dx.len());
    for ((x, dx), &l) in x.chunks_exact(k).zip(dx.chunks_exact_mut(k)).zip(labels) {
        let lse = log_sum_exp(x);
        for (j, (dx, &x)) in dx.iter_mut().zip(x).enumerate() {
            let p = (x as f64 - lse).exp();
            let target = if j == l { 1.0 } else { 0.0 };
            *dx += scale * (p - target) as f32;
        }
    }
}

impl Tape {
    /// The mean cross-entropy of logits (n, k) against `labels` (n values in 0..k), shape `[1]`.
    pub fn cross_entropy(&mut self, x: Var, labels: &[usize]) -> Var {
        let xv = self.value(x);
        let &[n, k] = xv.shape() else { panic!("cross_entropy needs logits (n, k), not {:?}", xv.shape()) };
        assert_eq!(labels.len(), n, "cross_entropy: {n} rows of logits but {} labels", labels.len());
        assert!(matches!(xv, Tensor::Cpu(_)), "cross_entropy runs on the host: move the logits there first");
        let loss = Tensor::scalar(cross_entropy_forward(xv.as_slice(), labels, k));
        self.push(loss, Op::CrossEntropy { x, labels: labels.to_vec() })
    }
}

pub(crate) fn cross_entropy_backward_tape(g: &mut Grads, dout: &Tensor, x: Var, labels: &[usize]) {
    let xv = g.value(x);
    let k = xv.shape()[1];
    let scale = dout.as_slice()[0] / labels.len() as f32;
    if let Some(dx) = g.grad_mut(x) {
        cross_entropy_backward(xv.as_slice(), labels, k, scale, dx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the module's doc, by hand.
    #[test]
    fn the_worked_example() {
        let x = [0.0, 3f32.ln()];
        let loss = cross_entropy_forward(&x, &[1], 2);
        assert!((loss as f64 - (4.0f64 / 3.0).ln()).abs() < 1e-7, "{loss}");
        let mut dx = [0.0; 2];
        cross_entropy_backward(&x, &[1], 2, 1.0, &mut dx);
        assert!((dx[0] - 0.25).abs() < 1e-7 && (dx[1] + 0.25).abs() < 1e-7, "{dx:?}");
    }
}
