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
//!
//! Both walk the same loops: for each kernel tap (ki, kj), the output rows and columns whose
//! tap lands on the image form a contiguous range (`on_image`), so the inner loops are
//! straight copies (strided when s > 1) with no bounds tests. On a GPU, where a thread per
//! pixel must own its pixel, col2im is written the other way round, as a gather over the
//! (ki, kj) that reach each pixel; the sums are the same.
//!
//! Tiny example: c = 1, a 3x3 image, kernel 2x2, s = 1, p = 0 gives oh = ow = 2 and a 4x4
//! col whose column (oy, ox) = (0, 1) is `x[0][1], x[0][2], x[1][1], x[1][2]`. Pixel `x[1][1]`
//! appears in all four columns, so col2im of an all-ones col gives 4 there and 1 at corners.

use crate::geom::ConvGeom;

/// col (c*kh*kw, oh*ow) = the patches of one image x (c, h, w). Overwrites col.
pub fn im2col(x: &[f32], g: &ConvGeom, col: &mut [f32]) {
    assert_eq!(x.len(), g.c * g.h * g.w);
    assert_eq!(col.len(), g.col_rows() * g.col_cols());
    let mut rows = col.chunks_exact_mut(g.col_cols());
    for plane in x.chunks_exact(g.h * g.w) {
        for ki in 0..g.kh {
            let oys = g.on_image(ki, g.h, g.oh);
            for kj in 0..g.kw {
                let oxs = g.on_image(kj, g.w, g.ow);
                let row = rows.next().expect("one row per (ci, ki, kj)");
                // Zeros where the tap falls on the padding; one fill of the row is cheaper
                // than many of a value or two at the ends of its lines.
                row.fill(0.0);
                if oxs.is_empty() {
                    continue;
                }
                for oy in oys.clone() {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    copy_strided(&mut out[oxs.clone()], tap_row(plane, g, oy, ki, kj, oxs.start), g.stride);
                }
            }
        }
    }
}

/// x (c, h, w) += the adjoint of im2col applied to col: every column entry is added back
/// onto the pixel it was copied from (the same loops as `im2col`, with the copy reversed).
/// One image belongs to one thread, so these adds never race.
pub fn col2im(col: &[f32], g: &ConvGeom, x: &mut [f32]) {
    assert_eq!(x.len(), g.c * g.h * g.w);
    assert_eq!(col.len(), g.col_rows() * g.col_cols());
    let mut rows = col.chunks_exact(g.col_cols());
    for plane in x.chunks_exact_mut(g.h * g.w) {
        for ki in 0..g.kh {
            let oys = g.on_image(ki, g.h, g.oh);
            for kj in 0..g.kw {
                let oxs = g.on_image(kj, g.w, g.ow);
                let row = rows.next().expect("one row per (ci, ki, kj)");
                if oxs.is_empty() {
                    continue;
                }
                for oy in oys.clone() {
                    let src = &row[oy * g.ow + oxs.start..oy * g.ow + oxs.end];
                    add_strided(tap_row_mut(plane, g, oy, ki, kj, oxs.start), src, g.stride);
                }
            }
        }
    }
}

/// The input pixels that tap (ki, kj) reads for output row oy, from output column ox0 on:
/// x[oy*s - p + ki][ox*s - p + kj] for ox = ox0, ox0 + 1, ... at stride s. The caller's
/// ranges keep every index on the image.
fn tap_row<'a>(plane: &'a [f32], g: &ConvGeom, oy: usize, ki: usize, kj: usize, ox0: usize) -> &'a [f32] {
    &plane[(oy * g.stride + ki - g.padding) * g.w + ox0 * g.stride + kj - g.padding..]
}

fn tap_row_mut<'a>(plane: &'a mut [f32], g: &ConvGeom, oy: usize, ki: usize, kj: usize, ox0: usize) -> &'a mut [f32] {
    &mut plane[(oy * g.stride + ki - g.padding) * g.w + ox0 * g.stride + kj - g.padding..]
}

/// dst[i] = src[i * s]. The rows are short (3 to 28 values), too short for a call to
/// memcpy to pay: stride 1 is a zipped loop, which the compiler vectorises inline, and
/// zipped iterators carry no bounds test per element.
fn copy_strided(dst: &mut [f32], src: &[f32], s: usize) {
    if s == 1 {
        dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v);
    } else {
        dst.iter_mut().zip(src.iter().step_by(s)).for_each(|(d, &v)| *d = v);
    }
}

/// dst[i * s] += src[i], the adjoint of `copy_strided`.
fn add_strided(dst: &mut [f32], src: &[f32], s: usize) {
    if s == 1 {
        dst[..src.len()].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
    } else {
        dst.iter_mut().step_by(s).zip(src).for_each(|(d, &v)| *d += v);
    }
}
