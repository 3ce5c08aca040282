//! The epoch loop, and the evaluation on the test set.
//!
//! Each epoch visits every training image once, in an order shuffled from the run's seeded
//! generator; each batch is gathered from the u8 images and scaled to [0, 1] into one reused
//! buffer. The loss is the MSE to the clean image, plus `l1` times the sum of |code| (the
//! sparse AE), with Gaussian noise of std `noise` added to the input only (the denoising
//! AE). A progress bar shows the running loss; a non-finite loss stops training at once.

pub use crate::checkpoint::TrainState;
use crate::data::Images;
use crate::models::Model;
use crate::optim::AdamConfig;
use crate::tensor::{Rng64, Tensor};
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    /// Weight of the L1 penalty on the code (0: none).
    pub l1: f32,
    /// Std of the Gaussian noise added to the inputs (0: none).
    pub noise: f32,
}

/// What training leaves behind: the mean loss of each epoch, the loss of every step, and
/// the seconds each epoch took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub epoch_loss: Vec<f64>,
    pub step_loss: Vec<f32>,
    pub epoch_seconds: Vec<f64>,
}

impl TrainState {
    /// Where a fresh model starts: epoch 0, zero moments, the generator that made it.
    pub fn new(model: &Model, cfg: &TrainConfig, rng: Rng64) -> TrainState {
        let adam = model.adam(AdamConfig { lr: cfg.lr, ..AdamConfig::default() });
        TrainState { epoch: 0, adam, rng, history: History::default() }
    }
}

/// Trains `model` on `images` (all of them; slice the set beforehand for quick runs) from
/// `state` up to `cfg.epochs`, calling `after_epoch` (to write a checkpoint) after each.
pub fn train(
    model: &mut Model,
    images: &Images,
    cfg: &TrainConfig,
    mut state: TrainState,
    label: &str,
    mut after_epoch: impl FnMut(&Model, &TrainState) -> Result<()>,
) -> Result<TrainState> {
    let d = images.image_len();
    let mut order: Vec<usize> = (0..images.n).collect();
    let mut clean = vec![0.0f32; cfg.batch_size * d];
    let noise = Normal::new(0.0f32, cfg.noise.max(0.0)).expect("a finite, non-negative std");
    let steps_per_epoch = images.n.div_ceil(cfg.batch_size);
    for epoch in state.epoch + 1..=cfg.epochs {
        // The order is reset before each shuffle, so an epoch's batches depend only on the
        // generator's state at its start (which a checkpoint saves), not on earlier orders.
        order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
        order.shuffle(&mut state.rng);
        let bar = progress_bar(steps_per_epoch, &format!("{label} epoch {epoch}/{}", cfg.epochs));
        let start = Instant::now();
        let mut sum = 0.0f64;
        for (step, batch) in order.chunks(cfg.batch_size).enumerate() {
            let clean = &mut clean[..batch.len() * d];
            images.batch_into(batch, clean);
            let target = Tensor::from_vec(&[batch.len(), d], clean.to_vec());
            let input = if cfg.noise > 0.0 {
                Tensor::from_vec(&[batch.len(), d], clean.iter().map(|&p| p + noise.sample(&mut state.rng)).collect())
            } else {
                target.clone()
            };
            let loss = model.train_step(&mut state.adam, &input, &target, cfg.l1);
            if !loss.is_finite() {
                bar.abandon();
                let kept = if epoch == 1 { "no epoch had completed, so there is no checkpoint".to_string() } else { format!("the checkpoint of epoch {} is kept", epoch - 1) };
                bail!("training diverged: the loss became {loss} at epoch {epoch}, step {}; {kept}; try a smaller --lr", step + 1);
            }
            sum += loss as f64;
            state.history.step_loss.push(loss);
            bar.inc(1);
            if step % 20 == 0 {
                bar.set_message(format!("loss {:.5}", sum / (step + 1) as f64));
            }
        }
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f64();
        let mean = sum / steps_per_epoch as f64;
        eprintln!("{label} epoch {epoch}/{}: loss {mean:.5} ({seconds:.1} s)", cfg.epochs);
        state.history.epoch_loss.push(mean);
        state.history.epoch_seconds.push(seconds);
        state.epoch = epoch;
        after_epoch(model, &state)?;
    }
    Ok(state)
}

fn progress_bar(len: usize, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// How well a model reconstructs a set of images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean squared error per pixel, over every pixel of every image.
    pub mse: f64,
    /// Mean |code| over images and code units.
    pub mean_activation: f64,
}

/// Images per forward pass when evaluating: large batches, nothing recorded.
const EVAL_BATCH: usize = 1000;

pub fn evaluate(model: &Model, images: &Images) -> Evaluation {
    let (mut squared, mut activation, mut codes) = (0.0f64, 0.0f64, 0usize);
    for start in (0..images.n).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(images.n);
        let x = Tensor::from_vec(&[end - start, images.image_len()], images.to_f32(start..end));
        let (out, code) = model.reconstruct(&x);
        squared += out.as_slice().iter().zip(x.as_slice()).map(|(&o, &t)| ((o - t) as f64).powi(2)).sum::<f64>();
        activation += code.as_slice().iter().map(|&c| c.abs() as f64).sum::<f64>();
        codes += code.len();
    }
    Evaluation { mse: squared / (images.n * images.image_len()) as f64, mean_activation: activation / codes as f64 }
}
