//! The GPU: probe, NVRTC compile of `kernels/*.cu`, a struct of named kernels, launchers.
//!
//! Read in this order:
//!
//! 1. `probe`    — is there a driver, a device and NVRTC? Asked before any cudarc call,
//!    because cudarc panics when a library is missing.
//! 2. `kernels`  — the `.cu` sources (embedded), `compile_kernels`, and `Kernels`, one
//!    field per kernel.
//! 3. `Gpu` (here) — a context, a stream and the loaded kernels; upload and download.
//! 4. One launcher file per op family, with the names of the CPU functions in `src/ops`
//!    and of the kernels in `kernels/`: `elementwise` (relu, add, scale), `gemm`, `conv`
//!    (im2col, col2im, conv2d, conv_transpose2d), `linear`, `pool`, `loss`, `adam`, and
//!    `data` (the training set on the device, batches gathered there).
//!    `graph` records a run of launches as a CUDA graph and replays it (behind a switch;
//!    not yet run on a GPU).
//! 5. `tensor`   — `CudaTensor`, the storage of `Tensor::Cuda`, which the ops in `src/ops`
//!    hand to these launchers.
//!
//! A launcher takes device buffers (`CudaSlice`) where its CPU twin takes slices, checks
//! the same shapes with the same asserts (a kernel indexing out of bounds fails silently or
//! much later, so the host checks every length first), and queues the kernel on the stream.
//! Each goes through the one helper `launch`, and each argument it pushes carries a comment
//! naming its C parameter. Launches are
//! asynchronous: errors in a kernel surface at the next synchronising call (a download).
//!
//! Everything here is f32 except the pool indices (u32) and the loss partial sums (f64).

pub mod adam;
pub mod conv;
pub mod data;
pub mod elementwise;
pub mod gemm;
pub mod graph;
pub mod im2col;
pub mod kernels;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod probe;
pub mod tensor;

pub use kernels::{compile_kernels, compile_source, Kernels, SOURCES};
pub use probe::{probe, probe_nvrtc};
pub use tensor::{CudaTensor, DRIVER_FAILED, LAUNCH_FAILED};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, DriverError, LaunchArgs, LaunchConfig,
    ValidAsZeroBits,
};
use std::sync::Arc;

/// What a launcher returns: the driver's error if the launch could not be queued.
pub type CudaResult<T> = Result<T, DriverError>;

/// One GPU, ready to run the kernels.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    /// Every launch and copy goes to this one stream, so they run in the order issued and
    /// a kernel always sees the results of the one before it.
    pub stream: Arc<CudaStream>,
    pub k: Kernels,
    /// The device's name, for logs.
    pub name: String,
    /// Scratch for the partial products of a GEMM split along k (`gemm::gemm_batched`),
    /// kept and grown rather than allocated per product: a step is bound by the host's
    /// calls into the driver, and an allocation and a free are two of them. Safe to reuse
    /// because every use is queued on `stream`, in order.
    pub(crate) split_scratch: std::sync::Mutex<Option<CudaSlice<f32>>>,
}

impl Gpu {
    /// Device 0 with every kernel compiled and loaded, or one line saying what is missing.
    pub fn new() -> Result<Gpu, String> {
        probe()?;
        let ptx = compile_kernels()?;
        let ctx = CudaContext::new(0).map_err(|e| format!("cannot open CUDA device 0: {e}"))?;
        // cudarc gives every buffer two events to order its uses across streams; with one
        // stream they are never needed, and creating them on each of the thousands of
        // allocations of a training step costs more than the small kernels themselves.
        // SAFETY: everything here runs on `stream` alone (see its field), so no buffer is
        // ever used by two streams.
        unsafe { ctx.disable_event_tracking() };
        // The legacy default stream unless the capture path is switched on (`graph`): a
        // stream can be captured into a CUDA graph only if it is one of our own.
        let stream = if graph::requested() {
            ctx.new_stream().map_err(|e| format!("cannot create a CUDA stream: {e}"))?
        } else {
            ctx.default_stream()
        };
        let k = Kernels::load(&ctx, ptx).map_err(|e| format!("cannot load the kernels' PTX: {e}"))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device 0".into());
        Ok(Gpu { ctx, stream, k, name, split_scratch: std::sync::Mutex::new(None) })
    }

    /// A device copy of `host`.
    pub fn upload<T: DeviceRepr>(&self, host: &[T]) -> CudaResult<CudaSlice<T>> {
        self.stream.clone_htod(host)
    }

    /// A host copy of `dev`; waits for the stream's work before it.
    pub fn download<T: DeviceRepr>(&self, dev: &CudaSlice<T>) -> CudaResult<Vec<T>> {
        self.stream.clone_dtoh(dev)
    }

    /// `len` zeros on the device.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> CudaResult<CudaSlice<T>> {
        self.stream.alloc_zeros(len)
    }

    /// `len` values that the next kernel on the stream writes in full, left unset: no memset
    /// queued, one call into the driver fewer, and a training step on the GPU is bound by
    /// those calls. For plain numbers (f32, f64, u32: every bit pattern is one), so a value
    /// read before it is written is a wrong number, never undefined behaviour, and
    /// `compute-sanitizer --tool initcheck` reports it (`SANITIZE=1 scripts/gpu-check.sh`).
    pub fn uninit<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> CudaResult<CudaSlice<T>> {
        // SAFETY: as said above: T is a plain number type, and the memory stays on the
        // device, where the caller's kernel writes it before anything reads it.
        unsafe { self.stream.alloc(len) }
    }

    /// Waits until every queued launch has finished; reports a kernel's failure.
    pub fn synchronize(&self) -> CudaResult<()> {
        self.stream.synchronize()
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({})", self.name)
    }
}

/// Queues `kernel` on the GPU's stream over the grid `cfg`, with the arguments that `args`
/// pushes (`args.arg(x); // const float* x`: one a line, in the C signature's order, each beside
/// the C parameter it fills). A grid with no blocks, the launch of an empty tensor, queues
/// nothing: CUDA refuses a zero-sized grid, and there is nothing to compute. Every launcher
/// goes through here, so each says only what differs: its kernel, its grid, its arguments.
///
/// # Safety
///
/// The arguments must be the kernel's C parameters in number, order and type, and every
/// buffer must hold all that the kernel indexes in it: the device checks neither, so each
/// launcher asserts the lengths first and says why its call is sound.
pub(crate) unsafe fn launch<'a>(
    gpu: &'a Gpu,
    kernel: &'a CudaFunction,
    cfg: LaunchConfig,
    args: impl FnOnce(&mut LaunchArgs<'a>),
) -> CudaResult<()> {
    let (x, y, z) = cfg.grid_dim;
    if x == 0 || y == 0 || z == 0 {
        return Ok(());
    }
    let mut builder = gpu.stream.launch_builder(kernel);
    args(&mut builder);
    // SAFETY: the caller's promise, above.
    unsafe { builder.launch(cfg) }?;
    Ok(())
}

/// Threads per block of the one-thread-per-element kernels: a multiple of the 32-thread
/// warp, and small enough that many blocks share each multiprocessor.
pub(crate) const THREADS: u32 = 256;

/// A 1-D grid with one thread per element for `n` elements (`n > 0`).
pub(crate) fn grid_1d(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (to_u32(n.div_ceil(THREADS as usize)), 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A size as the kernels' `unsigned int`; larger tensors are not supported (and are
/// far beyond this study: the whole MNIST training set is 47 million floats).
pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("size {n} does not fit the kernels' 32-bit indices"))
}
