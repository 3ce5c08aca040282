//! Section 4: the sparse autoencoder. h = 900 (overcomplete), loss = MSE + lambda * L1,
//! with L1 the sum of |code| over the 900 units averaged over the batch, for each lambda,
//! and the unregularised h = 900 AE beside them. What to look at: the code of one digit
//! (30x30), the mean activation, and filters that look like pieces of digits.

use super::{draw, Context};
use crate::figures::grid::Normalize;
use crate::models::Arch;
use anyhow::Result;

pub fn sparse(ctx: &mut Context) -> Result<()> {
    let mut runs: Vec<(String, f32)> = ctx.settings.lambdas.iter().map(|&l| (format!("sparse-{l}"), l)).collect();
    runs.push(("h900".to_string(), 0.0));
    for (name, lambda) in runs {
        let model = ctx.train(Arch::Shallow { hidden: 900 }, &name, lambda, 0.0)?;
        draw::reconstructions(ctx, &model, &name)?;
        let one = draw::test_batch(ctx, ctx.digit_index(), 1);
        let (_, code) = model.reconstruct(&one);
        draw::tiles(&ctx.path(&format!("{name}_code.png")), &[code.as_slice()], 30, 1, Normalize::PerTile, 6)?;
        ctx.figure(
            &format!("{name}_code.png"),
            format!(
                "{name}: the 900-unit code of test digit {} as a 30x30 image (black = 0, white = its largest unit).",
                ctx.settings.digit
            ),
        );
        draw::mlp_filters(ctx, &model, &name)?;
    }
    Ok(())
}
