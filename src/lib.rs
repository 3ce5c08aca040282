//! # autoencoders: a deep-learning engine from scratch, and an autoencoder study on it
//!
//! Read the code in this order; each file opens with the mathematics it implements.
//!
//! 1. `tensor`   — `Tensor`, an enum over devices of f32 arrays; the seeded generator.
//! 2. `autograd` — the tape: an append-only list of ops; backward is a reverse walk (which
//!    the training step interleaves with Adam, one parameter at a time).
//! 3. `ops`      — one file per op family, forward and backward side by side:
//!    `linear` (on `thin`, or `gemm` without AVX-512), `relu`, `conv` (conv2d and its adjoint
//!    conv_transpose2d, on `im2col` and `gemm`, or `direct`), `pool` (max-pool with
//!    indices, max-unpool), `loss` (MSE, mean |x|), `shape`.
//! 4. `optim`    — Adam, as PyTorch does it.
//! 5. `models`   — the study's autoencoders as lists of layers, and the training step.
//! 6. `cuda`     — the GPU: each op of `ops` matches on its inputs' device and, on
//!    `Tensor::Cuda`, calls the launcher of the same name there (kernels in `kernels/*.cu`).
//!
//! Conventions, everywhere: PyTorch's shapes and layouts (NCHW images, linear weight
//! (out, in), conv weight (c_out, c_in, kh, kw), transposed-conv weight (c_in, c_out, kh,
//! kw), pool indices as flat positions in each h*w plane); the names `n, c, h, w`, `oh, ow`,
//! `kh, kw`, `c_in, c_out`, and `dx, dw, db, dout` for gradients; every backward *adds* into
//! its gradients. Shape mismatches are programming errors and panic with both shapes.
//!
//! Ten lines to train an autoencoder:
//!
//! ```
//! use autoencoders::{models::{Arch, Model}, optim::AdamConfig, tensor::{rng_from_seed, Tensor}};
//!
//! let mut rng = rng_from_seed(0);
//! let mut model = Model::new(Arch::Shallow { hidden: 64 }, &mut rng);
//! let mut adam = model.adam(AdamConfig::default());
//! let batch = Tensor::uniform(&[8, 784], 1.0, &mut rng); // eight "images"
//! let first = model.train_step(&mut adam, &batch, &batch, 0.0);
//! for _ in 0..20 { model.train_step(&mut adam, &batch, &batch, 0.0); }
//! assert!(model.loss_value(&batch, &batch, 0.0) < first);
//! ```

pub mod autograd;
pub mod checkpoint;
pub mod cpu;
pub mod cuda;
pub mod data;
pub mod experiments;
pub mod figures;
pub mod geom;
pub mod graph;
pub mod io;
pub mod jacobi;
pub mod memory;
pub mod models;
pub mod ops;
pub mod optim;
pub mod pca;
pub mod profile;
pub mod safetensors;
pub mod tensor;
pub mod train;

pub use autograd::{Tape, Var};
pub use tensor::Tensor;
