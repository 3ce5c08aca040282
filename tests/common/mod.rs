//! Shared test helpers: seeded random fixtures and the finite-difference checker.
//!
//! The check follows CS231n's `gradient_check.py` and ggml's `test-backend-ops`: for a random
//! r of the output's shape, the scalar L(x) = <f(x), r> has gradient (from our backward, fed
//! dout = r) that must match the central difference (L(x + h e_i) - L(x - h e_i)) / 2h for
//! every element i of every input. The ops run in f32, so h is large (1e-2) and the sums of
//! L are taken in f64; fixtures keep kinks (ReLU at 0, ties in a pool window) farther than h
//! from every sample, so the difference quotient sees one smooth piece. Only the outputs an
//! element touches change between the two evaluations, the others are bit-identical, which
//! keeps the f32 noise in the quotient near 1e-5.
#![allow(dead_code)]

use autoencoders::tensor::{rng_from_seed, Rng64, Tensor};
use autoencoders::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

pub fn rng(seed: u64) -> Rng64 {
    rng_from_seed(seed)
}

/// Standard-normal values.
pub fn normal(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| StandardNormal.sample(rng)).collect())
}

/// Values with |v| in [0.1, 1]: at least 10 steps of h = 1e-2 from the kink at 0.
pub fn away_from_zero(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n).map(|_| rng.random_range(0.1f32..1.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }).collect(),
    )
}

/// Distinct values 0.1 apart in random order: no two in a pool window come within 2h.
pub fn distinct(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.1).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.random_range(0..=i));
    }
    Tensor::from_vec(shape, v)
}

pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// The largest |analytic - numeric| / (1 + |analytic|) over every element of every input
/// marked in `wrt`, for the op recorded by `f`.
// `i` indexes the input, its perturbed copy and the analytic gradient alike.
#[allow(clippy::needless_range_loop)]
pub fn max_grad_error(
    inputs: &[Tensor],
    wrt: &[bool],
    f: &dyn Fn(&mut Tape, &[Var]) -> Var,
    h: f32,
    rng: &mut Rng64,
) -> f64 {
    let mut tape = Tape::new();
    let vars: Vec<Var> =
        inputs.iter().zip(wrt).map(|(t, &g)| if g { tape.param(t.clone()) } else { tape.input(t.clone()) }).collect();
    let y = f(&mut tape, &vars);
    let r = normal(tape.shape(y), rng);
    let r_arr = ArrayD::from_shape_vec(IxDyn(r.shape()), r.to_vec()).unwrap();
    tape.backward_with(y, r_arr);

    let objective = |xs: &[Tensor]| -> f64 {
        let mut t = Tape::no_grad();
        let vs: Vec<Var> = xs.iter().map(|x| t.input(x.clone())).collect();
        let y = f(&mut t, &vs);
        dot(t.value(y).as_slice(), r.as_slice())
    };
    let mut worst: f64 = 0.0;
    for (k, input) in inputs.iter().enumerate() {
        if !wrt[k] {
            continue;
        }
        let analytic = tape.grad(vars[k]).map(Tensor::to_vec).unwrap_or_else(|| vec![0.0; input.len()]);
        let mut xs = inputs.to_vec();
        for i in 0..input.len() {
            let x0 = input.as_slice()[i];
            xs[k].as_slice_mut()[i] = x0 + h;
            let plus = objective(&xs);
            xs[k].as_slice_mut()[i] = x0 - h;
            let minus = objective(&xs);
            xs[k].as_slice_mut()[i] = x0;
            let numeric = (plus - minus) / (2.0 * h as f64);
            let a = analytic[i] as f64;
            worst = worst.max((a - numeric).abs() / (1.0 + a.abs()));
        }
    }
    worst
}

/// Asserts the finite-difference check of `f` passes to `tol`.
pub fn assert_grads(
    name: &str,
    inputs: &[Tensor],
    wrt: &[bool],
    f: &dyn Fn(&mut Tape, &[Var]) -> Var,
    rng: &mut Rng64,
) {
    const H: f32 = 1e-2;
    // f32 evaluations with h = 1e-2 give quotient errors near 1e-5 here; a wrong index or
    // a missing term gives errors of order 1.
    const TOL: f64 = 2e-3;
    let err = max_grad_error(inputs, wrt, f, H, rng);
    assert!(
        err < TOL,
        "{name}: gradient differs from finite differences by {err:e} (shapes {:?})",
        inputs.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>()
    );
}

/// The real MNIST folder: `$MNIST_DIR` if set, else the shared copy; None where neither exists.
pub fn mnist_dir() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var_os("MNIST_DIR").filter(|v| !v.is_empty()).map(std::path::PathBuf::from),
        Some(std::path::PathBuf::from("/work/shared/mnist")),
        Some(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/mnist")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

/// CRC-32 (ISO-HDLC, the one PNG chunks carry), bit by bit: for hand-made test files only.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}
