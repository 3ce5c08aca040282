//! The storage of `Tensor::Cuda`: a shape, a device buffer, and the GPU it lives on.
//!
//! It mirrors the CPU variant's `ArcArray`: the buffer sits behind an `Arc`, so cloning a
//! tensor (to record it on the tape, to reshape it) copies no data, and writing to a shared
//! one copies it first (copy on write). The optimiser therefore updates a parameter in
//! place once the tape that borrowed it is gone, on either device.
//!
//! Each tensor keeps a handle to its `Gpu`, so an op finds the stream and the kernels from
//! its inputs alone, exactly as a CPU op finds its data.
//!
//! Driver errors here (out of memory, a lost device) panic with the driver's message: they
//! happen in the middle of an op, which has no way to hand a `Result` back through the
//! tape. The places where the program first meets the driver (`Gpu::new`, the uploads of
//! the data set) return one instead.

use super::Gpu;
use cudarc::driver::CudaSlice;
use std::sync::Arc;

/// What a failed allocation or copy says before the driver's error.
pub const DRIVER_FAILED: &str = "a CUDA allocation or copy failed (out of GPU memory, or the device was lost)";
/// What a failed kernel launch says before the driver's error.
pub const LAUNCH_FAILED: &str = "a CUDA kernel launch failed (out of GPU memory, or the device was lost)";

#[derive(Clone)]
pub struct CudaTensor {
    shape: Vec<usize>,
    data: Arc<CudaSlice<f32>>,
    gpu: Arc<Gpu>,
}

impl CudaTensor {
    /// A device copy of row-major `host` values.
    pub fn from_host(gpu: &Arc<Gpu>, shape: &[usize], host: &[f32]) -> CudaTensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            host.len(),
            "shape {shape:?} needs {} values, got {}",
            shape.iter().product::<usize>(),
            host.len()
        );
        let data = gpu.upload(host).expect(DRIVER_FAILED);
        CudaTensor { shape: shape.to_vec(), data: Arc::new(data), gpu: gpu.clone() }
    }

    pub fn zeros(gpu: &Arc<Gpu>, shape: &[usize]) -> CudaTensor {
        let data = gpu.zeros(shape.iter().product()).expect(DRIVER_FAILED);
        CudaTensor { shape: shape.to_vec(), data: Arc::new(data), gpu: gpu.clone() }
    }

    /// A tensor whose values the next kernel writes in full (`Gpu::uninit`).
    pub fn uninit(gpu: &Arc<Gpu>, shape: &[usize]) -> CudaTensor {
        let data = gpu.uninit(shape.iter().product()).expect(DRIVER_FAILED);
        CudaTensor { shape: shape.to_vec(), data: Arc::new(data), gpu: gpu.clone() }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The device buffer, to read.
    pub fn slice(&self) -> &CudaSlice<f32> {
        &self.data
    }

    /// The device buffer, to write; copied first (on the device) if another tensor shares it.
    pub fn slice_mut(&mut self) -> &mut CudaSlice<f32> {
        if Arc::get_mut(&mut self.data).is_none() {
            let copy = self.gpu.stream.clone_dtod(&*self.data).expect(DRIVER_FAILED);
            self.data = Arc::new(copy);
        }
        Arc::get_mut(&mut self.data).expect("unshared just above")
    }

    /// A host copy of the values; waits for every queued kernel (and reports a failed one).
    pub fn to_host(&self) -> Vec<f32> {
        self.gpu.download(&self.data).expect("a CUDA kernel or copy failed; the GPU's values cannot be read back")
    }

    /// The same buffer under another shape with as many elements.
    pub fn reshape(&self, shape: &[usize]) -> CudaTensor {
        assert_eq!(shape.iter().product::<usize>(), self.data.len(), "cannot reshape {:?} to {shape:?}", self.shape);
        CudaTensor { shape: shape.to_vec(), ..self.clone() }
    }
}

impl std::fmt::Debug for CudaTensor {
    /// The shape and the device; the values stay on the GPU (`to_cpu` to see them).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaTensor {{ shape: {:?}, device: {} }}", self.shape, self.gpu.name)
    }
}
