//! The packed product (matrixmultiply, `gemm::par_gemm`) over only some of its terms: how
//! `cpu::linear` leaves out the units without gradient on processors without AVX-512, as
//! `thin_rows` does with it. The sums are added onto a C that holds values, or make a new one
//! (`Sink`), with the bits of the product over every term either way.

use super::gemm::{par_gemm, par_gemm_new, Mat};
use super::thin_rows::Terms;
use crate::tensor::{zeroed_chunks_vec, zeros_vec};
use rayon::prelude::*;
use std::cell::RefCell;

/// C += A B by the packed product over the terms listed (in increasing order, as `Live`
/// lists them). matrixmultiply computes every term it is given, so the live part is copied
/// out first: for `Rows`, A's listed rows, whose sums are then added to C's rows; for
/// `Steps`, A's listed columns and B's listed rows, a product of fewer steps. Each copy is
/// one pass over values the product itself reads (and packs) again, so `Products::a_b` takes
/// this only when enough terms are left out (`linear::PACKED_LEAVES_OUT_AT_LEAST`).
///
/// C comes out with the bits of the product over every term. matrixmultiply adds up each sum
/// in blocks of 256 steps (`PACKED_BLOCK_OF_STEPS`), and adds each block's onto C in turn,
/// one rounding each (a fused `1 * sum + c`); within a block, a term left out would have
/// added an exact zero. `Rows` keeps every step, and adds each block's sums, computed from
/// zero (beta = 0), onto C's rows itself: the same roundings. `Steps` runs one product per
/// block of the full product, over that block's live steps.
pub(super) fn packed_a_b_terms(a: Mat, b: Mat, c: &mut Sink, terms: Terms) {
    match terms {
        Terms::All => c.add_product(a, b),
        Terms::Rows(rows) => LIVE_A.with_borrow_mut(|a_live| {
            let a_live = gather_rows(a, rows, a_live);
            SUMS.with_borrow_mut(|sums| {
                let sums = scratch(sums, rows.len() * b.cols);
                for first in (0..a.cols).step_by(PACKED_BLOCK_OF_STEPS) {
                    let steps = PACKED_BLOCK_OF_STEPS.min(a.cols - first);
                    par_gemm(a_live.cols_from(first, steps), b.rows_from(first, steps), 0.0, sums);
                    c.add_rows(a.rows, b.cols, rows, sums);
                }
            })
        }),
        Terms::Steps(steps) => LIVE_A.with_borrow_mut(|a_live| {
            LIVE_B.with_borrow_mut(|b_live| {
                let (a_live, b_live) = (gather_rows(a.t(), steps, a_live).t(), gather_rows(b, steps, b_live));
                // One product per block of matrixmultiply's steps: each block's sum, and the
                // order in which the blocks are added to C, are then those of the product over
                // all steps.
                let mut first = 0;
                for block in steps.chunk_by(|s, t| s / PACKED_BLOCK_OF_STEPS == t / PACKED_BLOCK_OF_STEPS) {
                    c.add_product(a_live.cols_from(first, block.len()), b_live.rows_from(first, block.len()));
                    first += block.len();
                }
            })
        }),
    }
}

/// Where the packed product's sums go: onto a C that holds values (`a_b`), or into a new C
/// (`a_b_new`), which the first block's sums make (beta = 0, or rows copied into place)
/// where they would be added onto zeros cleared in a pass of their own. The same bits either
/// way: a sum starts from +0 and cannot end at -0, so adding it to a zero leaves it as it is.
pub(super) enum Sink<'c> {
    AddTo(&'c mut [f32]),
    New(Option<Vec<f32>>),
}

impl Sink<'_> {
    /// C += A B.
    fn add_product(&mut self, a: Mat, b: Mat) {
        match self {
            Sink::AddTo(c) => par_gemm(a, b, 1.0, c),
            Sink::New(Some(c)) => par_gemm(a, b, 1.0, c),
            Sink::New(none) => *none = Some(par_gemm_new(a, b)),
        }
    }

    /// C's listed rows (of `cols` values, of `rows_in_all`) += the rows of `sums`, in order.
    fn add_rows(&mut self, rows_in_all: usize, cols: usize, rows: &[usize], sums: &[f32]) {
        match self {
            Sink::AddTo(c) => add_to_rows(c, cols, rows, sums),
            Sink::New(Some(c)) => add_to_rows(c, cols, rows, sums),
            Sink::New(none) => *none = Some(rows_placed(rows_in_all, cols, rows, sums)),
        }
    }

    /// The new C, zeros if no block reached it (every unit dead).
    pub(super) fn into_new(self, len: usize) -> Vec<f32> {
        match self {
            Sink::New(c) => c.unwrap_or_else(|| zeros_vec(len)),
            Sink::AddTo(_) => unreachable!("a C added onto is the caller's own"),
        }
    }
}

/// matrixmultiply's blocks of steps in a single-precision product (its `S_KC`, set when it is
/// built).
const PACKED_BLOCK_OF_STEPS: usize = 256;

thread_local! {
    /// The copies of the live parts, and the live rows' sums, kept on each thread from one
    /// product to the next: a step copies out the same sizes every time, and a fresh buffer
    /// would first be cleared, a pass over memory as long as the copy (4% of h900's step).
    /// Each holds at most as many values as the largest layer's weights (3.2 MB for h900's
    /// 900 x 900), for as long as its thread lives.
    static LIVE_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static LIVE_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static SUMS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The first `len` values of a kept buffer, which grows (cleared) only when it is too short.
fn scratch(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// The listed rows of `m`, row-major, copied into `buffer`. A transposed view is read along
/// its storage's rows (its columns), so that the reads run forward through memory.
fn gather_rows<'a>(m: Mat, rows: &[usize], buffer: &'a mut Vec<f32>) -> Mat<'a> {
    let cols = m.cols;
    let out = scratch(buffer, rows.len() * cols);
    if cols > 0 {
        if m.cs == 1 {
            out.par_chunks_mut(cols).zip(rows).for_each(|(dst, &r)| dst.copy_from_slice(&m.data[r * m.rs..][..cols]));
        } else {
            for j in 0..cols {
                for (i, &r) in rows.iter().enumerate() {
                    out[i * cols + j] = m.data[r * m.rs + j * m.cs];
                }
            }
        }
    }
    Mat::new(out, rows.len(), cols)
}

/// C's listed rows (of `cols` values) += the rows of `sums`, in order.
fn add_to_rows(c: &mut [f32], cols: usize, rows: &[usize], sums: &[f32]) {
    c.par_chunks_mut(cols.max(1)).enumerate().for_each(|(r, c_row)| {
        if let Ok(i) = rows.binary_search(&r) {
            c_row.iter_mut().zip(&sums[i * cols..][..cols]).for_each(|(c, s)| *c += s);
        }
    });
}

/// A new `rows_in_all x cols` matrix whose listed rows are the rows of `sums`, in order, and
/// whose other rows are zeros, a row per task: each row is cleared and, if listed, copied
/// into while it is in cache, not the whole matrix cleared first in a pass of its own.
fn rows_placed(rows_in_all: usize, cols: usize, rows: &[usize], sums: &[f32]) -> Vec<f32> {
    zeroed_chunks_vec(rows_in_all * cols, cols, |r, row| {
        if let Ok(i) = rows.binary_search(&r) {
            row.copy_from_slice(&sums[i * cols..][..cols]);
        }
    })
}
