//! Adam's update on the GPU: kernels/adam.cu, the loop body of `optim::adam_update`.
//!
//! The host keeps the step count and computes the bias corrections (`step_size`,
//! `sqrt_bc2`) as `Adam::step` does; only the elementwise update runs on the device, where
//! the parameters, gradients and moments live.

use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// The update's scalars. Mirrors `AdamParams` in kernels/adam.cu, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AdamParams {
    pub n: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub step_size: f32,
    pub sqrt_bc2: f32,
    pub eps: f32,
}
// SAFETY: plain old data with the C layout of the struct in adam.cu (same size, checked
// there by static_assert).
unsafe impl DeviceRepr for AdamParams {}
const _: () = assert!(std::mem::size_of::<AdamParams>() == 24);

/// One Adam update of p with gradient g and moments m, v (all the same length).
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    gpu: &Gpu,
    p: &mut CudaSlice<f32>,
    g: &CudaSlice<f32>,
    m: &mut CudaSlice<f32>,
    v: &mut CudaSlice<f32>,
    beta1: f32,
    beta2: f32,
    step_size: f32,
    sqrt_bc2: f32,
    eps: f32,
) -> CudaResult<()> {
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n, "adam: parameter, gradient and moments differ in length");
    let a = AdamParams { n: to_u32(n), beta1, beta2, step_size, sqrt_bc2, eps };
    // SAFETY: arguments as in the C signature; all four buffers hold n floats.
    unsafe {
        launch(gpu, &gpu.k.adam_update, grid_1d(n), |args| {
            args.arg(p); //  float* p
            args.arg(g); //  const float* g
            args.arg(m); //  float* m
            args.arg(v); //  float* v
            args.arg(&a); // AdamParams a
        })
    }
}
