//! Adam's update on both CPU floors, over the parameter tensors of one model of the study:
//!
//!     cargo bench --bench adam -- [MODEL] [REPEATS]        # e.g. h900 200, h64 2000
//!
//! Times a whole step's updates (every tensor of the model once, as `Model::step` does) with
//! `optim::adam_update` (the reference loop) and `cpu::adam::adam_update` (the fast floor), in
//! alternating order, called from one of rayon's workers as training calls them. Prints one
//! JSON line with each floor's median microseconds per step and their ratio.

use autoencoders::models::{Arch, Model};
use autoencoders::optim::{adam_update, AdamStep};
use autoencoders::tensor::rng_from_seed;
use std::time::Instant;

type Update = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], AdamStep);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let name = args.first().map(String::as_str).unwrap_or("h900");
    let repeats: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let arch = Arch::from_name(name).unwrap_or_else(|| panic!("unknown model {name}"));
    let sizes: Vec<usize> = Model::new(arch, &mut rng_from_seed(0)).params.iter().map(|p| p.value.len()).collect();
    let tensors = |k: usize| -> Vec<Vec<f32>> {
        sizes.iter().map(|&n| (0..n).map(|i| ((i * 7919 + k) % 997) as f32 / 5e5).collect()).collect()
    };
    let (g, mut p, mut m, mut v) = (tensors(1), tensors(2), tensors(3), tensors(4));
    let step = AdamStep { beta1: 0.9, beta2: 0.999, step_size: 1e-3, sqrt_bc2: 0.5, eps: 1e-8 };
    let floors: [(&str, Update); 2] = [("reference", adam_update), ("fast", autoencoders::cpu::adam::adam_update)];
    let mut micros = [Vec::new(), Vec::new()];
    rayon::scope(|_| {
        for r in 0..repeats {
            for f in [r % 2, 1 - r % 2] {
                let start = Instant::now();
                for k in 0..sizes.len() {
                    floors[f].1(&mut p[k], &g[k], &mut m[k], &mut v[k], step);
                }
                micros[f].push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
    });
    let median = |x: &mut Vec<f64>| {
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let (reference, fast) = (median(&mut micros[0]), median(&mut micros[1]));
    println!(
        "{{\"model\": \"{name}\", \"floats\": {}, \"threads\": {}, \"reference_us\": {reference:.1}, \"fast_us\": {fast:.1}, \"speedup\": {:.2}}}",
        sizes.iter().sum::<usize>(),
        rayon::current_num_threads(),
        reference / fast
    );
}
