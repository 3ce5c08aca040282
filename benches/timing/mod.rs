//! What the op benches share: the median time of a closure over repeated runs.

use std::time::Instant;

/// Median seconds of `f` over enough repetitions to fill about `budget` seconds (after a
/// warm-up of three calls), between `min` and `max` repetitions.
pub fn median_seconds(budget: f64, min: usize, max: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let probe = Instant::now();
    f();
    let once = probe.elapsed().as_secs_f64().max(1e-7);
    let reps = ((budget / once) as usize).clamp(min, max);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[reps / 2]
}
