//! C = A B + beta C on the GPU: `kernels/gemm.cu`, launched with the views of `cpu::gemm`.
//!
//! `Mat` is the CPU `Mat` over a device buffer: (rows, cols, row stride, col stride), so
//! `Mat::t` is a free transpose here too. `gemm_batched` runs `Batch::count` independent
//! products in one launch (the grid's z axis), each offset by the batch strides; a stride
//! of 0 shares an operand, as a convolution's weight is shared by every image.
//!
//! A product with too few 64 x 64 tiles to fill the GPU (a batch of 64 times a weight is
//! one row of tiles) is split along k: each slice is a block of its own, writing a partial
//! product, and `gemm_sum_splits` adds the partials in a fixed order (kernels/gemm.cu says
//! more).

use super::{launch, to_u32, CudaResult, Gpu};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

/// The tile of C one block computes, and its threads: `TILE_M`, `TILE_N` and `THREADS`
/// in kernels/gemm.cu, which must agree.
const TILE_M: usize = 64;
const TILE_N: usize = 64;
const GEMM_THREADS: u32 = 256;
/// `TILE_K` in kernels/gemm.cu: k slices are whole slabs.
const TILE_K: usize = 16;

/// Blocks a launch aims for when it splits k: about four per multiprocessor of an H100 or
/// H200 (132), so that while one block waits on its loads another computes. A constant
/// rather than the device's count, so that how a product is split, and so its rounding, is
/// the same on every GPU.
const TARGET_BLOCKS: usize = 512;
/// The shortest slice of k worth a block: 2 slabs.
const MIN_SLICE: usize = 32;

/// How many slices of k a product of `tiles` tiles is computed in (1: not split).
fn split_count(tiles: usize, k: usize) -> usize {
    TARGET_BLOCKS.div_ceil(tiles).min(k / MIN_SLICE).max(1)
}

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
        if self.rows == 0 || self.cols == 0 {
            offset
        } else {
            offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
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
    pub splits: u32,
    pub k_split: u32,
    pub beta: f32,
}
// SAFETY: plain old data with the C layout of the struct in gemm.cu (whose static_assert
// checks the same size as this one).
unsafe impl DeviceRepr for GemmParams {}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 52);

/// The sum of split partials' parameters. Mirrors `SplitSum` in kernels/gemm.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SplitSum {
    pub mn: u32,
    pub count: u32,
    pub splits: u32,
    pub c_bs: u32,
    pub beta: f32,
}
// SAFETY: as GemmParams (gemm.cu's static_assert checks the size).
unsafe impl DeviceRepr for SplitSum {}
const _: () = assert!(std::mem::size_of::<SplitSum>() == 20);

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
    assert!(
        last * batch.c + m * n <= c.len(),
        "gemm: C must hold {} products of {m}x{n} values, {} apart",
        batch.count,
        batch.c
    );
    let tiles = m.div_ceil(TILE_M) * n.div_ceil(TILE_N) * batch.count;
    let splits = split_count(tiles, k);
    let dims = GemmParams {
        m: to_u32(m),
        n: to_u32(n),
        k: to_u32(k),
        a_rs: to_u32(a.rs),
        a_cs: to_u32(a.cs),
        b_rs: to_u32(b.rs),
        b_cs: to_u32(b.cs),
        a_bs: to_u32(batch.a),
        b_bs: to_u32(batch.b),
        c_bs: to_u32(batch.c),
        splits: 1,
        k_split: to_u32(k),
        beta,
    };
    if splits == 1 {
        return launch_gemm(gpu, a, b, c, dims, batch.count);
    }
    // Slices of whole slabs; with them rounded up, fewer may cover k.
    let k_split = k.div_ceil(splits).next_multiple_of(TILE_K);
    let splits = k.div_ceil(k_split);
    let need = batch.count * splits * m * n;
    let mut scratch = gpu.split_scratch.lock().expect("the split scratch is only locked here");
    if scratch.as_ref().is_none_or(|s| s.len() < need) {
        // Unset: the split products write every one of their m x n values (the grid
        // covers every tile) before gemm_sum_splits reads any.
        *scratch = Some(gpu.uninit(need)?);
    }
    let parts = scratch.as_mut().expect("allocated above");
    let partial =
        GemmParams { c_bs: to_u32(m * n), splits: to_u32(splits), k_split: to_u32(k_split), beta: 0.0, ..dims };
    launch_gemm(gpu, a, b, parts, partial, batch.count * splits)?;
    let p =
        SplitSum { mn: to_u32(m * n), count: to_u32(batch.count), splits: to_u32(splits), c_bs: to_u32(batch.c), beta };
    // SAFETY: the arguments match gemm_sum_splits's C signature; parts holds count x
    // splits partials of m x n, and C's products lie in it (asserted above).
    unsafe {
        launch(gpu, &gpu.k.gemm_sum_splits, super::grid_1d(batch.count * m * n), |args| {
            args.arg(&*parts); // const float* parts
            args.arg(c); //      float* c
            args.arg(&p); //     SplitSum p
        })
    }
}

/// One launch of the tiled kernel: a grid of tiles of C for each of `blocks_z` products
/// (products, or products x slices of k).
fn launch_gemm(gpu: &Gpu, a: Mat, b: Mat, c: &mut CudaSlice<f32>, p: GemmParams, blocks_z: usize) -> CudaResult<()> {
    let (m, n) = (p.m as usize, p.n as usize);
    // One block per 64 x 64 tile of C (x: columns, y: rows), one z-slice per product.
    let cfg = LaunchConfig {
        grid_dim: (to_u32(n.div_ceil(TILE_N)), to_u32(m.div_ceil(TILE_M)), to_u32(blocks_z)),
        block_dim: (GEMM_THREADS, 1, 1),
        shared_mem_bytes: 0, // the slabs are static __shared__ arrays
    };
    // SAFETY: the arguments match gemm's C signature, and the caller's asserts keep every
    // index the kernel forms inside its buffer.
    unsafe {
        launch(gpu, &gpu.k.gemm, cfg, |args| {
            args.arg(a.data); // const float* a
            args.arg(b.data); // const float* b
            args.arg(c); //      float* c
            args.arg(&p); //     GemmParams p
        })
    }
}
