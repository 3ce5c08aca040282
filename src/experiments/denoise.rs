//! Section 5: the denoising autoencoder. h = 256; Gaussian noise of std sigma added to each
//! training input, the loss taken against the clean image. Beside it, the same noisy digits
//! through the plain h = 256 AE, which was never asked to remove noise.
//!
//! Test MSE is reported twice: on clean inputs (what `torch_ref.py` reports) and on noisy
//! inputs against the clean images (the denoising error), with noise from the run's seed.

use super::{draw, hidden::h256, Cache, Context};
use crate::models::{Arch, Model};
use crate::tensor::{rng_from_seed, Tensor};
use anyhow::Result;
use rand_distr::{Distribution, Normal};
use serde_json::json;

/// Test images per noisy evaluation: enough for three significant digits.
const NOISY_EVAL: usize = 2000;

fn noisy(clean: &Tensor, sigma: f32, seed: u64) -> Tensor {
    let mut rng = rng_from_seed(seed);
    let normal = Normal::new(0.0f32, sigma).expect("a valid std");
    Tensor::from_vec(clean.shape(), clean.as_slice().iter().map(|&p| p + normal.sample(&mut rng)).collect())
}

fn noisy_mse(model: &Model, clean: &Tensor, input: &Tensor) -> f64 {
    let (out, _) = model.reconstruct(input);
    out.as_slice().iter().zip(clean.as_slice()).map(|(&o, &c)| ((o - c) as f64).powi(2)).sum::<f64>()
        / clean.len() as f64
}

pub fn denoise(ctx: &mut Context, cache: &mut Cache) -> Result<()> {
    let plain = h256(ctx, cache)?;
    let clean = draw::test_batch(ctx, 0, NOISY_EVAL);
    let ten = draw::test_batch(ctx, 0, 10);
    let mut noisy_scores = serde_json::Map::new();
    for &sigma in &ctx.settings.noises.clone() {
        let name = format!("denoise-{sigma}");
        let model = ctx.train(Arch::Shallow { hidden: 256 }, &name, 0.0, sigma)?;
        let input = noisy(&clean, sigma, ctx.settings.seed);
        noisy_scores.insert(
            name.clone(),
            json!({"denoiser": noisy_mse(&model, &clean, &input), "plain_h256": noisy_mse(&plain, &clean, &input)}),
        );

        let noisy_ten = noisy(&ten, sigma, ctx.settings.seed);
        let (ours, _) = model.reconstruct(&noisy_ten);
        let (theirs, _) = plain.reconstruct(&noisy_ten);
        let mut all = draw::rows(&noisy_ten);
        all.extend(draw::rows(&ours));
        all.extend(draw::rows(&theirs));
        draw::digits(&ctx.path(&format!("{name}_noisy.png")), &all, 10)?;
        ctx.figure(&format!("{name}_noisy.png"), format!("sigma = {sigma}: noisy test digits (top), the denoising AE's output (middle), the plain h = 256 AE's output (bottom)."));
        draw::reconstructions(ctx, &model, &name)?;
        draw::mlp_filters(ctx, &model, &name)?;
    }
    ctx.outcome.extra.insert("noisy_test_mse".into(), noisy_scores.into());
    ctx.outcome.extra.insert("noisy_test_images".into(), (NOISY_EVAL.min(ctx.data.test.n)).into());
    Ok(())
}
