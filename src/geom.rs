//! The shapes that every floor shares: the definition (`ops`), the fast CPU kernels (`cpu`)
//! and the GPU launchers (`cuda`) all take their geometry from here, so none of them
//! imports another's.

use std::ops::Range;

/// Pooling window and stride (equal, which is what makes pool-backward and unpool exact
/// gathers: every input position lies in exactly one window).
pub const POOL: usize = 2;

/// The geometry of one convolution: an image of `c x h x w`, a `kh x kw` kernel, a stride
/// and a zero padding, and the output size they give (floor, as PyTorch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    pub fn new(c: usize, h: usize, w: usize, kh: usize, kw: usize, stride: usize, padding: usize) -> ConvGeom {
        assert!(stride > 0, "stride must be positive");
        assert!(
            h + 2 * padding >= kh && w + 2 * padding >= kw,
            "kernel {kh}x{kw} larger than the padded image {h}x{w} (padding {padding})"
        );
        let oh = (h + 2 * padding - kh) / stride + 1;
        let ow = (w + 2 * padding - kw) / stride + 1;
        ConvGeom { c, h, w, kh, kw, stride, padding, oh, ow }
    }

    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    pub fn col_rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the column matrix: one per output pixel.
    pub fn col_cols(&self) -> usize {
        self.oh * self.ow
    }

    /// The output coordinates o in 0..out whose tap at kernel offset k lands on the image,
    /// 0 <= o*s - p + k < size: a contiguous range, computed once so the inner loops carry
    /// no bounds tests and no divisions.
    pub(crate) fn on_image(&self, k: usize, size: usize, out: usize) -> Range<usize> {
        let (s, p) = (self.stride, self.padding);
        let lo = p.saturating_sub(k).div_ceil(s);
        let hi = if size + p > k { ((size - 1 + p - k) / s + 1).min(out) } else { 0 };
        lo.min(hi)..hi
    }
}
