//! Both builds of `direct`'s loops against plain sums: the tests in tests/ reach only the
//! build this processor picks.
use super::weight::*;
use super::*;

/// An image, a kernel and an output gradient of the given sizes, with varied values.
fn case(c_in: usize, c_out: usize, hw: usize, k: usize, p: usize) -> (ConvGeom, Vec<f32>, Vec<f32>, Vec<f32>) {
    let g = ConvGeom::new(c_in, hw, hw, k, k, 1, p);
    let value = |i: usize, m: usize| ((i * 7919 + m) % 23) as f32 / 11.0 - 1.0;
    let x = (0..c_in * hw * hw).map(|i| value(i, 1)).collect();
    let w = (0..c_out * c_in * k * k).map(|i| value(i, 2)).collect();
    let d = (0..c_out * g.oh * g.ow).map(|i| value(i, 3)).collect();
    (g, x, w, d)
}

/// x[ci][oy + ki - p][ox + kj - p], 0 off the image.
fn at(x: &[f32], g: &ConvGeom, ci: usize, y: usize, x_: usize) -> f32 {
    let (y, x_) = (y as isize - g.padding as isize, x_ as isize - g.padding as isize);
    if y < 0 || x_ < 0 || y >= g.h as isize || x_ >= g.w as isize {
        0.0
    } else {
        x[(ci * g.h + y as usize) * g.w + x_ as usize]
    }
}

fn check<M: MulAdd>(c_in: usize, c_out: usize, hw: usize, k: usize, p: usize) {
    let (g, x, w, d) = case(c_in, c_out, hw, k, p);
    let lay = Layout::new(&g).expect("a direct case");
    let (mut xpad, mut spread) = (vec![0.0; lay.padded], vec![0.0; c_out * lay.run]);
    lay.pad(&g, &x, &mut xpad);
    lay.spread(&g, &d, &mut spread);
    let wt = interleave(&w, c_out);
    let (mut acc, mut dw) = (vec![0.0; c_out * lay.run], vec![0.0; w.len()]);
    let (per_out, taps) = (c_in * k * k, lay.taps(&g).len());
    let (mut rest, mut wrest) = (&mut acc[..], &wt[..]);
    while !rest.is_empty() {
        let b = block_size(rest.len() / lay.run);
        let (out, r) = rest.split_at_mut(b * lay.run);
        let (wb, wr) = wrest.split_at(b * per_out);
        if b == CHANNELS {
            correlate_block_with::<M, CHANNELS>(&xpad, wb.as_chunks().0, out, &lay, &g)
        } else {
            correlate_block_with::<M, 1>(&xpad, wb.as_chunks().0, out, &lay, &g)
        }
        (rest, wrest) = (r, wr);
    }
    weight_grad_image_with::<M>(&xpad, &spread, &mut dw, &lay, &g);
    // The lane layout, where it applies, must give the same gradient.
    let mut dw_lanes = vec![0.0; w.len()];
    let mut dt = vec![0.0; c_out * lay.run];
    match WeightLoop::for_channels(c_out) {
        Some(WeightLoop::Lanes16) => {
            lay.spread_lanes::<16>(&g, &d, &mut dt);
            weight_grad_lanes_with::<M, 16>(&xpad, dt.as_chunks().0, &mut dw_lanes, &lay, &g);
        }
        Some(WeightLoop::Lanes8) => {
            lay.spread_lanes::<8>(&g, &d, &mut dt);
            weight_grad_lanes_with::<M, 8>(&xpad, dt.as_chunks().0, &mut dw_lanes, &lay, &g);
        }
        _ => dw_lanes.copy_from_slice(&dw),
    }
    for co in 0..c_out {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut want = 0.0f64;
                for ci in 0..c_in {
                    for t in 0..taps {
                        want += (w[co * per_out + ci * taps + t] * at(&x, &g, ci, oy + t / k, ox + t % k)) as f64;
                    }
                }
                let got = acc[co * lay.run + oy * lay.wp + ox] as f64;
                assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "y[{co}][{oy}][{ox}] = {got}, want {want}");
            }
        }
        for ci in 0..c_in {
            for t in 0..taps {
                let mut want = 0.0f64;
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        want += (d[(co * g.oh + oy) * g.ow + ox] * at(&x, &g, ci, oy + t / k, ox + t % k)) as f64;
                    }
                }
                for (path, dw) in [("dots", &dw), ("lanes", &dw_lanes)] {
                    let got = dw[co * per_out + ci * taps + t] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{path}: dw[{co}][{ci}][{t}] = {got}, want {want}"
                    );
                }
            }
        }
    }
}

/// (c_in, c_out, size, k, p): the study's shapes, 1x1, 2x2 and 5x5 kernels, odd sizes,
/// channel counts off the blocks, and both lane widths with other kernel rows.
const CASES: [(usize, usize, usize, usize, usize); 9] = [
    (1, 8, 28, 3, 1),
    (8, 1, 28, 3, 1),
    (16, 16, 7, 3, 1),
    (3, 5, 9, 3, 0),
    (2, 6, 5, 1, 0),
    (3, 2, 11, 5, 2),
    (5, 7, 6, 2, 1),
    (3, 16, 9, 5, 2),
    (4, 8, 5, 1, 0),
];

#[test]
fn separate_multiply_adds_match_plain_sums() {
    for (c_in, c_out, hw, k, p) in CASES {
        check::<Separate>(c_in, c_out, hw, k, p);
    }
}

/// `f32::mul_add` is correct on any processor (a library call where there is no FMA).
#[test]
fn fused_multiply_adds_match_plain_sums() {
    for (c_in, c_out, hw, k, p) in CASES {
        check::<Fused>(c_in, c_out, hw, k, p);
    }
}
