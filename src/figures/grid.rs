//! Laying many small greyscale tiles out as one picture.
//!
//! Every image figure of the study is a grid of tiles: a digit beside its reconstruction
//! (1 row, 2 columns), ten test digits over their reconstructions (2 rows of 10), the 900
//! encoder filters of the sparse AE (30 x 30 tiles of 28x28), the 900-unit code of one digit
//! (one 30x30 tile), the kernels of a convolutional decoder (e.g. 16 x 8 tiles of 3x3,
//! enlarged with `upscale_nearest`).
//!
//! Layout: tiles are placed row by row, `cols` per row, with a border of `pad` pixels of
//! `PAD_VALUE` around and between them:
//!
//! ```text
//!   width  = cols * tile_w + (cols + 1) * pad
//!   height = rows * tile_h + (rows + 1) * pad,   rows = ceil(n_tiles / cols)
//!   tile k's top-left pixel = (pad + (k % cols) * (tile_w + pad), pad + (k / cols) * (tile_h + pad))
//! ```
//!
//! Cells left over in the last row are filled with `PAD_VALUE` too.
//!
//! Normalisation decides how tile values become grey levels in [0, 1]:
//! - `None`: the values are pixels already (images, reconstructions); clamp to [0, 1].
//! - `PerTile`: min-max stretch of each tile on its own, so every filter uses the full grey
//!   range whatever its scale (a filter's pattern matters, not its norm).
//! - `Symmetric`: per tile, 0 maps to mid-grey 0.5 and the largest |v| to 0 or 1, so the sign
//!   of a weight stays readable (black negative, white positive) and zero stays zero.
//!
//! A tile with no contrast (constant under `PerTile`, all zero under `Symmetric`) becomes
//! uniform mid-grey: it carries no pattern, and grey says so. Non-finite values become 0.5
//! as well under the stretching modes, and 0 under `None`, so one NaN cannot spoil a figure.

/// How tile values are mapped to grey levels (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalize {
    None,
    PerTile,
    Symmetric,
}

/// The grey level of the border and of empty cells. White: most tiles are MNIST digits or
/// reconstructions with black backgrounds, and a white rule separates them clearly.
pub const PAD_VALUE: f32 = 1.0;

/// Lays `tiles` (each `tile_w * tile_h` values, row-major) out in a grid of `cols` columns
/// with a `pad`-pixel border; returns (width, height, pixels in [0, 1]).
pub fn tile_grid(
    tiles: &[&[f32]],
    tile_w: usize,
    tile_h: usize,
    cols: usize,
    pad: usize,
    normalize: Normalize,
) -> (usize, usize, Vec<f32>) {
    assert!(!tiles.is_empty(), "tile_grid: no tiles");
    assert!(cols > 0 && tile_w > 0 && tile_h > 0, "tile_grid: cols {cols}, tile {tile_w}x{tile_h}");
    let rows = tiles.len().div_ceil(cols);
    let width = cols * tile_w + (cols + 1) * pad;
    let height = rows * tile_h + (rows + 1) * pad;
    let mut out = vec![PAD_VALUE; width * height];
    for (k, tile) in tiles.iter().enumerate() {
        assert_eq!(
            tile.len(),
            tile_w * tile_h,
            "tile_grid: tile {k} has {} values, expected {tile_w}x{tile_h}",
            tile.len()
        );
        let grey = normalize_tile(tile, normalize);
        let x0 = pad + (k % cols) * (tile_w + pad);
        let y0 = pad + (k / cols) * (tile_h + pad);
        for y in 0..tile_h {
            let dst = (y0 + y) * width + x0;
            out[dst..dst + tile_w].copy_from_slice(&grey[y * tile_w..(y + 1) * tile_w]);
        }
    }
    (width, height, out)
}

/// Maps one tile's values to grey levels in [0, 1] (see the module comment).
pub fn normalize_tile(tile: &[f32], normalize: Normalize) -> Vec<f32> {
    let finite = || tile.iter().copied().filter(|v| v.is_finite());
    match normalize {
        Normalize::None => tile.iter().map(|&v| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) }).collect(),
        Normalize::PerTile => {
            let lo = finite().fold(f32::INFINITY, f32::min);
            let hi = finite().fold(f32::NEG_INFINITY, f32::max);
            // `hi <= lo` also catches a tile with no finite value (lo = +inf, hi = -inf).
            if hi <= lo {
                return vec![0.5; tile.len()];
            }
            // Divide in f64: hi - lo can overflow f32 for weights near f32::MAX.
            let (lo, span) = (lo as f64, hi as f64 - lo as f64);
            tile.iter().map(|&v| if v.is_finite() { ((v as f64 - lo) / span) as f32 } else { 0.5 }).collect()
        }
        Normalize::Symmetric => {
            let m = finite().fold(0.0f32, |m, v| m.max(v.abs()));
            if m == 0.0 {
                return vec![0.5; tile.len()];
            }
            tile.iter().map(|&v| if v.is_finite() { 0.5 + 0.5 * (v / m) } else { 0.5 }).collect()
        }
    }
}

/// Enlarges an image `factor` times by pixel replication; returns (width, height, pixels).
/// Nearest neighbour on purpose: a 3x3 kernel shown as 3x3 crisp squares is honest, where
/// smoothing would invent structure between its nine weights.
pub fn upscale_nearest(w: usize, h: usize, pixels: &[f32], factor: usize) -> (usize, usize, Vec<f32>) {
    assert_eq!(pixels.len(), w * h, "upscale_nearest: {} pixels for {w}x{h}", pixels.len());
    assert!(factor >= 1, "upscale_nearest: factor must be at least 1");
    let (ow, oh) = (w * factor, h * factor);
    let out = (0..oh * ow).map(|i| pixels[(i / ow / factor) * w + (i % ow) / factor]).collect();
    (ow, oh, out)
}
