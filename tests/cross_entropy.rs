//! Log-softmax + cross-entropy (`ops::cross_entropy`), proved as the other ops are: its
//! backward against finite differences on shapes drawn by proptest, its output, log-softmax
//! and gradient against PyTorch's (`tests/data/cross_entropy.json`, written by
//! `scripts/make_cross_entropy_reference.py`), and the properties a reader can check by hand.

mod common;

use autoencoders::ops::cross_entropy::{cross_entropy_backward, cross_entropy_forward, log_softmax_forward};
use autoencoders::{Tape, Tensor, Var};
use common::*;
use proptest::prelude::*;
use rand::Rng;
use serde_json::Value;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The logits are standard normal times 3 (softmax far from uniform, still smooth at h).
    #[test]
    fn gradient_matches_finite_differences(n in 1usize..7, k in 2usize..11, seed in any::<u64>()) {
        let mut rng = rng(seed);
        let x = normal(&[n, k], &mut rng);
        let x = Tensor::from_vec(&[n, k], x.as_slice().iter().map(|v| 3.0 * v).collect());
        let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
        let f = |t: &mut Tape, v: &[Var]| t.cross_entropy(v[0], &labels);
        assert_grads("cross_entropy", &[x], &[true], &f, &mut rng);
    }

    /// Each row of the gradient sums to zero (softmax sums to one, the one-hot too), up to
    /// k roundings of terms at most |scale| each; and shifting a row by a constant changes
    /// neither the loss nor the gradient (up to the f32 rounding of the shifted logits).
    #[test]
    fn rows_of_the_gradient_sum_to_zero_and_shifts_change_nothing(n in 1usize..7, k in 2usize..11, shift in -50f32..50.0, seed in any::<u64>()) {
        let mut rng = rng(seed);
        let x = normal(&[n, k], &mut rng).to_vec();
        let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
        let mut dx = vec![0.0; n * k];
        cross_entropy_backward(&x, &labels, k, 1.0, &mut dx);
        for row in dx.chunks(k) {
            let sum: f32 = row.iter().sum();
            prop_assert!(sum.abs() <= 2.0 * k as f32 * f32::EPSILON, "row sums to {sum}");
        }
        let shifted: Vec<f32> = x.iter().map(|v| v + shift).collect();
        // Rounding x + shift moves each logit by up to half an ulp of |shift| + |x|; the loss
        // moves by at most twice that (the label's logit and the log-sum-exp).
        let moved = (shift.abs() + 5.0) * f32::EPSILON;
        let (a, b) = (cross_entropy_forward(&x, &labels, k), cross_entropy_forward(&shifted, &labels, k));
        prop_assert!((a - b).abs() <= 2.0 * moved + 4.0 * f32::EPSILON * a.abs(), "{a} vs {b} after a shift of {shift}");
    }
}

/// Logits of 1e4 would overflow exp() in f32 without the shift by the row's maximum.
#[test]
fn large_logits_stay_finite() {
    let x = [1e4f32, 1e4 - 1.0, 1e4 - 30.0];
    let loss = cross_entropy_forward(&x, &[1], 3);
    // -log(e^-1 / (1 + e^-1 + e^-30)) = 1 + log(1 + e^-1 + e^-30)
    let want = 1.0 + (1.0 + (-1f64).exp() + (-30f64).exp()).ln();
    assert!((loss as f64 - want).abs() <= 4.0 * f32::EPSILON as f64 * want, "{loss} vs {want}");
    let mut y = [0.0; 3];
    log_softmax_forward(&x, 3, &mut y);
    assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
}

fn tensor(v: &Value) -> (Vec<usize>, Vec<f64>) {
    let shape = v["shape"].as_array().expect("a shape").iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().expect("data").iter().map(|d| d.as_f64().unwrap()).collect();
    (shape, data)
}

/// Every case of the PyTorch file. Its inputs are exact in f32 and our sums run in f64, so
/// the error is the final rounding to f32 (half an ulp) and, for the gradient, the roundings
/// of dout/n, of (p - onehot) and of their product: 8 f32 epsilons of |PyTorch's value| bound
/// all of them, plus the f64 sums' own n * eps64 * sum|x|.
#[test]
fn agrees_with_pytorch() {
    let text = std::fs::read_to_string("tests/data/cross_entropy.json").expect("tests/data/cross_entropy.json");
    let file: Value = serde_json::from_str(&text).expect("valid JSON");
    let cases = file["cases"].as_array().expect("a list of cases");
    assert!(cases.len() >= 5, "the file holds {} cases", cases.len());
    for (c, case) in cases.iter().enumerate() {
        assert_eq!(case["op"], "cross_entropy", "case {c}");
        let (shape, x) = tensor(&case["inputs"]["x"]);
        let &[n, k] = shape.as_slice() else { panic!("case {c}: logits of shape {shape:?}") };
        let labels: Vec<usize> =
            case["labels"].as_array().expect("labels").iter().map(|l| l.as_u64().unwrap() as usize).collect();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let sum_abs: f64 = x.iter().map(|v| v.abs()).sum();
        let close = |what: &str, got: &[f32], want: &[f64]| {
            assert_eq!(got.len(), want.len(), "case {c}: {what}");
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                let bound = 8.0 * f32::EPSILON as f64 * w.abs() + n as f64 * f64::EPSILON * sum_abs;
                assert!((g as f64 - w).abs() <= bound, "case {c}: {what}[{i}] = {g}, PyTorch {w} (bound {bound:e})");
            }
        };

        let mut y = vec![0.0; n * k];
        log_softmax_forward(&x32, k, &mut y);
        close("log_softmax", &y, &tensor(&case["log_softmax"]).1);

        let mut tape = Tape::new();
        let xv = tape.param(Tensor::from_vec(&[n, k], x32.clone()));
        let loss = tape.cross_entropy(xv, &labels);
        close("loss", tape.value(loss).as_slice(), &tensor(&case["output"]).1);
        let r = tensor(&case["upstream_grad"]).1;
        tape.backward_with(loss, Tensor::from_vec(&[1], vec![r[0] as f32]));
        close("dx", tape.grad(xv).expect("a gradient").as_slice(), &tensor(&case["grads"]["x"]).1);
    }
}

/// The finite-difference check must catch a wrong rule: the gradient of a wrong label.
#[test]
fn checker_catches_the_wrong_label() {
    let mut rng = rng(5);
    let x = normal(&[3, 4], &mut rng);
    let calls = std::cell::Cell::new(0);
    let f = |t: &mut Tape, v: &[Var]| {
        calls.set(calls.get() + 1);
        // The differentiated call sees label 0 in row 0; the probes see label 1.
        let first = if calls.get() == 1 { 0 } else { 1 };
        t.cross_entropy(v[0], &[first, 2, 3])
    };
    let err = max_grad_error(&[x], &[true], &f, 1e-2, &mut rng);
    assert!(err > 1e-2, "a wrong label went unnoticed ({err:e})");
}
