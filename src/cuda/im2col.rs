//! im2col and col2im for a whole batch: `im2col` and `col2im` in kernels/conv.cu.
//!
//! The CPU functions (`cpu::im2col`) take one image; these take n images at once, because
//! a launch per image would cost more than the copying. The column buffer is (n, K, P),
//! image after image, each image's block laid out exactly as the CPU's: K = c*kh*kw rows,
//! P = oh*ow columns. col2im is the gather form (one thread per pixel; see the .cu).

use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use crate::geom::ConvGeom;
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// A convolution's geometry and batch size. Mirrors `ConvParams` in kernels/conv.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConvParams {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride: u32,
    pub padding: u32,
    pub oh: u32,
    pub ow: u32,
}
// SAFETY: plain old data with the C layout of the struct in conv.cu (same size, checked
// there by static_assert).
unsafe impl DeviceRepr for ConvParams {}
const _: () = assert!(std::mem::size_of::<ConvParams>() == 40);

impl ConvParams {
    /// The CPU geometry `g` for a batch of `n` images.
    pub fn new(g: &ConvGeom, n: usize) -> ConvParams {
        ConvParams {
            n: to_u32(n),
            c: to_u32(g.c),
            h: to_u32(g.h),
            w: to_u32(g.w),
            kh: to_u32(g.kh),
            kw: to_u32(g.kw),
            stride: to_u32(g.stride),
            padding: to_u32(g.padding),
            oh: to_u32(g.oh),
            ow: to_u32(g.ow),
        }
    }
}

/// col (n, K, P) = the patches of x (n, g.c, g.h, g.w), n images. Overwrites col.
pub fn im2col(gpu: &Gpu, x: &CudaSlice<f32>, g: &ConvGeom, n: usize, col: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), n * g.c * g.h * g.w, "im2col: x must hold {n} images of {}x{}x{}", g.c, g.h, g.w);
    let len = n * g.col_rows() * g.col_cols();
    assert_eq!(col.len(), len, "im2col: col must hold {n} blocks of {}x{}", g.col_rows(), g.col_cols());
    let p = ConvParams::new(g, n);
    // SAFETY: arguments as in im2col's C signature; the lengths were checked against the
    // geometry the kernel indexes with. One thread per col entry.
    unsafe {
        launch(gpu, &gpu.k.im2col, grid_1d(len), |args| {
            args.arg(x); //   const float* x
            args.arg(col); // float* col
            args.arg(&p); //  ConvParams g
        })
    }
}

/// x (n, g.c, g.h, g.w) += the adjoint of im2col applied to col (n, K, P).
pub fn col2im(gpu: &Gpu, col: &CudaSlice<f32>, g: &ConvGeom, n: usize, x: &mut CudaSlice<f32>) -> CudaResult<()> {
    assert_eq!(x.len(), n * g.c * g.h * g.w, "col2im: x must hold {n} images of {}x{}x{}", g.c, g.h, g.w);
    assert_eq!(
        col.len(),
        n * g.col_rows() * g.col_cols(),
        "col2im: col must hold {n} blocks of {}x{}",
        g.col_rows(),
        g.col_cols()
    );
    let p = ConvParams::new(g, n);
    let pixels = x.len();
    // SAFETY: as for im2col; one thread per image pixel.
    unsafe {
        launch(gpu, &gpu.k.col2im, grid_1d(pixels), |args| {
            args.arg(col); // const float* col
            args.arg(x); //   float* x
            args.arg(&p); //  ConvParams g
        })
    }
}
