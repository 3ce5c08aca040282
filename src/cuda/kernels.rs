//! The kernels: their sources, compiled by NVRTC at start-up, and a struct of named functions.
//!
//! The `.cu` files are embedded in the binary (`include_str!`), so a built program needs no
//! source tree beside it. The NVRTC sequence is candle's: compile each file to PTX, load the
//! PTX as a module into the context, then look each kernel up by its name. Every kernel is
//! declared `extern "C"` so that its PTX name is its C name, the same as the CPU function's.
//!
//! One list, `kernels!` below, names each file and the kernels in it; from it come the
//! source table that the compile test walks, and the `Kernels` struct with one field per
//! kernel, so a name cannot be in one and missing from the other.

use cudarc::driver::{CudaContext, CudaFunction, DriverError};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions, Ptx};
use std::sync::Arc;

/// One kernel file: its name, its text, and the kernels it defines.
pub struct KernelSource {
    pub file: &'static str,
    pub source: &'static str,
    pub kernels: &'static [&'static str],
}

macro_rules! kernels {
    ($($file:literal => [$($name:ident),* $(,)?]),* $(,)?) => {
        /// Every kernel file, in the order of `src/ops` (`kernels/` at the crate root).
        pub const SOURCES: &[KernelSource] = &[
            $(KernelSource {
                file: $file,
                source: include_str!(concat!("../../kernels/", $file)),
                kernels: &[$(stringify!($name)),*],
            }),*
        ];

        /// The loaded kernels, one field per `extern "C" __global__` function, named as it.
        pub struct Kernels {
            $($(pub $name: CudaFunction,)*)*
        }

        impl Kernels {
            /// Loads the PTX of every file (as `compile_kernels` returns it) into `ctx`.
            pub fn load(ctx: &Arc<CudaContext>, ptx: Vec<(&'static str, Ptx)>) -> Result<Kernels, DriverError> {
                let mut modules = std::collections::HashMap::new();
                for (file, ptx) in ptx {
                    modules.insert(file, ctx.load_module(ptx)?);
                }
                Ok(Kernels {
                    $($($name: modules[$file].load_function(stringify!($name))?,)*)*
                })
            }
        }
    };
}

kernels! {
    "elementwise.cu" => [relu_forward, relu_backward, add, scale, add_into],
    "gemm.cu" => [gemm, gemm_sum_splits],
    "conv.cu" => [im2col, col2im, fill_bias, conv_backward_bias, sum_over_batch],
    "pool.cu" => [maxpool2d_forward, maxpool2d_backward, maxunpool2d_forward, maxunpool2d_backward],
    "loss.cu" => [mse_forward_partials, mean_abs_forward_partials, mean_of_partials, mse_backward, mean_abs_backward],
    "adam.cu" => [adam_update],
    "data.cu" => [batch_into],
}

/// Compiles every kernel file to PTX. Checks for NVRTC first (cudarc would panic without
/// it); on a compile error, returns the file's name and NVRTC's log.
pub fn compile_kernels() -> Result<Vec<(&'static str, Ptx)>, String> {
    SOURCES.iter().map(|s| Ok((s.file, compile_source(s.file, s.source)?))).collect()
}

/// Compiles one CUDA C++ source to PTX, or says why not: NVRTC missing, or its log.
pub fn compile_source(file: &str, source: &str) -> Result<Ptx, String> {
    super::probe::probe_nvrtc()?;
    // NVRTC's defaults are kept: correctly rounded division and square root, which is what
    // lets Adam match the CPU; the PTX targets NVRTC's oldest architecture and the driver
    // compiles it for the GPU at hand when the module loads.
    let options = CompileOptions { name: Some(file.to_string()), ..Default::default() };
    compile_ptx_with_opts(source, options).map_err(|e| match e {
        CompileError::CompileError { log, .. } => format!("{file} does not compile:\n{}", log.to_string_lossy()),
        other => format!("{file}: NVRTC failed: {other}"),
    })
}
