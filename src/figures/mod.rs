//! Figures: greyscale images in and out of PNG files, grids of tiles, and SVG line charts.
//!
//! Read in this order: `png_io` (loading any PNG as grey, area resize, saving), `grid`
//! (laying digits, reconstructions and filters out as one picture), `svg` (loss curves).
//! Every file is written through `crate::io::write_atomic`, so an interrupted run never
//! leaves a half-written figure behind.

pub mod charts;
pub mod grid;
pub mod png_io;
pub mod svg;

pub use grid::{tile_grid, upscale_nearest, Normalize};
pub use png_io::{
    area_resize, builtin_non_digit, load_grey, load_grey_28, save_grey_png, save_grey_png_scaled, GreyImage,
};
pub use svg::{line_chart, save_svg, Series};
