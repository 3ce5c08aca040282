//! Section 6: walking near the manifold. Encoder 784 -> fc(64) ReLU fc(8) ReLU, decoder
//! fc(64) ReLU fc(784) ReLU. The 8-d code of a test digit, perturbed by Gaussian noise of
//! std 0.1, 0.3 and 0.7 and decoded: small steps stay on the manifold of digits (the same
//! digit, restyled), large ones leave it.

use super::{draw, Context};
use crate::models::Arch;
use crate::tensor::{rng_from_seed, Tensor};
use anyhow::Result;
use rand_distr::{Distribution, Normal};

/// Perturbations of the code, and samples drawn at each.
const SIGMAS: [f32; 3] = [0.1, 0.3, 0.7];
const SAMPLES: usize = 9;

pub fn manifold(ctx: &mut Context) -> Result<()> {
    let model = ctx.train(Arch::Manifold, "manifold", 0.0, 0.0)?;
    draw::reconstructions(ctx, &model, "manifold")?;
    let one = draw::test_batch(ctx, ctx.digit_index(), 1);
    let (rec, code) = model.reconstruct(&one);
    let units = code.len();
    let mut rng = rng_from_seed(ctx.settings.seed);
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for sigma in SIGMAS {
        let normal = Normal::new(0.0f32, sigma).expect("a valid std");
        let codes: Vec<f32> = (0..SAMPLES)
            .flat_map(|_| code.as_slice().iter().map(|&c| c + normal.sample(&mut rng)).collect::<Vec<_>>())
            .collect();
        let decoded = model.decode(&Tensor::from_vec(&[SAMPLES, units], codes));
        rows.push(rec.as_slice().to_vec());
        rows.extend(draw::rows(&decoded).into_iter().map(<[f32]>::to_vec));
    }
    let tiles: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    draw::digits(&ctx.path("manifold_walk.png"), &tiles, SAMPLES + 1)?;
    ctx.figure("manifold_walk.png", format!("Test digit {}'s reconstruction (first column), then its 8-d code plus Gaussian noise of std 0.1, 0.3 and 0.7 (one row each), decoded.", ctx.settings.digit));
    Ok(())
}
