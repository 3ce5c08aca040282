//! The autoencoders of the study, each a short list of layers.
//!
//! A model is an encoder and a decoder, each a `Vec<Layer>`, and its parameters in the
//! order the layers create them (weight, then bias). The encoder's output is the *code*:
//! the sparse AE's L1 penalty reads it, the figures draw it. Every model takes and returns
//! flat images, (n, 784); the convolutional ones reshape to (n, 1, 28, 28) first.
//!
//! Max-pool and max-unpool pair up like brackets: each pool pushes its indices and input
//! size on a stack, and each unpool pops the latest, so the decoder's first unpool undoes
//! the encoder's last pool (3x3 back to 7x7).
//!
//! Parameters are named as PyTorch's `state_dict` would name them for an `nn.Sequential`
//! encoder and decoder ("encoder.0.weight", ...), with PyTorch's layouts and PyTorch's
//! default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.

use crate::autograd::{Tape, Var};
use crate::ops::pool::Indices;
use crate::ops::Kernels;
use crate::optim::{Adam, AdamConfig};
use crate::tensor::{Device, Rng64, Tensor};

mod arch;
pub use arch::{Arch, Layer, PIXELS, SIDE};

/// A named parameter tensor.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub value: Tensor,
}

/// What a forward pass leaves on the tape.
#[derive(Clone, Debug)]
pub struct Forward {
    pub code: Var,
    pub output: Var,
    /// The indices of every max-pool, in the order the pools ran.
    pub pools: Vec<Indices>,
}

/// The pools' bookkeeping during a forward pass.
struct PoolState<'a> {
    /// Given argmax choices, if the pass is to reuse them.
    frozen: Option<std::slice::Iter<'a, Indices>>,
    /// Pools not yet undone by an unpool: indices and the input size to restore.
    open: Vec<(Indices, usize, usize)>,
    all: Vec<Indices>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub arch: Arch,
    pub encoder: Vec<Layer>,
    pub decoder: Vec<Layer>,
    pub params: Vec<Param>,
    /// The CPU floor its tapes compute on (`ops::Kernels`): the fast kernels unless set.
    pub kernels: Kernels,
}

impl Model {
    /// A freshly initialised model; the same seed gives the same weights.
    pub fn new(arch: Arch, rng: &mut Rng64) -> Model {
        let (encoder, decoder) = arch.layers();
        let mut params = Vec::new();
        for (part, layers) in [("encoder", &encoder), ("decoder", &decoder)] {
            for (i, layer) in layers.iter().enumerate() {
                let Some((w_shape, b_len, fan_in)) = layer.param_shapes() else { continue };
                let bound = 1.0 / (fan_in as f32).sqrt();
                let w_shape: Vec<usize> = match layer {
                    Layer::Linear { .. } => w_shape[..2].to_vec(),
                    _ => w_shape.to_vec(),
                };
                params.push(Param { name: format!("{part}.{i}.weight"), value: Tensor::uniform(&w_shape, bound, rng) });
                params.push(Param { name: format!("{part}.{i}.bias"), value: Tensor::uniform(&[b_len], bound, rng) });
            }
        }
        Model { arch, encoder, decoder, params, kernels: Kernels::Fast }
    }

    /// This model computing on the CPU floor `kernels` (see `ops::Kernels`).
    pub fn with_kernels(self, kernels: Kernels) -> Model {
        Model { kernels, ..self }
    }

    /// A tape for this model's passes: recording, or not, on the model's kernels.
    fn tape(&self, recording: bool) -> Tape {
        let tape = if recording { Tape::new() } else { Tape::no_grad() };
        tape.with_kernels(self.kernels)
    }

    pub fn name(&self) -> String {
        self.arch.name()
    }

    pub fn num_parameters(&self) -> usize {
        self.params.iter().map(|p| p.value.len()).sum()
    }

    /// An Adam optimiser for this model's parameters, its moments on their device, computing
    /// on the model's CPU floor.
    pub fn adam(&self, config: AdamConfig) -> Adam {
        let mut adam = Adam::new(config, self.params.iter().map(|p| p.value.len())).with_kernels(self.kernels);
        adam.to_device(&self.device());
        adam
    }

    /// Where the parameters live (all on one device).
    pub fn device(&self) -> Device {
        self.params[0].value.device()
    }

    /// This model with its parameters on `device`: uploaded once, then every op of a
    /// forward or backward pass runs there.
    pub fn to_device(&self, device: &Device) -> Model {
        let params =
            self.params.iter().map(|p| Param { name: p.name.clone(), value: p.value.to_device(device) }).collect();
        Model { params, ..self.clone() }
    }

    /// A host copy (what the figures and the saved weights are made from).
    pub fn to_cpu(&self) -> Model {
        self.to_device(&Device::Cpu)
    }

    /// Records the parameters and the forward pass of a batch x (n, 784) on the tape.
    /// Inputs and targets are moved to the model's device (a no-op when already there).
    pub fn forward(&self, tape: &mut Tape, x: &Tensor) -> (Vec<Var>, Forward) {
        self.forward_with_pools(tape, x, None)
    }

    /// The forward pass with every max-pool's choice of argmax given instead of computed
    /// (`frozen`, in the order of `Forward::pools`). Where an argmax switches, an unpool
    /// moves a value to another pixel and the output jumps; with the choices fixed the
    /// model is the smooth piece that backward differentiates, which is what a
    /// finite-difference check of a whole model must compare against.
    pub fn forward_with_pools(&self, tape: &mut Tape, x: &Tensor, frozen: Option<&[Indices]>) -> (Vec<Var>, Forward) {
        let params: Vec<Var> = self.params.iter().map(|p| tape.param(p.value.clone())).collect();
        let mut next = params.iter().copied();
        let mut state = PoolState { frozen: frozen.map(|f| f.iter()), open: Vec::new(), all: Vec::new() };
        let mut h = tape.input(x.to_device(&self.device()));
        let mut code = h;
        for (part, layers) in [(0, &self.encoder), (1, &self.decoder)] {
            for layer in layers.iter() {
                h = apply(tape, *layer, h, &mut next, &mut state);
            }
            if part == 0 {
                code = h;
            }
        }
        assert!(next.next().is_none(), "layers and parameters out of step");
        (params, Forward { code, output: h, pools: state.all })
    }

    /// The training loss: MSE to the target, plus `l1` times the sum of |code| over the
    /// units averaged over the batch (the sparse AE's penalty) when `l1 > 0`.
    pub fn loss(&self, tape: &mut Tape, fwd: &Forward, target: &Tensor, l1: f32) -> Var {
        let target = tape.input(target.to_device(&tape.value(fwd.output).device()));
        let mse = tape.mse(fwd.output, target);
        if l1 == 0.0 {
            return mse;
        }
        let shape = tape.shape(fwd.code);
        let units: usize = shape[1..].iter().product();
        let mean_abs = tape.mean_abs(fwd.code);
        let penalty = tape.scale(mean_abs, l1 * units as f32);
        tape.add(mse, penalty)
    }

    /// The loss of (input, target) and its gradient for every parameter, in order.
    pub fn gradients(&self, input: &Tensor, target: &Tensor, l1: f32) -> (f32, Vec<Tensor>) {
        let (loss, grads) = self.loss_and_gradients(input, target, l1);
        (loss.to_vec()[0], grads)
    }

    /// `gradients` with the loss left where it was computed, a tensor of shape `[1]`.
    fn loss_and_gradients(&self, input: &Tensor, target: &Tensor, l1: f32) -> (Tensor, Vec<Tensor>) {
        let mut tape = self.tape(true);
        let (params, loss) = self.record_loss(&mut tape, input, target, l1);
        tape.backward(loss);
        (tape.value(loss).clone(), params.iter().map(|&p| tape.take_grad(p)).collect())
    }

    /// The loss only, recording nothing.
    pub fn loss_value(&self, input: &Tensor, target: &Tensor, l1: f32) -> f32 {
        let mut tape = self.tape(false);
        let (_, loss) = self.record_loss(&mut tape, input, target, l1);
        tape.value(loss).to_vec()[0]
    }

    /// Records the forward pass of `input` and the training loss against `target` on
    /// `tape`: the parameters' handles, in order, and the loss.
    fn record_loss(&self, tape: &mut Tape, input: &Tensor, target: &Tensor, l1: f32) -> (Vec<Var>, Var) {
        let (params, fwd) = self.forward(tape, input);
        let loss = self.loss(tape, &fwd, target, l1);
        (params, loss)
    }

    /// One Adam step on a batch; returns the loss before the step.
    pub fn train_step(&mut self, adam: &mut Adam, input: &Tensor, target: &Tensor, l1: f32) -> f32 {
        self.step(adam, input, target, l1).to_vec()[0]
    }

    /// `train_step` that leaves the loss where it was computed, as a tensor of shape `[1]`. On the GPU,
    /// reading a value back makes the host wait until the step has run; the training loop
    /// instead collects these on the device and reads them once per logging interval.
    pub fn step(&mut self, adam: &mut Adam, input: &Tensor, target: &Tensor, l1: f32) -> Tensor {
        let mut tape = self.tape(true);
        let (params, loss) = self.record_loss(&mut tape, input, target, l1);
        // Each parameter is updated as soon as its gradient is final, while backward goes on
        // to the layers below: the same arithmetic as a step after backward, with the
        // gradient and the weights still in cache (see `Tape::backward_each`).
        adam.begin_step();
        tape.backward_each(loss, |var, grad| {
            let k = params.iter().position(|&p| p == var).expect("only parameters need gradients here");
            adam.update(k, &mut self.params[k].value, &grad);
        });
        tape.value(loss).clone()
    }

    /// The decoder alone, on codes (n, units): what the manifold experiment walks through.
    /// Only for decoders without unpooling, which would need the encoder's indices.
    pub fn decode(&self, code: &Tensor) -> Tensor {
        assert!(
            !self.decoder.contains(&Layer::MaxUnpool2d),
            "{}: an unpooling decoder needs the encoder's indices",
            self.name()
        );
        let encoder_params = 2 * self.encoder.iter().filter(|l| l.param_shapes().is_some()).count();
        let mut tape = self.tape(false);
        let params: Vec<Var> = self.params[encoder_params..].iter().map(|p| tape.input(p.value.clone())).collect();
        let mut next = params.into_iter();
        let mut pools = PoolState { frozen: None, open: Vec::new(), all: Vec::new() };
        let mut h = tape.input(code.to_device(&self.device()));
        for layer in &self.decoder {
            h = apply(&mut tape, *layer, h, &mut next, &mut pools);
        }
        tape.value(h).clone()
    }

    /// Reconstructions (n, 784) and codes of a batch, without recording anything.
    pub fn reconstruct(&self, x: &Tensor) -> (Tensor, Tensor) {
        let mut tape = self.tape(false);
        let (_, fwd) = self.forward(&mut tape, x);
        (tape.value(fwd.output).clone(), tape.value(fwd.code).clone())
    }
}

fn apply(tape: &mut Tape, layer: Layer, h: Var, params: &mut impl Iterator<Item = Var>, pools: &mut PoolState) -> Var {
    let mut weight_and_bias = || {
        let w = params.next().expect("a weight per layer");
        (w, params.next())
    };
    match layer {
        Layer::Linear { .. } => {
            let (w, b) = weight_and_bias();
            tape.linear(h, w, b)
        }
        Layer::Relu => tape.relu(h),
        Layer::Conv2d { stride, padding, .. } => {
            let (w, b) = weight_and_bias();
            tape.conv2d(h, w, b, stride, padding)
        }
        Layer::ConvTranspose2d { stride, padding, .. } => {
            let (w, b) = weight_and_bias();
            tape.conv_transpose2d(h, w, b, stride, padding)
        }
        Layer::MaxPool2d => {
            let &[_, _, height, width] = tape.shape(h) else { panic!("max-pool needs (n, c, h, w)") };
            let (y, indices) = match pools.frozen.as_mut() {
                Some(frozen) => {
                    let indices = frozen.next().expect("one frozen choice per pool").clone();
                    (tape.max_pool2d_at(h, &indices), indices)
                }
                None => tape.max_pool2d(h),
            };
            pools.open.push((indices.clone(), height, width));
            pools.all.push(indices);
            y
        }
        Layer::MaxUnpool2d => {
            let (indices, height, width) = pools.open.pop().expect("an unpool needs an earlier pool");
            tape.max_unpool2d(h, &indices, height, width)
        }
        Layer::ToImage => {
            let n = tape.shape(h)[0];
            tape.reshape(h, &[n, 1, SIDE, SIDE])
        }
        Layer::Flatten => {
            let shape = tape.shape(h);
            let (n, rest) = (shape[0], shape[1..].iter().product());
            tape.reshape(h, &[n, rest])
        }
    }
}
