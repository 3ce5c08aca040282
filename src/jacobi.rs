//! The cyclic Jacobi eigenvalue method for a real symmetric matrix, in parallel.
//!
//! # The mathematics
//!
//! A real symmetric `A` (d x d) has `A = V diag(lambda) V^T` with `V` orthogonal: its columns
//! are the eigenvectors. Jacobi builds `V` as a product of plane rotations. The rotation
//! `P` in the (p, q) plane is the identity except `P_pp = P_qq = c`, `P_pq = s`, `P_qp = -s`
//! (c = cos phi, s = sin phi), and `A' = P^T A P` changes only rows and columns p and q:
//!
//! ```text
//! a'_rp = c a_rp - s a_rq            a'_rq = s a_rp + c a_rq        (r != p, q)
//! a'_pq = (c^2 - s^2) a_pq + s c (a_pp - a_qq)
//! ```
//!
//! Choosing phi to make `a'_pq = 0` means `theta = cot 2phi = (a_qq - a_pp) / (2 a_pq)`, and
//! `t = tan phi` is a root of `t^2 + 2 t theta - 1 = 0`. Following Rutishauser we take the
//! smaller root, `t = sgn(theta) / (|theta| + sqrt(theta^2 + 1))` (sgn(0) = +1), so |phi| <= pi/4
//! and nothing cancels; then `c = 1 / sqrt(t^2 + 1)`, `s = t c`, and the new diagonal is
//! `a'_pp = a_pp - t a_pq`, `a'_qq = a_qq + t a_pq` (exact in exact arithmetic, and less
//! rounding than the general formula; `a'_pq` is set to exactly 0).
//!
//! Rotations preserve the Frobenius norm, and each one moves `2 a_pq^2` from the off-diagonal
//! to the diagonal, so `off(A) = sqrt(sum_{i != j} a_ij^2)` falls monotonically. A *sweep*
//! rotates every pair (p, q) once. Once the off-diagonal is small against the gaps between
//! eigenvalues, each sweep roughly squares it (cyclic Jacobi converges quadratically:
//! Henrici 1958, Schonhage 1961; for parallel orderings like the one below, Luk & Park 1989).
//! Before that, a few sweeps shrink it by a steady factor. The count grows slowly with d: for
//! random symmetric matrices 6 sweeps at d = 10, 9 at d = 200, 11 at d = 784; 10 for the
//! covariance of random bytes (d = 784) and 12 for MNIST's, whose hundreds of tiny
//! eigenvalues crowd together. We stop when `off(A) <= tol * ||A||_F`; the
//! diagonal is then the spectrum, `V = P_1 P_2 ...` holds the eigenvectors, and
//! `||A V - V Lambda||_F` is about `off(A)` too.
//!
//! # Why this ordering: a round-robin tournament, d/2 rotations at once
//!
//! Rotations of disjoint pairs, such as (0, 3) and (1, 2), touch disjoint rows and columns,
//! so their product `J` can be applied in one go. Seen in 2 x 2 blocks, `A' = J^T A J` is
//! `A'_ij = R_i^T A_ij R_j`, where `A_ij` is the block on rows (p_i, q_i) and columns
//! (p_j, q_j) and `R_i = [[c_i, s_i], [-s_i, c_i]]`. Block row i reads and writes only rows
//! p_i and q_i, so one task per pair owns everything it writes (and columns p_i, q_i of V):
//! no locks, no atomics, and a result that does not depend on the number of threads.
//!
//! The pairs of a *step* come from a round-robin tournament (the "circle method"): d players
//! sit at a table with h = d/2 seats on top and h on the bottom, seat i facing seat h + i, and
//! facing players are paired. Then everyone but seat 0 moves one place round the table; after
//! d - 1 moves every pair has met exactly once (a full sweep), and everyone is back in their
//! own seat. Row r of A is kept in *seat order* (its slot b holds column `seats[b]`), so a step
//! always pairs slot j with slot h + j: the top half of a row against its bottom half, two
//! contiguous runs the compiler vectorises. A move is then two short `rotate`s of each row.
//!
//! The row-by-row serial ordering takes about as many sweeps (11 on MNIST) but cannot be
//! parallelised this way; one-sided (Hestenes) Jacobi finds singular vectors, which for an
//! indefinite A mix the eigenvectors of lambda and -lambda. A step reads and writes A and V
//! once (2 x 4.9 MB for d = 784, in the last-level cache). Two details save work:
//! - an index whose row is already zero off the diagonal (a pixel that is black in every
//!   image) is an eigenvector as it stands and takes no part; an odd count of the rest is
//!   padded with a zero row and column, which never rotates (its a_pq are 0) and is dropped;
//! - rotations with `|a_pq| <= tol ||A||_F / d` are skipped (threshold Jacobi): entries that
//!   small already pass the stopping test.
//!
//! # Shapes
//!
//! `a`: d x d, row-major, symmetric. `values`: d, descending. `vectors`: d x d, COLUMN-major:
//! eigenvector j is the contiguous slice `vectors[j * d..(j + 1) * d]`, so `A v_j = lambda_j v_j`.
//!
//! # A 2 x 2 example to check by hand
//!
//! `A = [[2, 1], [1, 2]]`: theta = (2 - 2) / 2 = 0, so t = 1, c = s = 1/sqrt(2), and
//! `a'_pp = 2 - 1 = 1`, `a'_qq = 2 + 1 = 3`. One sweep; sorted descending the eigenvalues are
//! (3, 1) with eigenvectors `(1, 1)/sqrt(2)` and `(1, -1)/sqrt(2)` up to sign (the columns of
//! P = [[c, s], [-s, c]] swapped).

use rayon::prelude::*;

/// The eigen-decomposition `A = V diag(values) V^T` of a symmetric matrix.
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// The eigenvalues, largest first.
    pub values: Vec<f64>,
    /// d x d column-major: eigenvector j is `vectors[j * d..(j + 1) * d]`, a unit vector.
    pub vectors: Vec<f64>,
    /// Full sweeps done (0 for a diagonal input).
    pub sweeps: usize,
    /// `off(A)` at the end, to compare with `tol * ||A||_F` (above it if `max_sweeps` ran out).
    pub off_diagonal: f64,
}

impl SymmetricEigen {
    /// Eigenvector j, the partner of `values[j]`.
    pub fn vector(&self, j: usize) -> &[f64] {
        let d = self.values.len();
        &self.vectors[j * d..(j + 1) * d]
    }
}

/// The h = m/2 rotations of one step, rotation i on the pair in seats (i, h + i); kept as
/// separate arrays so the loops over j below read `c[j]`, `s[j]` contiguously.
struct Rotations {
    c: Vec<f64>,
    s: Vec<f64>,
    new_pp: Vec<f64>,
    new_qq: Vec<f64>,
}

impl Rotations {
    /// The rotations that zero a_pq for every facing pair, or the identity when `|a_pq| <= skip`.
    /// All are computed from the same A: their pairs are disjoint, so none of them changes an
    /// entry another one reads.
    fn new(a: &[f64], m: usize, seats: &[usize], skip: f64) -> Rotations {
        let h = m / 2;
        let mut r = Rotations { c: vec![1.0; h], s: vec![0.0; h], new_pp: vec![0.0; h], new_qq: vec![0.0; h] };
        for i in 0..h {
            // The player in seat b keeps its diagonal entry in slot b of its row.
            let (row_p, row_q) = (seats[i] * m, seats[h + i] * m);
            let (app, aqq, apq) = (a[row_p + i], a[row_q + h + i], a[row_p + h + i]);
            (r.new_pp[i], r.new_qq[i]) = (app, aqq);
            if apq.abs() <= skip {
                continue;
            }
            let theta = (aqq - app) / (2.0 * apq);
            let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
            // hypot, not sqrt(theta^2 + 1): theta^2 overflows when a_pq is tiny against the gap.
            let t = sign / (theta.abs() + theta.hypot(1.0));
            r.c[i] = 1.0 / t.hypot(1.0);
            r.s[i] = t * r.c[i];
            (r.new_pp[i], r.new_qq[i]) = (app - t * apq, aqq + t * apq);
        }
        r
    }
}

/// Everyone but seat 0 moves one place round the table: top seats 1..h-1 one to the right,
/// the last top seat down to the last bottom seat, the bottom ones to the left, and bottom
/// seat 0 (seat h) up to seat 1. Applied to the seat list and to every row of A alike.
fn move_round_table<T: Copy>(x: &mut [T]) {
    let h = x.len() / 2;
    if h < 2 {
        return; // only seats 0 and 1: one step is the whole tournament
    }
    let (top, bottom) = x.split_at_mut(h);
    let (up, down) = (bottom[0], top[h - 1]);
    top[1..].rotate_right(1);
    top[1] = up;
    bottom.rotate_left(1);
    bottom[h - 1] = down;
}

/// One step: `A <- J^T A J` and `V <- V J`. A is stored by seat (row r is A's row r, and its
/// slot b holds column `seats[b]`), so rotation j always mixes slots j and h + j; V is
/// column-major, so rotation i mixes the contiguous columns p_i and q_i.
fn rotate(a: &mut [f64], v: &mut [f64], m: usize, seats: &[usize], r: &Rotations) {
    let h = m / 2;
    // Pair i owns rows p_i, q_i of A and columns p_i, q_i of V. Every row and column is lent
    // to exactly one pair: `take` proves to the borrow checker that the tasks are disjoint.
    let mut rows: Vec<Option<&mut [f64]>> = a.chunks_mut(m).map(Some).collect();
    let mut cols: Vec<Option<&mut [f64]>> = v.chunks_mut(m).map(Some).collect();
    let mut lend = |i: usize| {
        let (p, q) = (seats[i], seats[h + i]);
        let a_rows = (rows[p].take().unwrap(), rows[q].take().unwrap());
        (i, a_rows, (cols[p].take().unwrap(), cols[q].take().unwrap()))
    };
    let tasks: Vec<_> = (0..h).map(&mut lend).collect();
    tasks.into_par_iter().for_each(|(i, (row_p, row_q), (col_p, col_q))| {
        let (ci, si) = (r.c[i], r.s[i]);
        let (p_top, p_bottom) = row_p.split_at_mut(h);
        let (q_top, q_bottom) = row_q.split_at_mut(h);
        let blocks = (p_top.iter_mut().zip(p_bottom.iter_mut()))
            .zip(q_top.iter_mut().zip(q_bottom.iter_mut()))
            .zip(r.c.iter().zip(&r.s));
        for (((x_pp, x_pq), (x_qp, x_qq)), (&cj, &sj)) in blocks {
            // The 2 x 2 block on rows (p_i, q_i), columns (p_j, q_j): first J from the right...
            let (y_pp, y_pq) = (cj * *x_pp - sj * *x_pq, sj * *x_pp + cj * *x_pq);
            let (y_qp, y_qq) = (cj * *x_qp - sj * *x_qq, sj * *x_qp + cj * *x_qq);
            // ...then J^T from the left.
            (*x_pp, *x_qp) = (ci * y_pp - si * y_qp, si * y_pp + ci * y_qp);
            (*x_pq, *x_qq) = (ci * y_pq - si * y_qq, si * y_pq + ci * y_qq);
        }
        // The diagonal block from the exact formulas, so a_pq is 0 and not a rounding residue.
        (row_p[i], row_p[h + i]) = (r.new_pp[i], 0.0);
        (row_q[i], row_q[h + i]) = (0.0, r.new_qq[i]);
        move_round_table(row_p);
        move_round_table(row_q);
        if si != 0.0 {
            for (x, y) in col_p.iter_mut().zip(col_q.iter_mut()) {
                (*x, *y) = (ci * *x - si * *y, si * *x + ci * *y);
            }
        }
    });
}

/// `sqrt(sum_{i != j} a_ij^2)`, summed in a fixed order so the stopping test is reproducible.
/// (Summed directly: `||A||^2 - sum a_ii^2` would lose an off(A) of 1e-12 ||A|| to cancellation.)
fn off_diagonal_norm(a: &[f64], m: usize) -> f64 {
    let mut sum = 0.0;
    for i in 0..m {
        let row = &a[i * m..(i + 1) * m];
        sum += row.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, x)| x * x).sum::<f64>();
    }
    sum.sqrt()
}

/// Eigen-decomposition of the symmetric d x d row-major `a` by cyclic Jacobi (see the module
/// comment). Stops when `off(A) <= tol * ||A||_F` or after `max_sweeps` sweeps. The result does
/// not depend on the number of threads: each entry is written by one task with fixed formulas.
pub fn jacobi_eigen(a: &[f64], d: usize, tol: f64, max_sweeps: usize) -> SymmetricEigen {
    assert_eq!(a.len(), d * d, "jacobi_eigen: a has {} entries, expected d*d = {d}*{d}", a.len());
    let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let at = |i: usize, j: usize| {
        let (aij, aji) = (a[i * d + j], a[j * d + i]);
        assert!(
            (aij - aji).abs() <= 1e-10 * norm,
            "jacobi_eigen: a is not symmetric: a[{i}][{j}] = {aij} but a[{j}][{i}] = {aji}"
        );
        0.5 * (aij + aji) // a computed A may be asymmetric by rounding: use its symmetric part
    };
    // An index whose row is zero off the diagonal is an eigenvector as it stands (MNIST has 67
    // pixels that are black in every image). Rotating it would change nothing: leave it out.
    let active: Vec<usize> = (0..d).filter(|&i| (0..d).any(|j| j != i && at(i, j) != 0.0)).collect();
    // Pad an odd count with a decoupled zero row and column (see the module comment).
    let m = active.len() + active.len() % 2;
    let mut am = vec![0.0; m * m];
    for (ai, &i) in active.iter().enumerate() {
        for (aj, &j) in active.iter().enumerate() {
            am[ai * m + aj] = at(i, j);
        }
    }
    let mut v = vec![0.0; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }

    let stop = tol * norm;
    let skip = stop / m.max(1) as f64;
    // seats[b] is the index sitting in seat b. A full sweep of m - 1 moves brings everyone
    // back to their own seat, so between sweeps A is stored plainly.
    let mut seats: Vec<usize> = (0..m).collect();
    let mut sweeps = 0;
    let mut off = off_diagonal_norm(&am, m);
    // Run the sweeps on a rayon worker: each step's parallel loop is then a fork inside the
    // pool, not a hand-over from an outside thread that must sleep and be woken (about 9,000
    // steps for MNIST; measured, this saves a third of the time on one thread).
    rayon::scope(|_| {
        while m > 0 && off > stop && sweeps < max_sweeps {
            for _step in 0..m - 1 {
                let rotations = Rotations::new(&am, m, &seats, skip);
                rotate(&mut am, &mut v, m, &seats, &rotations);
                move_round_table(&mut seats);
            }
            sweeps += 1;
            off = off_diagonal_norm(&am, m);
        }
    });

    // Every eigenpair as (value, vector in R^d): the rotated ones, then the decoupled ones.
    let mut pairs: Vec<(f64, Vec<f64>)> = Vec::with_capacity(d);
    for ai in 0..active.len() {
        let mut vector = vec![0.0; d];
        active.iter().zip(&v[ai * m..]).for_each(|(&i, &x)| vector[i] = x);
        pairs.push((am[ai * m + ai], vector));
    }
    for i in (0..d).filter(|i| !active.contains(i)) {
        let mut vector = vec![0.0; d];
        vector[i] = 1.0;
        pairs.push((at(i, i), vector));
    }
    // Descending; the sort is stable, so equal values keep the order above (deterministic).
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    SymmetricEigen {
        values: pairs.iter().map(|p| p.0).collect(),
        vectors: pairs.into_iter().flat_map(|p| p.1).collect(),
        sweeps,
        off_diagonal: off,
    }
}
