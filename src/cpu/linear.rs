//! The linear layer's three products (`ops::linear`) fast, parallel over bands of outputs:
//! with AVX-512 the kernels of `thin`, which read the operands where they lie, else
//! `par_gemm` (matrixmultiply).
//!
//! Each product adds into its gradient (beta = 1), as the reference does; the `_new` forms
//! write the first gradient to reach a value into a new buffer, the same bits without the
//! zeros first.
//! The two backward products leave out the output units whose column of dout is all zeros
//! (`Live`): behind a ReLU these are many, and their terms add nothing. `thin`'s kernels
//! skip them where they lie; the packed product is given copies of the live part
//! (`packed_terms`). With AVX-512 the forward product likewise leaves out the input units
//! that are zero in every image of the batch, when there are enough of them to pay for
//! computing it transposed (`forward_transposed`).
//!
//! What each step buys (`cargo bench --bench ladder -- linear`, 784 -> 512 at batch 64,
//! forward + dx + dW, 2 threads): 88.3 ms in the reference loops, 0.95 by the packed GEMM,
//! 0.82 with the operands read in place, 0.70 with a third of the units each side left out
//! (126x). The whole ladder is in docs/performance.md.

use super::gemm::{par_gemm, Mat};
use super::packed_terms::{packed_a_b_terms, Sink};
use super::thin;
use super::thin_rows::{self, Terms};
use super::transpose::par_transpose;
use crate::tensor::zeros_vec;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// y (n, d_out) = x (n, d_in) W^T + b, as `ops::linear::linear_forward`.
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], d_in: usize, d_out: usize) {
    let n = x.len() / d_in;
    let products = Products::for_this_cpu();
    // Transposed where enough input units are zero in every image to pay for it.
    if products == Products::Thin {
        if let Some(units) = Live::of(x, d_in).0.filter(|units| (d_in - units.len()) * d_out * n >= LEAVE_OUT_AT_LEAST)
        {
            return forward_transposed(x, w, b, y, d_in, d_out, &units);
        }
    }
    // The bias written first and the product added onto it: no extra pass.
    match b {
        Some(b) => y.par_chunks_mut(d_out).for_each(|row| row.copy_from_slice(b)),
        None => y.fill(0.0),
    }
    products.x_wt(x, w, y, d_in, d_out);
}

/// The multiply-adds that leaving out a forward product's dead input units must save to pay
/// for `forward_transposed`'s two transposes and buffers: about 25 us of arithmetic on the
/// 2-core development machine, against 10 to 20 for those. Set by timing whole training
/// steps with and without: h900's 7% and the deep AE's 6% shorter, h256's 2%; the smaller
/// layers (h64's, the manifold AE's) lost up to 5% when they took it too.
const LEAVE_OUT_AT_LEAST: usize = 1 << 21;

/// y = x W^T + b as y^T = W x^T over the input units listed: the scaled rows of x^T
/// (`thin_rows::par_a_b_terms`), one per input unit, so the units that are zero in every image of
/// the batch (a third of MNIST's pixels, a third of h900's second hidden layer) are left
/// out, as the backward products leave out the output units without gradient. Its sums run
/// in another order than `par_x_wt`'s, so y's last bits depend on which form a batch takes;
/// both are fixed by the batch alone, whatever the thread count.
fn forward_transposed(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    d_in: usize,
    d_out: usize,
    units: &[usize],
) {
    let n = x.len() / d_in;
    let mut xt = vec![0.0; d_in * n];
    par_transpose(x, n, d_in, &mut xt);
    // Row j of y^T starts as b[j] and the product is added onto it, as in `linear_forward`.
    let mut yt = match b {
        Some(b) => b.iter().flat_map(|&b| std::iter::repeat_n(b, n)).collect(),
        None => vec![0.0; d_out * n],
    };
    Products::Thin.a_b(Mat::new(w, d_out, d_in), Mat::new(&xt, d_in, n), &mut yt, Terms::Steps(units));
    par_transpose(&yt, d_out, n, y);
}

/// dx (n, d_in) += dout (n, d_out) W (d_out, d_in).
pub fn linear_backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    backward_input(dout, w, dx, d_in, d_out, &Live::of(dout, d_out));
}

/// dW (d_out, d_in) += dout^T (d_out, n) x (n, d_in).
pub fn linear_backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], d_in: usize, d_out: usize) {
    backward_weight(dout, x, dw, d_in, d_out, &Live::of(dout, d_out));
}

/// dx += dout W over the rows of W whose unit is live: the others would add zeros.
pub fn backward_input(dout: &[f32], w: &[f32], dx: &mut [f32], d_in: usize, d_out: usize, live: &Live) {
    let n = dout.len() / d_out;
    Products::for_this_cpu().a_b(Mat::new(dout, n, d_out), Mat::new(w, d_out, d_in), dx, live.as_terms(Terms::Steps));
}

/// dx = dout W into a new buffer: `backward_input` for the first gradient to reach x, which
/// then need not be zeros first (the same bits).
pub fn backward_input_new(dout: &[f32], w: &[f32], d_in: usize, d_out: usize, live: &Live) -> Vec<f32> {
    let n = dout.len() / d_out;
    Products::for_this_cpu().a_b_new(Mat::new(dout, n, d_out), Mat::new(w, d_out, d_in), live.as_terms(Terms::Steps))
}

/// dW += dout^T x in the rows of the live units: the others' rows would get zeros.
pub fn backward_weight(dout: &[f32], x: &[f32], dw: &mut [f32], d_in: usize, d_out: usize, live: &Live) {
    let n = dout.len() / d_out;
    Products::for_this_cpu().a_b(Mat::new(dout, n, d_out).t(), Mat::new(x, n, d_in), dw, live.as_terms(Terms::Rows));
}

/// dW = dout^T x into a new buffer: `backward_weight` for the step's first gradient of W
/// (the same bits).
pub fn backward_weight_new(dout: &[f32], x: &[f32], d_in: usize, d_out: usize, live: &Live) -> Vec<f32> {
    let n = dout.len() / d_out;
    Products::for_this_cpu().a_b_new(Mat::new(dout, n, d_out).t(), Mat::new(x, n, d_in), live.as_terms(Terms::Rows))
}

/// The units of a batch (n, units) that some image of it reaches: the columns holding a
/// value other than zero. Of dout, the output units that some image sends a gradient back
/// through; of x, the input units that some image sets. Behind a ReLU, a unit that no image
/// of the batch activates has a column of zeros, and such units are many. Over steps 250 to
/// 300 of h900 (batch 64, seed 0), 12% of the first hidden layer's units, 34% of the
/// second's and 59% of the output layer's (pixels near the border, black in most images);
/// in the deep AE 15% to 63% of each layer's but the code's. Their rows of W add nothing to
/// dx and their rows of dW get nothing, so the backward products leave them out.
pub struct Live(Option<Vec<usize>>);

impl Live {
    pub fn of(batch: &[f32], units: usize) -> Live {
        let mut live = vec![false; units];
        for row in batch.chunks_exact(units) {
            live.iter_mut().zip(row).for_each(|(l, &v)| *l |= v != 0.0);
        }
        // A NaN is not zero: its unit stays live, and the NaN reaches the products as it should.
        if live.iter().all(|&l| l) {
            Live(None)
        } else {
            Live(Some((0..units).filter(|&j| live[j]).collect()))
        }
    }

    /// All terms when every unit is live, else those of the live units, as `part` lists them.
    fn as_terms<'a>(&'a self, part: fn(&'a [usize]) -> Terms<'a>) -> Terms<'a> {
        self.0.as_deref().map_or(Terms::All, part)
    }
}

/// Which kernels carry the products: `thin`'s, which read the operands where they lie, on
/// processors with AVX-512; matrixmultiply's packed ones (`par_gemm`) elsewhere. The unit
/// tests below run both on any processor that has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Products {
    Thin,
    Packed,
}

impl Products {
    fn for_this_cpu() -> Products {
        if thin::applies() {
            Products::Thin
        } else {
            Products::Packed
        }
    }

    /// y (n, d_out) += x (n, d_in) W^T.
    fn x_wt(self, x: &[f32], w: &[f32], y: &mut [f32], d_in: usize, d_out: usize) {
        count(y.len() * d_in);
        match self {
            Products::Thin => thin::par_x_wt(x, w, y, d_in, d_out),
            Products::Packed => par_gemm(Mat::new(x, x.len() / d_in, d_in), Mat::new(w, d_out, d_in).t(), 1.0, y),
        }
    }

    /// C += A B, where B's rows are contiguous (W for dx, x for dW), computing the `terms`
    /// named (the others add zeros); the packed product computes them all unless leaving
    /// some out pays for its copies (`packed_terms::packed_a_b_terms`).
    fn a_b(self, a: Mat, b: Mat, c: &mut [f32], terms: Terms) {
        let terms = self.terms_computed(a, b, terms);
        match self {
            Products::Thin => thin_rows::par_a_b_terms(a, b, c, terms),
            Products::Packed => packed_a_b_terms(a, b, &mut Sink::AddTo(c), terms),
        }
    }

    /// C = A B into a new buffer: `a_b` onto zeros, the same bits. The packed product writes
    /// each value of C once (`Sink::New`) rather than adding onto zeros written first;
    /// `thin`'s kernels only add, so they get the zeros.
    fn a_b_new(self, a: Mat, b: Mat, terms: Terms) -> Vec<f32> {
        let terms = self.terms_computed(a, b, terms);
        match self {
            Products::Thin => {
                let mut c = zeros_vec(a.rows * b.cols);
                thin_rows::par_a_b_terms(a, b, &mut c, terms);
                c
            }
            Products::Packed => {
                let mut c = Sink::New(None);
                packed_a_b_terms(a, b, &mut c, terms);
                c.into_new(a.rows * b.cols)
            }
        }
    }

    /// The terms of A B this kind of product computes when asked for `terms` (the packed one
    /// computes them all unless leaving some out pays for its copies), counted in
    /// `multiply_adds`.
    fn terms_computed<'a>(self, a: Mat, b: Mat, terms: Terms<'a>) -> Terms<'a> {
        let pays = |live: usize, all: usize| (all - live) * PACKED_LEAVES_OUT_AT_LEAST >= all;
        let terms = match (self, terms) {
            (Products::Packed, Terms::Rows(rows)) if !pays(rows.len(), a.rows) => Terms::All,
            (Products::Packed, Terms::Steps(steps)) if !pays(steps.len(), a.cols) => Terms::All,
            _ => terms,
        };
        count(match terms {
            Terms::Rows(rows) => rows.len() * b.cols * a.cols,
            Terms::Steps(steps) => a.rows * b.cols * steps.len(),
            Terms::All => a.rows * b.cols * a.cols,
        });
        terms
    }
}

/// The packed product leaves terms out when at least 1 in this many units is dead. Each value
/// copied costs about as much as a multiply-add or two, and each unit left out saves as many
/// multiply-adds per value of its row or column as the batch has images (64): with fewer than
/// 1 in 8 dead, too little is saved to be worth a change of path. (An estimate, not tuned: the
/// timings in docs/performance.md compare leaving out at this rate with not at all.)
const PACKED_LEAVES_OUT_AT_LEAST: usize = 8;

/// The multiply-adds that the linear layers' products on the CPU have done since the program
/// started, the terms left out not counted: the step bench's arithmetic rate.
pub fn multiply_adds() -> u64 {
    MULTIPLY_ADDS.load(Ordering::Relaxed)
}

static MULTIPLY_ADDS: AtomicU64 = AtomicU64::new(0);

fn count(multiply_adds: usize) {
    MULTIPLY_ADDS.fetch_add(multiply_adds as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm::exact::{assert_close, reference, values};

    /// Both kernels of each product against sums in f64, on a layer of the study and on
    /// ragged sizes: the path this processor does not take is tested too. The products add
    /// into what is there (beta = 1), so they start from values, not zeros.
    #[test]
    fn both_kinds_of_product_match_f64_sums() {
        let kinds: Vec<Products> = [Products::Thin, Products::Packed]
            .into_iter()
            .filter(|&k| k == Products::Packed || thin::applies())
            .collect();
        for (n, d_in, d_out) in [(64, 784, 30), (5, 17, 3), (7, 40, 70)] {
            let (x, w, dout) = (values(n * d_in, 1), values(d_out * d_in, 2), values(n * d_out, 3));
            let (y0, dx0, dw0) = (values(n * d_out, 4), values(n * d_in, 5), values(d_out * d_in, 6));
            let (xm, wm, doutm) = (Mat::new(&x, n, d_in), Mat::new(&w, d_out, d_in), Mat::new(&dout, n, d_out));
            for &kind in &kinds {
                let (mut y, mut dx, mut dw) = (y0.clone(), dx0.clone(), dw0.clone());
                kind.x_wt(&x, &w, &mut y, d_in, d_out);
                kind.a_b(doutm, wm, &mut dx, Terms::All);
                kind.a_b(doutm.t(), xm, &mut dw, Terms::All);
                let shape = format!("{kind:?} {n}x{d_in}->{d_out}");
                assert_close(&format!("{shape} y"), &y, reference(xm, wm.t(), &y0), d_in);
                assert_close(&format!("{shape} dx"), &dx, reference(doutm, wm, &dx0), d_out);
                assert_close(&format!("{shape} dW"), &dw, reference(doutm.t(), xm, &dw0), n);
            }
        }
    }

    /// The transposed forward over the live input units against sums in f64, on a layer
    /// whose dead inputs' terms come to enough for `linear_forward` to take it (checked: the
    /// same bits) and on ragged sizes; every third input unit is zero in every image.
    #[test]
    fn forward_over_the_live_inputs_matches_f64_sums() {
        if !thin::applies() {
            eprintln!("skipped: this processor has no AVX-512, so linear layers take par_gemm");
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (n, d_in, d_out, taken) in [(64, 784, 128, true), (5, 17, 3, false), (64, 40, 70, false)] {
            let mut x = values(n * d_in, 1);
            x.iter_mut().enumerate().filter(|(e, _)| e % d_in % 3 == 0).for_each(|(_, v)| *v = 0.0);
            let units: Vec<usize> = (0..d_in).filter(|k| k % 3 != 0).collect();
            let (w, b) = (values(d_out * d_in, 2), values(d_out, 3));
            let mut y = vec![f32::NAN; n * d_out];
            forward_transposed(&x, &w, Some(&b), &mut y, d_in, d_out, &units);
            let start: Vec<f32> = b.iter().copied().cycle().take(n * d_out).collect();
            assert_close(
                &format!("{n}x{d_in}->{d_out}"),
                &y,
                reference(Mat::new(&x, n, d_in), Mat::new(&w, d_out, d_in).t(), &start),
                d_in,
            );
            assert_eq!((d_in - units.len()) * d_out * n >= LEAVE_OUT_AT_LEAST, taken, "{n}x{d_in}->{d_out}");
            if taken {
                let mut via = vec![0.0; n * d_out];
                linear_forward(&x, &w, Some(&b), &mut via, d_in, d_out);
                assert_eq!(bits(&via), bits(&y), "linear_forward takes the transposed form for {n}x{d_in}->{d_out}");
            }
        }
    }

    /// A batch where units 0, 3, 6, ... get no gradient from any image: the live units are the
    /// others, and both kinds of product over them alone give dx and dW to the bit of the
    /// products over every unit (the packed one copies the live part out, and with over 256
    /// units, or for dW over 256 images, runs one product per block of 256 steps).
    #[test]
    fn leaving_out_the_units_without_gradient_changes_no_bit() {
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (n, d_in, d_out) in [(64, 50, 30), (5, 17, 9), (64, 40, 300), (16, 20, 784), (600, 24, 40)] {
            let mut dout = values(n * d_out, 3);
            for row in dout.chunks_exact_mut(d_out) {
                row.iter_mut().step_by(3).for_each(|g| *g = 0.0);
            }
            let live = Live::of(&dout, d_out);
            let units: Vec<usize> = (0..d_out).filter(|j| j % 3 != 0).collect();
            assert_eq!(live.0.as_deref(), Some(&units[..]));
            let (x, w, dx0, dw0) =
                (values(n * d_in, 1), values(d_out * d_in, 2), values(n * d_in, 5), values(d_out * d_in, 6));
            let (xm, wm, doutm) = (Mat::new(&x, n, d_in), Mat::new(&w, d_out, d_in), Mat::new(&dout, n, d_out));
            for kind in
                [Products::Thin, Products::Packed].into_iter().filter(|&k| k == Products::Packed || thin::applies())
            {
                let shape = format!("{kind:?} {n}x{d_in}<-{d_out}");
                let (mut dx_all, mut dx_live, mut dw_all, mut dw_live) =
                    (dx0.clone(), dx0.clone(), dw0.clone(), dw0.clone());
                kind.a_b(doutm, wm, &mut dx_all, Terms::All);
                kind.a_b(doutm, wm, &mut dx_live, Terms::Steps(&units));
                kind.a_b(doutm.t(), xm, &mut dw_all, Terms::All);
                kind.a_b(doutm.t(), xm, &mut dw_live, Terms::Rows(&units));
                assert_eq!(bits(&dw_all), bits(&dw_live), "{shape} dW");
                assert_eq!(bits(&dx_all), bits(&dx_live), "{shape} dx");
            }
        }
        let (n, d_out) = (64, 30);
        let mut dout = values(n * d_out, 3);
        dout.iter_mut().step_by(3).for_each(|g| *g = 0.0);
        dout[d_out + 3] = f32::NAN;
        assert!(Live::of(&dout, d_out).0.is_some_and(|live| live.contains(&3)), "a NaN's unit is live");
        assert_eq!(Live::of(&values(n * d_out, 3), d_out).0, None, "no unit without gradient: all terms");
    }

    /// A first gradient written into a new buffer (`a_b_new`) has the bits of the product
    /// added onto zeros (`a_b`), over every unit, the live ones, and none: one block of steps
    /// and several (over 256 units for dx, over 256 images for dW), both kinds of product.
    /// Units 0, 3, 6, ... are dead in the batch, their gradients -0: a product over all units
    /// then has sums of -0 terms, which come out +0 both ways.
    #[test]
    fn a_first_gradient_written_new_has_the_bits_of_one_added_to_zeros() {
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (n, d_in, d_out) in [(64, 50, 30), (5, 17, 9), (64, 40, 300), (600, 24, 40)] {
            let mut dout = values(n * d_out, 3);
            for row in dout.chunks_exact_mut(d_out) {
                row.iter_mut().step_by(3).for_each(|g| *g = -0.0);
            }
            let (x, w) = (values(n * d_in, 1), values(d_out * d_in, 2));
            let (xm, wm, doutm) = (Mat::new(&x, n, d_in), Mat::new(&w, d_out, d_in), Mat::new(&dout, n, d_out));
            let live: Vec<usize> = (0..d_out).filter(|j| j % 3 != 0).collect();
            for kind in
                [Products::Thin, Products::Packed].into_iter().filter(|&k| k == Products::Packed || thin::applies())
            {
                for (units, name) in [(None, "all units"), (Some(&live[..]), "live units"), (Some(&[][..]), "no unit")]
                {
                    let shape = format!("{kind:?} {n}x{d_in}<-{d_out}, {name}");
                    let (dx_terms, dw_terms) = match units {
                        None => (Terms::All, Terms::All),
                        Some(units) => (Terms::Steps(units), Terms::Rows(units)),
                    };
                    let (mut dx, mut dw) = (vec![0.0; n * d_in], vec![0.0; d_out * d_in]);
                    kind.a_b(doutm, wm, &mut dx, dx_terms);
                    kind.a_b(doutm.t(), xm, &mut dw, dw_terms);
                    assert_eq!(bits(&kind.a_b_new(doutm, wm, dx_terms)), bits(&dx), "{shape} dx");
                    assert_eq!(bits(&kind.a_b_new(doutm.t(), xm, dw_terms)), bits(&dw), "{shape} dW");
                }
            }
        }
    }
}
