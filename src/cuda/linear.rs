//! linear (y = x W^T + b) on the GPU: the three products of `ops::linear` through `gemm`,
//! and the bias through the convolution's bias kernels with one-pixel planes.

use super::conv::{conv_backward_bias, fill_bias};
use super::gemm::{gemm, Mat};
use super::{CudaResult, Gpu};
use cudarc::driver::CudaSlice;

/// y (n, d_out) = x (n, d_in) W^T + b. The bias is written first and the product added
/// onto it (beta = 1), as on the CPU.
pub fn linear_forward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    w: &CudaSlice<f32>,
    b: Option<&CudaSlice<f32>>,
    y: &mut CudaSlice<f32>,
    d_in: usize,
    d_out: usize,
) -> CudaResult<()> {
    let n = x.len() / d_in;
    assert_eq!(w.len(), d_out * d_in, "linear: weight must be {d_out}x{d_in}");
    fill_bias(gpu, y, b, d_out, 1)?;
    gemm(gpu, Mat::new(x, n, d_in), Mat::new(w, d_out, d_in).t(), 1.0, y)
}

/// dx (n, d_in) += dout (n, d_out) W (d_out, d_in).
pub fn linear_backward_input(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    w: &CudaSlice<f32>,
    dx: &mut CudaSlice<f32>,
    d_in: usize,
    d_out: usize,
) -> CudaResult<()> {
    let n = dout.len() / d_out;
    gemm(gpu, Mat::new(dout, n, d_out), Mat::new(w, d_out, d_in), 1.0, dx)
}

/// dW (d_out, d_in) += dout^T (d_out, n) x (n, d_in).
pub fn linear_backward_weight(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    x: &CudaSlice<f32>,
    dw: &mut CudaSlice<f32>,
    d_in: usize,
    d_out: usize,
) -> CudaResult<()> {
    let n = dout.len() / d_out;
    gemm(gpu, Mat::new(dout, n, d_out).t(), Mat::new(x, n, d_in), 1.0, dw)
}

/// db (d_out) += the column sums of dout (n, d_out): n "images" of d_out one-pixel planes.
pub fn linear_backward_bias(gpu: &Gpu, dout: &CudaSlice<f32>, db: &mut CudaSlice<f32>) -> CudaResult<()> {
    conv_backward_bias(gpu, dout, db, 1)
}
