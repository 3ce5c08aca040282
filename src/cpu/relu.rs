//! ReLU (`ops::relu`'s `relu_forward` and `relu_backward`) split across threads in chunks
//! of `CHUNK` values, each chunk a branch-free loop the compiler vectorises. Measured alone on
//! the study's largest activations (64 x 900, `cargo bench --bench ladder -- elementwise`,
//! docs/performance.md) it is *slower* than the plain loops, 0.15 against 0.09 ms with the
//! loss: four chunks do not pay for waking the pool. Inside a training step the ops run on a
//! rayon worker, where a fork costs less; a larger chunk is the next thing to measure there.

use crate::tensor::written_vec;
use rayon::prelude::*;

/// Elementwise work is split into chunks this long: enough to amortise a rayon task.
pub(crate) const CHUNK: usize = 1 << 14;

pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.max(0.0));
    });
}

/// `relu_forward` into a new buffer, each value written once (`tensor::written_vec`): an
/// output cleared first and then written costs a pass over memory more, as much as the ReLU.
pub fn relu_forward_new(x: &[f32]) -> Vec<f32> {
    written_vec(x.len(), CHUNK, |r| x[r].iter().map(|&x| x.max(0.0)))
}

/// dx = dout where y > 0, else 0, into a new buffer: `relu_backward` for a gradient that
/// nothing has added to yet, which then need not be zeros first.
pub fn relu_backward_new(y: &[f32], dout: &[f32]) -> Vec<f32> {
    assert_eq!(y.len(), dout.len());
    written_vec(y.len(), CHUNK, |r| y[r.clone()].iter().zip(&dout[r]).map(|(&y, &d)| if y > 0.0 { d } else { 0.0 }))
}

/// dx += dout where y > 0.
pub fn relu_backward(y: &[f32], dout: &[f32], dx: &mut [f32]) {
    dx.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).zip(dout.par_chunks(CHUNK)).for_each(|((dx, y), dout)| {
        // A select rather than a branch, so that the loop is vectorised.
        for ((dx, &y), &d) in dx.iter_mut().zip(y).zip(dout) {
            *dx += if y > 0.0 { d } else { 0.0 };
        }
    });
}
