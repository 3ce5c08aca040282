//! Section 7: the convolutional autoencoders. A shared encoder of three conv 3x3 + ReLU +
//! max-pool blocks (1 -> 8 -> 16 -> 16 channels, 28 -> 14 -> 7 -> 3), and three decoders:
//! unpooling with the encoder's indices, transposed convolutions, and both. The figures
//! show each decoder layer's learned kernels, one k x k tile per (input, output) channel
//! pair, on one grey scale per layer (grey = 0).

use super::{draw, Context};
use crate::figures::grid::Normalize;
use crate::models::{Arch, Layer};
use anyhow::Result;

/// Kernels are 3x3 or 4x4: enlarged to be seen.
const KERNEL_SCALE: usize = 12;

pub fn cae(ctx: &mut Context, arch: Arch) -> Result<()> {
    let name = arch.name();
    let model = ctx.train(arch, &name, 0.0, 0.0)?;
    draw::reconstructions(ctx, &model, &name)?;
    let encoder_params = 2 * model
        .encoder
        .iter()
        .filter(|l| matches!(l, Layer::Conv2d { .. } | Layer::ConvTranspose2d { .. } | Layer::Linear { .. }))
        .count();
    for (i, p) in model.params[encoder_params..].iter().step_by(2).enumerate() {
        let &[a, b, kh, kw] = p.value.shape() else { continue };
        assert_eq!(kh, kw, "square kernels");
        let max = p.value.as_slice().iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let scaled: Vec<f32> = p.value.as_slice().iter().map(|v| 0.5 + 0.5 * v / max).collect();
        let tiles: Vec<&[f32]> = scaled.chunks_exact(kh * kw).collect();
        let file = format!("{name}_decoder{}_kernels.png", i + 1);
        draw::tiles(&ctx.path(&file), &tiles, kh, b, Normalize::None, KERNEL_SCALE)?;
        ctx.figure(&file, format!("{name}: decoder layer {} ({}), weight {a}x{b}x{kh}x{kw}: one row per first index, one {kh}x{kw} kernel per second index; grey = 0, white/black = +/-{max:.3}.", i + 1, p.name));
    }
    Ok(())
}
