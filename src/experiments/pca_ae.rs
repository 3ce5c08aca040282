//! Section 1: PCA against a deep autoencoder, both with a 30-d code.
//!
//! PCA keeps the 30 directions of largest variance of the training images (a linear code);
//! the deep AE (784-512-256-128-30 and back, ReLUs) learns a nonlinear one. Both are scored
//! by the test MSE per pixel.

use super::{draw, Cache, Context};
use crate::figures::grid::Normalize;
use crate::models::{Arch, PIXELS, SIDE};
use crate::pca::Pca;
use anyhow::Result;
use std::time::Instant;

/// PCA fitted on the training images: from the cache when an earlier section fitted it.
fn fitted(ctx: &mut Context, cache: &mut Cache) -> Pca {
    let k = ctx.settings.components;
    if let Some(pca) = cache.pca.as_ref().filter(|p| p.explained_variance.len() == k) {
        return pca.clone();
    }
    let train = &ctx.data.train;
    let start = Instant::now();
    let pca = Pca::fit(&train.to_f32(0..train.n), train.n, PIXELS, k);
    let seconds = start.elapsed().as_secs_f64();
    crate::note!("pca: {k} components from {} images in {seconds:.2} s ({} Jacobi sweeps)", train.n, pca.sweeps);
    ctx.outcome.extra.insert("pca_fit_seconds".into(), seconds.into());
    ctx.outcome.extra.insert("pca_sweeps".into(), pca.sweeps.into());
    cache.pca = Some(pca.clone());
    pca
}

/// PCA's reconstructions of test images first..first+n.
fn pca_reconstruct(ctx: &Context, pca: &Pca, first: usize, n: usize) -> Vec<f32> {
    let x = ctx.data.test.to_f32(first..first + n);
    pca.reconstruct(&pca.project(&x, n), n)
}

fn score(ctx: &mut Context, pca: &Pca) -> f64 {
    let test = &ctx.data.test;
    let mse = pca.reconstruction_mse(&test.to_f32(0..test.n), test.n);
    crate::note!("pca: test MSE per pixel {mse:.5}");
    ctx.outcome.pca_test_mse = Some(mse);
    mse
}

pub fn pca(ctx: &mut Context, cache: &mut Cache) -> Result<()> {
    let pca = fitted(ctx, cache);
    score(ctx, &pca);
    let i = ctx.digit_index();
    let one = draw::test_batch(ctx, i, 1);
    draw::digits(&ctx.path("pca_digit.png"), &[one.as_slice(), &pca_reconstruct(ctx, &pca, i, 1)], 2)?;
    ctx.figure(
        "pca_digit.png",
        format!(
            "Test digit {} (left) and its reconstruction from {} principal components (right).",
            ctx.settings.digit, ctx.settings.components
        ),
    );
    let ten = draw::test_batch(ctx, 0, 10);
    let rec = pca_reconstruct(ctx, &pca, 0, ten.shape()[0]);
    let mut all = draw::rows(&ten);
    all.extend(rec.chunks_exact(PIXELS));
    draw::digits(&ctx.path("pca_grid.png"), &all, 10)?;
    ctx.figure("pca_grid.png", "The first ten test digits (top) over their PCA reconstructions (bottom).");
    let components: Vec<&[f32]> = pca.components.chunks_exact(PIXELS).collect();
    draw::tiles(&ctx.path("pca_components.png"), &components, SIDE, 10, Normalize::Symmetric, 2)?;
    ctx.figure("pca_components.png", "The principal components, largest variance first (grey = 0).");
    Ok(())
}

pub fn ae(ctx: &mut Context, cache: &mut Cache) -> Result<()> {
    let model = ctx.train(Arch::DeepAe, "ae", 0.0, 0.0)?;
    draw::reconstructions(ctx, &model, "ae")?;
    let pca = fitted(ctx, cache);
    score(ctx, &pca);
    let i = ctx.digit_index();
    let one = draw::test_batch(ctx, i, 1);
    let (rec, _) = model.reconstruct(&one);
    draw::digits(&ctx.path("ae_vs_pca.png"), &[one.as_slice(), &pca_reconstruct(ctx, &pca, i, 1), rec.as_slice()], 3)?;
    ctx.figure(
        "ae_vs_pca.png",
        format!(
            "Test digit {} (left), PCA's reconstruction (middle), the deep AE's (right), both from a 30-d code.",
            ctx.settings.digit
        ),
    );
    Ok(())
}
