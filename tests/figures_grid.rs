//! Grid layout: dimensions, where each tile's pixels land, and the three normalisations.

use autoencoders::figures::grid::{normalize_tile, tile_grid, upscale_nearest, Normalize, PAD_VALUE};

#[test]
fn dimensions_and_pixel_placement() {
    // Three 3x2 tiles, 2 columns, pad 1: 2 rows; width 2*3 + 3 = 9, height 2*2 + 3 = 7.
    let tiles: Vec<Vec<f32>> = (0..3).map(|k| (0..6).map(|i| (k * 6 + i) as f32 / 20.0).collect()).collect();
    let refs: Vec<&[f32]> = tiles.iter().map(|t| t.as_slice()).collect();
    let (w, h, px) = tile_grid(&refs, 3, 2, 2, 1, Normalize::None);
    assert_eq!((w, h, px.len()), (9, 7, 63));
    let mut owner = vec![None; w * h];
    for (k, tile) in tiles.iter().enumerate() {
        let (x0, y0) = (1 + (k % 2) * 4, 1 + (k / 2) * 3);
        for y in 0..2 {
            for x in 0..3 {
                assert_eq!(px[(y0 + y) * w + x0 + x], tile[y * 3 + x], "tile {k} ({x}, {y})");
                owner[(y0 + y) * w + x0 + x] = Some(k);
            }
        }
    }
    // Everything else (borders, and the empty fourth cell) is the pad value.
    for (i, o) in owner.iter().enumerate() {
        if o.is_none() {
            assert_eq!(px[i], PAD_VALUE, "pixel {i}");
        }
    }
    assert_eq!(owner.iter().filter(|o| o.is_none()).count(), 63 - 18);
}

#[test]
fn study_figure_sizes() {
    // A digit beside its reconstruction, pad 0: 56x28, the two images side by side.
    let (a, b) = (vec![0.25f32; 784], vec![0.75f32; 784]);
    let (w, h, px) = tile_grid(&[&a, &b], 28, 28, 2, 0, Normalize::None);
    assert_eq!((w, h), (56, 28));
    assert_eq!((px[27], px[28], px[27 * 56 + 55]), (0.25, 0.75, 0.75));
    // Ten digits over their reconstructions.
    let tiles: Vec<&[f32]> = (0..20).map(|i| if i < 10 { &a[..] } else { &b[..] }).collect();
    assert_eq!(tile_grid(&tiles, 28, 28, 10, 2, Normalize::None).0, 10 * 28 + 11 * 2);
    assert_eq!(tile_grid(&tiles, 28, 28, 10, 2, Normalize::None).1, 2 * 28 + 3 * 2);
    // 900 encoder filters in a 30x30 grid.
    let filters: Vec<Vec<f32>> = (0..900).map(|k| (0..784).map(|i| ((i * k) % 7) as f32 - 3.0).collect()).collect();
    let refs: Vec<&[f32]> = filters.iter().map(|f| f.as_slice()).collect();
    let (w, h, px) = tile_grid(&refs, 28, 28, 30, 1, Normalize::PerTile);
    assert_eq!((w, h), (30 * 28 + 31, 30 * 28 + 31));
    assert!(px.iter().all(|v| (0.0..=1.0).contains(v)));
    // 16x8 CAE kernels of 3x3, each enlarged 8 times before tiling.
    let kernels: Vec<Vec<f32>> = (0..128).map(|k| (0..9).map(|i| (i as f32 - 4.0) * k as f32).collect()).collect();
    let big: Vec<Vec<f32>> = kernels.iter().map(|k| upscale_nearest(3, 3, k, 8).2).collect();
    let refs: Vec<&[f32]> = big.iter().map(|f| f.as_slice()).collect();
    let (w, h, _) = tile_grid(&refs, 24, 24, 8, 2, Normalize::Symmetric);
    assert_eq!((w, h), (8 * 24 + 9 * 2, 16 * 24 + 17 * 2));
}

#[test]
fn normalisations() {
    assert_eq!(normalize_tile(&[-2.0, 0.0, 2.0, 6.0], Normalize::PerTile), vec![0.0, 0.25, 0.5, 1.0]);
    assert_eq!(normalize_tile(&[-2.0, 0.0, 1.0, 4.0], Normalize::Symmetric), vec![0.25, 0.5, 0.625, 1.0]);
    assert_eq!(normalize_tile(&[-4.0, 2.0], Normalize::Symmetric), vec![0.0, 0.75]);
    assert_eq!(normalize_tile(&[-0.5, 0.3, 1.5, f32::NAN], Normalize::None), vec![0.0, 0.3, 1.0, 0.0]);
    // No contrast: uniform mid-grey.
    assert_eq!(normalize_tile(&[3.0; 4], Normalize::PerTile), vec![0.5; 4]);
    assert_eq!(normalize_tile(&[0.0; 4], Normalize::Symmetric), vec![0.5; 4]);
    // A stray NaN or infinity does not spoil the rest of the tile.
    assert_eq!(normalize_tile(&[0.0, f32::NAN, 4.0, f32::INFINITY], Normalize::PerTile), vec![0.0, 0.5, 1.0, 0.5]);
    assert_eq!(normalize_tile(&[f32::NAN, -1.0], Normalize::Symmetric), vec![0.5, 0.0]);
    // Extreme but finite weights: the span overflows f32, not the result.
    let t = normalize_tile(&[-f32::MAX, 0.0, f32::MAX], Normalize::PerTile);
    assert_eq!(t, vec![0.0, 0.5, 1.0]);
    // Each tile is normalised on its own, not against the whole grid.
    let (a, b) = ([0.0f32, 1.0], [0.0f32, 100.0]);
    let (_, _, px) = tile_grid(&[&a, &b], 2, 1, 2, 0, Normalize::PerTile);
    assert_eq!(px, vec![0.0, 1.0, 0.0, 1.0]);
}

#[test]
fn upscale_replicates_pixels() {
    let (w, h, px) = upscale_nearest(2, 1, &[0.1, 0.9], 3);
    assert_eq!((w, h), (6, 3));
    assert_eq!(&px[..6], &[0.1, 0.1, 0.1, 0.9, 0.9, 0.9]);
    assert_eq!(&px[12..], &[0.1, 0.1, 0.1, 0.9, 0.9, 0.9]);
}

#[test]
#[should_panic(expected = "tile 1 has 3 values")]
fn a_tile_of_the_wrong_size_is_a_programmer_error() {
    tile_grid(&[&[0.0; 4], &[0.0; 3]], 2, 2, 2, 0, Normalize::None);
}
