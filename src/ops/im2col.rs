//! im2col and col2im: turning a convolution into one matrix product.
//!
//! A convolution with a kh x kw kernel, stride s and zero padding p reads, for output pixel
//! (oy, ox), the input patch x[ci][oy*s - p + ki][ox*s - p + kj] over all (ci, ki, kj).
//! `im2col` copies those patches into the columns of a matrix
//!
//! ```text
//!     col[(ci*kh + ki)*kw + kj][oy*ow + ox] = x[ci][oy*s - p + ki][ox*s - p + kj]   (0 off the image)
//! ```
//!
//! of shape (c*kh*kw, oh*ow), so that conv2d is W (c_out, c*kh*kw) times col. `col2im` is
//! its adjoint: every input pixel receives the sum of the column entries that copied it.
//! It is written as a gather (each input pixel collects from the few (ki, kj) that can reach
//! it) so that each pixel has one writer, which is what makes it a plain CUDA thread later.
//!
//! Tiny example: c = 1, a 3x3 image, kernel 2x2, s = 1, p = 0 gives oh = ow = 2 and a 4x4
//! col whose column (oy, ox) = (0, 1) is x[0][1], x[0][2], x[1][1], x[1][2]. Pixel x[1][1]
//! appears in all four columns, so col2im of an all-ones col gives 4 there and 1 at corners.

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
        assert!(h + 2 * padding >= kh && w + 2 * padding >= kw, "kernel {kh}x{kw} larger than the padded image {h}x{w} (padding {padding})");
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

    /// The input coordinate that output coordinate `o` reads with kernel offset `k`, if it
    /// falls on the image (else it reads the zero padding).
    fn source(&self, o: usize, k: usize, size: usize) -> Option<usize> {
        (o * self.stride + k).checked_sub(self.padding).filter(|&i| i < size)
    }

    /// The output coordinate that reads input coordinate `i` with kernel offset `k`, if any:
    /// o*s - p + k = i, so o = (i + p - k) / s when that division is exact.
    fn reader(&self, i: usize, k: usize, out: usize) -> Option<usize> {
        let t = (i + self.padding).checked_sub(k)?;
        (t % self.stride == 0 && t / self.stride < out).then_some(t / self.stride)
    }
}

/// col (c*kh*kw, oh*ow) = the patches of one image x (c, h, w). Overwrites col.
pub fn im2col(x: &[f32], g: &ConvGeom, col: &mut [f32]) {
    assert_eq!(x.len(), g.c * g.h * g.w);
    assert_eq!(col.len(), g.col_rows() * g.col_cols());
    let mut rows = col.chunks_exact_mut(g.col_cols());
    for ci in 0..g.c {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = rows.next().expect("one row per (ci, ki, kj)");
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    let Some(iy) = g.source(oy, ki, g.h) else {
                        out.fill(0.0);
                        continue;
                    };
                    for (ox, v) in out.iter_mut().enumerate() {
                        *v = g.source(ox, kj, g.w).map_or(0.0, |ix| plane[iy * g.w + ix]);
                    }
                }
            }
        }
    }
}

/// x (c, h, w) += the adjoint of im2col applied to col: each pixel gathers the column
/// entries that were copied from it.
pub fn col2im(col: &[f32], g: &ConvGeom, x: &mut [f32]) {
    assert_eq!(x.len(), g.c * g.h * g.w);
    assert_eq!(col.len(), g.col_rows() * g.col_cols());
    let p = g.col_cols();
    for (ci, plane) in x.chunks_exact_mut(g.h * g.w).enumerate() {
        for iy in 0..g.h {
            for ix in 0..g.w {
                let mut acc = 0.0;
                for ki in 0..g.kh {
                    let Some(oy) = g.reader(iy, ki, g.oh) else { continue };
                    for kj in 0..g.kw {
                        let Some(ox) = g.reader(ix, kj, g.ow) else { continue };
                        acc += col[((ci * g.kh + ki) * g.kw + kj) * p + oy * g.ow + ox];
                    }
                }
                plane[iy * g.w + ix] += acc;
            }
        }
    }
}
