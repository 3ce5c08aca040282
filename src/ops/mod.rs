//! The ops, one family per file. Each file opens with the mathematics (forward, shapes,
//! every gradient, the edge rules, a hand-checkable example), then the CPU functions
//! (`*_forward` / `*_backward` side by side, slices in and out, gradients accumulated),
//! then the `Tape` method that records the op and the backward rule the tape calls.

pub mod conv;
pub mod cross_entropy;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod relu;
pub mod shape;

/// Which CPU floor computes the ops: the plain loops that define them (`Reference`, in this
/// folder) or the fast kernels of `cpu/` (`Fast`), which are proved against those loops. The
/// GPU has its own kernels and ignores this. A tape carries its choice (`Tape::with_kernels`),
/// and so does a model (`Model::kernels`), so that two models in one process can differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    Reference,
    #[default]
    Fast,
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Reference => "reference",
            Kernels::Fast => "fast",
        }
    }

    pub fn from_name(name: &str) -> Option<Kernels> {
        match name {
            "reference" => Some(Kernels::Reference),
            "fast" => Some(Kernels::Fast),
            _ => None,
        }
    }
}
