//! Area-averaging resize: hand-computed cases and a 2-D overlap reference.

use autoencoders::figures::png_io::{area_resize, GreyImage};
use proptest::prelude::*;

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "pixel {i}: got {g}, want {w}");
    }
}

#[test]
fn area_resize_averages_2x2_blocks_exactly() {
    let pixels: Vec<f32> = (0..56 * 56).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect();
    let img = GreyImage { w: 56, h: 56, pixels };
    let out = area_resize(&img, 28, 28);
    for y in 0..28 {
        for x in 0..28 {
            let p = |dx: usize, dy: usize| img.pixels[(2 * y + dy) * 56 + 2 * x + dx];
            let want = (p(0, 0) + p(1, 0) + p(0, 1) + p(1, 1)) / 4.0;
            assert!((out.pixels[y * 28 + x] - want).abs() < 1e-6, "({x}, {y})");
        }
    }
}

#[test]
fn area_resize_hand_computed_cases() {
    // 1x1 -> 28x28: a constant image.
    let out = area_resize(&GreyImage { w: 1, h: 1, pixels: vec![0.3] }, 28, 28);
    assert!(out.pixels.iter().all(|&v| v == 0.3));

    // 3x3 -> 28x28. Output column x covers [3x/28, 3(x+1)/28) input pixels: column 9 covers
    // 1/28 of input 0 and 2/28 of input 1 (weights 1/3, 2/3), column 18 covers 2/28 of input
    // 1 and 1/28 of input 2 (2/3, 1/3), column 0 lies inside input 0.
    let img = GreyImage { w: 3, h: 3, pixels: vec![0.0, 0.3, 0.9, 0.1, 0.4, 0.7, 0.2, 0.5, 0.6] };
    let out = area_resize(&img, 28, 28);
    let at = |x: usize, y: usize| out.pixels[y * 28 + x];
    assert!((at(0, 0) - 0.0).abs() < 1e-6);
    assert!((at(9, 0) - (0.0 / 3.0 + 0.3 * 2.0 / 3.0)).abs() < 1e-6);
    assert!((at(18, 0) - (0.3 * 2.0 / 3.0 + 0.9 / 3.0)).abs() < 1e-6);
    assert!((at(27, 27) - 0.6).abs() < 1e-6);
    // (9, 9): rows 0 and 1 mixed 1/3 : 2/3, then columns 0 and 1 likewise.
    let row0 = 0.0 / 3.0 + 0.3 * 2.0 / 3.0;
    let row1 = 0.1 / 3.0 + 0.4 * 2.0 / 3.0;
    assert!((at(9, 9) - (row0 / 3.0 + row1 * 2.0 / 3.0)).abs() < 1e-6);

    // 5x3 -> 2x1: output pixel 0 covers inputs 0, 1 and half of 2: weights 0.4, 0.4, 0.2.
    let img = GreyImage { w: 5, h: 3, pixels: (0..15).map(|i| (i % 5) as f32).collect() };
    let out = area_resize(&img, 2, 1);
    assert_close(&out.pixels, &[0.4 * 0.0 + 0.4 * 1.0 + 0.2 * 2.0, 0.2 * 2.0 + 0.4 * 3.0 + 0.4 * 4.0], 1e-6);
}

/// An independent reference: the 2-D overlap area of each output and input pixel, computed
/// with floating-point rectangle intersection instead of separable integer weights.
fn naive_area_resize(img: &GreyImage, ow: usize, oh: usize) -> Vec<f32> {
    let (sx, sy) = (img.w as f64 / ow as f64, img.h as f64 / oh as f64);
    let mut out = vec![0.0f32; ow * oh];
    for oy in 0..oh {
        for ox in 0..ow {
            let (x0, x1, y0, y1) = (ox as f64 * sx, (ox + 1) as f64 * sx, oy as f64 * sy, (oy + 1) as f64 * sy);
            let mut sum = 0.0;
            for iy in 0..img.h {
                for ix in 0..img.w {
                    let ow_ = (x1.min(ix as f64 + 1.0) - x0.max(ix as f64)).max(0.0);
                    let oh_ = (y1.min(iy as f64 + 1.0) - y0.max(iy as f64)).max(0.0);
                    sum += ow_ * oh_ * img.pixels[iy * img.w + ix] as f64;
                }
            }
            out[oy * ow + ox] = (sum / (sx * sy)) as f32;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn area_resize_matches_the_2d_overlap_reference(
        w in 1usize..20, h in 1usize..20, ow in 1usize..20, oh in 1usize..20, seed in any::<u64>()
    ) {
        let pixels = (0..w * h).map(|i| ((seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64 * 1442695040888963407)) >> 40) as f32 / (1u64 << 24) as f32).collect();
        let img = GreyImage { w, h, pixels };
        let out = area_resize(&img, ow, oh);
        let want = naive_area_resize(&img, ow, oh);
        for (g, r) in out.pixels.iter().zip(&want) {
            prop_assert!((g - r).abs() < 1e-5, "{w}x{h} -> {ow}x{oh}: {g} vs {r}");
        }
        // Area averaging preserves the mean intensity.
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        prop_assert!((mean(&out.pixels) - mean(&img.pixels)).abs() < 1e-5);
    }

}
