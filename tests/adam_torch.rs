//! Adam against PyTorch over 50 steps, in two configurations (tests/data/torch_adam.json,
//! from scripts/make_adam_reference.py: `torch.optim.Adam` in float64). The reference's
//! gradients reach the update's edges: entries near zero, where eps governs the step;
//! entries whose sign flips every step; a scale that shrinks and grows.
//!
//! The tolerance follows the arithmetic: each step computes an update u in f32, to a few ulps
//! of |u|, and rounds the new parameter p to half an ulp of |p|; so after t steps
//! |ours - PyTorch| stays within eps32 * sum over the steps of (|p| / 2 + 4 |u|), both taken
//! from the reference's own steps. Measured: at most 0.8 of that bound, at an early step,
//! where the rounding of p to f32 (which the float64 reference does not do) is nearly all of it.

use autoencoders::optim::{Adam, AdamConfig};
use autoencoders::tensor::Tensor;
use serde_json::Value;

/// Ulps of |u| allowed per update: a handful of f32 operations (two moment updates, a
/// square root, a division), each within half an ulp.
const UPDATE_ULPS: f64 = 4.0;

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list of numbers").iter().map(|x| x.as_f64().expect("a number")).collect()
}

/// `gradients` run through Adam with `config` from `start`: the parameter after each step.
fn run(config: AdamConfig, start: &[f64], gradients: &[Vec<f64>]) -> Vec<Vec<f32>> {
    let mut param = Tensor::from_vec(&[start.len()], start.iter().map(|&v| v as f32).collect());
    let mut adam = Adam::new(config, [start.len()]);
    gradients
        .iter()
        .map(|g| {
            let g = Tensor::from_vec(&[g.len()], g.iter().map(|&v| v as f32).collect());
            adam.step(&mut [&mut param], &[g]);
            param.to_vec()
        })
        .collect()
}

/// The first step and index where `got` strays from `want` beyond the tolerance, with the
/// error and the bound.
fn first_difference(start: &[f64], want: &[Vec<f64>], got: &[Vec<f32>]) -> Option<String> {
    let mut terms = vec![0.0; start.len()];
    let mut before = start.to_vec();
    for (step, (w, g)) in want.iter().zip(got).enumerate() {
        for i in 0..w.len() {
            terms[i] += w[i].abs() / 2.0 + UPDATE_ULPS * (w[i] - before[i]).abs();
            let (err, bound) = ((g[i] as f64 - w[i]).abs(), f32::EPSILON as f64 * terms[i]);
            if err > bound {
                return Some(format!(
                    "step {} [{i}]: ours {} PyTorch {} (error {err:e} > {bound:e})",
                    step + 1,
                    g[i],
                    w[i]
                ));
            }
        }
        before = w.clone();
    }
    None
}

fn cases() -> Vec<Value> {
    let text = include_str!("data/torch_adam.json");
    let file: Value = serde_json::from_str(text).expect("torch_adam.json is JSON");
    file["cases"].as_array().expect("a list of cases").clone()
}

fn config(case: &Value) -> AdamConfig {
    let betas = numbers(&case["betas"]);
    let f = |key: &str| case[key].as_f64().expect("a number") as f32;
    AdamConfig { lr: f("lr"), beta1: betas[0] as f32, beta2: betas[1] as f32, eps: f("eps") }
}

#[test]
fn fifty_steps_match_pytorch_in_two_configurations() {
    let cases = cases();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        let config = config(case);
        let start = numbers(&case["param"]);
        let gradients: Vec<Vec<f64>> = case["grads"].as_array().unwrap().iter().map(numbers).collect();
        let want: Vec<Vec<f64>> = case["param_after_each_step"].as_array().unwrap().iter().map(numbers).collect();
        assert_eq!((gradients.len(), want.len()), (50, 50));
        let got = run(config, &start, &gradients);
        if let Some(diff) = first_difference(&start, &want, &got) {
            panic!("{config:?}: {diff}");
        }
    }
}

/// The comparison bites: the same run with eps doubled, 1 - beta2 off by 1% or the learning
/// rate by 0.1% strays from PyTorch.
#[test]
fn a_slightly_wrong_adam_is_caught() {
    for case in cases() {
        let right = config(&case);
        let start = numbers(&case["param"]);
        let gradients: Vec<Vec<f64>> = case["grads"].as_array().unwrap().iter().map(numbers).collect();
        let want: Vec<Vec<f64>> = case["param_after_each_step"].as_array().unwrap().iter().map(numbers).collect();
        for wrong in [
            AdamConfig { eps: right.eps * 2.0, ..right },
            AdamConfig { beta2: 1.0 - (1.0 - right.beta2) * 1.01, ..right },
            AdamConfig { lr: right.lr * 1.001, ..right },
        ] {
            let got = run(wrong, &start, &gradients);
            assert!(first_difference(&start, &want, &got).is_some(), "{wrong:?} passed for {right:?}");
        }
    }
}
