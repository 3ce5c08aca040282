//! The figures that judge a model's codes (the "Representations" section of the report):
//!
//! - **interpolation**: between two test digits of different classes, 8 evenly spaced
//!   steps (both ends included) of a straight line, taken in three spaces, one row each:
//!   the pixels themselves (a cross-fade), PCA's codes of the model's size (decoded by PCA),
//!   and the model's codes (decoded by the model). A good code passes through digits;
//!   a cross-fade shows two ghosts. Decoders that unpool need the encoder's pool indices,
//!   which a point between two codes does not have, so they get no code row;
//! - **a 2-D map** of the 10,000 test codes: projected on their own two principal
//!   components (PCA fitted on the test codes) and coloured by class;
//! - **per-digit bars**: test MSE per class, PCA of the same code size beside the model.

use super::probe::{Codes, ProbeRow, CLASSES};
use crate::data::Mnist;
use crate::figures::charts::{bar_chart, scatter_chart};
use crate::figures::grid::Normalize;
use crate::figures::save_svg;
use crate::models::{Layer, Model, PIXELS, SIDE};
use crate::pca::Pca;
use crate::tensor::Tensor;
use anyhow::Result;
use std::path::Path;

/// Steps along each interpolation, both ends included.
pub const STEPS: usize = 8;
/// The pairs of classes interpolated between (the first test image of each class): pairs
/// that share strokes, where a code that understands digits has a short way to go.
pub const PAIRS: [(u8, u8); 3] = [(1, 7), (3, 8), (4, 9)];

/// The points (1 - t) a + t b for t = 0, 1/7, ..., 1, as rows of one vector.
fn line(a: &[f32], b: &[f32]) -> Vec<f32> {
    (0..STEPS)
        .flat_map(|s| {
            let t = s as f32 / (STEPS - 1) as f32;
            a.iter().zip(b).map(move |(&a, &b)| (1.0 - t) * a + t * b)
        })
        .collect()
}

/// Whether the model's decoder can run on a code alone (no unpooling).
pub fn decodes_alone(model: &Model) -> bool {
    !model.decoder.contains(&Layer::MaxUnpool2d)
}

/// The interpolation figure for `model` and `pca` (as many components as the model's
/// code has units, or None when the code is wider than the pixels). Returns its caption.
pub fn interpolation(path: &Path, model: &Model, name: &str, pca: Option<&Pca>, data: &Mnist) -> Result<String> {
    let first = |class: u8| data.test_labels.labels.iter().position(|&l| l == class);
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let mut kinds = vec!["pixels"];
    if let Some(pca) = pca {
        kinds.push(if pca.explained_variance.len() == 1 { "PCA-1" } else { "PCA" });
    }
    if decodes_alone(model) {
        kinds.push(name);
    }
    for (ca, cb) in PAIRS {
        let (Some(ia), Some(ib)) = (first(ca), first(cb)) else { continue };
        let (a, b) = (data.test.to_f32(ia..ia + 1), data.test.to_f32(ib..ib + 1));
        rows.push(line(&a, &b));
        if let Some(pca) = pca {
            let codes = line(&pca.project(&a, 1), &pca.project(&b, 1));
            rows.push(pca.reconstruct(&codes, STEPS));
        }
        if decodes_alone(model) {
            let (_, code_a) = model.reconstruct(&Tensor::from_vec(&[1, PIXELS], a));
            let (_, code_b) = model.reconstruct(&Tensor::from_vec(&[1, PIXELS], b));
            let mut shape = code_a.shape().to_vec();
            shape[0] = STEPS;
            let codes = Tensor::from_vec(&shape, line(code_a.as_slice(), code_b.as_slice()));
            rows.push(model.decode(&codes).to_cpu().to_vec());
        }
    }
    let tiles: Vec<&[f32]> = rows.iter().flat_map(|r| r.chunks_exact(PIXELS)).collect();
    super::draw::tiles(path, &tiles, SIDE, STEPS, Normalize::None, 2)?;
    let pairs: Vec<String> = PAIRS.iter().map(|(a, b)| format!("{a} to {b}")).collect();
    let mut caption = format!(
        "Straight lines between the first test digits of classes {} in {STEPS} steps; for each pair, one row per space: {}.",
        pairs.join(", "),
        kinds.join(", ")
    );
    if !decodes_alone(model) {
        caption.push_str(" This decoder unpools with the encoder's indices, so a code between two digits cannot be decoded: no code row.");
    }
    Ok(caption)
}

/// The 2-D map of a model's (or PCA's, or the pixels') test codes. Returns its caption.
pub fn code_map(path: &Path, name: &str, codes: &Codes, labels: &[u8]) -> Result<String> {
    let plane = Pca::fit(&codes.values, codes.n, codes.d, 2.min(codes.d));
    let xy = plane.project(&codes.values, codes.n);
    let k = plane.explained_variance.len();
    let points: Vec<(f64, f64, usize)> = xy
        .chunks_exact(k)
        .zip(labels)
        .map(|(p, &l)| (p[0] as f64, p.get(1).copied().unwrap_or(0.0) as f64, l as usize))
        .collect();
    let classes: Vec<String> = (0..CLASSES).map(|c| format!("digit {c}")).collect();
    let svg = scatter_chart(
        &format!("{name}: the {} test codes on their first two principal components", codes.n),
        "first principal component",
        "second principal component",
        &points,
        &classes,
    );
    save_svg(path, &svg)?;
    let total: f64 = variance(codes);
    let share = if total > 0.0 { plane.explained_variance.iter().sum::<f64>() / total } else { 0.0 };
    Ok(format!(
        "The {}-d codes ({name}) of the {} test digits projected on their two principal components (which hold {:.0}% of the codes' variance), coloured by class.",
        codes.d,
        codes.n,
        100.0 * share
    ))
}

/// The total variance of the codes: the sum over units of each unit's variance.
fn variance(codes: &Codes) -> f64 {
    let n = codes.n as f64;
    (0..codes.d)
        .map(|j| {
            let mean = (0..codes.n).map(|i| codes.values[i * codes.d + j] as f64).sum::<f64>() / n;
            (0..codes.n).map(|i| (codes.values[i * codes.d + j] as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)
        })
        .sum()
}

/// The per-digit MSE bars: each row given (PCA, then the model), one bar per class.
pub fn per_digit_bars(path: &Path, name: &str, rows: &[&ProbeRow]) -> Result<String> {
    let categories: Vec<String> = (0..CLASSES).map(|c| c.to_string()).collect();
    let series: Vec<(String, Vec<f64>)> =
        rows.iter().filter_map(|r| r.mse_per_class.map(|m| (r.name.clone(), m.to_vec()))).collect();
    let svg =
        bar_chart(&format!("{name}: test MSE per pixel by digit"), "digit", "test MSE per pixel", &categories, &series);
    save_svg(path, &svg)?;
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    Ok(format!("Test MSE per pixel of each digit class: {}.", names.join(" against ")))
}
