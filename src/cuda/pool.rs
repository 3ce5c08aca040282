//! Max-pool 2x2 / stride 2 with indices, and max-unpool, on the GPU: kernels/pool.cu.
//!
//! Same signatures as `ops::pool` with device buffers; the indices are a `CudaSlice<u32>`
//! of flat positions in each h x w plane, exactly the CPU's. The maps that write through
//! the indices (pool backward, unpool forward) run as gathers, one thread per position of
//! the full plane; see the .cu for why that is exact and race-free.

use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use crate::geom::POOL;
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// The planes' sizes. Mirrors `PoolParams` in kernels/pool.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PoolParams {
    pub planes: u32,
    pub h: u32,
    pub w: u32,
    pub ph: u32,
    pub pw: u32,
}
// SAFETY: plain old data with the C layout of the struct in pool.cu (same size, checked
// there by static_assert).
unsafe impl DeviceRepr for PoolParams {}
const _: () = assert!(std::mem::size_of::<PoolParams>() == 20);

/// The sizes for full planes of `full` floats each in a buffer of `len`, checked.
fn params(len: usize, h: usize, w: usize, ph: usize, pw: usize) -> PoolParams {
    assert!(ph == h / POOL && pw == w / POOL, "max-pool: {ph}x{pw} is not the pooled size of {h}x{w}");
    assert!(h * w > 0 && len.is_multiple_of(h * w), "max-pool: {len} values are not whole {h}x{w} planes");
    PoolParams { planes: to_u32(len / (h * w)), h: to_u32(h), w: to_u32(w), ph: to_u32(ph), pw: to_u32(pw) }
}

/// y (planes, h/2, w/2) = max over each 2x2 window of x (planes, h, w); idx its argmax.
pub fn maxpool2d_forward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
    idx: &mut CudaSlice<u32>,
    h: usize,
    w: usize,
) -> CudaResult<()> {
    let (oh, ow) = (h / POOL, w / POOL);
    assert!(oh > 0 && ow > 0, "maxpool2d needs planes of at least 2x2, got {h}x{w}");
    let p = params(x.len(), h, w, oh, ow);
    let cells = p.planes as usize * oh * ow;
    assert!(y.len() == cells && idx.len() == cells, "maxpool2d: y and idx must hold {cells} values");
    // SAFETY: arguments as in the C signature; x holds `planes` full planes, y and idx as
    // many pooled ones. One thread per pooled cell.
    unsafe {
        launch(gpu, &gpu.k.maxpool2d_forward, grid_1d(cells), |args| {
            args.arg(x); //   const float* x
            args.arg(y); //   float* y
            args.arg(idx); // unsigned int* idx
            args.arg(&p); //  PoolParams p
        })
    }
}

/// dx (planes, h, w) += dout (planes, oh, ow) routed to the argmax of each window.
pub fn maxpool2d_backward(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    idx: &CudaSlice<u32>,
    dx: &mut CudaSlice<f32>,
    h: usize,
    w: usize,
) -> CudaResult<()> {
    let p = params(dx.len(), h, w, h / POOL, w / POOL);
    let cells = p.planes as usize * (h / POOL) * (w / POOL);
    assert!(dout.len() == cells && idx.len() == cells, "maxpool2d backward: dout and idx must hold {cells} values");
    // Planes smaller than a window have no cells, and dx gets nothing; the grid (one thread
    // per pixel) would not be empty, and each thread would read idx.
    if cells == 0 {
        return Ok(());
    }
    let pixels = dx.len();
    // SAFETY: as above. One thread per position of the full planes (a gather).
    unsafe {
        launch(gpu, &gpu.k.maxpool2d_backward, grid_1d(pixels), |args| {
            args.arg(dout); // const float* dout
            args.arg(idx); //  const unsigned int* idx
            args.arg(dx); //   float* dx
            args.arg(&p); //   PoolParams p
        })
    }
}

/// y (planes, h, w) = x (planes, ph, pw) placed at its indices, zero elsewhere.
#[allow(clippy::too_many_arguments)] // the CPU signature, plus the Gpu
pub fn maxunpool2d_forward(
    gpu: &Gpu,
    x: &CudaSlice<f32>,
    idx: &CudaSlice<u32>,
    y: &mut CudaSlice<f32>,
    ph: usize,
    pw: usize,
    h: usize,
    w: usize,
) -> CudaResult<()> {
    let p = params(y.len(), h, w, ph, pw);
    let cells = p.planes as usize * ph * pw;
    assert!(x.len() == cells && idx.len() == cells, "maxunpool2d: x and idx must hold {cells} values");
    let pixels = y.len();
    // SAFETY: as above. One thread per position of the full planes (a gather); it writes
    // every one of them, the zeros included.
    unsafe {
        launch(gpu, &gpu.k.maxunpool2d_forward, grid_1d(pixels), |args| {
            args.arg(x); //   const float* x
            args.arg(idx); // const unsigned int* idx
            args.arg(y); //   float* y
            args.arg(&p); //  PoolParams p
        })
    }
}

/// dx (planes, ph, pw) += dout (planes, h, w) read at the indices.
#[allow(clippy::too_many_arguments)] // the CPU signature, plus the Gpu
pub fn maxunpool2d_backward(
    gpu: &Gpu,
    dout: &CudaSlice<f32>,
    idx: &CudaSlice<u32>,
    dx: &mut CudaSlice<f32>,
    ph: usize,
    pw: usize,
    h: usize,
    w: usize,
) -> CudaResult<()> {
    let p = params(dout.len(), h, w, ph, pw);
    let cells = p.planes as usize * ph * pw;
    assert!(dx.len() == cells && idx.len() == cells, "maxunpool2d backward: dx and idx must hold {cells} values");
    // SAFETY: as above; the kernel skips an index outside its h*w plane. One thread per
    // pooled cell.
    unsafe {
        launch(gpu, &gpu.k.maxunpool2d_backward, grid_1d(cells), |args| {
            args.arg(dout); // const float* dout
            args.arg(idx); //  const unsigned int* idx
            args.arg(dx); //   float* dx
            args.arg(&p); //   PoolParams p
        })
    }
}
