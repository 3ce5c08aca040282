//! MSE and mean |x| (`ops::loss`) in parallel: the sums in f64 over fixed chunks of `CHUNK`
//! terms, the chunks' sums then added in order (the same bits whatever the thread count), and
//! the gradients as parallel elementwise loops. The terms are the reference's; only the order
//! of the f64 additions differs, which the final rounding to f32 almost always hides. Measured
//! alone at the study's sizes this is slower than the reference (see `relu.rs` for the figures).

use super::relu::CHUNK;
use rayon::prelude::*;

/// sum_i f(i) over 0..n in f64, in fixed chunks reduced in order.
fn sum_in_chunks(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let partials: Vec<f64> =
        (0..n.div_ceil(CHUNK)).into_par_iter().map(|c| (c * CHUNK..((c + 1) * CHUNK).min(n)).map(&f).sum()).collect();
    partials.iter().sum()
}

pub fn mse_forward(x: &[f32], t: &[f32]) -> f32 {
    assert_eq!(x.len(), t.len());
    (sum_in_chunks(x.len(), |i| ((x[i] - t[i]) as f64).powi(2)) / x.len() as f64) as f32
}

/// d += scale * (x - t).
pub fn mse_backward(x: &[f32], t: &[f32], scale: f32, d: &mut [f32]) {
    d.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).zip(t.par_chunks(CHUNK)).for_each(|((d, x), t)| {
        for ((d, &x), &t) in d.iter_mut().zip(x).zip(t) {
            *d += scale * (x - t);
        }
    });
}

pub fn mean_abs_forward(x: &[f32]) -> f32 {
    (sum_in_chunks(x.len(), |i| x[i].abs() as f64) / x.len() as f64) as f32
}

/// dx += scale * sign(x), sign(0) = 0.
pub fn mean_abs_backward(x: &[f32], scale: f32, dx: &mut [f32]) {
    dx.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(dx, x)| {
        for (dx, &x) in dx.iter_mut().zip(x) {
            if x != 0.0 {
                *dx += scale * x.signum();
            }
        }
    });
}
