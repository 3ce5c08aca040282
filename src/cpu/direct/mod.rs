//! Stride-1 convolutions computed directly, without im2col: `cpu::conv`'s route for the
//! study's thin layers (`Route::Direct`), the same sums as `ops::conv`'s loops.
//!
//! With 1 to 16 channels and a 3x3 kernel, im2col + GEMM spends most of its time copying:
//! the column matrix is nine times the image, and matrixmultiply packs it once more for a
//! product with only 1 to 16 rows. A stride-1 convolution is also a sum of shifted planes,
//!
//! ```text
//!     y[co][oy][ox] = b[co] + sum_{ci,ki,kj} W[co][ci][ki][kj] * xpad[ci][oy + ki][ox + kj]
//! ```
//!
//! where xpad is the image with p zeros around it, planes of Hp x Wp = (h + 2p) x (w + 2p).
//! The trick that makes each shift one contiguous run: compute the output with xpad's row
//! length, `y'[j]` for j = oy * Wp + ox. Then tap (ki, kj) reads `xpad[j + ki * Wp + kj]` for
//! every j, so a tap is one flat multiply-add over the whole plane, whatever the row. The
//! columns ox >= ow of y' read across a row's end; they are junk, and dropped when y' is
//! copied out. (For output j in a real column, ox + kj < Wp and oy + ki < Hp: its reads stay
//! inside its own plane.) The run is rounded up to whole blocks of `LANES`, so the inner
//! loops have fixed lengths, which the compiler turns into vector instructions.
//!
//! The gradients use the same layout:
//!
//! ```text
//!     dx = conv(dout, flip(W)^T) with padding k - 1 - p     (the full correlation)
//!     dW[co][ci][ki][kj] += sum_j dout'[co][j] * xpad[ci][j + ki * Wp + kj]
//! ```
//!
//! where `flip(W)^T[ci][co][ki][kj] = W[co][ci][k-1-ki][k-1-kj]`, and dout' is dout laid out
//! like y', with zeros in the junk columns so that they add nothing. The input gradient is
//! `conv` again. The weight gradient is a dot product per weight where there are few output
//! channels (`weight_grad_image`), and for multiples of 8 channels the same sums with the
//! channels in the vector lanes (`weight_grad_lanes`). conv_transpose2d with stride 1 is the
//! same three maps with the roles exchanged (see `conv.rs`).
//!
//! Example: one 2x2 image `[[1, 2], [3, 4]]`, a 1x1 kernel `[5]`, p = 0: Wp = 2, y' is the
//! plane times 5, and no column is junk. With a 2x2 kernel of ones and p = 0, oh = ow = 1
//! and `y'[0] = xpad[0] + xpad[1] + xpad[2] + xpad[3] = 10`.

#[cfg(target_arch = "x86_64")]
use crate::cpu::has_avx2_fma;
use crate::geom::ConvGeom;
use crate::tensor::zeroed_chunks_vec_init;
use rayon::prelude::*;

/// Output values per inner block: two AVX registers (four SSE ones).
const LANES: usize = 16;

/// Output channels per pass over the input: each input value loaded feeds this many
/// products, and 4 x `LANES` accumulators fit in registers.
const CHANNELS: usize = 4;

/// Whether the direct path computes this convolution: stride 1, a square kernel of at most
/// 7x7, and a padding that leaves the gradient's padding k - 1 - p non-negative.
pub fn applies(g: &ConvGeom) -> bool {
    g.stride == 1 && g.kh == g.kw && g.kh * g.kw <= MAX_TAPS && g.padding < g.kh
}

/// The sizes of one image's padded planes and of its output run.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Padded row length Wp and plane size Hp * Wp.
    wp: usize,
    plane: usize,
    /// Outputs computed per channel: oh * Wp, rounded up to whole blocks of `LANES`.
    run: usize,
    /// Values of the padded image: every plane, plus the slack that the last plane's
    /// rounded-up run reads past its end.
    padded: usize,
    /// Offsets of the taps (ki, kj) into a padded plane: ki * Wp + kj, in W's order.
    taps: [usize; MAX_TAPS],
}

/// Taps of the largest kernel taken (7x7); larger ones fall back to im2col.
const MAX_TAPS: usize = 49;

impl Layout {
    fn new(g: &ConvGeom) -> Option<Layout> {
        let k = g.kh;
        if !applies(g) {
            return None;
        }
        let wp = g.w + 2 * g.padding;
        let plane = (g.h + 2 * g.padding) * wp;
        let run = (g.oh * wp).next_multiple_of(LANES);
        let reach = (k - 1) * wp + k - 1;
        let padded = ((g.c - 1) * plane + run + reach).max(g.c * plane);
        let mut taps = [0; MAX_TAPS];
        for (t, tap) in taps.iter_mut().take(k * k).enumerate() {
            *tap = (t / k) * wp + t % k;
        }
        Some(Layout { wp, plane, run, padded, taps })
    }

    fn taps(&self, g: &ConvGeom) -> &[usize] {
        &self.taps[..g.kh * g.kw]
    }

    /// A task's buffers for `conv_image`, made zeroed once (see `pad`): the padded image, and
    /// y' for `c_out` channels.
    fn scratch(&self, c_out: usize) -> (Vec<f32>, Vec<f32>) {
        (vec![0.0; self.padded], vec![0.0; c_out * self.run])
    }

    /// Copies image x (c, h, w) into the middle of the planes of `xpad`, whose other values
    /// (the border, the slack) must be zero. `pad`, `spread` and `spread_lanes` write only an
    /// image's own positions, so a buffer made zeroed and used for one layout stays zero
    /// everywhere else, from image to image: no clearing pass per image.
    fn pad(&self, g: &ConvGeom, x: &[f32], xpad: &mut [f32]) {
        for (src, dst) in x.chunks_exact(g.h * g.w).zip(xpad.chunks_mut(self.plane)) {
            for (row, out) in src.chunks_exact(g.w).zip(dst[g.padding * self.wp..].chunks_mut(self.wp)) {
                out[g.padding..g.padding + g.w].copy_from_slice(row);
            }
        }
    }

    /// Lays dout (c, oh, ow) out like y': rows of Wp, zeros in the junk columns and tail
    /// (which `spread` leaves as they are: zero, see `pad`).
    fn spread(&self, g: &ConvGeom, dout: &[f32], spread: &mut [f32]) {
        for (src, dst) in dout.chunks_exact(g.oh * g.ow).zip(spread.chunks_exact_mut(self.run)) {
            for (row, out) in src.chunks_exact(g.ow).zip(dst.chunks_mut(self.wp)) {
                out[..g.ow].copy_from_slice(row);
            }
        }
    }

    /// dout (c, oh, ow) as blocks of C channels, each a run of [f32; C] positions laid out
    /// like y' (dt[block][j][c]), with zeros in the junk columns and tail (left as they
    /// are: zero, see `pad`).
    fn spread_lanes<const C: usize>(&self, g: &ConvGeom, dout: &[f32], dt: &mut [f32]) {
        let plane = g.oh * g.ow;
        for (block, dt) in dt.chunks_exact_mut(C * self.run).enumerate() {
            for c in 0..C {
                let src = &dout[(block * C + c) * plane..][..plane];
                for (oy, row) in src.chunks_exact(g.ow).enumerate() {
                    for (ox, &v) in row.iter().enumerate() {
                        dt[(oy * self.wp + ox) * C + c] = v;
                    }
                }
            }
        }
    }
}

/// How the output starts: at the bias (or zero), overwriting it, or at its current value.
#[derive(Clone, Copy)]
pub enum Start<'a> {
    Bias(Option<&'a [f32]>),
    Accumulate,
}

/// y (n, c_out, oh, ow) = conv(x (n, g.c, g.h, g.w), w (c_out, g.c, k, k)), stride 1, from
/// `start`. Only for geometries where `applies` holds.
pub fn conv(x: &[f32], w: &[f32], y: &mut [f32], g: &ConvGeom, c_out: usize, start: Start) {
    let (lay, wt) = prepare(w, g, c_out);
    y.par_chunks_mut(c_out * g.oh * g.ow)
        .zip(x.par_chunks(g.c * g.h * g.w))
        .for_each_init(|| lay.scratch(c_out), |(xpad, acc), (y, x)| conv_image(x, &wt, y, g, &lay, xpad, acc, start));
}

/// `conv` from the bias (or zero) into a new buffer: each image's output is cleared and
/// written by the task that computes it, in cache (`tensor::zeroed_chunks_vec_init`), not
/// cleared whole in a pass of its own first. With no bias each value is `0 + sum`, the bits
/// of `conv` from `Start::Accumulate` onto zeros: also the first gradient of a layer's input.
pub fn conv_new(x: &[f32], w: &[f32], b: Option<&[f32]>, g: &ConvGeom, c_out: usize) -> Vec<f32> {
    let (lay, wt) = prepare(w, g, c_out);
    let (in_len, out_len) = (g.c * g.h * g.w, c_out * g.oh * g.ow);
    zeroed_chunks_vec_init(
        x.len() / in_len * out_len,
        out_len,
        || lay.scratch(c_out),
        |(xpad, acc), i, y| conv_image(&x[i * in_len..][..in_len], &wt, y, g, &lay, xpad, acc, Start::Bias(b)),
    )
}

/// What every image of a `conv` shares: the layout, and the weights as `correlate` reads them.
fn prepare(w: &[f32], g: &ConvGeom, c_out: usize) -> (Layout, Vec<f32>) {
    let lay = Layout::new(g).expect("the direct route's geometry (cpu::conv::Route)");
    assert_eq!(w.len(), c_out * g.c * g.kh * g.kw);
    (lay, interleave(w, c_out))
}

/// One image of `conv`: x (g.c, g.h, g.w) padded into `xpad`, correlated into y' (`acc`),
/// whose real columns are copied out onto y (c_out, oh, ow) from `start`.
#[allow(clippy::too_many_arguments)]
fn conv_image(
    x: &[f32],
    wt: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    lay: &Layout,
    xpad: &mut [f32],
    acc: &mut [f32],
    start: Start,
) {
    lay.pad(g, x, xpad);
    correlate(xpad, wt, acc, lay, g);
    // Copy the real columns out of y', onto the chosen start.
    for (co, (y, acc)) in y.chunks_exact_mut(g.oh * g.ow).zip(acc.chunks_exact(lay.run)).enumerate() {
        let base = match start {
            Start::Bias(b) => Some(b.map_or(0.0, |b| b[co])),
            Start::Accumulate => None,
        };
        for (y, acc) in y.chunks_exact_mut(g.ow).zip(acc.chunks(lay.wp)) {
            match base {
                Some(b) => y.iter_mut().zip(acc).for_each(|(y, &a)| *y = b + a),
                None => y.iter_mut().zip(acc).for_each(|(y, &a)| *y += a),
            }
        }
    }
}

/// Output channels are taken `CHANNELS` at a time, and one at a time for the rest.
fn block_size(channels_left: usize) -> usize {
    if channels_left >= CHANNELS {
        CHANNELS
    } else {
        1
    }
}

/// w (c_out, per_out) in the order `correlate_block` reads it: for each block of B output
/// channels, [ci][tap][b], so that one load gives the B factors of an input value.
fn interleave(w: &[f32], c_out: usize) -> Vec<f32> {
    let per_out = w.len() / c_out;
    let mut out = Vec::with_capacity(w.len());
    let mut co = 0;
    while co < c_out {
        let b = block_size(c_out - co);
        for i in 0..per_out {
            out.extend((co..co + b).map(|c| w[c * per_out + i]));
        }
        co += b;
    }
    out
}

/// acc (c_out, run) = the correlation of one padded image with the interleaved weights.
fn correlate(xpad: &[f32], wt: &[f32], acc: &mut [f32], lay: &Layout, g: &ConvGeom) {
    let per_out = g.c * g.kh * g.kw;
    let (mut acc, mut wt) = (acc, wt);
    while !acc.is_empty() {
        let b = block_size(acc.len() / lay.run);
        let (out, acc_rest) = acc.split_at_mut(b * lay.run);
        let (w, wt_rest) = wt.split_at(b * per_out);
        if b == CHANNELS {
            correlate_block::<CHANNELS>(xpad, w.as_chunks().0, out, lay, g);
        } else {
            correlate_block::<1>(xpad, w.as_chunks().0, out, lay, g);
        }
        (acc, wt) = (acc_rest, wt_rest);
    }
}

/// B output channels: out[b][j] = sum over (ci, tap) of w[ci][tap][b] * xpad[ci][j + tap].
fn correlate_block<const B: usize>(xpad: &[f32], w: &[[f32; B]], out: &mut [f32], lay: &Layout, g: &ConvGeom) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the processor has AVX2 and FMA (checked at run time).
        return unsafe { correlate_block_fma::<B>(xpad, w, out, lay, g) };
    }
    correlate_block_with::<Separate, B>(xpad, w, out, lay, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn correlate_block_fma<const B: usize>(xpad: &[f32], w: &[[f32; B]], out: &mut [f32], lay: &Layout, g: &ConvGeom) {
    correlate_block_with::<Fused, B>(xpad, w, out, lay, g)
}

/// The loop itself. The B x LANES sums of a block stay in registers across the whole
/// (ci, tap) loop: each input value loaded feeds B multiply-adds.
#[inline(always)]
fn correlate_block_with<M: MulAdd, const B: usize>(
    xpad: &[f32],
    w: &[[f32; B]],
    out: &mut [f32],
    lay: &Layout,
    g: &ConvGeom,
) {
    let taps = lay.taps(g);
    for j0 in (0..lay.run).step_by(LANES) {
        let mut sums = [[0.0f32; LANES]; B];
        for (ci, w) in w.chunks_exact(taps.len()).enumerate() {
            let plane = &xpad[ci * lay.plane + j0..];
            for (&tap, wv) in taps.iter().zip(w) {
                let xs: &[f32; LANES] = plane[tap..tap + LANES].try_into().expect("LANES values");
                for b in 0..B {
                    for l in 0..LANES {
                        sums[b][l] = M::mul_add(wv[b], xs[l], sums[b][l]);
                    }
                }
            }
        }
        for (b, sums) in sums.iter().enumerate() {
            out[b * lay.run + j0..b * lay.run + j0 + LANES].copy_from_slice(sums);
        }
    }
}

/// a * b + c, in one of two roundings. The crate is built for any x86-64, whose vector
/// instructions (SSE2) have no fused multiply-add, and Rust never fuses `a * b + c` on its
/// own; so the hot loops of this file are compiled twice, as written and again with AVX2 and
/// FMA enabled (`#[target_feature]`), where `f32::mul_add` becomes one instruction. The
/// choice is made once per call from what the processor has, so a run's results do not
/// change from step to step, but a machine without FMA rounds the last bits differently.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

struct Separate;
impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

struct Fused;
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// flip(w)^T: w (c_out, c_in, k, k) becomes (c_in, c_out, k, k) with each kernel turned by
/// 180 degrees, the weight of the convolution that is `conv`'s input gradient.
pub fn flip_transpose(w: &[f32], c_out: usize, c_in: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut out = vec![0.0; w.len()];
    for co in 0..c_out {
        for ci in 0..c_in {
            let src = &w[(co * c_in + ci) * kk..][..kk];
            let dst = &mut out[(ci * c_out + co) * kk..][..kk];
            dst.iter_mut().zip(src.iter().rev()).for_each(|(d, &s)| *d = s);
        }
    }
    out
}

/// The geometry of the gradient convolution of g: its image is g's output (c_out, oh, ow)
/// and its padding k - 1 - p, which takes it back to (h, w).
pub fn gradient_geom(g: &ConvGeom, c_out: usize) -> ConvGeom {
    let back = ConvGeom::new(c_out, g.oh, g.ow, g.kh, g.kw, 1, g.kh - 1 - g.padding);
    debug_assert_eq!((back.oh, back.ow), (g.h, g.w));
    back
}

mod weight;
pub use weight::{weight_grad, WeightLoop};

#[cfg(test)]
mod tests;
