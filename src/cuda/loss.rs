//! MSE and mean |x| on the GPU: kernels/loss.cu.
//!
//! The forwards leave the loss on the device, in a one-element buffer, so a training loop
//! downloads it only when it logs. Each is two launches (per-block partial sums, then one
//! block that adds them): a fixed order of addition, so the same bits on every run; the .cu
//! says why this is not done with atomics. The backwards read `dout`, the loss's gradient,
//! from the device (one value) and form the CPU's `scale` there: `factor * dout / N`, with
//! factor 2 (or -2, for the target) for mse and 1 for mean_abs; so backward never waits for
//! the forward pass to finish.

use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

/// Blocks of the first pass and threads of every block: `LOSS_BLOCKS` and `LOSS_THREADS`
/// in kernels/loss.cu, which must agree (the partials buffer has LOSS_BLOCKS entries).
const LOSS_BLOCKS: u32 = 256;
const LOSS_THREADS: u32 = 256;

/// `out[0] = (1/N) sum (x - t)^2`.
pub fn mse_forward(gpu: &Gpu, x: &CudaSlice<f32>, t: &CudaSlice<f32>, out: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), t.len(), "mse: prediction and target differ in length");
    let mut partials = gpu.uninit::<f64>(LOSS_BLOCKS as usize)?;
    let n = to_u32(x.len());
    // SAFETY: arguments as in the C signature; x and t hold n floats, partials one double
    // per block of this grid.
    unsafe {
        launch(gpu, &gpu.k.mse_forward_partials, first_pass(), |args| {
            args.arg(x); //             const float* x
            args.arg(t); //             const float* t
            args.arg(&mut partials); // double* partials
            args.arg(&n); //            unsigned int n
        })
    }?;
    mean_of_partials(gpu, &partials, x.len(), out)
}

/// `out[0] = (1/N) sum |x|`.
pub fn mean_abs_forward(gpu: &Gpu, x: &CudaSlice<f32>, out: &mut CudaSlice<f32>) -> CudaResult<()> {
    let mut partials = gpu.uninit::<f64>(LOSS_BLOCKS as usize)?;
    let n = to_u32(x.len());
    // SAFETY: as for mse_forward.
    unsafe {
        launch(gpu, &gpu.k.mean_abs_forward_partials, first_pass(), |args| {
            args.arg(x); //             const float* x
            args.arg(&mut partials); // double* partials
            args.arg(&n); //            unsigned int n
        })
    }?;
    mean_of_partials(gpu, &partials, x.len(), out)
}

/// `d += scale * (x - t)`, `scale = factor * dout[0] / N`.
pub fn mse_backward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    t: &CudaSlice<f32>,
    dout: &CudaSlice<f32>,
    factor: f32,
    d: &mut CudaSlice<f32>,
) -> CudaResult<()> {
    assert!(x.len() == t.len() && x.len() == d.len(), "mse backward: x, t and d differ in length");
    assert_eq!(dout.len(), 1, "mse backward: the loss's gradient is one value");
    let n = x.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; x, t and d hold n floats, dout one.
    unsafe {
        launch(gpu, &gpu.k.mse_backward, grid_1d(n), |args| {
            args.arg(x); //       const float* x
            args.arg(t); //       const float* t
            args.arg(dout); //    const float* dout
            args.arg(&factor); // float factor
            args.arg(d); //       float* d
            args.arg(&n32); //    unsigned int n
        })
    }
}

/// `dx += scale * sign(x)`, with `sign(0) = 0` and `scale = dout[0] / N`.
pub fn mean_abs_backward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    dout: &CudaSlice<f32>,
    dx: &mut CudaSlice<f32>,
) -> CudaResult<()> {
    assert_eq!(x.len(), dx.len(), "mean_abs backward: x and dx differ in length");
    assert_eq!(dout.len(), 1, "mean_abs backward: the loss's gradient is one value");
    let n = x.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; x and dx hold n floats, dout one.
    unsafe {
        launch(gpu, &gpu.k.mean_abs_backward, grid_1d(n), |args| {
            args.arg(x); //    const float* x
            args.arg(dout); // const float* dout
            args.arg(dx); //   float* dx
            args.arg(&n32); // unsigned int n
        })
    }
}

/// The first pass's fixed grid: LOSS_BLOCKS blocks whatever N, so the grouping of the sum,
/// and with it the result's bits, never changes.
fn first_pass() -> LaunchConfig {
    LaunchConfig { grid_dim: (LOSS_BLOCKS, 1, 1), block_dim: (LOSS_THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The second pass: one block adds the partials and divides by n into out[0].
fn mean_of_partials(gpu: &Gpu, partials: &CudaSlice<f64>, n: usize, out: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(out.len(), 1, "a loss is one value");
    let n32 = to_u32(n);
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (LOSS_THREADS, 1, 1), shared_mem_bytes: 0 };
    // SAFETY: arguments as in the C signature; partials holds LOSS_BLOCKS doubles, out one
    // float.
    unsafe {
        launch(gpu, &gpu.k.mean_of_partials, cfg, |args| {
            args.arg(partials); // const double* partials
            args.arg(out); //      float* out
            args.arg(&n32); //     unsigned int n
        })
    }
}
