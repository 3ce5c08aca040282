//! Reverse-mode automatic differentiation on a tape.
//!
//! The tape is an append-only list of nodes. Each op computes its output at once (eager),
//! appends a node holding that output and *what its backward needs, by name* (`Op`), and
//! returns a handle, `Var`, which is just the node's position. Because a node can only use
//! nodes recorded before it, the list is already in topological order, and backward is a
//! reverse walk over it with one `match` that hands each node's output gradient to the
//! backward rule of its op (found next to its forward in `ops/`).
//!
//! Every backward rule *adds* into its inputs' gradients, never overwrites them: a value
//! used twice (the sparse AE's code goes both to the decoder and to the L1 penalty) receives
//! the sum of both contributions, as the chain rule for a fork demands.
//!
//! Gradients are `Tensor`s on the device of the values they belong to, zero-filled there
//! on first use; each rule matches on the device of `dout` and calls that device's kernels
//! (the CPU functions of `ops/`, or their CUDA launchers). The tape itself never looks at a
//! number, so a whole training step on the GPU runs without the host waiting for it.
//!
//! A typical step builds a fresh tape, records the forward pass, calls `backward` on the
//! loss, takes the parameter gradients out and drops the tape. The training step instead
//! calls `backward_each`, which hands each parameter's gradient to the optimiser the moment
//! it is final, in the middle of the walk. Evaluation uses `Tape::no_grad()`, which computes
//! the same values but records nothing to differentiate.

use crate::ops::pool::Indices;
use crate::ops::Kernels;
use crate::tensor::Tensor;
use cudarc::driver::CudaSlice;

/// A value on the tape: the index of the node that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(pub(crate) usize);

/// What a node was computed from, and what its backward needs.
pub(crate) enum Op {
    /// An input, a constant or a parameter: nothing to propagate to.
    Leaf,
    Linear {
        x: Var,
        w: Var,
        b: Option<Var>,
    },
    Relu {
        x: Var,
    },
    Conv2d {
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        padding: usize,
    },
    ConvTranspose2d {
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        padding: usize,
    },
    MaxPool2d {
        x: Var,
        indices: Indices,
    },
    MaxUnpool2d {
        x: Var,
        indices: Indices,
        h: usize,
        w: usize,
    },
    Reshape {
        x: Var,
    },
    Add {
        a: Var,
        b: Var,
    },
    Scale {
        x: Var,
        factor: f32,
    },
    Mse {
        x: Var,
        target: Var,
    },
    MeanAbs {
        x: Var,
    },
    CrossEntropy {
        x: Var,
        labels: Vec<usize>,
    },
    /// An op none of whose inputs needs a gradient (the reshape of the input batch): only its
    /// name and inputs are kept, to draw the tape; its saved state is freed at once.
    Detached {
        name: &'static str,
        inputs: Vec<Var>,
    },
}

impl Op {
    fn inputs(&self) -> Vec<Var> {
        match *self {
            Op::Leaf => vec![],
            Op::Linear { x, w, b } | Op::Conv2d { x, w, b, .. } | Op::ConvTranspose2d { x, w, b, .. } => {
                [Some(x), Some(w), b].into_iter().flatten().collect()
            }
            Op::Relu { x }
            | Op::MaxPool2d { x, .. }
            | Op::MaxUnpool2d { x, .. }
            | Op::Reshape { x }
            | Op::Scale { x, .. }
            | Op::MeanAbs { x }
            | Op::CrossEntropy { x, .. } => vec![x],
            Op::Add { a, b } => vec![a, b],
            Op::Mse { x, target } => vec![x, target],
            Op::Detached { ref inputs, .. } => inputs.clone(),
        }
    }

    /// The op's name as `Tape::nodes` and the profile report it.
    fn name(&self) -> &'static str {
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

pub(crate) struct Node {
    pub(crate) value: Tensor,
    op: Op,
    requires_grad: bool,
}

pub struct Tape {
    nodes: Vec<Node>,
    grads: Vec<Option<Tensor>>,
    recording: bool,
    kernels: Kernels,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// A tape that records every op for backward.
    pub fn new() -> Tape {
        Tape { nodes: Vec::new(), grads: Vec::new(), recording: true, kernels: Kernels::Fast }
    }

    /// Evaluation mode: ops compute their outputs but record nothing to differentiate
    /// (no saved indices, no links to inputs), and `backward` is refused.
    pub fn no_grad() -> Tape {
        Tape { recording: false, ..Tape::new() }
    }

    /// The same tape computing its CPU ops with `kernels` (the fast ones by default).
    pub fn with_kernels(self, kernels: Kernels) -> Tape {
        Tape { kernels, ..self }
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// A constant input (a batch of images, a target): no gradient is kept for it.
    pub fn input(&mut self, value: Tensor) -> Var {
        self.push_node(value, Op::Leaf, false)
    }

    /// A leaf whose gradient is wanted (a parameter, or an input under test).
    pub fn param(&mut self, value: Tensor) -> Var {
        let requires_grad = self.recording;
        self.push_node(value, Op::Leaf, requires_grad)
    }

    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    pub fn shape(&self, v: Var) -> &[usize] {
        self.nodes[v.0].value.shape()
    }

    /// Records an op's output. The node needs a gradient when any input does; one that does
    /// not keeps no `Op`, so its saved state (pool indices, say) is freed at once.
    pub(crate) fn push(&mut self, value: Tensor, op: Op) -> Var {
        let requires_grad = self.recording && op.inputs().iter().any(|v| self.nodes[v.0].requires_grad);
        let op = if requires_grad { op } else { Op::Detached { name: op.name(), inputs: op.inputs() } };
        self.push_node(value, op, requires_grad)
    }

    fn push_node(&mut self, value: Tensor, op: Op, requires_grad: bool) -> Var {
        self.nodes.push(Node { value, op, requires_grad });
        Var(self.nodes.len() - 1)
    }

    /// Backpropagates from a scalar (a loss of shape `[1]`) with d loss / d loss = 1.
    pub fn backward(&mut self, loss: Var) {
        assert_eq!(
            self.value(loss).len(),
            1,
            "backward() needs a scalar; use backward_with for {:?}",
            self.shape(loss)
        );
        let one = Tensor::from_vec(self.shape(loss), vec![1.0]);
        self.backward_with(loss, one);
    }

    /// Backpropagates the gradient `dout` of some scalar with respect to `out`: afterwards
    /// `grad(v)` holds d scalar / d v for every `v` recorded before `out` that needs one.
    /// With `dout = r`, that scalar is `sum(out * r)`. `dout` is moved to `out`'s device.
    pub fn backward_with(&mut self, out: Var, dout: impl Into<Tensor>) {
        self.walk(out, dout.into(), None);
    }

    /// `backward`, handing each parameter's gradient to `done` as soon as it is final,
    /// while the walk goes on (PyTorch's "optimizer step in backward"). The training step
    /// updates the parameter there, when its gradient and its value are still in cache, and
    /// the next layer's gradient can take the memory this one leaves.
    ///
    /// A leaf's gradient is final once the earliest node that uses it has been walked (the
    /// walk goes from the last node to the first); leaves nothing used get zeros at the end.
    /// Before `done` runs, the tape lets go of the leaf's value (no backward rule still to
    /// run reads it), so the caller's copy of a parameter is its only owner and is updated
    /// in place; afterwards `value(v)` of such a leaf is empty and `grad(v)` is `None`.
    pub fn backward_each(&mut self, loss: Var, mut done: impl FnMut(Var, Tensor)) {
        assert_eq!(self.value(loss).len(), 1, "backward_each() needs a scalar, not {:?}", self.shape(loss));
        let one = Tensor::from_vec(self.shape(loss), vec![1.0]);
        self.walk(loss, one, Some(&mut done));
    }

    fn walk(&mut self, out: Var, dout: Tensor, mut done: Option<&mut dyn FnMut(Var, Tensor)>) {
        assert!(self.recording, "backward on a no_grad tape: it recorded nothing to differentiate");
        let dout = dout.to_device(&self.value(out).device());
        assert_eq!(dout.shape(), self.shape(out), "the gradient must have the output's shape");
        // With `done`: the leaves each node is the earliest user of (their gradient is final
        // once that node has been walked), and those nothing uses.
        let mut final_after = vec![Vec::new(); out.0 + 1];
        let mut unused = Vec::new();
        if done.is_some() {
            let mut first_user = vec![None; out.0 + 1];
            for (i, node) in self.nodes[..=out.0].iter().enumerate() {
                for v in node.op.inputs() {
                    first_user[v.0].get_or_insert(i);
                }
            }
            for (v, node) in self.nodes[..=out.0].iter().enumerate() {
                if node.requires_grad && matches!(node.op, Op::Leaf) {
                    match first_user[v] {
                        Some(i) => final_after[i].push(Var(v)),
                        None => unused.push(Var(v)),
                    }
                }
            }
        }
        self.zero_grad();
        self.grads[out.0] = Some(dout);
        for i in (0..=out.0).rev() {
            self.backward_node(i);
            if let Some(done) = done.as_mut() {
                for &v in &final_after[i] {
                    self.hand_out(v, &mut **done);
                }
            }
        }
        if let Some(done) = done.as_mut() {
            for &v in &unused {
                self.hand_out(v, &mut **done);
            }
        }
    }

    /// Gives leaf `v`'s final gradient to `done`, releasing the tape's copy of its value.
    fn hand_out(&mut self, v: Var, done: &mut dyn FnMut(Var, Tensor)) {
        let grad = self.take_grad(v);
        self.nodes[v.0].value = Tensor::zeros(&[0]);
        done(v, grad);
    }

    /// Hands node `i`'s output gradient, if any flowed into it, to its op's backward rule.
    fn backward_node(&mut self, i: usize) {
        // Nodes only use earlier nodes, so the inputs' gradients all lie in `before`.
        let (before, rest) = self.grads.split_at_mut(i);
        let Some(dout) = rest[0].as_ref() else { return };
        let node = &self.nodes[i];
        if !node.requires_grad {
            return;
        }
        let mut g = Grads { nodes: &self.nodes, grads: before, kernels: self.kernels };
        use crate::ops::{conv, cross_entropy, linear, loss, pool, relu, shape};
        match &node.op {
            Op::Leaf | Op::Detached { .. } => {}
            Op::Linear { x, w, b } => linear::linear_backward(&mut g, dout, *x, *w, *b),
            Op::Relu { x } => relu::relu_backward_tape(&mut g, dout, &node.value, *x),
            Op::Conv2d { x, w, b, stride, padding } => {
                conv::conv2d_backward(&mut g, dout, *x, *w, *b, *stride, *padding)
            }
            Op::ConvTranspose2d { x, w, b, stride, padding } => {
                conv::conv_transpose2d_backward(&mut g, dout, *x, *w, *b, *stride, *padding)
            }
            Op::MaxPool2d { x, indices } => pool::maxpool2d_backward_tape(&mut g, dout, *x, indices),
            Op::MaxUnpool2d { x, indices, h, w } => pool::maxunpool2d_backward_tape(&mut g, dout, *x, indices, *h, *w),
            Op::Reshape { x } => shape::reshape_backward(&mut g, dout, *x),
            Op::Add { a, b } => shape::add_backward(&mut g, dout, *a, *b),
            Op::Scale { x, factor } => shape::scale_backward(&mut g, dout, *x, *factor),
            Op::Mse { x, target } => loss::mse_backward_tape(&mut g, dout, *x, *target),
            Op::MeanAbs { x } => loss::mean_abs_backward_tape(&mut g, dout, *x),
            Op::CrossEntropy { x, labels } => cross_entropy::cross_entropy_backward_tape(&mut g, dout, *x, labels),
        }
    }

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

    /// Forgets every gradient (backward does this itself before it starts).
    pub fn zero_grad(&mut self) {
        self.grads.clear();
        self.grads.resize_with(self.nodes.len(), || None);
    }

    /// d scalar / d v after a backward (on v's device), or None if nothing flowed into `v`.
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        self.grads.get(v.0).and_then(|g| g.as_ref())
    }

    /// Moves a gradient out of the tape (so the tape can be dropped and the parameters it
    /// shares updated in place); zeros of the right shape, on v's device, if nothing flowed
    /// into `v`.
    pub fn take_grad(&mut self, v: Var) -> Tensor {
        let value = &self.nodes[v.0].value;
        let zeros = || Tensor::zeros_on(value.shape(), &value.device());
        self.grads.get_mut(v.0).and_then(Option::take).unwrap_or_else(zeros)
    }
}

/// What a backward rule sees: the values of every earlier node, and their gradient slots.
pub(crate) struct Grads<'t> {
    nodes: &'t [Node],
    grads: &'t mut [Option<Tensor>],
    /// The tape's choice of CPU kernels, for the rules to follow.
    pub(crate) kernels: Kernels,
}

impl<'t> Grads<'t> {
    pub(crate) fn value(&self, v: Var) -> &'t Tensor {
        &self.nodes[v.0].value
    }

    /// The gradient of `v` to add into, zero-filled on first use on v's device; `None` when
    /// `v` needs no gradient, so a rule can skip that work (the images fed to the first layer).
    fn slot(&mut self, v: Var) -> Option<&mut Tensor> {
        let node = &self.nodes[v.0];
        if !node.requires_grad {
            return None;
        }
        Some(self.grads[v.0].get_or_insert_with(|| Tensor::zeros_on(node.value.shape(), &node.value.device())))
    }

    /// `slot` for a CPU rule: the gradient's values.
    pub(crate) fn grad_mut(&mut self, v: Var) -> Option<&mut [f32]> {
        self.slot(v).map(Tensor::as_slice_mut)
    }

    /// `slot` for a CUDA rule: the gradient's device buffer.
    pub(crate) fn grad_mut_cuda(&mut self, v: Var) -> Option<&mut CudaSlice<f32>> {
        self.slot(v).map(Tensor::cuda_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `backward_each` hands out each parameter once, with the gradient `backward` gives it:
    /// a leaf used twice only after its earlier use has been walked (the sum of both), a leaf
    /// nothing used as zeros, and an input not at all.
    #[test]
    fn backward_each_hands_out_final_gradients_once() {
        let record = |tape: &mut Tape| {
            let a = tape.param(Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]));
            let x = tape.input(Tensor::from_vec(&[3], vec![0.25, 0.5, 4.0]));
            let unused = tape.param(Tensor::from_vec(&[2], vec![7.0, 8.0]));
            let b = tape.param(Tensor::from_vec(&[3], vec![3.0, 0.0, -1.0]));
            // loss = mse(2 a + b, x) + mean|a|: `a` is used by `scale` and, later, `mean_abs`.
            let twice = tape.scale(a, 2.0);
            let sum = tape.add(twice, b);
            let mse = tape.mse(sum, x);
            let abs = tape.mean_abs(a);
            let loss = tape.add(mse, abs);
            ([a, unused, b], loss)
        };
        let mut tape = Tape::new();
        let ([a, unused, b], loss) = record(&mut tape);
        tape.backward(loss);
        let want: Vec<Vec<f32>> = [a, unused, b].iter().map(|&v| tape.take_grad(v).to_vec()).collect();

        let mut tape = Tape::new();
        let ([a, unused, b], loss) = record(&mut tape);
        let mut got = Vec::new();
        tape.backward_each(loss, |v, grad| got.push((v, grad.to_vec())));
        // The walk reaches `b` (used by node 5, the add) before `a` (earliest use: node 4,
        // the scale); `unused` comes last.
        assert_eq!(got, vec![(b, want[2].clone()), (a, want[0].clone()), (unused, vec![0.0, 0.0])]);
        assert_eq!(tape.value(a).len(), 0, "the tape let go of a's value");
        assert_eq!(tape.value(loss).len(), 1, "the loss is still there");
    }
}
