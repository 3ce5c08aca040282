//! Tensors: f32 arrays that live on one device.
//!
//! A `Tensor` is an enum over devices so that a CUDA copy can slot in beside the CPU one
//! without touching the tape or the models: every op matches on the variant and calls the
//! kernel of that device. Today there is one variant.
//!
//! The CPU storage is ndarray's `ArcArray`: cloning a tensor (to record it on the tape, to
//! hand it to a reshape) only bumps a reference count, and writing to a shared one copies it
//! first (copy on write), so the optimiser can update a parameter in place once the tape that
//! borrowed it is gone. Every array here is in standard (row-major, C) layout, which is what
//! lets the kernels in `ops/` work on plain slices.

use ndarray::{ArcArray, ArrayD, IxDyn};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

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

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::from_array(ArrayD::zeros(IxDyn(shape)))
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
        }
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row-major values. (A CUDA tensor will have to be copied to the host first.)
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Tensor::Cpu(a) => a.as_slice().expect("tensors are kept in standard layout"),
        }
    }

    /// Mutable values; copies first if the storage is shared (copy on write).
    pub fn as_slice_mut(&mut self) -> &mut [f32] {
        match self {
            Tensor::Cpu(a) => a.as_slice_mut().expect("tensors are kept in standard layout"),
        }
    }

    pub fn to_vec(&self) -> Vec<f32> {
        self.as_slice().to_vec()
    }

    /// The same values under another shape with as many elements; shares the storage.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, self.len(), "cannot reshape {:?} to {shape:?}", self.shape());
        match self {
            Tensor::Cpu(a) => Tensor::Cpu(
                a.clone().into_shape_with_order(IxDyn(shape)).expect("standard layout reshapes freely"),
            ),
        }
    }
}
