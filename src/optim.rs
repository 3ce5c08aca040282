//! Adam (Kingma & Ba), exactly as `torch.optim.Adam` with its defaults.
//!
//! For each parameter p with gradient g, at step t = 1, 2, ...:
//!
//! ```text
//!     m = b1 m + (1 - b1) g                 first moment (running mean of g)
//!     v = b2 v + (1 - b2) g^2               second moment (running mean of g^2)
//!     p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! ```
//!
//! The factors 1/(1 - b^t) undo the bias of m and v toward their zero start; eps sits
//! outside the square root and is added after the bias correction, as PyTorch does (the
//! order matters in the last digits, which the reference test checks).
//! Defaults: lr 1e-3, b1 0.9, b2 0.999, eps 1e-8.
//!
//! Example: the first step with g = 0.5 gives m = 0.05, v = 0.00025, m/(1-b1) = 0.5,
//! sqrt(v/(1-b2)) = 0.5, so p moves by lr * 0.5/(0.5 + eps), just under lr: Adam's first
//! step has the size lr whatever the gradient's scale.
//!
//! A step is `begin_step`, then `update` once per parameter, in any order: the training step
//! calls `update` from inside backward, as each gradient becomes final (`Model::step`);
//! `step` does all of them at once.
//!
//! The moments live beside the parameters: on the GPU, each step is one `adam_update`
//! launch per parameter tensor (`cuda::adam`, the same loop body), and only the step count
//! and the bias corrections are computed on the host.

use crate::cuda::{self, LAUNCH_FAILED};
use crate::tensor::{Device, Tensor};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

#[derive(Clone, Debug)]
pub struct Adam {
    pub config: AdamConfig,
    /// Steps taken so far.
    pub t: u64,
    /// First and second moments, one flat tensor per parameter, in the parameters' order,
    /// on the parameters' device.
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

impl Adam {
    /// Zero moments (on the CPU) for parameters of these sizes.
    pub fn new(config: AdamConfig, sizes: impl IntoIterator<Item = usize>) -> Adam {
        let (m, v) = sizes.into_iter().map(|n| (Tensor::zeros(&[n]), Tensor::zeros(&[n]))).unzip();
        Adam { config, t: 0, m, v }
    }

    /// Moves the moments to `device`, where the parameters they belong to are.
    pub fn to_device(&mut self, device: &Device) {
        for moment in self.m.iter_mut().chain(&mut self.v) {
            *moment = moment.to_device(device);
        }
    }

    /// One step over every parameter, given their gradients in the same order; each update
    /// runs on the device of its gradient.
    pub fn step(&mut self, params: &mut [&mut Tensor], grads: &[Tensor]) {
        assert_eq!(params.len(), self.m.len(), "Adam was made for {} parameters", self.m.len());
        assert_eq!(grads.len(), self.m.len());
        self.begin_step();
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            self.update(k, p, g);
        }
    }

    /// Starts a step: `update` then moves each parameter once, in any order (the training
    /// step calls it from backward, as each gradient becomes final; see `Model::step`).
    pub fn begin_step(&mut self) {
        self.t += 1;
    }

    /// The step begun by `begin_step` for parameter `k`, given its gradient.
    pub fn update(&mut self, k: usize, p: &mut Tensor, g: &Tensor) {
        assert!(self.t > 0, "update before begin_step");
        assert_eq!(p.len(), g.len(), "gradient and parameter differ in size");
        let AdamConfig { lr, beta1, beta2, eps } = self.config;
        // The bias corrections in f64: b2^t loses digits in f32 over thousands of steps.
        let bc1 = 1.0 - (beta1 as f64).powi(self.t as i32);
        let bc2 = 1.0 - (beta2 as f64).powi(self.t as i32);
        let step_size = (lr as f64 / bc1) as f32;
        let sqrt_bc2 = bc2.sqrt() as f32;
        let (m, v) = (&mut self.m[k], &mut self.v[k]);
        match g {
            Tensor::Cpu(_) => adam_update(
                p.as_slice_mut(),
                g.as_slice(),
                m.as_slice_mut(),
                v.as_slice_mut(),
                beta1,
                beta2,
                step_size,
                sqrt_bc2,
                eps,
            ),
            Tensor::Cuda(gc) => cuda::adam::adam_update(
                gc.gpu(),
                p.cuda_mut(),
                gc.slice(),
                m.cuda_mut(),
                v.cuda_mut(),
                beta1,
                beta2,
                step_size,
                sqrt_bc2,
                eps,
            )
            .expect(LAUNCH_FAILED),
        }
    }
}

/// The update of one parameter tensor, elementwise (so chunks are independent).
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    beta1: f32,
    beta2: f32,
    step_size: f32,
    sqrt_bc2: f32,
    eps: f32,
) {
    const CHUNK: usize = 1 << 14;
    let h = Hyper { beta1, beta2, step_size, sqrt_bc2, eps };
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            #[cfg(target_arch = "x86_64")]
            if crate::cpu::has_avx2_fma() {
                // SAFETY: the processor has AVX2 (checked at run time).
                return unsafe { adam_chunk_avx2(p, g, m, v, h) };
            }
            adam_chunk(p, g, m, v, h)
        });
}

/// Adam's constants for one step.
#[derive(Clone, Copy)]
struct Hyper {
    beta1: f32,
    beta2: f32,
    step_size: f32,
    sqrt_bc2: f32,
    eps: f32,
}

/// The square root and the division are the slow part of the update, so this loop is also
/// built for AVX2 (eight floats at a time instead of four). Only the width changes: the
/// same operations in the same order, so the same bits (no fused multiply-adds here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn adam_chunk_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: Hyper) {
    adam_chunk(p, g, m, v, h)
}

#[inline(always)]
fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: Hyper) {
    let Hyper { beta1, beta2, step_size, sqrt_bc2, eps } = h;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = beta1 * *m + (1.0 - beta1) * g;
        *v = beta2 * *v + (1.0 - beta2) * g * g;
        *p -= step_size * *m / (v.sqrt() / sqrt_bc2 + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both builds of the update give the same bits (the tests in tests/ reach only the one
    /// this processor picks).
    #[test]
    fn the_avx2_build_changes_no_bit() {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::has_avx2_fma() {
            let n = 1000;
            let values = |k: usize| (0..n).map(|i| ((i * 7919 + k) % 997) as f32 / 500.0 - 1.0).collect::<Vec<f32>>();
            let (g, h) = (values(1), Hyper { beta1: 0.9, beta2: 0.999, step_size: 1e-3, sqrt_bc2: 0.0447, eps: 1e-8 });
            let (mut p1, mut m1, mut v1) = (values(2), values(3), values(4).iter().map(|x| x * x).collect::<Vec<_>>());
            let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
            adam_chunk(&mut p1, &g, &mut m1, &mut v1, h);
            // SAFETY: the processor has AVX2 (checked above).
            unsafe { adam_chunk_avx2(&mut p2, &g, &mut m2, &mut v2, h) };
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!((bits(&p1), bits(&m1), bits(&v1)), (bits(&p2), bits(&m2), bits(&v2)));
        }
    }
}
