//! What bounds a training step on the GPU: the host queuing its launches, or the GPU
//! running them.
//!
//!     cargo bench --bench gpu_step [-- MODEL ...]     # default: every MLP and two CAEs
//!
//! For each model, on one fixed batch of 64: 300 steps queued back to back, timed by the
//! host until the last one has run (the step's real cost), with the host's own share split
//! into forward, backward and Adam; and the median of 30 pairs of steps queued after the GPU
//! has drained (the host's cost with no full queue to wait on). When the two agree the step
//! is bound by the host's calls into the driver; when the first is larger, by the kernels
//! (`ncu` then says which). Without a usable GPU it says why and exits 0, as the other
//! GPU checks skip. `scripts/gpu-check.sh` runs it.
//!
//!     AUTOENCODERS_CUDA_GRAPHS=1 cargo bench --bench gpu_step -- --graph [MODEL ...]
//!
//! adds a column `replay`: one step captured as a CUDA graph (`cuda::graph`), replayed 300
//! times back to back, microseconds per replay until the last has run. A replay repeats the
//! captured step's scalars (Adam's bias corrections among them), so it measures what the
//! launches cost, not a training run; after the replays the bench checks that every
//! parameter is still finite. Not yet run on a GPU (written without one).

use autoencoders::autograd::Tape;
use autoencoders::cuda::graph;
use autoencoders::models::{Arch, Model};
use autoencoders::optim::AdamConfig;
use autoencoders::tensor::{rng_from_seed, Device, Tensor};
use std::time::Instant;

const STEPS: usize = 300;

fn main() {
    let device = match Device::cuda() {
        Ok(device) => device,
        Err(why) => return println!("skipped: {why}"),
    };
    let Device::Cuda(gpu) = &device else { unreachable!("Device::cuda gives a GPU") };
    let names: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let replays = std::env::args().any(|a| a == "--graph");
    if replays && !graph::requested() {
        return println!("skipped: --graph needs {}=1 (the GPU's own stream, which capture needs)", graph::SWITCH);
    }
    let names = if names.is_empty() {
        ["ae", "h64", "h256", "h900", "manifold", "cae-unpool", "cae-deconv"].map(String::from).to_vec()
    } else {
        names
    };
    println!("{} ({STEPS} steps of a batch of 64; microseconds per step)", device);
    println!(
        "{:<18}{:>10}{:>10}{:>9}{:>9}{:>9}{:>10}{:>10}",
        "model", "step", "host", "fwd", "bwd", "adam", "drained", "replay"
    );
    for name in &names {
        let arch = Arch::from_name(name).unwrap_or_else(|| panic!("unknown model {name}"));
        let mut model = Model::new(arch, &mut rng_from_seed(0)).to_device(&device);
        let mut adam = model.adam(AdamConfig::default());
        let pixels = (0..64 * 784).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
        let x = Tensor::from_vec(&[64, 784], pixels).to_device(&device);
        for _ in 0..50 {
            model.step(&mut adam, &x, &x, 0.0);
        }
        gpu.synchronize().expect("the warm-up steps ran");

        // Back to back: the step as `Model::step` runs it, its three parts timed on the host.
        let (mut forward, mut backward, mut update) = (0.0, 0.0, 0.0);
        let start = Instant::now();
        for _ in 0..STEPS {
            let t0 = Instant::now();
            let mut tape = Tape::new();
            let (params, fwd) = model.forward(&mut tape, &x);
            let loss = model.loss(&mut tape, &fwd, &x, 0.0);
            let t1 = Instant::now();
            tape.backward(loss);
            let grads: Vec<Tensor> = params.iter().map(|&p| tape.take_grad(p)).collect();
            drop(tape);
            let t2 = Instant::now();
            let mut values: Vec<&mut Tensor> = model.params.iter_mut().map(|p| &mut p.value).collect();
            adam.step(&mut values, &grads);
            let t3 = Instant::now();
            forward += (t1 - t0).as_secs_f64();
            backward += (t2 - t1).as_secs_f64();
            update += (t3 - t2).as_secs_f64();
        }
        let host = start.elapsed().as_secs_f64();
        gpu.synchronize().expect("the timed steps ran");
        let step = start.elapsed().as_secs_f64();

        // After a drain: two steps queued on an empty stream, the host's cost alone.
        let mut drained: Vec<f64> = (0..30)
            .map(|_| {
                gpu.synchronize().expect("the stream drains");
                let t = Instant::now();
                model.step(&mut adam, &x, &x, 0.0);
                model.step(&mut adam, &x, &x, 0.0);
                t.elapsed().as_secs_f64() / 2.0
            })
            .collect();
        drained.sort_by(f64::total_cmp);
        let us = |s: f64| 1e6 * s / STEPS as f64;
        let replay = if replays { replay_seconds(gpu, &mut model, &mut adam, &x).map(us) } else { Err("-".into()) };
        println!(
            "{name:<18}{:>10.1}{:>10.1}{:>9.1}{:>9.1}{:>9.1}{:>10.1}{:>10}",
            us(step),
            us(host),
            us(forward),
            us(backward),
            us(update),
            1e6 * drained[15],
            replay.map_or_else(|why| why, |us| format!("{us:.1}"))
        );
    }
}

/// Seconds for STEPS replays of one captured step, queued back to back and run to the end;
/// or why there are none. Checks afterwards that the parameters are all finite.
fn replay_seconds(
    gpu: &autoencoders::cuda::Gpu,
    model: &mut Model,
    adam: &mut autoencoders::optim::Adam,
    x: &Tensor,
) -> Result<f64, String> {
    gpu.synchronize().map_err(|e| format!("the stream did not drain: {e}"))?;
    let step = graph::capture(gpu, || {
        model.step(adam, x, x, 0.0);
    });
    let step = step.inspect_err(|why| eprintln!("capture: {why}")).map_err(|_| "failed".to_string())?;
    let start = Instant::now();
    for _ in 0..STEPS {
        graph::replay(&step).map_err(|e| format!("replay: {e}"))?;
    }
    gpu.synchronize().map_err(|e| format!("the replays failed: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let finite = model.params.iter().all(|p| p.value.to_vec().iter().all(|v| v.is_finite()));
    if finite {
        Ok(seconds)
    } else {
        Err("not finite".into())
    }
}
