//! The ops, one family per file. Each file opens with the mathematics (forward, shapes,
//! every gradient, the edge rules, a hand-checkable example), then the CPU functions
//! (`*_forward` / `*_backward` side by side, slices in and out, gradients accumulated),
//! then the `Tape` method that records the op and the backward rule the tape calls.

pub mod conv;
pub mod direct;
pub mod gemm;
pub mod im2col;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod relu;
pub mod shape;
pub mod thin;

/// Whether this processor has AVX2 and FMA. The crate is built for any x86-64, whose vector
/// instructions (SSE2) are 4 floats wide; the few loops that are limited by arithmetic rather
/// than memory are also compiled with `#[target_feature(enable = "avx2,fma")]` and pick
/// that build when this says so (std caches the answer).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}
