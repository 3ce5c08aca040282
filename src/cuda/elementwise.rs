//! Elementwise launchers: kernels/elementwise.cu, one thread per element.
//!
//! ReLU as in `ops::relu`; `add`, `scale` and `add_into` as in `ops::shape` (the sum of
//! two values, scaling by a constant, and the accumulation that their backward rules and
//! reshape's share).

use super::{grid_1d, to_u32, CudaResult, Gpu};
use cudarc::driver::{CudaSlice, PushKernelArg};

/// y = max(x, 0).
pub fn relu_forward(gpu: &Gpu, x: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), y.len(), "relu: x and y differ in length");
    let n = x.len();
    if n == 0 {
        return Ok(());
    }
    let n32 = to_u32(n);
    let mut launch = gpu.stream.launch_builder(&gpu.k.relu_forward);
    launch.arg(x); //    const float* x
    launch.arg(y); //    float* y
    launch.arg(&n32); // unsigned int n
                      // SAFETY: arguments as in the C signature; both buffers hold n floats.
    unsafe { launch.launch(grid_1d(n)) }?;
    Ok(())
}

/// dx += dout where y > 0.
pub fn relu_backward(gpu: &Gpu, y: &CudaSlice<f32>, dout: &CudaSlice<f32>, dx: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert!(y.len() == dout.len() && y.len() == dx.len(), "relu backward: y, dout and dx differ in length");
    let n = y.len();
    if n == 0 {
        return Ok(());
    }
    let n32 = to_u32(n);
    let mut launch = gpu.stream.launch_builder(&gpu.k.relu_backward);
    launch.arg(y); //    const float* y
    launch.arg(dout); // const float* dout
    launch.arg(dx); //   float* dx
    launch.arg(&n32); // unsigned int n
                      // SAFETY: arguments as in the C signature; all three buffers hold n floats.
    unsafe { launch.launch(grid_1d(n)) }?;
    Ok(())
}

/// y = a + b.
pub fn add(gpu: &Gpu, a: &CudaSlice<f32>, b: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert!(a.len() == b.len() && a.len() == y.len(), "add: a, b and y differ in length");
    let n = a.len();
    if n == 0 {
        return Ok(());
    }
    let n32 = to_u32(n);
    let mut launch = gpu.stream.launch_builder(&gpu.k.add);
    launch.arg(a); //    const float* a
    launch.arg(b); //    const float* b
    launch.arg(y); //    float* y
    launch.arg(&n32); // unsigned int n
                      // SAFETY: arguments as in the C signature; all three buffers hold n floats.
    unsafe { launch.launch(grid_1d(n)) }?;
    Ok(())
}

/// y = factor * x.
pub fn scale(gpu: &Gpu, x: &CudaSlice<f32>, factor: f32, y: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), y.len(), "scale: x and y differ in length");
    let n = x.len();
    if n == 0 {
        return Ok(());
    }
    let n32 = to_u32(n);
    let mut launch = gpu.stream.launch_builder(&gpu.k.scale);
    launch.arg(x); //       const float* x
    launch.arg(&factor); // float factor
    launch.arg(y); //       float* y
    launch.arg(&n32); //    unsigned int n
                      // SAFETY: arguments as in the C signature; both buffers hold n floats.
    unsafe { launch.launch(grid_1d(n)) }?;
    Ok(())
}

/// d += factor * dout.
pub fn add_into(gpu: &Gpu, d: &mut CudaSlice<f32>, dout: &CudaSlice<f32>, factor: f32) -> CudaResult<()> {
    assert_eq!(d.len(), dout.len(), "add_into: d and dout differ in length");
    let n = d.len();
    if n == 0 {
        return Ok(());
    }
    let n32 = to_u32(n);
    let mut launch = gpu.stream.launch_builder(&gpu.k.add_into);
    launch.arg(d); //       float* d
    launch.arg(dout); //    const float* dout
    launch.arg(&factor); // float factor
    launch.arg(&n32); //    unsigned int n
                      // SAFETY: arguments as in the C signature; both buffers hold n floats.
    unsafe { launch.launch(grid_1d(n)) }?;
    Ok(())
}
