//! MSE and mean |x| (`ops::loss`) in parallel: the sums in f64 over fixed chunks of `CHUNK`
//! terms, the chunks' sums then added in order (the same bits whatever the thread count), and
//! the gradients as parallel elementwise loops. The terms are the reference's; only the order
//! of the f64 additions differs, which the final rounding to f32 almost always hides.
//!
//! Within a chunk the terms go to `LANES` partial sums in turn, added together at the end:
//! one running f64 sum is a chain of 16,384 additions, each waiting for the one before (3 to
//! 4 cycles), while eight independent ones keep the processor's vector adders busy. MSE of
//! 64 x 784, on one thread of the 2-core AMD EPYC (Zen 3, 2026-12-07, a scratch timing, the
//! machine loaded): 78-113 us with one sum per chunk (and the pool woken), 13-17 us in lanes;
//! inside h64's step (`--profile`) 56-58 us before, 11-16 after: 3-4% of that step.

use super::relu::CHUNK;
use rayon::prelude::*;

/// Partial sums per chunk: term k goes to lane k % LANES.
const LANES: usize = 8;

/// sum_i term(a[i], b[i]) in f64, over fixed chunks reduced in order, each in `LANES` lanes.
fn sum_in_chunks(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f64 + Sync) -> f64 {
    assert_eq!(a.len(), b.len());
    let chunk_sum = |(a, b): (&[f32], &[f32])| {
        let (a_lanes, b_lanes) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let rest: f64 = a_lanes.remainder().iter().zip(b_lanes.remainder()).map(|(&a, &b)| term(a, b)).sum();
        let mut lanes = [0.0f64; LANES];
        for (a, b) in a_lanes.zip(b_lanes) {
            for l in 0..LANES {
                lanes[l] += term(a[l], b[l]);
            }
        }
        lanes.iter().sum::<f64>() + rest
    };
    let partials: Vec<f64> = a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)).map(chunk_sum).collect();
    partials.iter().sum()
}

pub fn mse_forward(x: &[f32], t: &[f32]) -> f32 {
    (sum_in_chunks(x, t, |x, t| ((x - t) as f64).powi(2)) / x.len() as f64) as f32
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
    // One operand: x goes in as both, and the term reads the first.
    (sum_in_chunks(x, x, |x, _| x.abs() as f64) / x.len() as f64) as f32
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
