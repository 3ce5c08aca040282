//! What the tape shows of itself: each entry's op by name, its inputs, shape, and what its
//! backward rule reads (`Tape::nodes`), for the drawing here and the profile's rows.
//! Written beside the drawing rather than in `autograd.rs`, which stays the tape alone.

use crate::autograd::{Op, Tape, Var};
use crate::ops::pool::Indices;

impl Op {
    /// The op's name as `Tape::nodes` and the profile report it.
    pub(crate) fn name(&self) -> &'static str {
        match *self {
            Op::Leaf => "leaf",
            Op::Linear { .. } => "linear",
            Op::Relu { .. } => "relu",
            Op::Conv2d { .. } => "conv2d",
            Op::ConvTranspose2d { .. } => "conv_transpose2d",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::MaxUnpool2d { .. } => "max_unpool2d",
            Op::Reshape { .. } => "reshape",
            Op::Add { .. } => "add",
            Op::Scale { .. } => "scale",
            Op::Mse { .. } => "mse",
            Op::MeanAbs { .. } => "mean_abs",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::Detached { name, .. } => name,
        }
    }
}

/// A read-only view of one tape entry, for drawing the tape (`graph`).
#[derive(Clone, Debug)]
pub struct NodeInfo<'t> {
    /// "linear", "relu", ..., "leaf" for an input, a constant or a parameter.
    pub op: &'static str,
    /// The nodes it was computed from, in the op's order (x, w, b; x, target).
    pub inputs: Vec<Var>,
    pub shape: &'t [usize],
    /// Whether a gradient flows into it (true for a parameter, false for the batch).
    pub requires_grad: bool,
    /// Bytes of the values its backward rule reads: its inputs' or its own output, and the
    /// pool indices. Values shared by several rules are counted by each.
    pub saved_bytes: usize,
    /// A max-pool's indices, or those an unpool reuses: the same `Arc` in both.
    pub indices: Option<&'t Indices>,
}

impl Tape {
    /// Every node recorded so far, in order (`Var(i)` is the i-th): what it computes, from
    /// what, its shape and what its backward keeps.
    pub fn nodes(&self) -> Vec<NodeInfo<'_>> {
        let bytes = |v: &Var| 4 * self.nodes[v.0].value.len();
        self.nodes
            .iter()
            .map(|node| {
                let (indices, saved_bytes) = match &node.op {
                    Op::Linear { x, w, .. } | Op::Conv2d { x, w, .. } | Op::ConvTranspose2d { x, w, .. } => {
                        (None, bytes(x) + bytes(w))
                    }
                    Op::Relu { .. } => (None, 4 * node.value.len()),
                    Op::MaxPool2d { indices, .. } | Op::MaxUnpool2d { indices, .. } => {
                        (Some(indices), 4 * indices.shape.iter().product::<usize>())
                    }
                    Op::Mse { x, target } => (None, bytes(x) + bytes(target)),
                    Op::MeanAbs { x } => (None, bytes(x)),
                    Op::CrossEntropy { x, labels } => (None, bytes(x) + 8 * labels.len()),
                    Op::Leaf | Op::Detached { .. } | Op::Reshape { .. } | Op::Add { .. } | Op::Scale { .. } => {
                        (None, 0)
                    }
                };
                NodeInfo {
                    op: node.op.name(),
                    inputs: node.op.inputs(),
                    shape: node.value.shape(),
                    requires_grad: node.requires_grad,
                    saved_bytes,
                    indices,
                }
            })
            .collect()
    }
}
