//! conv2d and conv_transpose2d on the GPU: the products of `ops::conv`, batched.
//!
//! The mathematics is in `src/ops/conv.rs`. Each function here is its CPU twin with the
//! loop over images folded into the launches: one im2col or col2im over the whole batch
//! (`cuda::im2col`), and one batched gemm whose z-slices are the images, the weight shared
//! (batch stride 0). The weight gradient, a sum over the batch, is formed as one partial
//! product per image followed by `sum_over_batch`, which adds them in image order: each
//! thread owns one weight element, so no atomics and the same bits on every run.
//!
//! The column buffers (n x K x P floats) and the per-image partials are allocated per call
//! and left unset (`Gpu::uninit`): im2col and the products with beta = 0 write every value.

use super::gemm::{gemm_batched, Batch, Mat};
use super::im2col::{col2im, im2col};
use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use crate::geom::ConvGeom;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

/// The most threads per block of conv_backward_bias: `BIAS_THREADS` in kernels/conv.cu.
const BIAS_THREADS: usize = 1024;

/// Images in the batch of `x`, a buffer of whole images of `image` floats.
fn batch_of(len: usize, image: usize) -> usize {
    assert!(image > 0 && len.is_multiple_of(image), "a batch of {len} values is not whole images of {image}");
    len / image
}

/// y (n, c_out, oh, ow) = conv2d(x (n, g.c, g.h, g.w), w (c_out, g.c, g.kh, g.kw)) + b.
pub fn conv2d_forward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    w: &CudaSlice<f32>,
    b: Option<&CudaSlice<f32>>,
    y: &mut CudaSlice<f32>,
    g: &ConvGeom,
    c_out: usize,
) -> CudaResult<()> {
    let (k, p) = (g.col_rows(), g.col_cols());
    let n = batch_of(x.len(), g.c * g.h * g.w);
    assert_eq!(w.len(), c_out * k, "conv2d: weight must be {c_out}x{k}");
    assert_eq!(y.len(), n * c_out * p, "conv2d: y must be ({n}, {c_out}, {}, {})", g.oh, g.ow);
    let mut col = gpu.uninit(n * k * p)?;
    im2col(gpu, x, g, n, &mut col)?;
    fill_bias(gpu, y, b, c_out, p)?;
    // y[img] (c_out, P) += W (c_out, K) col[img] (K, P)
    gemm_batched(
        gpu,
        Mat::new(w, c_out, k),
        Mat::new(&col, k, p),
        1.0,
        y,
        Batch { count: n, a: 0, b: k * p, c: c_out * p },
    )
}

/// dx (n, g.c, g.h, g.w) += the conv2d input gradient of dout (n, c_out, oh, ow).
pub fn conv2d_backward_input(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    w: &CudaSlice<f32>,
    dx: &mut CudaSlice<f32>,
    g: &ConvGeom,
    c_out: usize,
) -> CudaResult<()> {
    let (k, p) = (g.col_rows(), g.col_cols());
    let n = batch_of(dx.len(), g.c * g.h * g.w);
    assert_eq!(dout.len(), n * c_out * p, "conv2d backward: dout must be ({n}, {c_out}, {}, {})", g.oh, g.ow);
    let mut dcol = gpu.uninit(n * k * p)?;
    // dcol[img] (K, P) = W^T (K, c_out) dout[img] (c_out, P)
    gemm_batched(
        gpu,
        Mat::new(w, c_out, k).t(),
        Mat::new(dout, c_out, p),
        0.0,
        &mut dcol,
        Batch { count: n, a: 0, b: c_out * p, c: k * p },
    )?;
    col2im(gpu, &dcol, g, n, dx)
}

/// `dw (c_out, g.c, g.kh, g.kw) += sum over the batch of dout[n] im2col(x[n])^T`.
pub fn conv2d_backward_weight(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    x: &CudaSlice<f32>,
    dw: &mut CudaSlice<f32>,
    g: &ConvGeom,
    c_out: usize,
) -> CudaResult<()> {
    let (k, p) = (g.col_rows(), g.col_cols());
    let n = batch_of(x.len(), g.c * g.h * g.w);
    assert_eq!(dout.len(), n * c_out * p, "conv2d backward: dout must be ({n}, {c_out}, {}, {})", g.oh, g.ow);
    assert_eq!(dw.len(), c_out * k, "conv2d backward: dw must be {c_out}x{k}");
    let mut col = gpu.uninit(n * k * p)?;
    im2col(gpu, x, g, n, &mut col)?;
    let mut part = gpu.uninit(n * c_out * k)?;
    // part[img] (c_out, K) = dout[img] (c_out, P) col[img]^T (P, K)
    gemm_batched(
        gpu,
        Mat::new(dout, c_out, p),
        Mat::new(&col, k, p).t(),
        0.0,
        &mut part,
        Batch { count: n, a: c_out * p, b: k * p, c: c_out * k },
    )?;
    sum_over_batch(gpu, &part, n, dw)
}

/// y (n, c_out, oh, ow) = conv_transpose2d(x (n, c_in, h, w), w (c_in, c_out, kh, kw)) + b,
/// where `g` is the geometry of the adjoint conv2d (see `ops::conv`).
pub fn conv_transpose2d_forward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    w: &CudaSlice<f32>,
    b: Option<&CudaSlice<f32>>,
    y: &mut CudaSlice<f32>,
    g: &ConvGeom,
    c_in: usize,
) -> CudaResult<()> {
    let (k, p) = (g.col_rows(), g.col_cols());
    let n = batch_of(x.len(), c_in * p);
    assert_eq!(w.len(), c_in * k, "conv_transpose2d: weight must be {c_in}x{k}");
    assert_eq!(y.len(), n * g.c * g.h * g.w, "conv_transpose2d: y must be ({n}, {}, {}, {})", g.c, g.h, g.w);
    let mut col = gpu.uninit(n * k * p)?;
    // col[img] (K, P) = W^T (K, c_in) x[img] (c_in, P)
    gemm_batched(
        gpu,
        Mat::new(w, c_in, k).t(),
        Mat::new(x, c_in, p),
        0.0,
        &mut col,
        Batch { count: n, a: 0, b: c_in * p, c: k * p },
    )?;
    fill_bias(gpu, y, b, g.c, g.h * g.w)?;
    col2im(gpu, &col, g, n, y)
}

/// `dx (n, c_in, h, w) += w (c_in, K) im2col(dout[n])`: a conv2d of dout.
pub fn conv_transpose2d_backward_input(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    w: &CudaSlice<f32>,
    dx: &mut CudaSlice<f32>,
    g: &ConvGeom,
    c_in: usize,
) -> CudaResult<()> {
    let (k, p) = (g.col_rows(), g.col_cols());
    let n = batch_of(dout.len(), g.c * g.h * g.w);
    assert_eq!(dx.len(), n * c_in * p, "conv_transpose2d backward: dx must be ({n}, {c_in}, {}, {})", g.oh, g.ow);
    let mut col = gpu.uninit(n * k * p)?;
    im2col(gpu, dout, g, n, &mut col)?;
    // dx[img] (c_in, P) += W (c_in, K) col[img] (K, P)
    gemm_batched(
        gpu,
        Mat::new(w, c_in, k),
        Mat::new(&col, k, p),
        1.0,
        dx,
        Batch { count: n, a: 0, b: k * p, c: c_in * p },
    )
}

/// `dw (c_in, c_out, kh, kw) += sum over the batch of x[n] im2col(dout[n])^T`.
pub fn conv_transpose2d_backward_weight(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    x: &CudaSlice<f32>,
    dw: &mut CudaSlice<f32>,
    g: &ConvGeom,
    c_in: usize,
) -> CudaResult<()> {
    let (k, p) = (g.col_rows(), g.col_cols());
    let n = batch_of(dout.len(), g.c * g.h * g.w);
    assert_eq!(x.len(), n * c_in * p, "conv_transpose2d backward: x must be ({n}, {c_in}, {}, {})", g.oh, g.ow);
    assert_eq!(dw.len(), c_in * k, "conv_transpose2d backward: dw must be {c_in}x{k}");
    let mut col = gpu.uninit(n * k * p)?;
    im2col(gpu, dout, g, n, &mut col)?;
    let mut part = gpu.uninit(n * c_in * k)?;
    // part[img] (c_in, K) = x[img] (c_in, P) col[img]^T (P, K)
    gemm_batched(
        gpu,
        Mat::new(x, c_in, p),
        Mat::new(&col, k, p).t(),
        0.0,
        &mut part,
        Batch { count: n, a: c_in * p, b: k * p, c: c_in * k },
    )?;
    sum_over_batch(gpu, &part, n, dw)
}

/// `y (n, c, plane) = b[c]` in every plane, or 0 without a bias: where the products add onto.
/// linear calls it with plane = 1.
pub fn fill_bias(
    gpu: &Gpu,
    y: &mut CudaSlice<f32>,
    b: Option<&CudaSlice<f32>>,
    c: usize,
    plane: usize,
) -> CudaResult<()> {
    let n = batch_of(y.len(), c * plane);
    let Some(b) = b else { return gpu.stream.memset_zeros(y) };
    assert_eq!(b.len(), c, "the bias must have one value per channel ({c})");
    let (n32, c32, plane32) = (to_u32(n), to_u32(c), to_u32(plane));
    let len = y.len();
    // SAFETY: arguments as in fill_bias's C signature; y is n*c*plane long, b is c long.
    unsafe {
        launch(gpu, &gpu.k.fill_bias, grid_1d(len), |args| {
            args.arg(y); //        float* y
            args.arg(b); //        const float* b
            args.arg(&n32); //     unsigned int n
            args.arg(&c32); //     unsigned int c
            args.arg(&plane32); // unsigned int plane
        })
    }
}

/// `db[c] +=` the sum of dout (n, c, plane) over the batch and plane of channel c.
pub fn conv_backward_bias(gpu: &Gpu, dout: &CudaSlice<f32>, db: &mut CudaSlice<f32>, plane: usize) -> CudaResult<()> {
    let c = db.len();
    let n = batch_of(dout.len(), c * plane);
    let (n32, c32, plane32) = (to_u32(n), to_u32(c), to_u32(plane));
    // One block per channel (see the .cu): each block owns its db[c]. As many threads as
    // the channel has values, in a power of two from a warp up to BIAS_THREADS.
    let threads = (n * plane).next_power_of_two().clamp(32, BIAS_THREADS);
    let cfg = LaunchConfig { grid_dim: (c32, 1, 1), block_dim: (to_u32(threads), 1, 1), shared_mem_bytes: 0 };
    // SAFETY: arguments as in conv_backward_bias's C signature; dout is n*c*plane long.
    unsafe {
        launch(gpu, &gpu.k.conv_backward_bias, cfg, |args| {
            args.arg(dout); //     const float* dout
            args.arg(db); //       float* db
            args.arg(&n32); //     unsigned int n
            args.arg(&c32); //     unsigned int c
            args.arg(&plane32); // unsigned int plane
        })
    }
}

/// `dw[j] += sum over images of part[img][j]`, part holding n blocks of dw.len() values.
pub fn sum_over_batch(gpu: &Gpu, part: &CudaSlice<f32>, n: usize, dw: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(part.len(), n * dw.len(), "sum_over_batch: {n} partials of {} values", dw.len());
    let (n32, len32) = (to_u32(n), to_u32(dw.len()));
    let len = dw.len();
    // SAFETY: arguments as in sum_over_batch's C signature; part is n*len long.
    unsafe {
        launch(gpu, &gpu.k.sum_over_batch, grid_1d(len), |args| {
            args.arg(part); //   const float* part
            args.arg(dw); //     float* dw
            args.arg(&n32); //   unsigned int n
            args.arg(&len32); // unsigned int len
        })
    }
}
