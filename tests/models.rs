//! Whole models: the gradient of the training loss checked against finite differences,
//! training that learns, and reproducibility.
//!
//! For a parameter tensor P and a direction d, the loss L must satisfy
//! (L(P + h d) - L(P - h d)) / 2h = <dL/dP, d>. Each tensor is probed along its gradient,
//! along three random unit directions and at its four largest entries, the error relative
//! to the derivative itself: in a random direction of a tensor of N values <g, d> is only
//! about |g| / sqrt(N), so an error taken relative to |g| would pass a gradient off by a
//! factor of 2 once N passes a few thousand (the tests `..._is_caught` show this check does not).
//!
//! The loss is evaluated by the test's own forward pass in f64 (`forward64`), so that the
//! difference quotient is exact enough for a step of 1e-6: the f32 forward would drown the
//! small derivatives in rounding, and a large step crosses ReLU kinks. The max-pools make
//! discrete choices: where an argmax switches, an unpool moves a value to another pixel and
//! the loss jumps, which no step size survives. So the f64 pass takes each pool's choices
//! from the engine's forward at the base point: the smooth piece that backward differentiates.

mod common;

use autoencoders::models::{Arch, Layer, Model, PIXELS, SIDE};
use autoencoders::ops::pool::Indices;
use autoencoders::optim::AdamConfig;
use autoencoders::tensor::{Rng64, Tensor};
use autoencoders::Tape;
use common::*;
use rand::Rng;

/// A batch of "images": values in [0, 1] like MNIST pixels.
fn images(n: usize, rng: &mut Rng64) -> Tensor {
    Tensor::from_vec(&[n, PIXELS], (0..n * PIXELS).map(|_| rng.random_range(0.0f32..1.0)).collect())
}

/// A tensor of f64 values: the check's own forward pass computes in these.
#[derive(Clone)]
struct T64 {
    shape: Vec<usize>,
    v: Vec<f64>,
}

/// The model's forward pass recomputed in f64 with plain loops, from parameters `p` (the
/// model's tensors in order, as f64) and with every max-pool's argmax given (`pools`, as the
/// f32 forward chose them). Written from the layers' definitions (PyTorch's), independently
/// of the engine: (code, output).
fn forward64(model: &Model, p: &[Vec<f64>], x: &Tensor, pools: &[Indices]) -> (T64, T64) {
    let mut h = T64 { shape: x.shape().to_vec(), v: x.as_slice().iter().map(|&v| v as f64).collect() };
    let mut params = p.iter();
    let mut frozen = pools.iter();
    let mut open: Vec<(&Indices, usize, usize)> = Vec::new();
    let mut code = h.clone();
    for (part, layers) in [(0, &model.encoder), (1, &model.decoder)] {
        for &layer in layers {
            h = match layer {
                Layer::Linear { d_in, d_out } => {
                    let (w, b) = (params.next().unwrap(), params.next().unwrap());
                    let n = h.shape[0];
                    let mut y = vec![0.0; n * d_out];
                    for i in 0..n {
                        for o in 0..d_out {
                            let row = &w[o * d_in..(o + 1) * d_in];
                            y[i * d_out + o] = b[o] + row.iter().zip(&h.v[i * d_in..]).map(|(w, x)| w * x).sum::<f64>();
                        }
                    }
                    T64 { shape: vec![n, d_out], v: y }
                }
                Layer::Relu => T64 { shape: h.shape, v: h.v.into_iter().map(|v| v.max(0.0)).collect() },
                Layer::Conv2d { c_in, c_out, k, stride, padding } => {
                    let (w, b) = (params.next().unwrap(), params.next().unwrap());
                    conv64(&h, w, b, [c_in, c_out, k, stride, padding], false)
                }
                Layer::ConvTranspose2d { c_in, c_out, k, stride, padding } => {
                    let (w, b) = (params.next().unwrap(), params.next().unwrap());
                    conv64(&h, w, b, [c_in, c_out, k, stride, padding], true)
                }
                Layer::MaxPool2d => {
                    let idx = frozen.next().unwrap();
                    let [n, c, oh, ow] = idx.shape;
                    let (ih, iw) = (h.shape[2], h.shape[3]);
                    let pos = idx.to_vec();
                    let v = (0..n * c * oh * ow).map(|o| h.v[(o / (oh * ow)) * ih * iw + pos[o] as usize]).collect();
                    open.push((idx, ih, iw));
                    T64 { shape: vec![n, c, oh, ow], v }
                }
                Layer::MaxUnpool2d => {
                    let (idx, ih, iw) = open.pop().unwrap();
                    let [n, c, oh, ow] = idx.shape;
                    let mut v = vec![0.0; n * c * ih * iw];
                    for (o, &at) in idx.to_vec().iter().enumerate() {
                        v[(o / (oh * ow)) * ih * iw + at as usize] = h.v[o];
                    }
                    T64 { shape: vec![n, c, ih, iw], v }
                }
                Layer::ToImage => T64 { shape: vec![h.shape[0], 1, SIDE, SIDE], v: h.v },
                Layer::Flatten => T64 { shape: vec![h.shape[0], h.v.len() / h.shape[0]], v: h.v },
            };
        }
        if part == 0 {
            code = h.clone();
        }
    }
    (code, h)
}

/// conv2d (weight (c_out, c_in, k, k)) or, with `transposed`, conv_transpose2d (weight
/// (c_in, c_out, k, k)), each from its defining sum over taps:
/// conv:  y[co][oy][ox] = b[co] + sum W[co][ci][ki][kj] x[ci][oy*s-p+ki][ox*s-p+kj]
/// convT: y[co][iy*s-p+ki][ix*s-p+kj] += W[ci][co][ki][kj] x[ci][iy][ix], y starting at b.
fn conv64(x: &T64, w: &[f64], b: &[f64], [c_in, c_out, k, s, p]: [usize; 5], transposed: bool) -> T64 {
    let (n, ih, iw) = (x.shape[0], x.shape[2], x.shape[3]);
    let (oh, ow) = if transposed {
        ((ih - 1) * s + k - 2 * p, (iw - 1) * s + k - 2 * p)
    } else {
        ((ih + 2 * p - k) / s + 1, (iw + 2 * p - k) / s + 1)
    };
    let mut y = vec![0.0; n * c_out * oh * ow];
    for i in 0..n {
        for co in 0..c_out {
            y[(i * c_out + co) * oh * ow..][..oh * ow].iter_mut().for_each(|v| *v = b[co]);
        }
        for ci in 0..c_in {
            for co in 0..c_out {
                for ki in 0..k {
                    for kj in 0..k {
                        let wt = if transposed {
                            w[((ci * c_out + co) * k + ki) * k + kj]
                        } else {
                            w[((co * c_in + ci) * k + ki) * k + kj]
                        };
                        // (small, large) = (x, y) for convT, (y, x) for conv: y or x at
                        // large[a*s-p+ki][b*s-p+kj] pairs with small[a][b].
                        let (sh, sw, lh, lw) = if transposed { (ih, iw, oh, ow) } else { (oh, ow, ih, iw) };
                        for a in 0..sh {
                            let Some(r) = (a * s + ki).checked_sub(p).filter(|&r| r < lh) else { continue };
                            for bb in 0..sw {
                                let Some(q) = (bb * s + kj).checked_sub(p).filter(|&q| q < lw) else { continue };
                                if transposed {
                                    y[((i * c_out + co) * oh + r) * ow + q] +=
                                        wt * x.v[((i * c_in + ci) * ih + a) * iw + bb];
                                } else {
                                    y[((i * c_out + co) * oh + a) * ow + bb] +=
                                        wt * x.v[((i * c_in + ci) * ih + r) * iw + q];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    T64 { shape: vec![n, c_out, oh, ow], v: y }
}

/// The training loss in f64: mean squared error to x plus `l1` times the sum of |code|
/// over the batch's images, divided by their number (as `Model::loss`).
fn loss64(model: &Model, p: &[Vec<f64>], x: &Tensor, l1: f32, pools: &[Indices]) -> f64 {
    let (code, out) = forward64(model, p, x, pools);
    let sq: f64 = out.v.iter().zip(x.as_slice()).map(|(&o, &t)| (o - t as f64).powi(2)).sum();
    let abs: f64 = code.v.iter().map(|c| c.abs()).sum();
    sq / x.len() as f64 + l1 as f64 * abs / x.shape()[0] as f64
}

/// A model and batch with at least a tenth of the outputs alive. The study's decoders end
/// in a ReLU on one channel, and about half of all random initialisations of a CAE start
/// with every output at zero (a negative last bias): no gradient flows at all, and a check
/// would pass vacuously; one with a handful of live pixels, all near the kink, tests little
/// but the kink. Seeds are tried in order.
fn live_model(arch: Arch, seed: u64, n: usize) -> (Model, Tensor) {
    (seed..seed + 100)
        .map(|s| {
            let mut rng = rng(s);
            (Model::new(arch, &mut rng), images(n, &mut rng))
        })
        .find(|(m, x)| {
            let out = m.reconstruct(x).0;
            10 * out.as_slice().iter().filter(|&&v| v > 0.0).count() >= out.len()
        })
        .expect("a live initialisation within 100 seeds")
}

/// One derivative compared: the analytic value from backward, <g, d>, against the central
/// difference of the f64 loss along d.
struct Probe {
    what: String,
    analytic: f64,
    numeric: f64,
    /// sum |g_i d_i|: the size of the terms of <g, d>, which bounds its f32 rounding.
    terms: f64,
}

/// The gradient's relative error allowed, of the larger of the two values. What is left is
/// the f32 rounding of backward itself: a median of 2e-7 over the 552 probes of the seven
/// models, and at most 9e-4, in a random direction of the deep AE's first layers (whose
/// gradients come through seven products). A gradient scaled by 2 is off by 1/2, one with
/// its sign flipped by 2, whatever the size of the tensor; any tensor's gradient scaled by
/// more than 0.5% is caught in every direction.
const REL: f64 = 5e-3;
/// f32 rounding of the analytic <g, d>: each g_i carries a few ulps of the terms it sums,
/// 64 ulps of sum |g_i d_i| bounds their total with room (eps32 = 2^-24 per ulp).
const ULPS: f64 = 64.0 / (1u64 << 24) as f64;

impl Probe {
    fn passes(&self) -> bool {
        (self.analytic - self.numeric).abs() <= REL * self.analytic.abs().max(self.numeric.abs()) + ULPS * self.terms
    }
}

/// Directions per parameter tensor besides the gradient's own: random unit vectors.
const RANDOM_DIRECTIONS: usize = 3;
/// Entries per tensor checked one by one: those with the largest analytic gradient.
const LARGEST_ENTRIES: usize = 4;

/// Every derivative probed for `grads`, the claimed gradient of the training loss of
/// `model` on x (MSE plus `l1` times the penalty), one tensor per parameter, in order.
fn probes(model: &Model, x: &Tensor, l1: f32, grads: &[Tensor], seed: u64) -> Vec<Probe> {
    let mut rng = rng(seed);
    let mut tape = Tape::no_grad();
    let pools = model.forward(&mut tape, x).1.pools;
    let base: Vec<Vec<f64>> =
        model.params.iter().map(|p| p.value.as_slice().iter().map(|&v| v as f64).collect()).collect();
    // In f64 the quotient's own error is curvature times h^2 plus rounding 1e-16 / h: both
    // far below what is checked at h = 1e-6. (With h = 1e-5 a few entries of the shallow
    // AEs cross a ReLU kink; at 1e-7 the rounding shows.)
    let h = 1e-6;
    let mut out = Vec::new();
    for (k, param) in model.params.iter().enumerate() {
        let g = grads[k].as_slice();
        let mut probe = |what: String, d: &[f64]| {
            let at = |sign: f64| {
                let mut p = base.clone();
                p[k].iter_mut().zip(d).for_each(|(p, d)| *p += sign * h * d);
                loss64(model, &p, x, l1, &pools)
            };
            let numeric = (at(1.0) - at(-1.0)) / (2.0 * h);
            let analytic = g.iter().zip(d).map(|(&g, &d)| g as f64 * d).sum();
            let terms = g.iter().zip(d).map(|(&g, &d)| (g as f64 * d).abs()).sum();
            out.push(Probe { what: format!("{} {what}", param.name), analytic, numeric, terms });
        };
        let unit = |v: Vec<f64>| {
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v.into_iter().map(|a| a / norm).collect::<Vec<f64>>()
        };
        if g.iter().any(|&v| v != 0.0) {
            probe("along the gradient".into(), &unit(g.iter().map(|&v| v as f64).collect()));
        }
        for r in 0..RANDOM_DIRECTIONS {
            let d = normal(param.value.shape(), &mut rng);
            probe(format!("along random direction {r}"), &unit(d.as_slice().iter().map(|&v| v as f64).collect()));
        }
        let mut order: Vec<usize> = (0..g.len()).collect();
        order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        for &i in order.iter().take(LARGEST_ENTRIES) {
            let mut d = vec![0.0; g.len()];
            d[i] = 1.0;
            probe(format!("[{i}]"), &d);
        }
    }
    out
}

/// The probes of `grads` that fail, one line each.
fn failures(model: &Model, x: &Tensor, l1: f32, grads: &[Tensor], seed: u64) -> Vec<String> {
    probes(model, x, l1, grads, seed)
        .into_iter()
        .filter(|p| !p.passes())
        .map(|p| format!("{}: backward {:e}, finite difference {:e}", p.what, p.analytic, p.numeric))
        .collect()
}

/// The f64 forward is the model: its loss is the engine's to f32 rounding (a sum of 2,352
/// squares, each from sums of up to 784 products), and backward matches its differences.
fn check_model(arch: Arch, l1: f32, seed: u64) {
    let (model, x) = live_model(arch, seed, 3);
    let (loss, grads) = model.gradients(&x, &x, l1);
    let pools = model.forward(&mut Tape::no_grad(), &x).1.pools;
    let loss_64 = loss64(&model, &f64_params(&model), &x, l1, &pools);
    assert!(
        (loss as f64 - loss_64).abs() <= 1e-5 * loss_64,
        "{}: engine loss {loss:e}, f64 loss {loss_64:e}",
        arch.name()
    );
    let failed = failures(&model, &x, l1, &grads, seed);
    assert!(failed.is_empty(), "{}: gradients differ from finite differences:\n{}", arch.name(), failed.join("\n"));
}

/// The model's parameters as f64, in order.
fn f64_params(model: &Model) -> Vec<Vec<f64>> {
    model.params.iter().map(|p| p.value.as_slice().iter().map(|&v| v as f64).collect()).collect()
}

/// The names of the tensors with at least one failing probe.
fn failing_tensors(failed: &[String]) -> Vec<String> {
    let mut names: Vec<String> = failed.iter().map(|f| f.split(' ').next().unwrap().to_string()).collect();
    names.dedup();
    names
}

/// The check bites: the sparse AE's gradient with the L1 penalty's part doubled (the
/// gradient of the loss with 2 * l1, checked against the loss with l1) is caught in every
/// encoder tensor, whose gradients the penalty reaches, and in no decoder tensor.
#[test]
fn a_doubled_l1_gradient_is_caught() {
    let (model, x) = live_model(Arch::Shallow { hidden: 50 }, 12, 3);
    let (_, doubled) = model.gradients(&x, &x, 0.2);
    let failed = failing_tensors(&failures(&model, &x, 0.1, &doubled, 12));
    assert_eq!(failed, ["encoder.0.weight", "encoder.0.bias"]);
}

/// The check bites: one decoder weight's gradient with its sign flipped is caught, in that
/// tensor alone; in the deep AE that is the 784 x 784 weight, 614,656 values.
#[test]
fn a_flipped_decoder_weight_gradient_is_caught() {
    for (arch, seed) in [(Arch::DeepAe, 10), (Arch::CaeDeconv, 15)] {
        let (model, x) = live_model(arch, seed, 3);
        let (_, mut grads) = model.gradients(&x, &x, 0.0);
        let k = model.params.iter().rposition(|p| p.name.ends_with("weight")).unwrap();
        grads[k].as_slice_mut().iter_mut().for_each(|g| *g = -*g);
        let failed = failing_tensors(&failures(&model, &x, 0.0, &grads, seed));
        assert_eq!(failed, [model.params[k].name.clone()], "{}", arch.name());
    }
}

/// The check bites where the old one (one direction, error relative to |g|) did not: with
/// the gradient of every tensor over 1,000 values set to zero, each of those is caught.
#[test]
fn zeroed_large_gradients_are_caught() {
    let (model, x) = live_model(Arch::DeepAe, 10, 3);
    let (_, mut grads) = model.gradients(&x, &x, 0.0);
    let mut large = Vec::new();
    for (g, p) in grads.iter_mut().zip(&model.params) {
        if g.len() > 1000 {
            g.as_slice_mut().fill(0.0);
            large.push(p.name.clone());
        }
    }
    assert_eq!(failing_tensors(&failures(&model, &x, 0.0, &grads, 10)), large);
}

#[test]
fn deep_ae_gradients() {
    check_model(Arch::DeepAe, 0.0, 10);
}

#[test]
fn shallow_ae_gradients() {
    check_model(Arch::Shallow { hidden: 32 }, 0.0, 11);
}

/// The sparse AE's code feeds the decoder and the L1 penalty: both gradients must arrive.
#[test]
fn sparse_ae_gradients() {
    check_model(Arch::Shallow { hidden: 50 }, 0.1, 12);
}

#[test]
fn manifold_gradients() {
    check_model(Arch::Manifold, 0.0, 13);
}

#[test]
fn cae_unpool_gradients() {
    check_model(Arch::CaeUnpool, 0.0, 14);
}

#[test]
fn cae_deconv_gradients() {
    check_model(Arch::CaeDeconv, 0.0, 15);
}

#[test]
fn cae_deconv_unpool_gradients() {
    check_model(Arch::CaeDeconvUnpool, 0.0, 16);
}

/// `forward_with_pools` given the pools' own choices is `forward`, to the bit, for every
/// architecture with pools: the frozen pass the gradient check differentiates is the
/// model. Given another batch's choices, the output changes.
#[test]
fn frozen_pools_of_the_same_batch_change_nothing() {
    for arch in [Arch::CaeUnpool, Arch::CaeDeconv, Arch::CaeDeconvUnpool] {
        let mut rng = rng(21);
        let model = Model::new(arch, &mut rng);
        let (x, y) = (images(3, &mut rng), images(3, &mut rng));
        let run = |x: &Tensor, frozen: Option<&[Indices]>| {
            let mut tape = Tape::no_grad();
            let (_, fwd) = model.forward_with_pools(&mut tape, x, frozen);
            let bits = |v| tape.value(v).to_vec().into_iter().map(f32::to_bits).collect::<Vec<_>>();
            (bits(fwd.output), bits(fwd.code), fwd.pools)
        };
        let (out, code, pools) = run(&x, None);
        assert_eq!(pools.len(), 3, "{}", arch.name());
        let (out_frozen, code_frozen, pools_frozen) = run(&x, Some(&pools));
        assert!(out == out_frozen && code == code_frozen, "{}: frozen pools changed the output", arch.name());
        let same = |a: &[Indices], b: &[Indices]| a.iter().zip(b).all(|(a, b)| a.to_vec() == b.to_vec());
        assert!(same(&pools, &pools_frozen), "{}: the frozen pass reported other choices", arch.name());
        let (_, code_y, pools_y) = run(&y, None);
        let (_, code_y_frozen, _) = run(&y, Some(&pools));
        assert!(
            !same(&pools, &pools_y) && code_y != code_y_frozen,
            "{}: another batch's choices made no difference",
            arch.name()
        );
    }
}

/// The CPU floors' names, as config.json and `--kernels` spell them: each name reads back
/// as its floor, and nothing else reads as one.
#[test]
fn kernels_names_round_trip() {
    use autoencoders::ops::Kernels;
    assert_eq!((Kernels::Reference.name(), Kernels::Fast.name()), ("reference", "fast"));
    for k in [Kernels::Reference, Kernels::Fast] {
        assert_eq!(Kernels::from_name(k.name()), Some(k));
    }
    for other in ["", "Fast", "slow", "reference "] {
        assert_eq!(Kernels::from_name(other), None, "{other:?}");
    }
}

/// The architectures are the study's: parameter counts as PyTorch reports them for the same
/// layers, and the code shapes.
#[test]
fn architectures() {
    let mut rng = rng(0);
    let count = |arch| Model::new(arch, &mut rng_from(0)).num_parameters();
    fn rng_from(s: u64) -> Rng64 {
        autoencoders::tensor::rng_from_seed(s)
    }
    // 784*512+512 + 512*256+256 + 256*128+128 + 128*30+30 + 30*128+128 + 128*256+256 + 256*784+784 + 784*784+784
    assert_eq!(count(Arch::DeepAe), 1_423_934);
    assert_eq!(count(Arch::Shallow { hidden: 64 }), 784 * 64 + 64 + 64 * 64 + 64 + 64 * 784 + 784);
    // encoder convs 8*9+8 + 16*72+16 + 16*144+16 = 3,568; decoder 8*144+8 + 1*72+1 = 1,233
    assert_eq!(count(Arch::CaeUnpool), 3_568 + 1_233);
    // convT 16*16*9+16 + 16*8*16+8 + 8*1*16+1 = 4,505
    assert_eq!(count(Arch::CaeDeconv), 3_568 + 4_505);
    for (arch, code) in [
        (Arch::DeepAe, vec![2, 30]),
        (Arch::Manifold, vec![2, 8]),
        (Arch::CaeUnpool, vec![2, 16, 3, 3]),
        (Arch::CaeDeconvUnpool, vec![2, 16, 3, 3]),
    ] {
        let model = Model::new(arch, &mut rng);
        let (out, code_t) = model.reconstruct(&images(2, &mut rng));
        assert_eq!(out.shape(), [2, PIXELS], "{}", arch.name());
        assert_eq!(code_t.shape(), code, "{}", arch.name());
    }
}

/// Initialisation follows PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with a transposed
/// conv's fan-in taken from weight.size(1) * k * k.
#[test]
fn initialisation_bounds() {
    let model = Model::new(Arch::CaeDeconv, &mut rng(5));
    for p in &model.params {
        let fan_in: usize = match p.value.shape() {
            [_, i] => *i,
            [a, b, k1, k2] if p.name.starts_with("decoder") => {
                let _ = a;
                b * k1 * k2
            }
            [_, i, k1, k2] => i * k1 * k2,
            [_] => continue,
            s => panic!("unexpected shape {s:?}"),
        };
        let bound = 1.0 / (fan_in as f32).sqrt();
        let max = p.value.as_slice().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max <= bound && max > 0.8 * bound, "{}: max |w| {max} for bound {bound}", p.name);
    }
}

/// 300 Adam steps on a fixed batch drive every (live) model's loss well down.
#[test]
fn every_model_learns_a_batch() {
    for arch in [
        Arch::DeepAe,
        Arch::Shallow { hidden: 64 },
        Arch::Manifold,
        Arch::CaeUnpool,
        Arch::CaeDeconv,
        Arch::CaeDeconvUnpool,
    ] {
        let (mut model, x) = live_model(arch, 7, 16);
        let mut adam = model.adam(AdamConfig::default());
        let first = model.train_step(&mut adam, &x, &x, 0.0);
        for _ in 0..300 {
            model.train_step(&mut adam, &x, &x, 0.0);
        }
        let last = model.loss_value(&x, &x, 0.0);
        assert!(last < 0.5 * first, "{}: loss {first} -> {last}", arch.name());
    }
}

/// The training step updates each parameter from inside backward, as soon as its gradient
/// is final (`Tape::backward_each`); that must move every parameter exactly as a whole
/// backward followed by `Adam::step` does, to the bit, over several steps (so the moments
/// are checked too), with and without the sparse penalty, whose code feeds two consumers.
#[test]
fn the_step_inside_backward_is_backward_then_adam() {
    for (arch, l1) in [
        (Arch::DeepAe, 0.0),
        (Arch::Shallow { hidden: 40 }, 0.5),
        (Arch::Manifold, 0.0),
        (Arch::CaeUnpool, 0.0),
        (Arch::CaeDeconv, 0.0),
        (Arch::CaeDeconvUnpool, 0.0),
    ] {
        let (model, x) = live_model(arch, 11, 8);
        let (mut fused, mut apart) = (model.clone(), model);
        let (mut adam_fused, mut adam_apart) = (fused.adam(AdamConfig::default()), apart.adam(AdamConfig::default()));
        for step in 1..=3 {
            let loss_fused = fused.train_step(&mut adam_fused, &x, &x, l1);
            let (loss_apart, grads) = apart.gradients(&x, &x, l1);
            let mut values: Vec<&mut Tensor> = apart.params.iter_mut().map(|p| &mut p.value).collect();
            adam_apart.step(&mut values, &grads);
            assert_eq!(loss_fused.to_bits(), loss_apart.to_bits(), "{} step {step}: loss", arch.name());
            for (a, b) in fused.params.iter().zip(&apart.params) {
                assert_eq!(a.value.shape(), b.value.shape());
                let bits = |t: &Tensor| t.to_vec().into_iter().map(f32::to_bits).collect::<Vec<_>>();
                assert!(bits(&a.value) == bits(&b.value), "{} step {step}: {} differs", arch.name(), a.name);
            }
        }
    }
}

/// Same seed, same bits: initialisation and training are deterministic, and the result
/// does not depend on the number of threads.
#[test]
fn training_is_bit_reproducible_across_thread_counts() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut rng = rng(9);
            let x = images(64, &mut rng);
            let mut out = Vec::new();
            for arch in [Arch::DeepAe, Arch::CaeUnpool, Arch::CaeDeconv] {
                let mut model = Model::new(arch, &mut rng);
                let mut adam = model.adam(AdamConfig::default());
                for _ in 0..3 {
                    out.push(model.train_step(&mut adam, &x, &x, 0.0).to_bits());
                }
                out.extend(model.params.iter().flat_map(|p| p.value.to_vec()).map(f32::to_bits));
            }
            out
        })
    };
    let one = run(1);
    assert_eq!(one, run(1), "two runs with one thread differ");
    assert_eq!(one, run(3), "one thread and three threads differ");
}
