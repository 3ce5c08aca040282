//! The epoch loop, and the evaluation on the test set.
//!
//! Each epoch visits every training image once, in an order shuffled from the run's seeded
//! generator; each batch is gathered from the u8 images and scaled to [0, 1] into one reused
//! buffer. The loss is the MSE to the clean image, plus `l1` times the sum of |code| (the
//! sparse AE), with Gaussian noise of std `noise` added to the input only (the denoising
//! AE). A progress bar shows the running loss; a non-finite loss stops training.
//!
//! Training runs where the model is (`Model::to_device`). On the GPU the images are uploaded
//! once, each epoch's order once, and each batch is gathered there (`cuda::data`); the noise
//! is drawn on the host, from the same generator in the same order as on the CPU, and
//! uploaded. The host only queues work: each step's loss stays on the device, and the
//! losses are read back every `LOG_EVERY` steps and at the end of the epoch, for the
//! progress bar, the divergence check (which still names the first bad step) and the
//! history. On the CPU every loss is at hand at once and is checked after its step.

use crate::cuda::data::{batch_into, DeviceImages, StepLosses};
use crate::cuda::{self, Gpu, LAUNCH_FAILED};
use crate::data::Images;
use crate::models::Model;
use crate::optim::{Adam, AdamConfig};
use crate::tensor::{rng_from_seed, Device, Rng64, Tensor};
use anyhow::{bail, Context as _, Result};
use cudarc::driver::CudaSlice;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Steps between two readings of the loss on the GPU (and between progress-bar updates on
/// either device): each reading makes the host wait for the GPU to catch up, so it must be
/// rare, and 20 steps are a fraction of a second on any device.
const LOG_EVERY: usize = 20;

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
/// the seconds each epoch took. A checkpoint keeps it as JSON.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    pub epoch_loss: Vec<f64>,
    pub step_loss: Vec<f32>,
    pub epoch_seconds: Vec<f64>,
}

/// Where training stands after a completed epoch: all a checkpoint must keep to continue
/// exactly (see `checkpoint.rs`).
#[derive(Clone, Debug)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub adam: Adam,
    /// The generator after that epoch: it fixes every later shuffle and noise draw.
    pub rng: Rng64,
    pub history: History,
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
    state: TrainState,
    label: &str,
    after_epoch: impl FnMut(&Model, &TrainState) -> Result<()> + Send,
) -> Result<TrainState> {
    crate::memory::keep_freed_memory();
    // The loop runs on one of rayon's worker threads. Called from any other thread, each of
    // a step's forty-odd parallel loops would hand its work to the pool and sleep until it
    // is done: two thread switches a loop, a quarter of a small model's step. From a worker,
    // a parallel loop splits its work in place and the other workers steal their share.
    rayon::scope(|_| train_on_pool(model, images, cfg, state, label, after_epoch))
}

fn train_on_pool(
    model: &mut Model,
    images: &Images,
    cfg: &TrainConfig,
    mut state: TrainState,
    label: &str,
    mut after_epoch: impl FnMut(&Model, &TrainState) -> Result<()>,
) -> Result<TrainState> {
    let steps_per_epoch = images.n.div_ceil(cfg.batch_size);
    let mut feed = Feed::new(&model.device(), images, cfg, steps_per_epoch)?;
    state.adam.to_device(&model.device());
    let mut order: Vec<usize> = (0..images.n).collect();
    for epoch in state.epoch + 1..=cfg.epochs {
        // The order is reset before each shuffle, so an epoch's batches depend only on the
        // generator's state at its start (which a checkpoint saves), not on earlier orders.
        order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
        order.shuffle(&mut state.rng);
        feed.start_epoch(&order)?;
        let bar = progress_bar(steps_per_epoch, &format!("{label} epoch {epoch}/{}", cfg.epochs));
        let start = Instant::now();
        let (mut sum, mut read) = (0.0f64, 0);
        for (step, batch) in order.chunks(cfg.batch_size).enumerate() {
            let (input, target) = feed.batch(step * cfg.batch_size, batch, images, &mut state.rng);
            let timing = crate::profile::Step::start();
            let loss = model.step(&mut state.adam, &input, &target, cfg.l1);
            timing.done();
            feed.record(step, &loss)?;
            bar.inc(1);
            // A CPU loss is at hand (checked at once); reading the GPU's waits for its steps.
            if !feed.on_gpu() || step % LOG_EVERY == 0 || step + 1 == steps_per_epoch {
                for loss in feed.read(read..step + 1)? {
                    if !loss.is_finite() {
                        bar.abandon();
                        let kept = if epoch == 1 {
                            "no epoch had completed, so there is no checkpoint".to_string()
                        } else {
                            format!("the checkpoint of epoch {} is kept", epoch - 1)
                        };
                        let hint = divergence_hint(cfg, epoch == 1 && read == 0);
                        bail!(
                            "training diverged: the loss became {loss} at epoch {epoch}, step {}; {kept}; {hint}",
                            read + 1
                        );
                    }
                    sum += loss as f64;
                    state.history.step_loss.push(loss);
                    read += 1;
                }
            }
            if step % LOG_EVERY == 0 {
                bar.set_message(format!("loss {:.5}", sum / read as f64));
            }
        }
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f64();
        let mean = sum / steps_per_epoch as f64;
        crate::note!("{label} epoch {epoch}/{}: loss {mean:.5} ({seconds:.1} s)", cfg.epochs);
        state.history.epoch_loss.push(mean);
        state.history.epoch_seconds.push(seconds);
        state.epoch = epoch;
        after_epoch(model, &state)?;
    }
    Ok(state)
}

/// What to change after a divergence. The loss of the very first step is computed before any
/// update, so if that one is not finite the learning rate cannot be the cause: the inputs'
/// noise or the penalty's weight put the loss past f32's range (`denoise --noise 1e30`).
fn divergence_hint(cfg: &TrainConfig, first_step: bool) -> String {
    if !first_step {
        return "try a smaller --lr".to_string();
    }
    let mut causes = Vec::new();
    if cfg.noise > 0.0 {
        causes.push(format!("--noise ({:?} here, for pixels in [0, 1])", cfg.noise));
    }
    if cfg.l1 > 0.0 {
        causes.push(format!("--lambda ({:?} here)", cfg.l1));
    }
    match causes.is_empty() {
        true => "the first step, before any update, was not finite: check the data".to_string(),
        false => format!(
            "the first step, before any update, was not finite, so --lr is not the cause: try a smaller {}",
            causes.join(" or a smaller ")
        ),
    }
}

/// Gaussian noise for a batch of `rows` images of `d` pixels, drawn in parallel: one seed
/// per batch from the run's generator, and from it one ChaCha stream per image, so the
/// values depend on the seed alone and not on the thread count. (Drawn in one stream, the
/// noise took a fifth of the denoising AE's step, with the other core idle.)
fn draw_noise(noise: &Normal<f32>, rows: usize, d: usize, rng: &mut Rng64) -> Vec<f32> {
    let seed: u64 = rng.random();
    let mut z = vec![0.0; rows * d];
    z.par_chunks_mut(d).enumerate().for_each(|(row, z)| {
        let mut stream = rng_from_seed(seed);
        stream.set_stream(row as u64);
        z.iter_mut().for_each(|z| *z = noise.sample(&mut stream));
    });
    z
}

/// Where the batches come from and where the losses go, on the model's device.
enum Feed {
    /// A reused host buffer for the batch; each loss is read as soon as its step returns.
    Cpu { clean: Vec<f32>, noise: Normal<f32>, losses: Vec<f32> },
    /// The images and the epoch's order on the device; the losses collected there.
    Cuda { gpu: Arc<Gpu>, images: DeviceImages, order: CudaSlice<u32>, noise: Normal<f32>, losses: StepLosses },
}

impl Feed {
    fn new(device: &Device, images: &Images, cfg: &TrainConfig, steps: usize) -> Result<Feed> {
        let noise = Normal::new(0.0f32, cfg.noise.max(0.0)).expect("a finite, non-negative std");
        Ok(match device {
            Device::Cpu => {
                Feed::Cpu { clean: vec![0.0; cfg.batch_size * images.image_len()], noise, losses: Vec::new() }
            }
            Device::Cuda(gpu) => {
                let upload = || -> cuda::CudaResult<Feed> {
                    let (images, order, losses) =
                        (DeviceImages::upload(gpu, images)?, gpu.zeros(images.n)?, StepLosses::new(gpu, steps)?);
                    Ok(Feed::Cuda { gpu: gpu.clone(), images, order, noise, losses })
                };
                upload().context("cannot put the training images on the GPU")?
            }
        })
    }

    fn on_gpu(&self) -> bool {
        matches!(self, Feed::Cuda { .. })
    }

    /// The epoch's shuffled order goes to the GPU in one copy.
    fn start_epoch(&mut self, order: &[usize]) -> Result<()> {
        if let Feed::Cuda { gpu, order: on_device, .. } = self {
            let rows: Vec<u32> = order.iter().map(|&i| i as u32).collect();
            gpu.stream.memcpy_htod(&rows, on_device).context("cannot copy the epoch's order to the GPU")?;
        }
        Ok(())
    }

    /// (input, target) of the batch `rows`, which starts at position `first` of the order:
    /// the clean images as the target, plus Gaussian noise for the input if asked for.
    fn batch(&mut self, first: usize, rows: &[usize], images: &Images, rng: &mut Rng64) -> (Tensor, Tensor) {
        let d = images.image_len();
        let shape = [rows.len(), d];
        match self {
            Feed::Cpu { clean, noise, .. } => {
                let clean = &mut clean[..rows.len() * d];
                images.batch_into(rows, clean);
                let target = Tensor::from_vec(&shape, clean.to_vec());
                let input = if noise.std_dev() > 0.0 {
                    let mut noisy = draw_noise(noise, rows.len(), d, rng);
                    noisy.iter_mut().zip(clean.iter()).for_each(|(z, &p)| *z += p);
                    Tensor::from_vec(&shape, noisy)
                } else {
                    target.clone()
                };
                (input, target)
            }
            Feed::Cuda { gpu, images: on_device, order, noise, .. } => {
                let device = Device::Cuda(gpu.clone());
                let mut target = Tensor::output_on(&shape, &device);
                batch_into(gpu, on_device, &order.slice(first..first + rows.len()), target.cuda_mut())
                    .expect(LAUNCH_FAILED);
                if noise.std_dev() == 0.0 {
                    return (target.clone(), target);
                }
                // Drawn as the CPU draws it, so a seed gives the same noisy inputs on both
                // devices; the sum is the same f32 addition.
                let z = Tensor::from_vec(&shape, draw_noise(noise, rows.len(), d, rng)).to_device(&device);
                let mut input = Tensor::output_on(&shape, &device);
                cuda::elementwise::add(gpu, target.cuda(), z.cuda(), input.cuda_mut()).expect(LAUNCH_FAILED);
                (input, target)
            }
        }
    }

    /// Keeps the loss of `step`: its value on the CPU, a copy on the device on the GPU.
    fn record(&mut self, step: usize, loss: &Tensor) -> Result<()> {
        match self {
            Feed::Cpu { losses, .. } => losses.push(loss.as_slice()[0]),
            Feed::Cuda { gpu, losses, .. } => {
                losses.record(gpu, step, loss.cuda()).context("cannot keep the loss on the GPU")?
            }
        }
        Ok(())
    }

    /// The losses of `steps` (of this epoch); on the GPU, waits for those steps to run.
    fn read(&mut self, steps: std::ops::Range<usize>) -> Result<Vec<f32>> {
        match self {
            Feed::Cpu { losses, .. } => {
                debug_assert_eq!(steps.len(), losses.len(), "the CPU reads every loss as it comes");
                Ok(std::mem::take(losses))
            }
            Feed::Cuda { gpu, losses, .. } => losses.read(gpu, steps).context("a training step failed on the GPU"),
        }
    }
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
        // Computed where the model is; the sums are formed on the host, in f64.
        let (out, code) = model.reconstruct(&x);
        let (out, code) = (out.to_cpu(), code.to_cpu());
        squared += out.as_slice().iter().zip(x.as_slice()).map(|(&o, &t)| ((o - t) as f64).powi(2)).sum::<f64>();
        activation += code.as_slice().iter().map(|&c| c.abs() as f64).sum::<f64>();
        codes += code.len();
    }
    Evaluation { mse: squared / (images.n * images.image_len()) as f64, mean_activation: activation / codes as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The denoising AE's inputs are the clean batch plus noise of the std asked for: over
    /// 64 x 784 = 50,176 draws the sample std of input - target lies within 5 standard errors
    /// (sigma / sqrt(2N), 0.3% of sigma) of sigma, the mean within 5 sigma / sqrt(N) of 0, and
    /// the target is the clean images. Each image gets its own draws (no repeated stream).
    #[test]
    fn the_noise_has_the_std_asked_for() {
        let (n, d) = (64, 784);
        let images = Images { n, rows: 28, cols: 28, pixels: (0..n * d).map(|i| (i * 37 % 256) as u8).collect() };
        for sigma in [0.1f32, 0.3, 0.5] {
            let cfg = TrainConfig { epochs: 1, batch_size: n, lr: 1e-3, l1: 0.0, noise: sigma };
            let mut feed = Feed::new(&Device::Cpu, &images, &cfg, 1).unwrap();
            let rows: Vec<usize> = (0..n).collect();
            let (input, target) = feed.batch(0, &rows, &images, &mut rng_from_seed(1));
            let clean: Vec<f32> = images.pixels.iter().map(|&p| p as f32 / 255.0).collect();
            assert_eq!(target.as_slice(), &clean[..]);
            let z: Vec<f64> = input.as_slice().iter().zip(&clean).map(|(&x, &c)| (x - c) as f64).collect();
            let count = z.len() as f64;
            let mean = z.iter().sum::<f64>() / count;
            let std = (z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0)).sqrt();
            let sigma = sigma as f64;
            assert!((std - sigma).abs() < 5.0 * sigma / (2.0 * count).sqrt(), "sigma {sigma}: sample std {std}");
            assert!(mean.abs() < 5.0 * sigma / count.sqrt(), "sigma {sigma}: sample mean {mean}");
            assert_ne!(z[..d], z[d..2 * d], "two images drew the same noise");
        }
    }

    /// Without noise the input is the clean batch itself.
    #[test]
    fn no_noise_means_clean_inputs() {
        let images = Images { n: 2, rows: 28, cols: 28, pixels: (0..2 * 784).map(|i| (i % 256) as u8).collect() };
        let cfg = TrainConfig { epochs: 1, batch_size: 2, lr: 1e-3, l1: 0.0, noise: 0.0 };
        let mut feed = Feed::new(&Device::Cpu, &images, &cfg, 1).unwrap();
        let (input, target) = feed.batch(0, &[1, 0], &images, &mut rng_from_seed(1));
        assert_eq!(input.as_slice(), target.as_slice());
        assert_eq!(
            target.as_slice()[..784],
            images.pixels[784..].iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>()[..]
        );
    }
}
