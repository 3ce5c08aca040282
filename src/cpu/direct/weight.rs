//! The weight gradient of `direct`'s stride-1 convolutions (see `direct.rs` for the
//! layout): one dot product per weight, or the output channels in the vector lanes.

use super::{Fused, Layout, MulAdd, Separate, LANES};
#[cfg(target_arch = "x86_64")]
use crate::cpu::has_avx2_fma;
use crate::geom::ConvGeom;

/// The loop of a weight gradient on the direct route, chosen from the channel count of
/// its output gradient. With few channels, each weight is a dot product over the plane
/// (`LANES` partial sums, added across at the end); with whole blocks of 8 or 16, the
/// channels go into the vector lanes instead (`weight_grad_lanes`), and nothing is added
/// across. Other counts (9 to 15, say) have no loop here: `cpu::conv` takes im2col + GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLoop {
    Dots,
    Lanes8,
    Lanes16,
}

impl WeightLoop {
    pub fn for_channels(c_out: usize) -> Option<WeightLoop> {
        match c_out {
            _ if c_out.is_multiple_of(16) => Some(WeightLoop::Lanes16),
            _ if c_out.is_multiple_of(8) => Some(WeightLoop::Lanes8),
            1..=7 => Some(WeightLoop::Dots),
            _ => None,
        }
    }
}

/// dw (c_out, g.c, k, k) += the sum over the batch of `dout[n]` correlated with `xpad[n]`,
/// for `dout` (n, c_out, oh, ow) and `x` (n, g.c, g.h, g.w), by `weight_loop`. Partial sums
/// over fixed groups of images, as `conv.rs` forms them, so the bits do not depend on the
/// thread count. Only for geometries where `applies` holds.
pub fn weight_grad(dout: &[f32], x: &[f32], dw: &mut [f32], g: &ConvGeom, c_out: usize, weight_loop: WeightLoop) {
    let lay = Layout::new(g).expect("the direct route's geometry (cpu::conv::Route)");
    let (image, out_len) = (g.c * g.h * g.w, c_out * g.oh * g.ow);
    crate::cpu::conv::sum_over_batch(x.len() / image, dw, lay.padded + c_out * lay.run, |images, scratch, dw_part| {
        let (xpad, spread) = scratch.split_at_mut(lay.padded);
        for i in images {
            lay.pad(g, &x[i * image..(i + 1) * image], xpad);
            let dout = &dout[i * out_len..(i + 1) * out_len];
            match weight_loop {
                WeightLoop::Dots => {
                    lay.spread(g, dout, spread);
                    weight_grad_image(xpad, spread, dw_part, &lay, g);
                }
                WeightLoop::Lanes8 => {
                    lay.spread_lanes::<8>(g, dout, spread);
                    weight_grad_lanes::<8>(xpad, spread.as_chunks().0, dw_part, &lay, g);
                }
                WeightLoop::Lanes16 => {
                    lay.spread_lanes::<16>(g, dout, spread);
                    weight_grad_lanes::<16>(xpad, spread.as_chunks().0, dw_part, &lay, g);
                }
            }
        }
    });
}

/// dw[co][ci][tap] += sum_j spread[co][j] * xpad[ci][j + tap] for one image, `LANES`
/// partial sums per weight, added across in a fixed order at the end.
fn weight_grad_image(xpad: &[f32], spread: &[f32], dw: &mut [f32], lay: &Layout, g: &ConvGeom) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the processor has AVX2 and FMA (checked at run time).
        return unsafe { weight_grad_image_fma(xpad, spread, dw, lay, g) };
    }
    weight_grad_image_with::<Separate>(xpad, spread, dw, lay, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weight_grad_image_fma(xpad: &[f32], spread: &[f32], dw: &mut [f32], lay: &Layout, g: &ConvGeom) {
    weight_grad_image_with::<Fused>(xpad, spread, dw, lay, g)
}

#[inline(always)]
pub(super) fn weight_grad_image_with<M: MulAdd>(
    xpad: &[f32],
    spread: &[f32],
    dw: &mut [f32],
    lay: &Layout,
    g: &ConvGeom,
) {
    let taps = lay.taps(g);
    for (d, dw) in spread.chunks_exact(lay.run).zip(dw.chunks_exact_mut(g.c * taps.len())) {
        for (ci, dw) in dw.chunks_exact_mut(taps.len()).enumerate() {
            let plane = &xpad[ci * lay.plane..];
            for (&tap, dw) in taps.iter().zip(dw) {
                let mut sums = [0.0f32; LANES];
                for (ds, xs) in d.chunks_exact(LANES).zip(plane[tap..tap + lay.run].chunks_exact(LANES)) {
                    for l in 0..LANES {
                        sums[l] = M::mul_add(ds[l], xs[l], sums[l]);
                    }
                }
                *dw += sums.iter().sum::<f32>();
            }
        }
    }
}

/// dw[co][ci][tap] += sum_j dt[co / C][j][co % C] * xpad[ci][j + tap] for one image: dout
/// laid out as blocks of C channels, each a run of [f32; C] (`spread_lanes`). A block's C
/// channels are the vector lanes, and the taps of one kernel row are taken together: per
/// output position, one load of C gradients and one value per tap feed C x T multiply-adds.
fn weight_grad_lanes<const C: usize>(xpad: &[f32], dt: &[[f32; C]], dw: &mut [f32], lay: &Layout, g: &ConvGeom) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the processor has AVX2 and FMA (checked at run time).
        return unsafe { weight_grad_lanes_fma::<C>(xpad, dt, dw, lay, g) };
    }
    weight_grad_lanes_with::<Separate, C>(xpad, dt, dw, lay, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weight_grad_lanes_fma<const C: usize>(xpad: &[f32], dt: &[[f32; C]], dw: &mut [f32], lay: &Layout, g: &ConvGeom) {
    weight_grad_lanes_with::<Fused, C>(xpad, dt, dw, lay, g)
}

#[inline(always)]
pub(super) fn weight_grad_lanes_with<M: MulAdd, const C: usize>(
    xpad: &[f32],
    dt: &[[f32; C]],
    dw: &mut [f32],
    lay: &Layout,
    g: &ConvGeom,
) {
    let taps = lay.taps(g);
    let per_out = g.c * taps.len();
    for (block, dt) in dt.chunks_exact(lay.run).enumerate() {
        for ci in 0..g.c {
            let plane = &xpad[ci * lay.plane..];
            // The taps of one kernel row together where the row has three (3x3 kernels, all
            // of the study's), else one at a time.
            for (row, offsets) in taps.chunks(g.kw).enumerate() {
                let t0 = row * g.kw;
                if offsets.len() == 3 {
                    let sums = tap_sums::<M, C, 3>(plane, dt, offsets.try_into().expect("3 taps"));
                    add_sums(dw, &sums, block * C, per_out, ci * taps.len() + t0);
                } else {
                    for (t, &offset) in offsets.iter().enumerate() {
                        let sums = tap_sums::<M, C, 1>(plane, dt, [offset]);
                        add_sums(dw, &sums, block * C, per_out, ci * taps.len() + t0 + t);
                    }
                }
            }
        }
    }
}

/// sums[t][c] = sum_j dt[j][c] * plane[j + offsets[t]].
#[inline(always)]
fn tap_sums<M: MulAdd, const C: usize, const T: usize>(
    plane: &[f32],
    dt: &[[f32; C]],
    offsets: [usize; T],
) -> [[f32; C]; T] {
    let run = dt.len();
    let xs: [&[f32]; T] = offsets.map(|o| &plane[o..o + run]);
    let mut sums = [[0.0f32; C]; T];
    for (j, d) in dt.iter().enumerate() {
        for t in 0..T {
            let x = xs[t][j];
            for c in 0..C {
                sums[t][c] = M::mul_add(d[c], x, sums[t][c]);
            }
        }
    }
    sums
}

/// dw[(co0 + c) * per_out + w0 + t] += sums[t][c].
fn add_sums<const C: usize, const T: usize>(
    dw: &mut [f32],
    sums: &[[f32; C]; T],
    co0: usize,
    per_out: usize,
    w0: usize,
) {
    for (t, sums) in sums.iter().enumerate() {
        for (c, &s) in sums.iter().enumerate() {
            dw[(co0 + c) * per_out + w0 + t] += s;
        }
    }
}
