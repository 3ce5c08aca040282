//! Sections 2 and 3: how the hidden size changes the error, and what a digit autoencoder
//! makes of a picture that is not a digit.
//!
//! hidden: 784 -> fc(h) ReLU (the code) -> fc(h) ReLU -> fc(784) ReLU for h = 64, 128, 256.
//! non-digit: a photograph (or a built-in drawing) turned grey, area-resized to 28x28 and
//! passed through the h = 256 autoencoder.

use super::{draw, Cache, Context};
use crate::figures::png_io::{builtin_non_digit, load_grey_28};
use crate::models::{Arch, Model, PIXELS};
use crate::tensor::Tensor;
use anyhow::Result;

pub fn hidden(ctx: &mut Context, cache: &mut Cache) -> Result<()> {
    for &h in &ctx.settings.sizes.clone() {
        let name = format!("h{h}");
        let model = ctx.train(Arch::Shallow { hidden: h }, &name, 0.0, 0.0)?;
        draw::reconstructions(ctx, &model, &name)?;
        if h == 256 {
            cache.h256 = Some(model);
        }
    }
    Ok(())
}

/// The plain h = 256 autoencoder: from the cache when an earlier section trained it.
pub fn h256(ctx: &mut Context, cache: &mut Cache) -> Result<Model> {
    if let Some(model) = &cache.h256 {
        return Ok(model.clone());
    }
    let model = ctx.train(Arch::Shallow { hidden: 256 }, "h256", 0.0, 0.0)?;
    cache.h256 = Some(model.clone());
    Ok(model)
}

pub fn non_digit(ctx: &mut Context, cache: &mut Cache) -> Result<()> {
    let (picture, source) = match &ctx.settings.image {
        Some(path) => (load_grey_28(path)?, path.display().to_string()),
        None => (builtin_non_digit(), "The built-in drawing".to_string()),
    };
    let model = h256(ctx, cache)?;
    let (out, _) = model.reconstruct(&Tensor::from_vec(&[1, PIXELS], picture.to_vec()));
    let mse = out.as_slice().iter().zip(&picture).map(|(&o, &p)| ((o - p) as f64).powi(2)).sum::<f64>() / PIXELS as f64;
    draw::digits(&ctx.path("non_digit.png"), &[&picture, out.as_slice()], 2)?;
    ctx.figure("non_digit.png", format!("{source} in grey at 28x28 (left) and the h = 256 autoencoder's output (right): it draws what it knows, digit strokes."));
    ctx.outcome.extra.insert("non_digit_mse".into(), mse.into());
    ctx.outcome.extra.insert("image".into(), source.into());
    Ok(())
}
