//! Judging the codes, not only the pixels: how much of a digit's class a code keeps.
//!
//! For each model (and for PCA with as many components as the model has code units, and for
//! the raw pixels as a calibration row) this scores:
//!
//! - the **linear probe**: a softmax classifier `logits = W z + b` on the standardised codes
//!   (each unit shifted and scaled by its mean and standard deviation over the training
//!   codes), trained on the 60,000 training codes with the engine's own tape
//!   (`Tape::linear`, `Tape::cross_entropy`) and Adam, scored as accuracy on the test codes;
//! - **5-NN accuracy**: each test code takes the majority class of its 5 nearest training
//!   codes (Euclidean, brute force over all of them);
//! - the **test MSE per digit class** of the reconstructions.
//!
//! Published points to calibrate against (LeCun's MNIST table): a linear classifier on the
//! pixels makes 7.6-12% errors, Euclidean k-NN 3-5%.

use crate::cpu::gemm::{par_gemm, Mat};
use crate::data::{Images, Labels};
use crate::models::Model;
use crate::optim::{Adam, AdamConfig};
use crate::tensor::{rng_from_seed, Tensor};
use crate::Tape;
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// Digit classes.
pub const CLASSES: usize = 10;
/// Neighbours that vote in the k-NN probe.
pub const K_NEIGHBOURS: usize = 5;
/// The linear probe's training: passes over the 60,000 codes, images per Adam step, and
/// Adam's step size. Softmax regression is convex, so these only decide how close to its
/// optimum it gets: on the pixels, 10 more epochs move the accuracy by under 0.3 points.
const PROBE_EPOCHS: usize = 10;
const PROBE_BATCH: usize = 128;
const PROBE_LR: f32 = 1e-3;
/// Images per forward pass when computing codes, and test codes per block of the k-NN
/// search (a block's distances to all 60,000 training codes take 240 KB a code).
const BATCH: usize = 1000;
const KNN_BLOCK: usize = 256;

/// n codes of d units each, row-major.
#[derive(Clone, Debug)]
pub struct Codes {
    pub n: usize,
    pub d: usize,
    pub values: Vec<f32>,
}

impl Codes {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.d..(i + 1) * self.d]
    }
}

/// One row of the probe table.
#[derive(Clone, Debug)]
pub struct ProbeRow {
    /// "ae", "pca-30", "pixels", ...
    pub name: String,
    pub code_size: usize,
    /// Fractions of the 10,000 test images classified right.
    pub linear_probe: f64,
    pub knn: f64,
    /// Test MSE per pixel, over all test images and per class (none for the raw pixels).
    pub mse: Option<f64>,
    pub mse_per_class: Option<[f64; CLASSES]>,
    /// Mean |code| over test images and units.
    pub mean_abs_code: f64,
}

/// The codes of every image, and the reconstructions too when `keep_reconstructions`.
pub fn model_codes(model: &Model, images: &Images, keep_reconstructions: bool) -> (Codes, Option<Vec<f32>>) {
    let mut values = Vec::new();
    let mut recon = keep_reconstructions.then(Vec::new);
    for start in (0..images.n).step_by(BATCH) {
        let end = (start + BATCH).min(images.n);
        let x = Tensor::from_vec(&[end - start, images.image_len()], images.to_f32(start..end));
        let (out, code) = model.reconstruct(&x);
        values.extend_from_slice(code.to_cpu().as_slice());
        if let Some(recon) = recon.as_mut() {
            recon.extend_from_slice(out.to_cpu().as_slice());
        }
    }
    let d = values.len() / images.n.max(1);
    (Codes { n: images.n, d, values }, recon)
}

/// The images themselves as codes: the calibration row.
pub fn pixel_codes(images: &Images) -> Codes {
    Codes { n: images.n, d: images.image_len(), values: images.to_f32(0..images.n) }
}

/// Test MSE per pixel of each digit class: the mean over that class's images and pixels.
pub fn mse_per_class(images: &[f32], reconstructions: &[f32], labels: &[u8], pixels: usize) -> [f64; CLASSES] {
    let (mut sum, mut count) = ([0.0f64; CLASSES], [0usize; CLASSES]);
    for ((x, r), &l) in images.chunks_exact(pixels).zip(reconstructions.chunks_exact(pixels)).zip(labels) {
        sum[l as usize] += x.iter().zip(r).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>();
        count[l as usize] += 1;
    }
    std::array::from_fn(|c| if count[c] == 0 { f64::NAN } else { sum[c] / (count[c] * pixels) as f64 })
}

/// Each unit's mean and standard deviation over `train`; a unit constant on the training
/// set (a dead ReLU) keeps its scale, 1, since dividing by zero would create values.
pub fn standardiser(train: &Codes) -> (Vec<f32>, Vec<f32>) {
    let (n, d) = (train.n as f64, train.d);
    let mut mean = vec![0.0f64; d];
    for i in 0..train.n {
        train.row(i).iter().zip(&mut mean).for_each(|(&v, m)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; d];
    for i in 0..train.n {
        train.row(i).iter().zip(&mean).zip(&mut var).for_each(|((&v, m), s)| *s += (v as f64 - m).powi(2));
    }
    let std = var.iter().map(|&s| if s > 0.0 { (s / n).sqrt() as f32 } else { 1.0 }).collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}

/// `code` as the linear probe sees it, in place: each unit shifted by its mean and scaled by
/// its standard deviation (`standardiser`).
fn standardise(code: &mut [f32], mean: &[f32], std: &[f32]) {
    code.iter_mut().zip(mean).zip(std).for_each(|((v, m), s)| *v = (*v - m) / s);
}

/// Test accuracy of a softmax classifier trained on the standardised training codes.
/// Weights start at zero (the problem is convex: no symmetry to break); the batches are
/// shuffled by `seed`. The training codes are handed over and standardised in place (a
/// standardised copy of 60,000 codes of 900 units would hold 216 MB more), the test codes
/// a batch at a time.
pub fn linear_probe(mut train: Codes, train_labels: &Labels, test: &Codes, test_labels: &Labels, seed: u64) -> f64 {
    let (mean, std) = standardiser(&train);
    train.values.chunks_exact_mut(train.d).for_each(|code| standardise(code, &mean, &std));
    let d = train.d;
    let mut params = [Tensor::zeros(&[CLASSES, d]), Tensor::zeros(&[CLASSES])];
    let mut adam = Adam::new(AdamConfig { lr: PROBE_LR, ..AdamConfig::default() }, [CLASSES * d, CLASSES]);
    let mut rng = rng_from_seed(seed);
    let mut order: Vec<usize> = (0..train.n).collect();
    for _ in 0..PROBE_EPOCHS {
        order.shuffle(&mut rng);
        for batch in order.chunks(PROBE_BATCH) {
            let x: Vec<f32> = batch.iter().flat_map(|&i| train.row(i).iter().copied()).collect();
            let labels: Vec<usize> = batch.iter().map(|&i| train_labels.labels[i] as usize).collect();
            let mut tape = Tape::new();
            let (w, b) = (tape.param(params[0].clone()), tape.param(params[1].clone()));
            let x = tape.input(Tensor::from_vec(&[batch.len(), d], x));
            let logits = tape.linear(x, w, Some(b));
            let loss = tape.cross_entropy(logits, &labels);
            tape.backward(loss);
            let grads = [tape.take_grad(w), tape.take_grad(b)];
            drop(tape);
            let [pw, pb] = &mut params;
            adam.step(&mut [pw, pb], &grads);
        }
    }
    let mut right = 0;
    for start in (0..test.n).step_by(BATCH) {
        let end = (start + BATCH).min(test.n);
        let mut tape = Tape::no_grad();
        let (w, b) = (tape.input(params[0].clone()), tape.input(params[1].clone()));
        let mut x = test.values[start * d..end * d].to_vec();
        x.chunks_exact_mut(d).for_each(|code| standardise(code, &mean, &std));
        let x = tape.input(Tensor::from_vec(&[end - start, d], x));
        let logits = tape.linear(x, w, Some(b));
        let predicted = tape.value(logits).as_slice().chunks_exact(CLASSES).map(argmax);
        right += predicted.zip(&test_labels.labels[start..end]).filter(|&(p, &l)| p == l as usize).count();
    }
    right as f64 / test.n as f64
}

/// The first index of the largest value.
fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// Test accuracy of the k-NN vote over all training codes (Euclidean distance).
///
/// |t - x|^2 = |t|^2 - 2 t.x + |x|^2, and |t|^2 is the same for every candidate x, so the
/// ranking needs only |x|^2 - 2 t.x: a product of a block of test codes with all training
/// codes (`par_gemm`, split over bands of the block) and, per test code, a selection of the
/// k smallest (rayon over the block's rows, each task owning its row). Equal distances go
/// to the lower training index. The vote: the class most of the k hold; a tie between
/// classes goes to the one whose member is nearest.
pub fn knn_accuracy(train: &Codes, train_labels: &Labels, test: &Codes, test_labels: &Labels, k: usize) -> f64 {
    assert_eq!(train.d, test.d, "k-NN: training codes have {} units, test codes {}", train.d, test.d);
    let d = train.d;
    let norms: Vec<f32> = (0..train.n).map(|i| train.row(i).iter().map(|v| v * v).sum()).collect();
    let mut right = 0;
    let mut dots = vec![0.0f32; KNN_BLOCK * train.n];
    for start in (0..test.n).step_by(KNN_BLOCK) {
        let end = (start + KNN_BLOCK).min(test.n);
        let dots = &mut dots[..(end - start) * train.n];
        let block = Mat::new(&test.values[start * d..end * d], end - start, d);
        par_gemm(block, Mat::new(&train.values, train.n, d).t(), 0.0, dots);
        right += dots
            .par_chunks(train.n)
            .zip(&test_labels.labels[start..end])
            .filter(|(dots, &label)| {
                let nearest = k_smallest(train.n, k, |j| norms[j] - 2.0 * dots[j]);
                vote(nearest.iter().map(|&j| train_labels.labels[j])) == label
            })
            .count();
    }
    right as f64 / test.n as f64
}

/// The indices of the k smallest of f(0..n), nearest first (ties to the lower index).
fn k_smallest(n: usize, k: usize, f: impl Fn(usize) -> f32) -> Vec<usize> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for j in 0..n {
        let v = f(j);
        if best.len() == k && v >= best[k - 1].0 {
            continue;
        }
        let at = best.partition_point(|&(b, _)| b <= v);
        best.insert(at, (v, j));
        best.truncate(k);
    }
    best.into_iter().map(|(_, j)| j).collect()
}

/// The majority class of neighbours given nearest first; a tie goes to the nearest.
fn vote(neighbours: impl Iterator<Item = u8>) -> u8 {
    let classes: Vec<u8> = neighbours.collect();
    let mut count = [0usize; 256];
    classes.iter().for_each(|&c| count[c as usize] += 1);
    let most = classes.iter().map(|&c| count[c as usize]).max().unwrap_or(0);
    classes.into_iter().find(|&c| count[c as usize] == most).unwrap_or(0)
}

/// Mean |v| over all values.
pub fn mean_abs(codes: &Codes) -> f64 {
    codes.values.iter().map(|&v| v.abs() as f64).sum::<f64>() / codes.values.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_come_first_and_ties_go_to_the_lower_index() {
        let v = [3.0, 1.0, 2.0, 1.0, 0.5, 9.0];
        assert_eq!(k_smallest(v.len(), 3, |j| v[j]), vec![4, 1, 3]);
        assert_eq!(k_smallest(2, 5, |j| v[j]), vec![1, 0], "fewer candidates than k");
    }

    #[test]
    fn the_vote_takes_the_majority_then_the_nearest() {
        assert_eq!(vote([1, 2, 2, 3, 2].into_iter()), 2);
        assert_eq!(vote([7, 2, 2, 7, 1].into_iter()), 7, "two each: the nearest class wins");
    }
}
