//! Every op's backward against finite differences, on shapes, strides and paddings drawn by
//! proptest, so the checks reach beyond the shapes the models use.

mod common;

use autoencoders::{Tape, Var};
use common::*;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 48, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn linear(n in 1usize..5, d_in in 1usize..9, d_out in 1usize..9, bias in any::<bool>(), seed in any::<u64>()) {
        let mut rng = rng(seed);
        let mut inputs = vec![normal(&[n, d_in], &mut rng), normal(&[d_out, d_in], &mut rng)];
        if bias { inputs.push(normal(&[d_out], &mut rng)); }
        let wrt = vec![true; inputs.len()];
        assert_grads("linear", &inputs, &wrt, &|t: &mut Tape, v: &[Var]| t.linear(v[0], v[1], v.get(2).copied()), &mut rng);
    }

    #[test]
    fn conv2d(n in 1usize..3, c_in in 1usize..4, c_out in 1usize..4, h in 1usize..8, w in 1usize..8,
              k in 1usize..4, stride in 1usize..4, padding in 0usize..3, bias in any::<bool>(), seed in any::<u64>()) {
        prop_assume!(h + 2 * padding >= k && w + 2 * padding >= k);
        let mut rng = rng(seed);
        let mut inputs = vec![normal(&[n, c_in, h, w], &mut rng), normal(&[c_out, c_in, k, k], &mut rng)];
        if bias { inputs.push(normal(&[c_out], &mut rng)); }
        let wrt = vec![true; inputs.len()];
        assert_grads("conv2d", &inputs, &wrt, &|t: &mut Tape, v: &[Var]| t.conv2d(v[0], v[1], v.get(2).copied(), stride, padding), &mut rng);
    }

    #[test]
    fn conv_transpose2d(n in 1usize..3, c_in in 1usize..4, c_out in 1usize..4, h in 1usize..6, w in 1usize..6,
                        k in 1usize..5, stride in 1usize..4, padding in 0usize..3, bias in any::<bool>(), seed in any::<u64>()) {
        prop_assume!((h - 1) * stride + k > 2 * padding && (w - 1) * stride + k > 2 * padding);
        let mut rng = rng(seed);
        let mut inputs = vec![normal(&[n, c_in, h, w], &mut rng), normal(&[c_in, c_out, k, k], &mut rng)];
        if bias { inputs.push(normal(&[c_out], &mut rng)); }
        let wrt = vec![true; inputs.len()];
        assert_grads("conv_transpose2d", &inputs, &wrt, &|t: &mut Tape, v: &[Var]| t.conv_transpose2d(v[0], v[1], v.get(2).copied(), stride, padding), &mut rng);
    }

    #[test]
    fn max_pool2d(n in 1usize..3, c in 1usize..4, h in 2usize..9, w in 2usize..9, seed in any::<u64>()) {
        let mut rng = rng(seed);
        let inputs = vec![distinct(&[n, c, h, w], &mut rng)];
        assert_grads("max_pool2d", &inputs, &[true], &|t: &mut Tape, v: &[Var]| t.max_pool2d(v[0]).0, &mut rng);
    }

    #[test]
    fn max_unpool2d(n in 1usize..3, c in 1usize..4, h in 2usize..9, w in 2usize..9, seed in any::<u64>()) {
        let mut rng = rng(seed);
        // Indices from pooling a random tensor; then unpool random values back to h x w.
        let mut t = Tape::no_grad();
        let source = t.input(distinct(&[n, c, h, w], &mut rng));
        let (_, indices) = t.max_pool2d(source);
        let inputs = vec![normal(&indices.shape, &mut rng)];
        assert_grads("max_unpool2d", &inputs, &[true], &|t: &mut Tape, v: &[Var]| t.max_unpool2d(v[0], &indices, h, w), &mut rng);
    }

    #[test]
    fn relu(shape in proptest::collection::vec(1usize..6, 1..4), seed in any::<u64>()) {
        let mut rng = rng(seed);
        let inputs = vec![away_from_zero(&shape, &mut rng)];
        assert_grads("relu", &inputs, &[true], &|t: &mut Tape, v: &[Var]| t.relu(v[0]), &mut rng);
    }

    #[test]
    fn mse(shape in proptest::collection::vec(1usize..6, 1..4), seed in any::<u64>()) {
        let mut rng = rng(seed);
        let inputs = vec![normal(&shape, &mut rng), normal(&shape, &mut rng)];
        assert_grads("mse", &inputs, &[true, true], &|t: &mut Tape, v: &[Var]| t.mse(v[0], v[1]), &mut rng);
    }

    #[test]
    fn mean_abs(shape in proptest::collection::vec(1usize..6, 1..4), seed in any::<u64>()) {
        let mut rng = rng(seed);
        let inputs = vec![away_from_zero(&shape, &mut rng)];
        assert_grads("mean_abs", &inputs, &[true], &|t: &mut Tape, v: &[Var]| t.mean_abs(v[0]), &mut rng);
    }
}

#[test]
fn reshape_add_scale() {
    let mut rng = rng(1);
    let inputs = vec![normal(&[2, 3, 4], &mut rng), normal(&[6, 4], &mut rng)];
    let f = |t: &mut Tape, v: &[Var]| {
        let a = t.reshape(v[0], &[6, 4]);
        let s = t.scale(a, -1.5);
        t.add(s, v[1])
    };
    assert_grads("reshape/scale/add", &inputs, &[true, true], &f, &mut rng);
}

/// A value used twice gets both contributions: d/dx [mse(x, t) + 3 mean|x|] through one x.
#[test]
fn gradients_accumulate_over_uses() {
    let mut rng = rng(2);
    let inputs = vec![away_from_zero(&[3, 5], &mut rng), normal(&[3, 5], &mut rng)];
    let f = |t: &mut Tape, v: &[Var]| {
        let m = t.mse(v[0], v[1]);
        let a = t.mean_abs(v[0]);
        let s = t.scale(a, 3.0);
        t.add(m, s)
    };
    assert_grads("fork", &inputs, &[true, false], &f, &mut rng);
    // And the sum is exactly the sum of the two parts' gradients.
    let grad_of = |which: u8| {
        let mut t = Tape::new();
        let x = t.param(inputs[0].clone());
        let target = t.input(inputs[1].clone());
        let m = t.mse(x, target);
        let a = t.mean_abs(x);
        let a3 = t.scale(a, 3.0);
        let out = match which {
            0 => m,
            1 => a3,
            _ => t.add(m, a3),
        };
        t.backward(out);
        t.grad(x).unwrap().to_vec()
    };
    let (gm, ga, gs) = (grad_of(0), grad_of(1), grad_of(2));
    for ((m, a), s) in gm.iter().zip(&ga).zip(&gs) {
        assert!((m + a - s).abs() <= 1e-6 * (1.0 + s.abs()), "{m} + {a} != {s}");
    }
}

/// The finite-difference checker itself must notice a wrong gradient: a harness that always
/// passes proves nothing. Scaling the op's output after the fact (so backward and the
/// objective disagree) must be caught.
#[test]
fn checker_catches_a_wrong_gradient() {
    let mut rng = rng(3);
    let inputs = vec![normal(&[2, 3], &mut rng), normal(&[4, 3], &mut rng)];
    let calls = std::cell::Cell::new(0);
    let f = |t: &mut Tape, v: &[Var]| {
        calls.set(calls.get() + 1);
        // The first call (the one differentiated) multiplies by 1; the probes by 1.1.
        let factor = if calls.get() == 1 { 1.0 } else { 1.1 };
        let y = t.linear(v[0], v[1], None);
        t.scale(y, factor)
    };
    let err = max_grad_error(&inputs, &[true, true], &f, 1e-2, &mut rng);
    assert!(err > 1.0, "a 10% error in every gradient went unnoticed ({err:e})");
}

/// The same for a small gradient: MSE over 125 values has gradients of order 2/125, which the
/// old tolerance, 2e-3 / (1 + |a|), let be 10% wrong. The tolerance is relative, so a 10%
/// error in them is caught.
#[test]
fn checker_catches_a_wrong_small_gradient() {
    let mut rng = rng(4);
    let inputs = vec![normal(&[5, 5, 5], &mut rng), normal(&[5, 5, 5], &mut rng)];
    let calls = std::cell::Cell::new(0);
    let f = |t: &mut Tape, v: &[Var]| {
        calls.set(calls.get() + 1);
        let factor = if calls.get() == 1 { 1.0 } else { 1.1 };
        let y = t.mse(v[0], v[1]);
        t.scale(y, factor)
    };
    let err = max_grad_error(&inputs, &[true, true], &f, 1e-2, &mut rng);
    assert!(err > 1.0, "a 10% error in MSE's gradients went unnoticed ({err:e})");
}

/// The pool with its choices given (`max_pool2d_at`, what the model check freezes pools
/// with) is `max_pool2d` where the indices came from pooling the same x: the same values
/// and, through backward, the same gradient, to the bit, on odd and even sizes. On another x
/// it reads that x at the given positions, which need not be its maxima.
#[test]
fn max_pool2d_at_is_max_pool2d_with_its_own_indices() {
    let mut rng = rng(5);
    for (n, c, h, w) in [(2, 3, 6, 8), (1, 2, 7, 5), (3, 1, 2, 2)] {
        let x = distinct(&[n, c, h, w], &mut rng);
        let r = normal(&[n, c, h / 2, w / 2], &mut rng);
        let pooled = |at: Option<&autoencoders::ops::pool::Indices>, x: &autoencoders::Tensor| {
            let mut t = Tape::new();
            let v = t.param(x.clone());
            let (y, indices) = match at {
                Some(indices) => (t.max_pool2d_at(v, indices), indices.clone()),
                None => t.max_pool2d(v),
            };
            t.backward_with(y, r.clone());
            (t.value(y).to_vec(), t.grad(v).unwrap().to_vec(), indices)
        };
        let (y, dx, indices) = pooled(None, &x);
        let (y_at, dx_at, _) = pooled(Some(&indices), &x);
        assert_eq!((&y, &dx), (&y_at, &dx_at), "{n}x{c}x{h}x{w}");

        // Another x: read at the frozen positions, not pooled afresh.
        let other = distinct(&[n, c, h, w], &mut rng);
        let (y_other, _, _) = pooled(Some(&indices), &other);
        let pos = indices.to_vec();
        let (ph, pw) = (h / 2, w / 2);
        let gathered: Vec<f32> =
            (0..pos.len()).map(|o| other.as_slice()[(o / (ph * pw)) * h * w + pos[o] as usize]).collect();
        assert_eq!(y_other, gathered, "{n}x{c}x{h}x{w}: max_pool2d_at on another input");
    }
}
