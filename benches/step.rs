//! Training steps of one model of the study on real MNIST batches, timed through the same
//! loop `train` runs (shuffle, gather, noise, forward, backward, Adam):
//!
//!     cargo bench --bench step -- MODEL [STEPS]        # e.g. ae 300, cae-unpool 100
//!
//! MODEL is a name of `torch_ref.py`: ae, h64, h128, h256, h900, sparse-L, denoise-S,
//! manifold, cae-unpool, cae-deconv, cae-deconv-unpool. Prints one JSON line with the
//! milliseconds per step and two rates of the linear layers' products: `gflops`, the
//! arithmetic they did (`cpu::linear::multiply_adds`), and `dense_gflops`, the flops of the
//! whole products the step stands for, as PyTorch computes them (the terms left out for
//! units that are zero across the batch included). `scripts/compare_torch.py` runs this
//! beside PyTorch.

use autoencoders::cpu::linear::multiply_adds;
use autoencoders::data::ensure_mnist;
use autoencoders::models::{Arch, Model};
use autoencoders::tensor::rng_from_seed;
use autoencoders::train::{train, TrainConfig, TrainState};

const BATCH: usize = 64;

fn main() {
    autoencoders::memory::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let name = args.first().map(String::as_str).unwrap_or("ae");
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let (arch, l1, noise) = match name {
        _ if name.starts_with("sparse-") => {
            (Arch::Shallow { hidden: 900 }, name[7..].parse().expect("sparse-LAMBDA"), 0.0)
        }
        _ if name.starts_with("denoise-") => {
            (Arch::Shallow { hidden: 256 }, 0.0, name[8..].parse().expect("denoise-SIGMA"))
        }
        _ => (Arch::from_name(name).unwrap_or_else(|| panic!("unknown model {name}")), 0.0, 0.0),
    };
    let mut data = ensure_mnist(None).unwrap_or_else(|e| panic!("{e:#}"));
    data.train.n = data.train.n.min(steps * BATCH);
    data.train.pixels.truncate(data.train.n * data.train.image_len());
    let mut rng = rng_from_seed(0);
    let mut model = Model::new(arch, &mut rng);
    let cfg = TrainConfig { epochs: 1, batch_size: BATCH, lr: 1e-3, l1, noise };
    let state = TrainState::new(&model, &cfg, rng);
    let before = multiply_adds();
    let state = train(&mut model, &data.train, &cfg, state, name, |_, _| Ok(())).unwrap_or_else(|e| panic!("{e:#}"));
    let seconds = state.history.epoch_seconds[0];
    let done = 2.0 * (multiply_adds() - before) as f64;
    let dense = 2.0 * (BATCH * dense_multiply_adds(&model) * steps) as f64;
    let conv = matches!(arch, Arch::CaeUnpool | Arch::CaeDeconv | Arch::CaeDeconvUnpool);
    let rate = |flops: f64| if conv { "null".to_string() } else { format!("{:.2}", flops / seconds / 1e9) };
    println!(
        "{{\"model\": \"{name}\", \"steps\": {steps}, \"threads\": {}, \"ms_per_step\": {:.4}, \"gflops\": {}, \"dense_gflops\": {}}}",
        rayon::current_num_threads(),
        1e3 * seconds / steps as f64,
        rate(done),
        rate(dense),
    );
}

/// Multiply-adds per image of a step's dense products: each weight of a linear layer takes
/// part in three (forward, input gradient, weight gradient), but the first layer's in two,
/// since no one asks for the images' gradient. Convolutions reuse weights, so this counts
/// MLPs only.
fn dense_multiply_adds(model: &Model) -> usize {
    let weights: Vec<usize> =
        model.params.iter().filter(|p| p.value.shape().len() == 2).map(|p| p.value.len()).collect();
    3 * weights.iter().sum::<usize>() - weights.first().unwrap_or(&0)
}
