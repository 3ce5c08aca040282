//! Max-pool with indices and max-unpool (`ops::pool`'s four maps) split over (n, c) planes,
//! one rayon task per plane; the forward walks two input rows in pairs and compares the four
//! candidates in window order with strict `>`, as branch-free selects the compiler vectorises.
//! The CAE's first pool and its unpool (64 x 16 x 28 x 28) take 0.21 ms against the reference
//! loops' 2.84, 13.6x, on 2 threads (`cargo bench --bench ladder -- pool`, docs/performance.md).

use crate::geom::POOL;
use crate::tensor::zeroed_chunks_vec;
use rayon::prelude::*;

/// y (planes, h/2, w/2) = max over each 2x2 window of x (planes, h, w); idx its argmax.
/// Written for POOL = 2.
pub fn maxpool2d_forward(x: &[f32], y: &mut [f32], idx: &mut [u32], h: usize, w: usize) {
    const _: () = assert!(POOL == 2, "maxpool2d_forward is written for 2x2 windows");
    let (oh, ow) = (h / POOL, w / POOL);
    assert!(oh > 0 && ow > 0, "maxpool2d needs planes of at least 2x2, got {h}x{w}");
    y.par_chunks_mut(oh * ow).zip(idx.par_chunks_mut(oh * ow)).zip(x.par_chunks(h * w)).for_each(|((y, idx), x)| {
        for (oy, (y, idx)) in y.chunks_exact_mut(ow).zip(idx.chunks_exact_mut(ow)).enumerate() {
            let top = &x[POOL * oy * w..][..POOL * ow];
            let bottom = &x[(POOL * oy + 1) * w..][..POOL * ow];
            for (ox, (((y, idx), t), b)) in
                y.iter_mut().zip(idx).zip(top.chunks_exact(POOL)).zip(bottom.chunks_exact(POOL)).enumerate()
            {
                let first = (POOL * oy * w + POOL * ox) as u32;
                let (mut best, mut at) = (t[0], first);
                for (v, p) in [(t[1], first + 1), (b[0], first + w as u32), (b[1], first + w as u32 + 1)] {
                    if v > best {
                        (best, at) = (v, p);
                    }
                }
                *y = best;
                *idx = at;
            }
        }
    });
}

/// dx (planes, h, w) += dout (planes, oh, ow) routed to the argmax of each window.
pub fn maxpool2d_backward(dout: &[f32], idx: &[u32], dx: &mut [f32], h: usize, w: usize) {
    let (oh, ow) = (h / POOL, w / POOL);
    dx.par_chunks_mut(h * w).zip(dout.par_chunks(oh * ow)).zip(idx.par_chunks(oh * ow)).for_each(
        |((dx, dout), idx)| {
            idx.iter().zip(dout).for_each(|(&i, &d)| dx[i as usize] += d);
        },
    );
}

/// y (planes, h, w) = x (planes, ph, pw) placed at its indices, zero elsewhere.
pub fn maxunpool2d_forward(x: &[f32], idx: &[u32], y: &mut [f32], ph: usize, pw: usize, h: usize, w: usize) {
    y.par_chunks_mut(h * w).zip(x.par_chunks(ph * pw)).zip(idx.par_chunks(ph * pw)).for_each(|((y, x), idx)| {
        y.fill(0.0);
        place_plane(x, idx, y);
    });
}

/// `maxunpool2d_forward` into a new buffer, each plane zeroed by the task that then places
/// its values (`tensor::zeroed_chunks_vec`), not cleared whole first.
pub fn maxunpool2d_forward_new(x: &[f32], idx: &[u32], ph: usize, pw: usize, h: usize, w: usize) -> Vec<f32> {
    let cells = ph * pw;
    let planes = x.len() / cells.max(1);
    zeroed_chunks_vec(planes * h * w, h * w, |p, y| {
        place_plane(&x[p * cells..][..cells], &idx[p * cells..][..cells], y)
    })
}

/// One plane of `maxunpool2d_forward`, onto zeros.
fn place_plane(x: &[f32], idx: &[u32], y: &mut [f32]) {
    idx.iter().zip(x).for_each(|(&i, &v)| y[i as usize] = v);
}

/// dx (planes, ph, pw) += dout (planes, h, w) read at the indices.
pub fn maxunpool2d_backward(dout: &[f32], idx: &[u32], dx: &mut [f32], ph: usize, pw: usize, h: usize, w: usize) {
    dx.par_chunks_mut(ph * pw).zip(dout.par_chunks(h * w)).zip(idx.par_chunks(ph * pw)).for_each(
        |((dx, dout), idx)| {
            dx.iter_mut().zip(idx).for_each(|(dx, &i)| *dx += dout[i as usize]);
        },
    );
}

/// Whether every index of `idx` (planes, ph, pw) lies in its own window of a plane `w` wide:
/// `ops::pool`'s check, in parallel over planes, since it runs on every unpool. The same
/// test as `in_window`, put so that it vectorises: the index's offset from its window's
/// corner is dy * w + dx with dx < POOL for some row dy < POOL, that is offset - dy * w is
/// below POOL for some dy (unsigned, so an offset before the row's start wraps above); the
/// corners are listed once for all planes, the cells' answers are and-ed rather than
/// short-circuited, and each task takes whole planes, at least `CHECKED_PER_TASK` indices.
pub fn all_in_windows(idx: &[u32], ph: usize, pw: usize, w: usize) -> bool {
    let corners: Vec<u32> = (0..ph * pw).map(|q| (POOL * (q / pw) * w + POOL * (q % pw)) as u32).collect();
    let plane_ok = |plane: &[u32]| {
        plane.iter().zip(&corners).fold(true, |ok, (&i, &corner)| {
            let offset = i.wrapping_sub(corner);
            ok & (0..POOL).fold(false, |inside, dy| inside | (offset.wrapping_sub((dy * w) as u32) < POOL as u32))
        })
    };
    idx.par_chunks(corners.len().max(1)).with_min_len(CHECKED_PER_TASK.div_ceil(corners.len().max(1))).all(plane_ok)
}

/// Indices a task of `all_in_windows` checks at least: the CAE's smallest planes hold 9.
const CHECKED_PER_TASK: usize = 4096;
