//! The decoded contents of the MNIST files: images as bytes, labels, and the two ways
//! training reads them as `f32` in [0, 1] (a range, or a shuffled mini-batch).

use std::ops::Range;

/// A set of greyscale images, `n` images of `rows x cols`, kept as the file's bytes
/// (0 = background, 255 = ink), image after image, row-major. Kept as `u8` because that is
/// a quarter of the memory of `f32`, and scaling a batch when it is used is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// One class label (0..=9 for MNIST) per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub labels: Vec<u8>,
}

impl Images {
    /// Pixels per image, `rows * cols` (784 for MNIST).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.image_len();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// Images `range` as `f32` in [0, 1], shape `[range.len(), rows * cols]`.
    pub fn to_f32(&self, range: Range<usize>) -> Vec<f32> {
        assert!(range.start <= range.end && range.end <= self.n, "to_f32: range {range:?} outside 0..{}", self.n);
        let d = self.image_len();
        self.pixels[range.start * d..range.end * d].iter().map(|&p| scale(p)).collect()
    }

    /// Gather the images at `indices` (a shuffled mini-batch) into `out`, shape
    /// `[indices.len(), rows * cols]`, as `f32` in [0, 1]. Writing into a caller's buffer
    /// lets the training loop reuse one allocation for every batch.
    pub fn batch_into(&self, indices: &[usize], out: &mut [f32]) {
        let d = self.image_len();
        assert_eq!(
            out.len(),
            indices.len() * d,
            "batch_into: out has {} floats, want {} x {d}",
            out.len(),
            indices.len()
        );
        for (dst, &i) in out.chunks_exact_mut(d).zip(indices) {
            for (o, &p) in dst.iter_mut().zip(self.image(i)) {
                *o = scale(p);
            }
        }
    }
}

impl Labels {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Byte to [0, 1]. A division rather than a multiply by 1/255 so that 255 maps to exactly 1.0.
fn scale(p: u8) -> f32 {
    p as f32 / 255.0
}
