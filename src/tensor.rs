//! Tensors: f32 arrays that live on one device.
//!
//! A `Tensor` is an enum over devices, so that the tape and the models are written once:
//! every op matches on the variant of its inputs and calls the kernel of that device, the
//! CPU function of `ops/` or its CUDA launcher of `cuda/` (same name).
//!
//! The CPU storage is ndarray's `ArcArray`: cloning a tensor (to record it on the tape, to
//! hand it to a reshape) only bumps a reference count, and writing to a shared one copies it
//! first (copy on write), so the optimiser can update a parameter in place once the tape that
//! borrowed it is gone. Every array here is in standard (row-major, C) layout, which is what
//! lets the kernels in `ops/` work on plain slices. The CUDA storage (`cuda::tensor`) behaves
//! the same way with a device buffer.
//!
//! Values cross between devices only where asked, with `to_device` / `to_cpu` (or `to_vec`,
//! a host copy): `as_slice` is the CPU's and panics on a GPU tensor, so a hidden copy cannot
//! creep into a loop.

use crate::cuda::tensor::CudaTensor;
use crate::cuda::Gpu;
use cudarc::driver::CudaSlice;
use ndarray::{ArcArray, ArrayD, IxDyn};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;

/// The random generator of the whole crate: seeded, portable and reproducible (never
/// `thread_rng`), so the same seed gives the same initial weights and batches everywhere.
pub type Rng64 = ChaCha8Rng;

/// Seeds the crate's generator.
pub fn rng_from_seed(seed: u64) -> Rng64 {
    rand::SeedableRng::seed_from_u64(seed)
}

#[derive(Clone, Debug)]
pub enum Tensor {
    Cpu(ArcArray<f32, IxDyn>),
    Cuda(CudaTensor),
}

/// Where a tensor lives: the host, or one GPU (a handle to its context, stream and kernels).
#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Cuda(Arc<Gpu>),
}

impl Device {
    /// The GPU with every kernel compiled, or the probe's one line saying what is missing.
    pub fn cuda() -> Result<Device, String> {
        Gpu::new().map(|gpu| Device::Cuda(Arc::new(gpu)))
    }

    /// "cpu" or "cuda": what config.json records.
    pub fn kind(&self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }
}

impl std::fmt::Display for Device {
    /// "cpu", or "cuda (<the card's name>)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(gpu) => write!(f, "cuda ({})", gpu.name),
        }
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Tensor {
        Tensor::from_array(a)
    }
}

impl Tensor {
    pub fn from_array(a: ArrayD<f32>) -> Tensor {
        let a = if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() };
        Tensor::Cpu(a.into_shared())
    }

    /// A tensor of the given shape from row-major data.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Tensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, data.len(), "shape {shape:?} needs {n} values, got {}", data.len());
        Tensor::from_array(ArrayD::from_shape_vec(IxDyn(shape), data).expect("checked above"))
    }

    /// Zeros. A step allocates a few dozen tensors of up to a few MB (outputs, gradients),
    /// and glibc hands back reused memory that must be cleared: a serial memset leaves the
    /// other cores idle, so large tensors are cleared in parallel, in slices.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::from_vec(shape, zeros_vec(shape.iter().product()))
    }

    /// Zeros on `device`: where an op writes its output, or a gradient starts.
    pub fn zeros_on(shape: &[usize], device: &Device) -> Tensor {
        match device {
            Device::Cpu => Tensor::zeros(shape),
            Device::Cuda(gpu) => Tensor::Cuda(CudaTensor::zeros(gpu, shape)),
        }
    }

    /// Where an op writes its output when its kernel writes every value: zeros on the CPU
    /// (some CPU forward functions add into their output), and left unset on the GPU
    /// (`Gpu::uninit`), which saves a memset per op in a step bound by such calls.
    pub fn output_on(shape: &[usize], device: &Device) -> Tensor {
        match device {
            Device::Cpu => Tensor::zeros(shape),
            Device::Cuda(gpu) => Tensor::Cuda(CudaTensor::uninit(gpu, shape)),
        }
    }

    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_vec(&[1], vec![v])
    }

    /// U(-bound, bound), PyTorch's default initialisation for weights and biases when
    /// `bound = 1/sqrt(fan_in)`.
    pub fn uniform(shape: &[usize], bound: f32, rng: &mut Rng64) -> Tensor {
        let n = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
        Tensor::from_vec(shape, data)
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::Cpu(a) => a.shape(),
            Tensor::Cuda(t) => t.shape(),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Tensor::Cpu(_) => Device::Cpu,
            Tensor::Cuda(t) => Device::Cuda(t.gpu().clone()),
        }
    }

    /// This tensor on `device`: the same storage if it is already there (no copy), else an
    /// upload or a download (which waits for the GPU's queued work).
    pub fn to_device(&self, device: &Device) -> Tensor {
        match (self, device) {
            (Tensor::Cpu(_), Device::Cpu) => self.clone(),
            (Tensor::Cpu(_), Device::Cuda(gpu)) => {
                Tensor::Cuda(CudaTensor::from_host(gpu, self.shape(), self.as_slice()))
            }
            (Tensor::Cuda(t), Device::Cpu) => Tensor::from_vec(t.shape(), t.to_host()),
            (Tensor::Cuda(t), Device::Cuda(gpu)) => {
                assert!(Arc::ptr_eq(t.gpu(), gpu), "moving a tensor between two GPUs is not supported");
                self.clone()
            }
        }
    }

    /// This tensor on the host (the same storage if it is there already).
    pub fn to_cpu(&self) -> Tensor {
        self.to_device(&Device::Cpu)
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row-major values of a CPU tensor. A CUDA tensor's values are on the GPU: take a
    /// host copy with `to_cpu()` (or `to_vec()`) first.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Tensor::Cpu(a) => a.as_slice().expect("tensors are kept in standard layout"),
            Tensor::Cuda(_) => panic!("{}", ON_GPU),
        }
    }

    /// Mutable values of a CPU tensor; copies first if the storage is shared (copy on write).
    pub fn as_slice_mut(&mut self) -> &mut [f32] {
        match self {
            Tensor::Cpu(a) => a.as_slice_mut().expect("tensors are kept in standard layout"),
            Tensor::Cuda(_) => panic!("{}", ON_GPU),
        }
    }

    /// The device buffer of a CUDA tensor, the launchers' twin of `as_slice`.
    pub fn cuda(&self) -> &CudaSlice<f32> {
        match self {
            Tensor::Cuda(t) => t.slice(),
            Tensor::Cpu(_) => panic!("{}", MIXED),
        }
    }

    /// The device buffer of a CUDA tensor, to write; copies first if shared (copy on write).
    pub fn cuda_mut(&mut self) -> &mut CudaSlice<f32> {
        match self {
            Tensor::Cuda(t) => t.slice_mut(),
            Tensor::Cpu(_) => panic!("{}", MIXED),
        }
    }

    /// A host copy of the values, from either device (a download waits for the GPU).
    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            Tensor::Cpu(_) => self.as_slice().to_vec(),
            Tensor::Cuda(t) => t.to_host(),
        }
    }

    /// The same values under another shape with as many elements; shares the storage.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, self.len(), "cannot reshape {:?} to {shape:?}", self.shape());
        match self {
            Tensor::Cpu(a) => {
                Tensor::Cpu(a.clone().into_shape_with_order(IxDyn(shape)).expect("standard layout reshapes freely"))
            }
            Tensor::Cuda(t) => Tensor::Cuda(t.reshape(shape)),
        }
    }
}

/// Tensors of at least this many values (256 KB) are zeroed in parallel.
const PARALLEL_ZEROS: usize = 1 << 16;

/// n zeros, cleared in parallel (see `Tensor::zeros`); also the ops' large scratch buffers.
/// Each thread clears its chunks of the new buffer's memory with one `fill` (a memset,
/// `zeroed_chunks_vec` with nothing to add), the only write each value gets: twice as fast
/// as collecting zeros through rayon's iterators, which write them one at a time (2.2
/// million zeros, h900's weight gradients, in 68 and 93 us against 199 on two threads of the
/// Zen 3 development machine, best of 300, two runs).
pub(crate) fn zeros_vec(n: usize) -> Vec<f32> {
    if n < PARALLEL_ZEROS {
        return vec![0.0; n];
    }
    zeroed_chunks_vec(n, PARALLEL_ZEROS, |_, _| {})
}

/// A new buffer of n values written once each, in parallel chunks of `chunk` positions, from
/// `values(range)`, the values of the positions in `range`: no clearing pass first, as a
/// buffer from `zeros_vec` gets, for kernels that write every value of their output (ReLU).
/// Panics if `values` gives fewer values than its range has positions.
pub(crate) fn written_vec<I: Iterator<Item = f32>>(
    n: usize,
    chunk: usize,
    values: impl Fn(Range<usize>) -> I + Sync,
) -> Vec<f32> {
    let mut data = Vec::with_capacity(n);
    data.spare_capacity_mut()[..n].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, out)| {
        let (start, len) = (i * chunk.max(1), out.len());
        let mut written = 0;
        for (out, v) in out.iter_mut().zip(values(start..start + len)) {
            out.write(v);
            written += 1;
        }
        assert_eq!(written, len, "written_vec: too few values for positions {start}..");
    });
    // SAFETY: the capacity is at least n, the chunks cover the first n values, and each chunk
    // wrote all of its values (asserted) before this line is reached.
    unsafe { data.set_len(n) };
    data
}

/// A new buffer of n values in chunks of `chunk`, each chunk zeroed and at once handed to
/// `fill(index of the chunk, chunk)` by the same task, while it is in cache: for kernels that
/// write into zeros a chunk (a plane) at a time, such as the unpool's, in place of a buffer
/// cleared whole beforehand, in a pass over memory of its own (`zeros_vec`).
pub(crate) fn zeroed_chunks_vec(n: usize, chunk: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    zeroed_chunks_vec_init(n, chunk, || (), |_, i, values| fill(i, values))
}

/// `zeroed_chunks_vec` whose tasks each keep a scratch state made by `init` and handed to
/// every `fill` they run, as rayon's `for_each_init` does: for kernels with buffers of their
/// own per chunk (the direct convolution's padded image, an image per chunk).
pub(crate) fn zeroed_chunks_vec_init<S>(
    n: usize,
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut data = Vec::with_capacity(n);
    data.spare_capacity_mut()[..n].par_chunks_mut(chunk.max(1)).enumerate().for_each_init(
        init,
        |state, (i, values)| {
            values.fill(MaybeUninit::new(0.0));
            // SAFETY: every value of the chunk was written just above, and MaybeUninit<f32> has
            // f32's size and alignment, so the chunk may be seen as initialised f32s.
            let values = unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) };
            fill(state, i, values);
        },
    );
    // SAFETY: the capacity is at least n, and the chunks, which cover the first n values,
    // were each zeroed before `fill` saw them.
    unsafe { data.set_len(n) };
    data
}

const ON_GPU: &str =
    "this tensor lives on the GPU: take a host copy with to_cpu() (or to_vec()) before reading its values";
const MIXED: &str = "a CPU tensor where a GPU one was expected: an op's inputs must all live on one device (move the model with Model::to_device, the data with Tensor::to_device)";
