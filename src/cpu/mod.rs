//! The fast floor: CPU kernels that compute what the plain loops of `ops/` define, as fast as
//! this machine allows (rayon over disjoint outputs, matrixmultiply, AVX-512 where present).
//! Each file opens by naming the reference it speeds up, how, and by how much; each is proved
//! against that reference in the tests.

pub mod adam;
pub mod conv;
pub mod direct;
pub mod gemm;
pub mod im2col;
pub mod linear;
pub mod loss;
pub mod packed_terms;
pub mod pool;
pub mod relu;
pub mod thin;
pub mod thin_rows;
pub mod transpose;

/// Whether this processor has AVX2 and FMA. The crate is built for any x86-64, whose vector
/// instructions (SSE2) are 4 floats wide; the few loops that are limited by arithmetic rather
/// than memory are also compiled with `#[target_feature(enable = "avx2,fma")]` and pick
/// that build when this says so (std caches the answer).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}
