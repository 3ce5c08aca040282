//! Adam (Kingma & Ba), exactly as `torch.optim.Adam` with its defaults, plus one rule of our
//! own: moments too small for a normal float are stored as zero.
//!
//! For each parameter p with gradient g, at step t = 1, 2, ...:
//!
//! ```text
//!     m = b1 m + (1 - b1) g                 first moment (running mean of g)
//!     v = b2 v + (1 - b2) g^2               second moment (running mean of g^2)
//!     m = 0 if |m| < f32::MIN_POSITIVE      the flush (below)
//!     v = 0 if  v  < f32::MIN_POSITIVE
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
//! # The flush: why a moment below 1.18e-38 becomes 0
//!
//! Once a weight stops receiving gradient (a dead ReLU unit, a code unit the sparse penalty
//! has killed), g = 0 and its first moment only decays: m = 0.9 m each step. From |m| ~ 1e-3
//! it leaves the normal range of f32 (below `f32::MIN_POSITIVE` = 1.18e-38) about 800 steps
//! later as a *subnormal* float, and it never reaches zero: a subnormal is k * 2^-149 for an
//! integer k, and 0.9 k rounds back to k once k <= 5, so m sticks at a few times 1e-45 for
//! the rest of training. v decays by 0.999 a step and would take ~80,000 steps to get there,
//! but the same rule covers it. Without this rule, tests/subnormal.rs finds 1.65 million of
//! the sparse AE's 2.2 million first moments subnormal after 1,500 steps. Arithmetic on
//! subnormals is slow, on some processors very slow (microcode assists, ~100 cycles each).
//! Measured before this rule (issue #16): after `all --epochs 10`, 10-26% of the floats in
//! every MLP's checkpoint were subnormal, all of them in m (79% of sparse-0.1's m, 41% of the
//! deep AE's); on an Intel Xeon later epochs took 1.5-2x as long as the first (ae 5.6 s ->
//! 9-11 s), and on an AMD EPYC (Zen 4) flush-to-zero for the whole process took the deep AE's
//! epoch from 3.97 s to 3.34 s. PyTorch pays the same unless `torch.set_flush_denormal(True)`.
//!
//! A moment that small moves its weight by step_size * m / (sqrt(v)/sqrt_bc2 + eps), at most
//! ~1e-3 * 1.2e-38 / 1e-8 ~ 1e-33, below half an ulp of any weight above 1e-26, so the
//! flush changes no result, only the time. It is written here, in the arithmetic, rather
//! than left to the processor's flush-to-zero mode (MXCSR), which is per thread, x86 only and
//! invisible to a reader; and the GPU kernel (kernels/adam.cu) applies the same rule, so that
//! the CPU and the GPU keep agreeing (a moment flushed on one side only would differ there by
//! its whole value). The weights and gradients need no such rule:
//! tests/subnormal.rs trains the sparse and deep AEs and finds none there.
//!
//! A step is `begin_step`, then `update` once per parameter, in any order: the training step
//! calls `update` from inside backward, as each gradient becomes final (`Model::step`);
//! `step` does all of them at once.
//!
//! Two CPU floors, as for the ops (`ops::Kernels`): `adam_update` below is the plain loop that
//! defines the update; `cpu::adam::adam_update` computes the same bits faster (rayon over
//! chunks, an AVX2 build). The moments live beside the parameters: on the GPU, each step is
//! one `adam_update` launch per parameter tensor (`cuda::adam`, the same loop body), and only
//! the step count and the bias corrections are computed on the host.

use crate::cuda::{self, LAUNCH_FAILED};
use crate::ops::Kernels;
use crate::tensor::{Device, Tensor};

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
    /// The CPU floor the updates compute on (the model's, through `Model::adam`); the GPU
    /// ignores it.
    pub kernels: Kernels,
}

impl Adam {
    /// Zero moments (on the CPU) for parameters of these sizes.
    pub fn new(config: AdamConfig, sizes: impl IntoIterator<Item = usize>) -> Adam {
        let (m, v) = sizes.into_iter().map(|n| (Tensor::zeros(&[n]), Tensor::zeros(&[n]))).unzip();
        Adam { config, t: 0, m, v, kernels: Kernels::Fast }
    }

    /// This optimiser computing on the CPU floor `kernels`.
    pub fn with_kernels(self, kernels: Kernels) -> Adam {
        Adam { kernels, ..self }
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
        let step = AdamStep { beta1, beta2, step_size: (lr as f64 / bc1) as f32, sqrt_bc2: bc2.sqrt() as f32, eps };
        let (m, v) = (&mut self.m[k], &mut self.v[k]);
        match g {
            Tensor::Cpu(_) => {
                let update = match self.kernels {
                    Kernels::Reference => adam_update,
                    Kernels::Fast => crate::cpu::adam::adam_update,
                };
                update(p.as_slice_mut(), g.as_slice(), m.as_slice_mut(), v.as_slice_mut(), step)
            }
            Tensor::Cuda(gc) => cuda::adam::adam_update(
                gc.gpu(),
                p.cuda_mut(),
                gc.slice(),
                m.cuda_mut(),
                v.cuda_mut(),
                step.beta1,
                step.beta2,
                step.step_size,
                step.sqrt_bc2,
                step.eps,
            )
            .expect(LAUNCH_FAILED),
        }
    }
}

/// The update of one parameter tensor: the plain loop that defines it, element by element.
pub fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    adam_loop(p, g, m, v, step)
}

/// The constants of one step, the same for every element: the betas and eps of the
/// configuration, and the bias corrections of step t computed on the host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub beta1: f32,
    pub beta2: f32,
    /// lr / (1 - beta1^t)
    pub step_size: f32,
    /// sqrt(1 - beta2^t)
    pub sqrt_bc2: f32,
    pub eps: f32,
}

/// The loop of `adam_update`. The fast floor (`cpu::adam`) runs this same loop on chunks and
/// compiles it once more for AVX2: inlined everywhere, so each build is the same operations
/// in the same order (no fused multiply-adds), hence the same bits.
#[inline(always)]
pub(crate) fn adam_loop(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    let AdamStep { beta1, beta2, step_size, sqrt_bc2, eps } = step;
    assert!(g.len() == p.len() && m.len() == p.len() && v.len() == p.len(), "adam: lengths differ");
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = flush(beta1 * *m + (1.0 - beta1) * g);
        *v = flush(beta2 * *v + (1.0 - beta2) * g * g);
        *p -= step_size * *m / (v.sqrt() / sqrt_bc2 + eps);
    }
}

/// x, or 0 where |x| is below the normal range (a subnormal): the rule in the module's doc.
#[inline(always)]
pub fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}
