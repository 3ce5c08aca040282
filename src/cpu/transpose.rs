//! The transpose of a row-major matrix in 16 x 16 AVX-512 tiles: what a linear layer's
//! forward computed as y^T = W x^T needs on both sides (3 to 6 us for 64 x 784 on the
//! development machine, against 12 to 24 for a scalar loop).

use super::thin::applies;
use super::thin::LANES;
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// dst (cols x rows) = src (rows x cols)^T, both row-major, in tiles of 16 x 16 (`tile_16`)
/// and the values past the last whole tile one at a time; parallel over bands of 16 rows of
/// dst. The linear layer's forward product runs on x^T, and gives y^T.
///
/// # Panics
/// If the processor lacks AVX-512 (check `applies` first) or the sizes do not fit.
pub fn par_transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(applies(), "thin::par_transpose needs AVX-512; check thin::applies() first");
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "transpose: {} and {} values for {rows} x {cols}",
        src.len(),
        dst.len()
    );
    if rows == 0 || cols == 0 {
        return;
    }
    dst.par_chunks_mut(LANES * rows).enumerate().for_each(|(band, dst)| {
        // Rows first.. of dst, columns first.. of src.
        let (first, width) = (band * LANES, dst.len() / rows);
        let whole = if width == LANES { rows - rows % LANES } else { 0 };
        for r in (0..whole).step_by(LANES) {
            // SAFETY: AVX-512 is present (asserted above); rows r .. r + 16 of src hold
            // columns first .. first + 16, and rows 0 .. 16 of this band of dst columns
            // r .. r + 16 (rows of dst are `rows` long).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                tile_16(src.as_ptr().add(r * cols + first), cols, dst.as_mut_ptr().add(r), rows)
            }
        }
        for (c, dst) in dst.chunks_exact_mut(rows).enumerate() {
            for (r, d) in dst.iter_mut().enumerate().skip(whole) {
                *d = src[r * cols + first + c];
            }
        }
    });
}

/// The 16 x 16 block at src (rows `lds` apart), transposed into the one at dst (rows `ldd`
/// apart): 16 loads, four rounds of 16 shuffles, 16 stores. A register is four 128-bit
/// chunks of 4 values; what register i holds after each round, for rows r of src and
/// columns c of src (chunk l of 4):
///
/// ```text
///     round 1  t: i = 2p + e: rows 2p and 2p+1 interleaved, columns 4l, 4l+1 (e = 0) or 4l+2, 4l+3
///     round 2  u: i = 4g + c, c < 4: column 4l + c of rows 4g .. 4g+3 in chunk l
///     round 3  v: i = 8h + c, c < 8: columns c and c + 8 of rows 8h .. 8h+7
///     round 4     column i of rows 0 .. 15, which is row i of dst
/// ```
///
/// # Safety
/// 16 rows of 16 values at src and at dst valid (dst's for writing); AVX-512 present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_16(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
    // SAFETY: the caller's contract; the rest is register arithmetic.
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * lds)));
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // u[4g + c]: from t[4g + (0 or 1)] and t[4g + (2 or 3)], the low or high 64 bits.
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (g, c) = (i / 4, i % 4);
            let (a, b) = (t[4 * g + c / 2], t[4 * g + 2 + c / 2]);
            if c % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(a, b)
            } else {
                _mm512_shuffle_ps::<0xEE>(a, b)
            }
        });
        // v[8h + c]: chunks 0 and 2 (c < 4) or 1 and 3 (c >= 4) of u[8h + c % 4] and u[8h + 4 + c % 4].
        let v: [__m512; 16] = std::array::from_fn(|i| {
            let (h, c) = (i / 8, i % 8);
            let (a, b) = (u[8 * h + c % 4], u[8 * h + 4 + c % 4]);
            if c < 4 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xDD>(a, b)
            }
        });
        // Row i of dst: column i of src, from v[i % 8] and v[8 + i % 8], chunks 0 and 2 (i < 8) or 1 and 3.
        for i in 0..16 {
            let (a, b) = (v[i % 8], v[8 + i % 8]);
            let row = if i < 8 { _mm512_shuffle_f32x4::<0x88>(a, b) } else { _mm512_shuffle_f32x4::<0xDD>(a, b) };
            _mm512_storeu_ps(dst.add(i * ldd), row);
        }
    }
}
