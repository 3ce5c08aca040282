//! The fast floor against the definition: every kernel of `src/cpu/` equals the plain loop
//! of `src/ops/` it replaces, on shapes, strides and paddings drawn by proptest and on the
//! study's own layer sizes, with 1 and 3 threads.
//!
//! The bound. A sum of k terms in f32, in any order, is within about k u sum|terms| of the
//! exact sum (u = 2^-24, the unit roundoff; Higham, *Accuracy and Stability*, 4.2). The two
//! floors add the same terms in different orders, so each output may differ by twice that:
//!
//! ```text
//!     |fast - reference| <= 2 k u sum|terms| + tiny
//! ```
//!
//! where sum|terms| is the same map applied to |inputs| (every term of these maps is a
//! product of one value from each operand, so the reference run on |x|, |w| and |b| gives
//! exactly sum|terms| per output), and `tiny` (1e-30) only lets two exact zeros compare. A
//! fixed relative bound on each output would be wrong both ways: a conv weight gradient summed
//! over 64 x 28 x 28 positions can cancel from ~1,900 down to ~1, and its true error is set
//! by the 1,900. Ops that only select or move values (ReLU, the pool and unpool) are compared
//! bit for bit, and so are their indices.

use autoencoders::cpu;
use autoencoders::geom::ConvGeom;
use autoencoders::ops::{conv, linear, loss, pool, relu};
use autoencoders::tensor::{rng_from_seed, Rng64};
use proptest::prelude::*;
use rand::Rng;

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn values(len: usize, rng: &mut Rng64) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|v| v.abs()).collect()
}

/// Sets every value of the units (columns of a row-major (rows, units) matrix) for which
/// `dead(unit)` to zero: what a ReLU does to the units no image of a batch activates.
fn kill_units(v: &mut [f32], units: usize, dead: impl Fn(usize) -> bool) {
    v.iter_mut().enumerate().filter(|(i, _)| dead(i % units)).for_each(|(_, v)| *v = 0.0);
}

/// Asserts `|fast - reference| <= 2 k u magnitude + 1e-30` for each output, where
/// `magnitude` is sum|terms| (the reference on absolute values) and k the terms per output.
#[track_caller]
fn assert_within(what: &str, fast: &[f32], reference: &[f32], magnitude: &[f32], k: usize) {
    assert_eq!(fast.len(), reference.len(), "{what}: lengths");
    for (i, ((&f, &r), &m)) in fast.iter().zip(reference).zip(magnitude).enumerate() {
        let bound = 2.0 * k as f64 * U * m as f64 + 1e-30;
        let err = (f as f64 - r as f64).abs();
        assert!(err <= bound, "{what}[{i}]: fast {f}, reference {r}: off by {err:e}, bound {bound:e} (k = {k})");
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` on a pool of `threads` threads (the fast kernels split their work over it).
fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool").install(f)
}

/// The linear layer's three products, fast against the reference, starting from non-zero
/// gradients (both add into them). Every third input unit is zero in every image where
/// `dead_inputs`, and every fourth output unit gets no gradient where `dead_outputs`: the
/// units the fast products leave out.
fn check_linear(n: usize, d_in: usize, d_out: usize, dead_inputs: bool, dead_outputs: bool, seed: u64) {
    let mut rng = rng_from_seed(seed);
    let (mut x, w, b) = (values(n * d_in, &mut rng), values(d_out * d_in, &mut rng), values(d_out, &mut rng));
    let mut dout = values(n * d_out, &mut rng);
    if dead_inputs {
        kill_units(&mut x, d_in, |k| k % 3 == 0);
    }
    if dead_outputs {
        kill_units(&mut dout, d_out, |j| j % 4 == 1);
    }
    let (dx0, dw0) = (values(n * d_in, &mut rng), values(d_out * d_in, &mut rng));
    let shape = format!("linear {n}x{d_in}->{d_out}");

    let (mut y_ref, mut y_abs) = (vec![0.0; n * d_out], vec![0.0; n * d_out]);
    linear::linear_forward(&x, &w, Some(&b), &mut y_ref, d_in, d_out);
    linear::linear_forward(&abs(&x), &abs(&w), Some(&abs(&b)), &mut y_abs, d_in, d_out);
    let (mut dx_ref, mut dx_abs) = (dx0.clone(), abs(&dx0));
    linear::linear_backward_input(&dout, &w, &mut dx_ref, d_in, d_out);
    linear::linear_backward_input(&abs(&dout), &abs(&w), &mut dx_abs, d_in, d_out);
    let (mut dw_ref, mut dw_abs) = (dw0.clone(), abs(&dw0));
    linear::linear_backward_weight(&dout, &x, &mut dw_ref, d_in, d_out);
    linear::linear_backward_weight(&abs(&dout), &abs(&x), &mut dw_abs, d_in, d_out);

    let mut runs = Vec::new();
    for threads in [1, 3] {
        let (y, dx, dw) = with_threads(threads, || {
            let mut y = vec![f32::NAN; n * d_out];
            cpu::linear::linear_forward(&x, &w, Some(&b), &mut y, d_in, d_out);
            let (mut dx, mut dw) = (dx0.clone(), dw0.clone());
            cpu::linear::linear_backward_input(&dout, &w, &mut dx, d_in, d_out);
            cpu::linear::linear_backward_weight(&dout, &x, &mut dw, d_in, d_out);
            (y, dx, dw)
        });
        assert_within(&format!("{shape} y"), &y, &y_ref, &y_abs, d_in + 1);
        assert_within(&format!("{shape} dx"), &dx, &dx_ref, &dx_abs, d_out + 1);
        assert_within(&format!("{shape} dW"), &dw, &dw_ref, &dw_abs, n + 1);
        runs.push((bits(&y), bits(&dx), bits(&dw)));
    }
    assert!(runs[0] == runs[1], "{shape}: the fast products' bits depend on the thread count");
}

/// One convolution's geometry and operands, for conv2d (`transposed` false) or for
/// conv_transpose2d, whose `g` is that of the adjoint conv2d (see `ops::conv`).
#[derive(Debug)]
struct ConvCase {
    g: ConvGeom,
    n: usize,
    /// conv2d's c_out, or convT's c_in: the channels of the adjoint conv2d's output.
    c: usize,
}

impl ConvCase {
    fn image(&self) -> usize {
        self.g.c * self.g.h * self.g.w
    }

    fn out(&self) -> usize {
        self.c * self.g.oh * self.g.ow
    }

    fn weights(&self) -> usize {
        self.c * self.g.c * self.g.kh * self.g.kw
    }
}

/// conv2d's four maps, fast against the reference, from non-zero gradients.
fn check_conv2d(case: &ConvCase, seed: u64) {
    let (g, c_out) = (&case.g, case.c);
    let mut rng = rng_from_seed(seed);
    let (x, w, b) =
        (values(case.n * case.image(), &mut rng), values(case.weights(), &mut rng), values(c_out, &mut rng));
    let dout = values(case.n * case.out(), &mut rng);
    let (dx0, dw0, db0) = (values(x.len(), &mut rng), values(w.len(), &mut rng), values(c_out, &mut rng));
    let what = format!("conv2d n{} {g:?} c_out {c_out} (route {:?})", case.n, cpu::conv::Route::of(g));
    let taps = g.c * g.kh * g.kw;

    let (mut y_ref, mut y_abs) = (vec![0.0; dout.len()], vec![0.0; dout.len()]);
    conv::conv2d_forward(&x, &w, Some(&b), &mut y_ref, g, c_out);
    conv::conv2d_forward(&abs(&x), &abs(&w), Some(&abs(&b)), &mut y_abs, g, c_out);
    let (mut dx_ref, mut dx_abs) = (dx0.clone(), abs(&dx0));
    conv::conv2d_backward_input(&dout, &w, &mut dx_ref, g, c_out);
    conv::conv2d_backward_input(&abs(&dout), &abs(&w), &mut dx_abs, g, c_out);
    let (mut dw_ref, mut dw_abs) = (dw0.clone(), abs(&dw0));
    conv::conv2d_backward_weight(&dout, &x, &mut dw_ref, g, c_out);
    conv::conv2d_backward_weight(&abs(&dout), &abs(&x), &mut dw_abs, g, c_out);
    let (mut db_ref, mut db_abs) = (db0.clone(), abs(&db0));
    conv::conv_backward_bias(&dout, &mut db_ref, g.oh * g.ow);
    conv::conv_backward_bias(&abs(&dout), &mut db_abs, g.oh * g.ow);

    let mut runs = Vec::new();
    for threads in [1, 3] {
        let (y, dx, dw, db) = with_threads(threads, || {
            let mut y = vec![f32::NAN; dout.len()];
            cpu::conv::conv2d_forward(&x, &w, Some(&b), &mut y, g, c_out);
            let (mut dx, mut dw, mut db) = (dx0.clone(), dw0.clone(), db0.clone());
            cpu::conv::conv2d_backward_input(&dout, &w, &mut dx, g, c_out);
            cpu::conv::conv2d_backward_weight(&dout, &x, &mut dw, g, c_out);
            cpu::conv::conv_backward_bias(&dout, &mut db, g.oh * g.ow);
            // The tape's forms, into new buffers: the output, and a first input gradient,
            // which must be the gradient added onto zeros, bit for bit.
            let new_y = cpu::conv::conv2d_forward_new(&x, &w, Some(&b), g, c_out);
            assert_eq!(bits(&new_y), bits(&y), "{what}: y into a new buffer");
            let mut first = vec![0.0; x.len()];
            cpu::conv::conv2d_backward_input(&dout, &w, &mut first, g, c_out);
            let new_dx = cpu::conv::conv2d_backward_input_new(&dout, &w, g, c_out);
            assert_eq!(bits(&new_dx), bits(&first), "{what}: a first dx into a new buffer");
            (y, dx, dw, db)
        });
        assert_within(&format!("{what} y"), &y, &y_ref, &y_abs, taps + 1);
        // Each input pixel receives at most one term per (output channel, tap).
        assert_within(&format!("{what} dx"), &dx, &dx_ref, &dx_abs, c_out * g.kh * g.kw + 1);
        assert_within(&format!("{what} dW"), &dw, &dw_ref, &dw_abs, case.n * g.oh * g.ow + 1);
        assert_within(&format!("{what} db"), &db, &db_ref, &db_abs, case.n * g.oh * g.ow + 1);
        runs.push((bits(&y), bits(&dx), bits(&dw), bits(&db)));
    }
    // Where the direct route applies, im2col + GEMM (which can compute any geometry) is
    // checked on it too, so that both routes meet the study's shapes.
    if cpu::conv::Route::of(g) == cpu::conv::Route::Direct {
        let im2col = cpu::conv::Route::Im2col;
        let mut y = vec![f32::NAN; dout.len()];
        cpu::conv::conv2d_forward_by(im2col, &x, &w, Some(&b), &mut y, g, c_out);
        let (mut dx, mut dw) = (dx0.clone(), dw0.clone());
        cpu::conv::conv2d_backward_input_by(im2col, &dout, &w, &mut dx, g, c_out);
        cpu::conv::conv2d_backward_weight_by(im2col, &dout, &x, &mut dw, g, c_out);
        assert_within(&format!("{what} y by im2col"), &y, &y_ref, &y_abs, taps + 1);
        assert_within(&format!("{what} dx by im2col"), &dx, &dx_ref, &dx_abs, c_out * g.kh * g.kw + 1);
        assert_within(&format!("{what} dW by im2col"), &dw, &dw_ref, &dw_abs, case.n * g.oh * g.ow + 1);
    }
    assert!(runs[0] == runs[1], "{what}: the fast kernels' bits depend on the thread count");
}

/// conv_transpose2d's three maps (the bias gradient is conv2d's), fast against the reference.
fn check_conv_transpose2d(case: &ConvCase, seed: u64) {
    let (g, c_in) = (&case.g, case.c);
    let mut rng = rng_from_seed(seed);
    // convT's input is the adjoint conv2d's output, its output that conv2d's image.
    let (x, w, b) = (values(case.n * case.out(), &mut rng), values(case.weights(), &mut rng), values(g.c, &mut rng));
    let dout = values(case.n * case.image(), &mut rng);
    let (dx0, dw0) = (values(x.len(), &mut rng), values(w.len(), &mut rng));
    let what = format!("conv_transpose2d n{} {g:?} c_in {c_in} (route {:?})", case.n, cpu::conv::Route::of(g));

    let (mut y_ref, mut y_abs) = (vec![0.0; dout.len()], vec![0.0; dout.len()]);
    conv::conv_transpose2d_forward(&x, &w, Some(&b), &mut y_ref, g, c_in);
    conv::conv_transpose2d_forward(&abs(&x), &abs(&w), Some(&abs(&b)), &mut y_abs, g, c_in);
    let (mut dx_ref, mut dx_abs) = (dx0.clone(), abs(&dx0));
    conv::conv_transpose2d_backward_input(&dout, &w, &mut dx_ref, g, c_in);
    conv::conv_transpose2d_backward_input(&abs(&dout), &abs(&w), &mut dx_abs, g, c_in);
    let (mut dw_ref, mut dw_abs) = (dw0.clone(), abs(&dw0));
    conv::conv_transpose2d_backward_weight(&dout, &x, &mut dw_ref, g, c_in);
    conv::conv_transpose2d_backward_weight(&abs(&dout), &abs(&x), &mut dw_abs, g, c_in);

    let mut runs = Vec::new();
    for threads in [1, 3] {
        let (y, dx, dw) = with_threads(threads, || {
            let mut y = vec![f32::NAN; dout.len()];
            cpu::conv::conv_transpose2d_forward(&x, &w, Some(&b), &mut y, g, c_in);
            let (mut dx, mut dw) = (dx0.clone(), dw0.clone());
            // The tape's rule builds dout's columns once for both gradients: test that path.
            let cols = cpu::conv::DoutColumns::of(&dout, g);
            cpu::conv::conv_transpose2d_backward_input_with(&cols, &dout, &w, &mut dx, g, c_in);
            cpu::conv::conv_transpose2d_backward_weight_with(&cols, &dout, &x, &mut dw, g, c_in);
            // And the functions of the reference's signature give the same bits.
            let (mut dx2, mut dw2) = (dx0.clone(), dw0.clone());
            cpu::conv::conv_transpose2d_backward_input(&dout, &w, &mut dx2, g, c_in);
            cpu::conv::conv_transpose2d_backward_weight(&dout, &x, &mut dw2, g, c_in);
            assert_eq!((bits(&dx), bits(&dw)), (bits(&dx2), bits(&dw2)), "{what}: with and without shared columns");
            // The tape's forms, into new buffers (see check_conv2d).
            let new_y = cpu::conv::conv_transpose2d_forward_new(&x, &w, Some(&b), g, c_in);
            assert_eq!(bits(&new_y), bits(&y), "{what}: y into a new buffer");
            let mut first = vec![0.0; x.len()];
            cpu::conv::conv_transpose2d_backward_input_with(&cols, &dout, &w, &mut first, g, c_in);
            let new_dx = cpu::conv::conv_transpose2d_backward_input_new_with(&cols, &dout, &w, g, c_in);
            assert_eq!(bits(&new_dx), bits(&first), "{what}: a first dx into a new buffer");
            (y, dx, dw)
        });
        // An output pixel receives at most one term per (input channel, tap); a weight one
        // per (image, position).
        assert_within(&format!("{what} y"), &y, &y_ref, &y_abs, c_in * g.kh * g.kw + 1);
        assert_within(&format!("{what} dx"), &dx, &dx_ref, &dx_abs, g.c * g.kh * g.kw + 1);
        assert_within(&format!("{what} dW"), &dw, &dw_ref, &dw_abs, case.n * g.oh * g.ow + 1);
        runs.push((bits(&y), bits(&dx), bits(&dw)));
    }
    assert!(runs[0] == runs[1], "{what}: the fast kernels' bits depend on the thread count");
}

/// Max-pool, its backward, unpool and its backward: fast and reference bit for bit, indices
/// included. `ties` fills the planes with few distinct values, so windows hold ties.
fn check_pool(planes: usize, h: usize, w: usize, ties: bool, seed: u64) {
    let mut rng = rng_from_seed(seed);
    let x: Vec<f32> = if ties {
        (0..planes * h * w).map(|_| rng.random_range(0..3) as f32).collect()
    } else {
        values(planes * h * w, &mut rng)
    };
    let (ph, pw) = (h / 2, w / 2);
    let (mut y_ref, mut i_ref) = (vec![0.0; planes * ph * pw], vec![0u32; planes * ph * pw]);
    pool::maxpool2d_forward(&x, &mut y_ref, &mut i_ref, h, w);
    let (dout_p, dout_u) = (values(planes * ph * pw, &mut rng), values(planes * h * w, &mut rng));
    let (dx0, dxu0) = (values(planes * h * w, &mut rng), values(planes * ph * pw, &mut rng));
    let mut dx_ref = dx0.clone();
    pool::maxpool2d_backward(&dout_p, &i_ref, &mut dx_ref, h, w);
    let mut up_ref = vec![f32::NAN; planes * h * w];
    pool::maxunpool2d_forward(&dout_p, &i_ref, &mut up_ref, ph, pw, h, w);
    let mut dxu_ref = dxu0.clone();
    pool::maxunpool2d_backward(&dout_u, &i_ref, &mut dxu_ref, ph, pw, h, w);
    for threads in [1, 3] {
        with_threads(threads, || {
            let (mut y, mut i) = (vec![0.0; y_ref.len()], vec![0u32; i_ref.len()]);
            cpu::pool::maxpool2d_forward(&x, &mut y, &mut i, h, w);
            assert_eq!((bits(&y), &i), (bits(&y_ref), &i_ref), "max-pool {planes}x{h}x{w}");
            let mut dx = dx0.clone();
            cpu::pool::maxpool2d_backward(&dout_p, &i, &mut dx, h, w);
            assert_eq!(bits(&dx), bits(&dx_ref), "max-pool backward {planes}x{h}x{w}");
            let mut up = vec![f32::NAN; up_ref.len()];
            cpu::pool::maxunpool2d_forward(&dout_p, &i, &mut up, ph, pw, h, w);
            assert_eq!(bits(&up), bits(&up_ref), "unpool {planes}x{h}x{w}");
            let mut dxu = dxu0.clone();
            cpu::pool::maxunpool2d_backward(&dout_u, &i, &mut dxu, ph, pw, h, w);
            assert_eq!(bits(&dxu), bits(&dxu_ref), "unpool backward {planes}x{h}x{w}");
            assert!(cpu::pool::all_in_windows(&i, ph, pw, w), "the pool's own indices lie in their windows");
            // Into a new buffer, zeroed a plane at a time.
            let up_new = cpu::pool::maxunpool2d_forward_new(&dout_p, &i, ph, pw, h, w);
            assert_eq!(bits(&up_new), bits(&up_ref), "unpool into a new buffer {planes}x{h}x{w}");
        });
    }
    // A stray index is found by the fast check as by the reference's.
    if ph * pw > 1 {
        let mut stray = i_ref.clone();
        stray[ph * pw - 1] = 0;
        assert!(!cpu::pool::all_in_windows(&stray, ph, pw, w), "an index outside its window");
    }
}

/// ReLU, MSE and mean |x| on both floors. ReLU selects, so it agrees bit for bit; the losses
/// sum in f64 in different orders and round once to f32, so they agree within an ulp.
fn check_elementwise(len: usize, seed: u64) {
    let mut rng = rng_from_seed(seed);
    let (mut x, t, dout) = (values(len, &mut rng), values(len, &mut rng), values(len, &mut rng));
    x.iter_mut().step_by(7).for_each(|v| *v = 0.0);
    let (mut y_ref, mut y) = (vec![0.0; len], vec![0.0; len]);
    relu::relu_forward(&x, &mut y_ref);
    cpu::relu::relu_forward(&x, &mut y);
    assert_eq!(bits(&y), bits(&y_ref), "relu {len}");
    let dx0 = values(len, &mut rng);
    let (mut dx_ref, mut dx) = (dx0.clone(), dx0.clone());
    relu::relu_backward(&y_ref, &dout, &mut dx_ref);
    cpu::relu::relu_backward(&y_ref, &dout, &mut dx);
    assert_eq!(bits(&dx), bits(&dx_ref), "relu backward {len}");
    // Into new buffers: the output, and a first gradient (the reference's added to zeros).
    assert_eq!(bits(&cpu::relu::relu_forward_new(&x)), bits(&y_ref), "relu into a new buffer {len}");
    let mut first_ref = vec![0.0; len];
    relu::relu_backward(&y_ref, &dout, &mut first_ref);
    assert_eq!(bits(&cpu::relu::relu_backward_new(&y_ref, &dout)), bits(&first_ref), "relu backward, new {len}");

    let ulp = |a: f32, b: f32| (a - b).abs() <= f32::EPSILON * a.abs().max(b.abs());
    let (m_ref, m) = (loss::mse_forward(&x, &t), cpu::loss::mse_forward(&x, &t));
    assert!(ulp(m, m_ref), "mse {len}: {m} against {m_ref}");
    let (a_ref, a) = (loss::mean_abs_forward(&x), cpu::loss::mean_abs_forward(&x));
    assert!(ulp(a, a_ref), "mean |x| {len}: {a} against {a_ref}");
    // The gradients are one product per element, the same on both floors.
    let (mut g_ref, mut g) = (dx0.clone(), dx0.clone());
    loss::mse_backward(&x, &t, 0.3, &mut g_ref);
    cpu::loss::mse_backward(&x, &t, 0.3, &mut g);
    assert_eq!(bits(&g), bits(&g_ref), "mse backward {len}");
    let (mut g_ref, mut g) = (dx0.clone(), dx0);
    loss::mean_abs_backward(&x, 0.3, &mut g_ref);
    cpu::loss::mean_abs_backward(&x, 0.3, &mut g);
    assert_eq!(bits(&g), bits(&g_ref), "mean |x| backward {len}");
}

/// A conv2d geometry drawn with its own kernel (square or not), stride and padding, and the
/// channel count of its output: 1 to 17 covers the direct route's three weight loops (1-7,
/// 8, 16) and the counts it leaves to im2col (9-15, 17).
fn conv_case() -> impl Strategy<Value = ConvCase> {
    (1usize..5, 1usize..6, 1usize..18, 1usize..11, 1usize..11, 1usize..5, 1usize..5, 1usize..3, 0usize..3)
        .prop_filter_map("the kernel must fit the padded image", |(n, c_in, c, h, w, kh, kw, stride, padding)| {
            (h + 2 * padding >= kh && w + 2 * padding >= kw).then(|| ConvCase {
                g: ConvGeom::new(c_in, h, w, kh, kw, stride, padding),
                n,
                c,
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn linear_fast_equals_reference(n in 1usize..70, d_in in 1usize..90, d_out in 1usize..90,
                                    dead_inputs: bool, dead_outputs: bool, seed: u64) {
        check_linear(n, d_in, d_out, dead_inputs, dead_outputs, seed);
    }

    #[test]
    fn conv2d_fast_equals_reference(case in conv_case(), seed: u64) {
        check_conv2d(&case, seed);
    }

    #[test]
    fn conv_transpose2d_fast_equals_reference(case in conv_case(), seed: u64) {
        check_conv_transpose2d(&case, seed);
    }

    #[test]
    fn pool_fast_equals_reference(planes in 1usize..6, h in 2usize..12, w in 2usize..12, ties: bool, seed: u64) {
        check_pool(planes, h, w, ties, seed);
    }

    #[test]
    fn elementwise_fast_equals_reference(len in 1usize..40_000, seed: u64) {
        check_elementwise(len, seed);
    }
}

/// The study's linear layers at batch 64 (and a ragged batch of 5), with the dead units the
/// fast products leave out. 784 -> 512 with a third of the inputs dead leaves out
/// 261 x 512 x 64 ~ 8.6M multiply-adds, past the 2^21 at which `cpu::linear` computes the
/// forward transposed: that form is checked here, where proptest's sizes never reach it.
#[test]
fn linear_at_the_study_sizes() {
    for (i, &(n, d_in, d_out)) in
        [(64, 784, 512), (64, 512, 256), (64, 128, 30), (64, 900, 784), (5, 784, 64), (64, 8, 64)].iter().enumerate()
    {
        check_linear(n, d_in, d_out, true, true, i as u64);
        check_linear(n, d_in, d_out, false, false, 100 + i as u64);
    }
}

/// The study's convolutions at batches of 5 and 64 (the weight gradient sums in fixed groups
/// of 4 images: a ragged last group, and 16 groups): the CAE encoder's 1 -> 8, 8 -> 16 and
/// 16 -> 16 layers (k3 p1 on 28x28, 14x14 and 7x7, `models::arch`), cae-unpool's 16 -> 8 and
/// 8 -> 1 convolutions and cae-deconv-unpool's transposed ones, and cae-deconv's strided k4 s2
/// p1 and k3 s2 p0 (im2col route).
#[test]
fn conv_at_the_study_sizes() {
    for n in [5, 64] {
        let conv2d = [(1, 28, 8), (8, 14, 16), (16, 7, 16), (16, 14, 8), (8, 28, 1)];
        for (i, &(c_in, hw, c_out)) in conv2d.iter().enumerate() {
            check_conv2d(&ConvCase { g: ConvGeom::new(c_in, hw, hw, 3, 3, 1, 1), n, c: c_out }, i as u64);
        }
        // convT (c_in -> c_out, input hw, k, s, p): g is the adjoint conv2d's, from the output.
        let transposed = [(16, 16, 7, 3, 1, 1), (16, 8, 14, 3, 1, 1), (8, 1, 28, 3, 1, 1), (16, 16, 3, 3, 2, 0)];
        for (i, &(c_in, c_out, hw, k, s, p)) in transposed.iter().enumerate() {
            let out = (hw - 1) * s + k - 2 * p;
            check_conv_transpose2d(&ConvCase { g: ConvGeom::new(c_out, out, out, k, k, s, p), n, c: c_in }, i as u64);
        }
        for (i, &(c_in, c_out, hw)) in [(16, 8, 7), (8, 1, 14)].iter().enumerate() {
            let out = (hw - 1) * 2 + 4 - 2;
            check_conv_transpose2d(
                &ConvCase { g: ConvGeom::new(c_out, out, out, 4, 4, 2, 1), n, c: c_in },
                9 + i as u64,
            );
        }
    }
}

/// The CAEs' pools at batch 64: 16 x 28 x 28 -> 14, 14 -> 7, and 7 -> 3 (the odd row and
/// column dropped).
#[test]
fn pool_at_the_study_sizes() {
    for (i, &(c, hw)) in [(16, 28), (16, 14), (16, 7), (8, 28)].iter().enumerate() {
        check_pool(64 * c, hw, hw, false, i as u64);
        check_pool(64 * c, hw, hw, true, 10 + i as u64);
    }
}

/// Pool indices print their positions, which is what a failed assertion on them shows.
#[test]
fn pool_indices_print_their_positions() {
    let indices = pool::Indices::from_vec([1, 1, 1, 2], vec![3, 0]);
    assert_eq!(format!("{:?}", indices.data), "Cpu([3, 0])");
}

/// The fast conv takes the route this test says for each of the study's layers, so that the
/// cases above exercise both routes and all three direct weight loops.
#[test]
fn the_routes_the_study_takes() {
    use cpu::conv::Route;
    assert_eq!(Route::of(&ConvGeom::new(1, 28, 28, 3, 3, 1, 1)), Route::Direct);
    assert_eq!(Route::of(&ConvGeom::new(8, 14, 14, 4, 4, 2, 1)), Route::Im2col, "strided");
    assert_eq!(Route::of(&ConvGeom::new(8, 14, 14, 3, 2, 1, 1)), Route::Im2col, "not square");
    use cpu::direct::WeightLoop;
    assert_eq!(WeightLoop::for_channels(1), Some(WeightLoop::Dots));
    assert_eq!(WeightLoop::for_channels(8), Some(WeightLoop::Lanes8));
    assert_eq!(WeightLoop::for_channels(16), Some(WeightLoop::Lanes16));
    assert_eq!(WeightLoop::for_channels(12), None);
}

/// One model of each family trained 20 Adam steps on each floor from the same seed: the
/// losses agree to 1e-4 relative at every step. The floors round differently (see the
/// bound above), and those differences feed through Adam; 1e-4 is far above the ~1e-6 that
/// rounding reaches in 20 steps here and far below what any wrong index or missed term
/// gives (the kernel tests above catch those one op at a time).
#[test]
fn every_family_trains_alike_on_both_floors() {
    use autoencoders::models::{Arch, Model};
    use autoencoders::ops::Kernels;
    use autoencoders::optim::AdamConfig;
    use autoencoders::tensor::Tensor;
    let families = [
        (Arch::Shallow { hidden: 64 }, 0.0),
        (Arch::DeepAe, 0.0),
        (Arch::Shallow { hidden: 900 }, 0.1),
        (Arch::Manifold, 0.0),
        (Arch::CaeUnpool, 0.0),
        (Arch::CaeDeconv, 0.0),
        (Arch::CaeDeconvUnpool, 0.0),
    ];
    for (arch, l1) in families {
        let mut rng = rng_from_seed(7);
        let pixels: Vec<f32> = Tensor::uniform(&[16, 784], 1.0, &mut rng).to_vec().iter().map(|v| v.abs()).collect();
        let batch = Tensor::from_vec(&[16, 784], pixels);
        let losses = |model: &Model, kernels: Kernels| {
            let mut model = model.clone().with_kernels(kernels);
            let mut adam = model.adam(AdamConfig::default());
            (0..20).map(|_| model.train_step(&mut adam, &batch, &batch, l1)).collect::<Vec<f32>>()
        };
        // On this random batch some initialisations leave a CAE's final ReLU dead (no
        // gradient, a constant loss, nothing compared): take the first seed that learns.
        let (model, reference) = (0..10)
            .map(|seed| Model::new(arch, &mut rng_from_seed(seed)))
            .map(|model| {
                let reference = losses(&model, Kernels::Reference);
                (model, reference)
            })
            .find(|(_, reference)| reference[19] < 0.99 * reference[0])
            .unwrap_or_else(|| panic!("{}: no seed in 0..10 learns on this batch", arch.name()));
        let fast = losses(&model, Kernels::Fast);
        for (step, (r, f)) in reference.iter().zip(&fast).enumerate() {
            assert!((r - f).abs() <= 1e-4 * r.abs(), "{}: step {step}: reference loss {r}, fast {f}", arch.name());
        }
    }
}

/// The fast index check against the definition of a window, index by index: on planes of
/// odd and even sizes, every cell given every index of the plane and a few past its end
/// (the others at their windows' corners) is accepted exactly when the index's row and
/// column both fall in that cell's 2x2 window.
#[test]
fn the_fast_index_check_accepts_exactly_the_windows() {
    for (h, w) in [(5, 7), (4, 4), (3, 2)] {
        let (ph, pw) = (h / 2, w / 2);
        let corners: Vec<u32> = (0..ph * pw).map(|q| (2 * (q / pw) * w + 2 * (q % pw)) as u32).collect();
        assert!(cpu::pool::all_in_windows(&corners, ph, pw, w));
        for q in 0..ph * pw {
            let (wy, wx) = (q / pw, q % pw);
            for i in (0..(h * w + 3) as u32).chain([u32::MAX]) {
                let (row, col) = (i as usize / w, i as usize % w);
                let inside = (2 * wy..2 * wy + 2).contains(&row) && (2 * wx..2 * wx + 2).contains(&col);
                let mut idx = corners.clone();
                idx[q] = i;
                assert_eq!(cpu::pool::all_in_windows(&idx, ph, pw, w), inside, "{h}x{w}: cell {q}, index {i}");
            }
        }
    }
}
