//! What the step and drift benches share: whole epochs of one model of the study on real
//! MNIST, through the same loop `train` runs (shuffle, gather, noise, forward, backward,
//! Adam), timed by `train` itself (`History::epoch_seconds`).
//!
//! Steady state, not the first steps: Adam's first moments of dead units decayed into
//! subnormal floats some 800 steps in (issue #16), so a window of the first 200 steps saw a
//! faster program than a whole training run. Speed is quoted as the median epoch from epoch
//! 2 on, beside the last epoch's time over the first's and over the second's.
#![allow(dead_code)] // each bench uses its own part

use autoencoders::cpu::linear::multiply_adds;
use autoencoders::data::ensure_mnist;
use autoencoders::models::{Arch, Model};
use autoencoders::tensor::rng_from_seed;
use autoencoders::train::{train, TrainConfig, TrainState};

pub const BATCH: usize = 64;

/// Every model of `torch_ref.py` that the study trains, in the study's order.
pub const MODELS: [&str; 11] = [
    "ae",
    "h64",
    "h128",
    "h256",
    "h900",
    "sparse-0.1",
    "denoise-0.3",
    "manifold",
    "cae-unpool",
    "cae-deconv",
    "cae-deconv-unpool",
];

/// A model name of `torch_ref.py` (ae, h64, ..., sparse-L, denoise-S, cae-unpool, ...):
/// its architecture, L1 weight and input noise, or a message.
pub fn parse_model(name: &str) -> Result<(Arch, f32, f32), String> {
    let number = |s: &str| s.parse::<f32>().map_err(|_| format!("{name}: expected a number after the dash"));
    if let Some(l1) = name.strip_prefix("sparse-") {
        return Ok((Arch::Shallow { hidden: 900 }, number(l1)?, 0.0));
    }
    if let Some(noise) = name.strip_prefix("denoise-") {
        return Ok((Arch::Shallow { hidden: 256 }, 0.0, number(noise)?));
    }
    Arch::from_name(name).map(|a| (a, 0.0, 0.0)).ok_or_else(|| format!("unknown model {name}"))
}

/// One training run's timings.
pub struct Run {
    pub name: String,
    pub arch: Arch,
    pub steps_per_epoch: usize,
    pub epoch_seconds: Vec<f64>,
    /// Multiply-adds the linear layers' products did over the whole run.
    pub multiply_adds: u64,
    /// Multiply-adds per step of the dense products the step stands for.
    pub dense_multiply_adds: usize,
}

impl Run {
    /// The median epoch from epoch 2 on (epoch 1 alone if it is the only one).
    pub fn median_epoch(&self) -> f64 {
        let mut later: Vec<f64> = self.epoch_seconds.iter().skip(1).copied().collect();
        if later.is_empty() {
            later = self.epoch_seconds.clone();
        }
        later.sort_by(f64::total_cmp);
        let k = later.len();
        if k % 2 == 1 {
            later[k / 2]
        } else {
            (later[k / 2 - 1] + later[k / 2]) / 2.0
        }
    }

    /// The last epoch's seconds over epoch `first`'s (1-based).
    pub fn last_over(&self, first: usize) -> f64 {
        self.epoch_seconds[self.epoch_seconds.len() - 1] / self.epoch_seconds[first - 1]
    }

    /// Whether the rates of the products mean something: convolutions reuse their weights,
    /// which the dense count leaves out, so only the MLPs get them.
    pub fn is_mlp(&self) -> bool {
        !matches!(self.arch, Arch::CaeUnpool | Arch::CaeDeconv | Arch::CaeDeconvUnpool)
    }
}

/// Trains `name` from seed 0 for `epochs` epochs of batch 64, on the whole training set or
/// on its first `steps * 64` images.
pub fn train_epochs(name: &str, epochs: usize, steps: Option<usize>) -> Result<Run, String> {
    autoencoders::memory::keep_freed_memory();
    let (arch, l1, noise) = parse_model(name)?;
    let mut data = ensure_mnist(None).map_err(|e| format!("{e:#}"))?;
    if let Some(steps) = steps {
        data.train.n = data.train.n.min(steps * BATCH);
        data.train.pixels.truncate(data.train.n * data.train.image_len());
    }
    let mut rng = rng_from_seed(0);
    let mut model = Model::new(arch, &mut rng);
    let cfg = TrainConfig { epochs, batch_size: BATCH, lr: 1e-3, l1, noise };
    let state = TrainState::new(&model, &cfg, rng);
    let before = multiply_adds();
    let state = train(&mut model, &data.train, &cfg, state, name, |_, _| Ok(())).map_err(|e| format!("{e:#}"))?;
    Ok(Run {
        name: name.to_string(),
        arch,
        steps_per_epoch: data.train.n.div_ceil(BATCH),
        epoch_seconds: state.history.epoch_seconds,
        multiply_adds: multiply_adds() - before,
        dense_multiply_adds: BATCH * dense_multiply_adds(&model),
    })
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

/// This process's peak resident memory so far, in MB (Linux's VmHWM; None elsewhere).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The arguments after the bench's name that are not cargo's own `--bench`.
pub fn args() -> Vec<String> {
    std::env::args().skip(1).filter(|a| a != "--bench").collect()
}
