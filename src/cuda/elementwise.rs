//! Elementwise launchers: kernels/elementwise.cu, one thread per element.
//!
//! ReLU as in `ops::relu`; `add`, `scale` and `add_into` as in `ops::shape` (the sum of
//! two values, scaling by a constant, and the accumulation that their backward rules and
//! reshape's share).

use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use cudarc::driver::{CudaSlice, PushKernelArg};

/// y = max(x, 0).
pub fn relu_forward(gpu: &Gpu, x: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), y.len(), "relu: x and y differ in length");
    let n = x.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; both buffers hold n floats.
    unsafe {
        launch(gpu, &gpu.k.relu_forward, grid_1d(n), |args| {
            args.arg(x); //    const float* x
            args.arg(y); //    float* y
            args.arg(&n32); // unsigned int n
        })
    }
}

/// dx += dout where y > 0.
pub fn relu_backward(gpu: &Gpu, y: &CudaSlice<f32>, dout: &CudaSlice<f32>, dx: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert!(y.len() == dout.len() && y.len() == dx.len(), "relu backward: y, dout and dx differ in length");
    let n = y.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; all three buffers hold n floats.
    unsafe {
        launch(gpu, &gpu.k.relu_backward, grid_1d(n), |args| {
            args.arg(y); //    const float* y
            args.arg(dout); // const float* dout
            args.arg(dx); //   float* dx
            args.arg(&n32); // unsigned int n
        })
    }
}

/// y = a + b.
pub fn add(gpu: &Gpu, a: &CudaSlice<f32>, b: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert!(a.len() == b.len() && a.len() == y.len(), "add: a, b and y differ in length");
    let n = a.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; all three buffers hold n floats.
    unsafe {
        launch(gpu, &gpu.k.add, grid_1d(n), |args| {
            args.arg(a); //    const float* a
            args.arg(b); //    const float* b
            args.arg(y); //    float* y
            args.arg(&n32); // unsigned int n
        })
    }
}

/// y = factor * x.
pub fn scale(gpu: &Gpu, x: &CudaSlice<f32>, factor: f32, y: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), y.len(), "scale: x and y differ in length");
    let n = x.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; both buffers hold n floats.
    unsafe {
        launch(gpu, &gpu.k.scale, grid_1d(n), |args| {
            args.arg(x); //       const float* x
            args.arg(&factor); // float factor
            args.arg(y); //       float* y
            args.arg(&n32); //    unsigned int n
        })
    }
}

/// d += factor * dout.
pub fn add_into(gpu: &Gpu, d: &mut CudaSlice<f32>, dout: &CudaSlice<f32>, factor: f32) -> CudaResult<()> {
    assert_eq!(d.len(), dout.len(), "add_into: d and dout differ in length");
    let n = d.len();
    let n32 = to_u32(n);
    // SAFETY: arguments as in the C signature; both buffers hold n floats.
    unsafe {
        launch(gpu, &gpu.k.add_into, grid_1d(n), |args| {
            args.arg(d); //       float* d
            args.arg(dout); //    const float* dout
            args.arg(&factor); // float factor
            args.arg(&n32); //    unsigned int n
        })
    }
}
