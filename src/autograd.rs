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
use crate::profile::{self, Phase, Timer};
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
    pub(crate) fn inputs(&self) -> Vec<Var> {
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
}

pub(crate) struct Node {
    pub(crate) value: Tensor,
    pub(crate) op: Op,
    pub(crate) requires_grad: bool,
}

pub struct Tape {
    pub(crate) nodes: Vec<Node>,
    grads: Vec<Option<Tensor>>,
    recording: bool,
    kernels: Kernels,
    /// With `--profile`: the marks between ops (`profile`); `None` otherwise.
    pub(crate) timer: Option<Timer>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// A tape that records every op for backward.
    pub fn new() -> Tape {
        Tape { nodes: Vec::new(), grads: Vec::new(), recording: true, kernels: Kernels::Fast, timer: Timer::new() }
    }

    /// Evaluation mode: ops compute their outputs but record nothing to differentiate
    /// (no saved indices, no links to inputs), and `backward` is refused.
    pub fn no_grad() -> Tape {
        Tape { recording: false, timer: None, ..Tape::new() }
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
        // The op has run (ops are eager): the time since the last mark is its own.
        if let Some(timer) = self.timer.as_mut() {
            timer.lap_node(Phase::Forward, &op, &value, &self.nodes);
        }
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
        if let Some(timer) = self.timer.as_mut() {
            timer.lap(Phase::Backward, "(walk set-up)", (0.0, 0.0), &self.nodes[out.0].value.device());
        }
        for i in (0..=out.0).rev() {
            self.backward_node(i);
            if let Some(timer) = self.timer.as_mut() {
                timer.lap_node(Phase::Backward, &self.nodes[i].op, &self.nodes[i].value, &self.nodes);
            }
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
        let profiled = self.timer.is_some().then(|| (grad.shape().to_vec(), grad.device()));
        self.nodes[v.0].value = Tensor::zeros(&[0]);
        done(v, grad);
        if let (Some(timer), Some((shape, device))) = (self.timer.as_mut(), profiled) {
            timer.lap(Phase::Adam, "adam", profile::cost(Phase::Adam, "adam", &[], &shape), &device);
        }
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

    /// For a CPU rule whose kernel comes in both forms: the first gradient to reach `v` is
    /// made whole by `new`, with no zeros written first to add it to; a later one (v used
    /// twice) is added by `add`. Nothing when `v` needs no gradient.
    pub(crate) fn grad_new_or_add(&mut self, v: Var, new: impl FnOnce() -> Vec<f32>, add: impl FnOnce(&mut [f32])) {
        let node = &self.nodes[v.0];
        if !node.requires_grad {
            return;
        }
        match &mut self.grads[v.0] {
            Some(grad) => add(grad.as_slice_mut()),
            empty => *empty = Some(Tensor::from_vec(node.value.shape(), new())),
        }
    }

    /// `slot` for a CUDA rule: the gradient's device buffer.
    pub(crate) fn grad_mut_cuda(&mut self, v: Var) -> Option<&mut CudaSlice<f32>> {
        self.slot(v).map(Tensor::cuda_mut)
    }
}
