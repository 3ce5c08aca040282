//! The ops, one family per file. Each file opens with the mathematics (forward, shapes,
//! every gradient, the edge rules, a hand-checkable example), then the CPU functions
//! (`*_forward` / `*_backward` side by side, slices in and out, gradients accumulated),
//! then the `Tape` method that records the op and the backward rule the tape calls.

pub mod conv;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod relu;
pub mod shape;
