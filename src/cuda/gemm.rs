//! C = A B + beta C on the GPU: `kernels/gemm.cu`, launched with the views of `ops::gemm`.
//!
//! `Mat` is the CPU `Mat` over a device buffer: (rows, cols, row stride, col stride), so
//! `Mat::t` is a free transpose here too. `gemm_batched` runs `Batch::count` independent
//! products in one launch (the grid's z axis), each offset by the batch strides; a stride
//! of 0 shares an operand, as a convolution's weight is shared by every image.

use super::{to_u32, CudaResult, Gpu};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

/// The tile of C one block computes, and its threads: `TILE_M`, `TILE_N` and `THREADS`
/// in kernels/gemm.cu, which must agree.
const TILE_M: usize = 64;
const TILE_N: usize = 64;
const GEMM_THREADS: u32 = 256;

/// A read-only matrix view of a device buffer: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a CudaSlice<f32>,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a CudaSlice<f32>, rows: usize, cols: usize) -> Mat<'a> {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose: same storage, strides swapped.
    pub fn t(self) -> Mat<'a> {
        Mat { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// The index one past the last element this view touches, from `offset`.
    fn end(&self, offset: usize) -> usize {
        if self.rows == 0 || self.cols == 0 { offset } else { offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1 }
    }
}

/// How many products one launch computes, and how far apart (in floats) their operands
/// start. `Batch::one()` is the plain product.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub count: usize,
    pub a: usize,
    pub b: usize,
    pub c: usize,
}

impl Batch {
    pub fn one() -> Batch {
        Batch { count: 1, a: 0, b: 0, c: 0 }
    }
}

/// The kernel's parameters. Mirrors `GemmParams` in kernels/gemm.cu, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub a_bs: u32,
    pub b_bs: u32,
    pub c_bs: u32,
    pub beta: f32,
}
// SAFETY: plain old data with the C layout of the struct in gemm.cu (whose static_assert
// checks the same size as this one).
unsafe impl DeviceRepr for GemmParams {}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 44);

/// C (m x n, row-major) = A B + beta C. `beta` is 0 (C is not read) or 1.
pub fn gemm(gpu: &Gpu, a: Mat, b: Mat, beta: f32, c: &mut CudaSlice<f32>) -> CudaResult<()> {
    gemm_batched(gpu, a, b, beta, c, Batch::one())
}

/// For z in 0..batch.count: C_z = A_z B_z + beta C_z, where X_z is the view X moved
/// z * batch.x floats along its buffer.
pub fn gemm_batched(gpu: &Gpu, a: Mat, b: Mat, beta: f32, c: &mut CudaSlice<f32>, batch: Batch) -> CudaResult<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: A is {m}x{k} but B is {}x{n}", b.rows);
    if m == 0 || n == 0 || batch.count == 0 {
        return Ok(());
    }
    let last = batch.count - 1;
    assert!(a.end(last * batch.a) <= a.data.len(), "gemm: A's views overrun its {} values", a.data.len());
    assert!(b.end(last * batch.b) <= b.data.len(), "gemm: B's views overrun its {} values", b.data.len());
    assert!(last * batch.c + m * n <= c.len(), "gemm: C must hold {} products of {m}x{n} values, {} apart", batch.count, batch.c);
    let p = GemmParams {
        m: to_u32(m), n: to_u32(n), k: to_u32(k),
        a_rs: to_u32(a.rs), a_cs: to_u32(a.cs), b_rs: to_u32(b.rs), b_cs: to_u32(b.cs),
        a_bs: to_u32(batch.a), b_bs: to_u32(batch.b), c_bs: to_u32(batch.c),
        beta,
    };
    // One block per 64 x 64 tile of C (x: columns, y: rows), one z-slice per product.
    let cfg = LaunchConfig {
        grid_dim: (to_u32(n.div_ceil(TILE_N)), to_u32(m.div_ceil(TILE_M)), to_u32(batch.count)),
        block_dim: (GEMM_THREADS, 1, 1),
        shared_mem_bytes: 0, // the slabs are static __shared__ arrays
    };
    let mut launch = gpu.stream.launch_builder(&gpu.k.gemm);
    launch.arg(a.data); // const float* a
    launch.arg(b.data); // const float* b
    launch.arg(c); //      float* c
    launch.arg(&p); //     GemmParams p
    // SAFETY: the arguments match gemm's C signature, and the asserts above keep every
    // index the kernel forms inside its buffer.
    unsafe { launch.launch(cfg) }?;
    Ok(())
}
