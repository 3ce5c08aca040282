//! No subnormal float is stored by training (issue #16; the rule and its reasons are in
//! src/optim.rs). Trains the two models where they arose, the sparse AE at lambda = 0.1 (most
//! of its 900 code units die, and so do their weights' gradients) and the deep AE (dead ReLU
//! units), for 1,500 Adam steps of 64 real MNIST images each, and checks every 100 steps that
//! no parameter, no gradient and no moment is subnormal (`f32::is_subnormal`). With the flush
//! taken out of `optim::flush`, this test fails: the sparse AE's first moments turn subnormal
//! from step 500 on, and at step 1,500 1,649,848 of its 2,223,684 are (74%; its
//! weights, gradients and v none). The sparse AE alone then took 37 s; with the flush both
//! models take 25 s (2 cores of an AMD EPYC, shared with other work).
//!
//! Deterministic (fixed seed, batches in order), not timed. The images are the first 6,400 of
//! the training set, found by the tests' one skip policy (`common::mnist_dir`: skipped with a
//! line where they are missing, a failure under REQUIRE_MNIST=1, as .ci/run sets).

mod common;

use autoencoders::data::Mnist;
use autoencoders::models::{Arch, Model, PIXELS};
use autoencoders::optim::AdamConfig;
use autoencoders::tensor::{rng_from_seed, Tensor};

const STEPS: usize = 1500;
const BATCH: usize = 64;
const IMAGES: usize = 6400;
const CHECK_EVERY: usize = 100;

/// For each tensor holding subnormal floats, a line saying which and how many.
fn subnormals<'a>(what: &str, tensors: impl IntoIterator<Item = &'a Tensor>) -> Vec<String> {
    tensors
        .into_iter()
        .enumerate()
        .filter_map(|(k, t)| {
            let count = t.as_slice().iter().filter(|x| x.is_subnormal()).count();
            (count > 0).then(|| format!("{what} {k}: {count} of {}", t.len()))
        })
        .collect()
}

fn train_and_check(arch: Arch, l1: f32, images: &[f32]) {
    let mut model = Model::new(arch, &mut rng_from_seed(7));
    let mut adam = model.adam(AdamConfig::default());
    let batches = images.len() / (BATCH * PIXELS);
    let mut found = Vec::new();
    for step in 1..=STEPS {
        let start = (step % batches) * BATCH * PIXELS;
        let batch = Tensor::from_vec(&[BATCH, PIXELS], images[start..start + BATCH * PIXELS].to_vec());
        model.train_step(&mut adam, &batch, &batch, l1);
        if step % CHECK_EVERY == 0 {
            // The gradients of the next step, at the weights this step left.
            let (_, grads) = model.gradients(&batch, &batch, l1);
            let params = model.params.iter().map(|p| &p.value);
            for report in [
                subnormals("parameter", params),
                subnormals("gradient", &grads),
                subnormals("m", &adam.m),
                subnormals("v", &adam.v),
            ] {
                found.extend(report.into_iter().map(|r| format!("step {step}, {r}")));
            }
        }
    }
    assert!(found.is_empty(), "{}: subnormal floats after training:\n{}", model.name(), found.join("\n"));
}

#[test]
fn training_stores_no_subnormal_float() {
    let Some(dir) = common::mnist_dir() else { return };
    let mnist = Mnist::load(&dir).unwrap();
    let images = mnist.train.to_f32(0..IMAGES);
    // On one of rayon's workers, as `train` runs: each parallel loop then splits in place.
    rayon::scope(|_| {
        train_and_check(Arch::Shallow { hidden: 900 }, 0.1, &images);
        train_and_check(Arch::DeepAe, 0.0, &images);
    });
}
