//! The figures the experiments share: digits and reconstructions, filters as tiles, loss
//! curves, and the weights as safetensors.

use super::Context;
use crate::figures::grid::{tile_grid, Normalize};
use crate::figures::png_io::save_grey_png_scaled;
use crate::figures::svg::{line_chart, save_svg, Series};
use crate::models::{Model, PIXELS, SIDE};
use crate::safetensors::{save, TensorEntry};
use crate::tensor::Tensor;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// Digits are drawn 3x enlarged, kernels more: small things must be visible.
const DIGIT_SCALE: usize = 3;

/// Tiles in rows of `cols`, each `side x side`, enlarged `scale` times.
pub fn tiles(
    path: &Path,
    tiles: &[&[f32]],
    side: usize,
    cols: usize,
    normalize: Normalize,
    scale: usize,
) -> Result<()> {
    let (w, h, pixels) = tile_grid(tiles, side, side, cols, 1, normalize);
    save_grey_png_scaled(path, w, h, &pixels, scale)
}

/// 28x28 images in rows of `cols`, drawn as they are (values in [0, 1]).
pub fn digits(path: &Path, images: &[&[f32]], cols: usize) -> Result<()> {
    tiles(path, images, SIDE, cols, Normalize::None, DIGIT_SCALE)
}

/// Filters (any sign) as 28x28 tiles, each scaled so that 0 is mid-grey.
pub fn filters(path: &Path, rows: &[&[f32]], cols: usize) -> Result<()> {
    tiles(path, rows, SIDE, cols, Normalize::Symmetric, 1)
}

/// The test images `first..first + n` as a tensor (n, 784).
pub fn test_batch(ctx: &Context, first: usize, n: usize) -> Tensor {
    let n = n.min(ctx.data.test.n - first);
    Tensor::from_vec(&[n, PIXELS], ctx.data.test.to_f32(first..first + n))
}

/// Rows of a (rows, 784) tensor as slices.
pub fn rows(t: &Tensor) -> Vec<&[f32]> {
    t.as_slice().chunks_exact(PIXELS).collect()
}

/// The chosen digit beside its reconstruction by `model`, and the first ten test digits
/// over their reconstructions; `name` prefixes the files.
pub fn reconstructions(ctx: &mut Context, model: &Model, name: &str) -> Result<()> {
    let i = ctx.digit_index();
    let one = test_batch(ctx, i, 1);
    let (rec, _) = model.reconstruct(&one);
    digits(&ctx.path(&format!("{name}_digit.png")), &[one.as_slice(), rec.as_slice()], 2)?;
    ctx.figure(
        &format!("{name}_digit.png"),
        format!("{name}: test digit {} (left) and its reconstruction (right).", ctx.settings.digit),
    );
    let ten = test_batch(ctx, 0, 10);
    let (rec, _) = model.reconstruct(&ten);
    let mut all = rows(&ten);
    all.extend(rows(&rec));
    digits(&ctx.path(&format!("{name}_grid.png")), &all, 10)?;
    ctx.figure(
        &format!("{name}_grid.png"),
        format!("{name}: the first ten test digits (top) over their reconstructions (bottom)."),
    );
    Ok(())
}

/// Encoder filters (rows of the first weight matrix) and decoder filters (columns of the
/// last), each as a 28x28 tile.
pub fn mlp_filters(ctx: &mut Context, model: &Model, name: &str) -> Result<()> {
    let first = &model.params[0].value;
    let last = &model.params[model.params.len() - 2].value;
    let (units, pixels) = (first.shape()[0], first.shape()[1]);
    assert_eq!((pixels, last.shape()[0]), (PIXELS, PIXELS), "filters are drawn for 784-pixel inputs and outputs");
    let cols = (units as f64).sqrt().ceil() as usize;
    let enc: Vec<&[f32]> = first.as_slice().chunks_exact(PIXELS).collect();
    filters(&ctx.path(&format!("{name}_encoder_filters.png")), &enc, cols)?;
    ctx.figure(
        &format!("{name}_encoder_filters.png"),
        format!("{name}: the {units} encoder filters (rows of the first weight matrix), grey = 0."),
    );
    let k = last.shape()[1];
    let w = last.as_slice();
    let columns: Vec<Vec<f32>> = (0..k).map(|j| (0..PIXELS).map(|p| w[p * k + j]).collect()).collect();
    let dec: Vec<&[f32]> = columns.iter().map(Vec::as_slice).collect();
    filters(&ctx.path(&format!("{name}_decoder_filters.png")), &dec, (k as f64).sqrt().ceil() as usize)?;
    ctx.figure(
        &format!("{name}_decoder_filters.png"),
        format!("{name}: the {k} decoder filters (columns of the last weight matrix), grey = 0."),
    );
    Ok(())
}

/// Steps per point of the per-step curve: about 500 points whatever the run's length.
fn thin(losses: &[f32]) -> Vec<(f64, f64)> {
    let every = losses.len().div_ceil(500).max(1);
    losses
        .chunks(every)
        .enumerate()
        .map(|(i, c)| (((i * every) + c.len()) as f64, c.iter().map(|&v| v as f64).sum::<f64>() / c.len() as f64))
        .collect()
}

/// loss.svg (per epoch) and loss_steps.svg (per step) for every model trained.
pub fn loss_curves(ctx: &mut Context) -> Result<()> {
    if ctx.outcome.runs.is_empty() {
        return Ok(());
    }
    let per_epoch: Vec<Series> = ctx
        .outcome
        .runs
        .iter()
        .map(|r| Series {
            name: r.model.clone(),
            points: r.history.epoch_loss.iter().enumerate().map(|(e, &l)| ((e + 1) as f64, l)).collect(),
        })
        .collect();
    let per_step: Vec<Series> =
        ctx.outcome.runs.iter().map(|r| Series { name: r.model.clone(), points: thin(&r.history.step_loss) }).collect();
    let title = &ctx.outcome.experiment;
    save_svg(
        &ctx.path("loss.svg"),
        &line_chart(
            &format!("{title}: training loss per epoch"),
            "epoch",
            "mean training loss (MSE, + L1 term if sparse)",
            &per_epoch,
            true,
        ),
    )?;
    save_svg(
        &ctx.path("loss_steps.svg"),
        &line_chart(
            &format!("{title}: training loss per step"),
            "step",
            "training loss (averaged over nearby steps)",
            &per_step,
            true,
        ),
    )?;
    ctx.figure("loss.svg", "Training loss per epoch (log scale).");
    ctx.figure("loss_steps.svg", "Training loss per step (log scale).");
    Ok(())
}

/// The weights in safetensors, named as PyTorch's state_dict would name them.
pub fn save_model(path: &Path, model: &Model, name: &str) -> Result<()> {
    let entries: Vec<TensorEntry> = model
        .params
        .iter()
        .map(|p| TensorEntry { name: p.name.clone(), shape: p.value.shape().to_vec(), data: p.value.to_vec() })
        .collect();
    let metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), name.to_string()),
        ("arch".to_string(), model.name()),
        ("crate_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    save(path, &entries, &metadata)
}
