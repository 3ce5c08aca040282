//! Throughput of each op, forward + backward, at the shapes the study's models use (batch
//! 64), of the GEMM that carries them, and of whole training steps.
//!
//!     cargo bench --bench ops                 # everything
//!     cargo bench --bench ops -- step         # only rows whose name contains "step"
//!
//! Each row is the median of repeated runs after a warm-up; GFLOP/s counts the
//! multiply-adds of the products as 2 flops (forward, plus both products of backward).
//! Set RAYON_NUM_THREADS to fix the thread count when comparing with PyTorch.

use autoencoders::cpu::gemm::{par_gemm, Mat};
use autoencoders::models::{Arch, Layer, Model, PIXELS};
use autoencoders::optim::AdamConfig;
use autoencoders::tensor::{rng_from_seed, Rng64, Tensor};
use autoencoders::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use std::hint::black_box;

const BATCH: usize = 64;

mod timing;

/// Median seconds of `f` over enough repetitions to fill about half a second.
fn median_seconds(f: impl FnMut()) -> f64 {
    timing::median_seconds(0.5, 5, 2000, f)
}

fn report(name: &str, seconds: f64, flops: f64) {
    if flops > 0.0 {
        println!("{name:<44} {:>10.3} ms {:>8.1} GFLOP/s", seconds * 1e3, flops / seconds / 1e9);
    } else {
        println!("{name:<44} {:>10.3} ms", seconds * 1e3);
    }
}

fn random(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect())
}

/// Forward and backward of one op on fresh inputs (all requiring gradients).
fn bench_op(name: &str, inputs: &[Tensor], flops: f64, f: impl Fn(&mut Tape, &[Var]) -> Var, filter: &Option<String>) {
    if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
        return;
    }
    let seconds = median_seconds(|| {
        let mut tape = Tape::new();
        let vars: Vec<Var> = inputs.iter().map(|t| tape.param(t.clone())).collect();
        let y = f(&mut tape, &vars);
        let ones = ArrayD::from_elem(IxDyn(tape.shape(y)), 1.0);
        tape.backward_with(y, ones);
        black_box(tape.grad(vars[0]));
    });
    report(name, seconds, flops);
}

/// Multiply-add flops of one training step: each product appears three times (forward,
/// input gradient, weight gradient), less the input gradient of the first layer, which
/// nobody needs and the tape does not compute.
fn step_flops(model: &Model, n: usize) -> f64 {
    let mut flops = 0.0;
    let mut first = true;
    let (mut c, mut h, mut w) = (1usize, 28usize, 28usize);
    let mut sizes = Vec::new();
    for layer in model.encoder.iter().chain(&model.decoder) {
        let fwd = match *layer {
            Layer::Linear { d_in, d_out } => 2.0 * (n * d_in * d_out) as f64,
            Layer::Conv2d { c_in, c_out, k, stride, padding } => {
                (h, w) = ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1);
                c = c_out;
                2.0 * (n * c_out * h * w * c_in * k * k) as f64
            }
            Layer::ConvTranspose2d { c_in, c_out, k, stride, padding } => {
                let f = 2.0 * (n * c_in * h * w * c_out * k * k) as f64;
                (h, w) = ((h - 1) * stride + k - 2 * padding, (w - 1) * stride + k - 2 * padding);
                c = c_out;
                f
            }
            Layer::MaxPool2d => {
                sizes.push((h, w));
                (h, w) = (h / 2, w / 2);
                0.0
            }
            Layer::MaxUnpool2d => {
                (h, w) = sizes.pop().unwrap();
                0.0
            }
            _ => 0.0,
        };
        let _ = c;
        if fwd > 0.0 {
            flops += if first { 2.0 * fwd } else { 3.0 * fwd };
            first = false;
        }
    }
    flops
}

fn main() {
    autoencoders::memory::keep_freed_memory();
    // On a worker of the pool, as `train` runs: a parallel loop started from any other
    // thread would pay for handing its work over and waiting, which a step does not.
    rayon::scope(|_| run());
}

fn run() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut rng = rng_from_seed(0);
    println!("threads: {}", rayon::current_num_threads());

    for (m, k, n) in [(64, 784, 512), (512, 64, 784), (1024, 1024, 1024)] {
        let name = format!("gemm {m}x{k}x{n}");
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let (a, b) = (random(&[m, k], &mut rng), random(&[k, n], &mut rng));
        let mut c = vec![0.0; m * n];
        let s = median_seconds(|| par_gemm(Mat::new(a.as_slice(), m, k), Mat::new(b.as_slice(), k, n), 0.0, &mut c));
        report(&name, s, 2.0 * (m * k * n) as f64);
        // The same product with B held transposed (n x k, row-major), as a linear layer's
        // forward x W^T reads its weights: the packing then gathers B a value at a time.
        let bt = random(&[n, k], &mut rng);
        let s =
            median_seconds(|| par_gemm(Mat::new(a.as_slice(), m, k), Mat::new(bt.as_slice(), n, k).t(), 0.0, &mut c));
        report(&format!("{name} (B transposed)"), s, 2.0 * (m * k * n) as f64);
    }

    for (d_in, d_out) in [(784, 512), (512, 256), (30, 128), (256, 784), (784, 784), (784, 900), (900, 784)] {
        let inputs = [random(&[BATCH, d_in], &mut rng), random(&[d_out, d_in], &mut rng), random(&[d_out], &mut rng)];
        bench_op(
            &format!("linear {d_in}->{d_out}"),
            &inputs,
            6.0 * (BATCH * d_in * d_out) as f64,
            |t, v| t.linear(v[0], v[1], Some(v[2])),
            &filter,
        );
    }
    for (c_in, c_out, hw) in [(1, 8, 28), (8, 16, 14), (16, 16, 7), (16, 8, 14), (8, 1, 28)] {
        let inputs = [
            random(&[BATCH, c_in, hw, hw], &mut rng),
            random(&[c_out, c_in, 3, 3], &mut rng),
            random(&[c_out], &mut rng),
        ];
        let flops = 6.0 * (BATCH * c_out * hw * hw * c_in * 9) as f64;
        bench_op(
            &format!("conv2d {c_in}->{c_out} k3 p1 {hw}x{hw}"),
            &inputs,
            flops,
            |t, v| t.conv2d(v[0], v[1], Some(v[2]), 1, 1),
            &filter,
        );
    }
    for (c_in, c_out, hw, k, s, p) in [
        (16, 16, 3, 3, 2, 0),
        (16, 8, 7, 4, 2, 1),
        (8, 1, 14, 4, 2, 1),
        (16, 16, 7, 3, 1, 1),
        (16, 8, 14, 3, 1, 1),
        (8, 1, 28, 3, 1, 1),
    ] {
        let inputs = [
            random(&[BATCH, c_in, hw, hw], &mut rng),
            random(&[c_in, c_out, k, k], &mut rng),
            random(&[c_out], &mut rng),
        ];
        let flops = 6.0 * (BATCH * c_in * hw * hw * c_out * k * k) as f64;
        bench_op(
            &format!("conv_transpose2d {c_in}->{c_out} k{k} s{s} p{p} {hw}x{hw}"),
            &inputs,
            flops,
            |t, v| t.conv_transpose2d(v[0], v[1], Some(v[2]), s, p),
            &filter,
        );
    }
    for (c, hw) in [(8, 28), (16, 14), (16, 7)] {
        let x = random(&[BATCH, c, hw, hw], &mut rng);
        bench_op(
            &format!("max_pool2d {c}x{hw}x{hw}"),
            std::slice::from_ref(&x),
            0.0,
            |t, v| t.max_pool2d(v[0]).0,
            &filter,
        );
        bench_op(
            &format!("max_pool2d + max_unpool2d {c}x{hw}x{hw}"),
            &[x],
            0.0,
            |t, v| {
                let (y, idx) = t.max_pool2d(v[0]);
                t.max_unpool2d(y, &idx, hw, hw)
            },
            &filter,
        );
    }
    bench_op("relu 64x512", &[random(&[BATCH, 512], &mut rng)], 0.0, |t, v| t.relu(v[0]), &filter);
    bench_op("relu 64x8x28x28", &[random(&[BATCH, 8, 28, 28], &mut rng)], 0.0, |t, v| t.relu(v[0]), &filter);
    bench_op(
        "mse 64x784",
        &[random(&[BATCH, PIXELS], &mut rng), random(&[BATCH, PIXELS], &mut rng)],
        0.0,
        |t, v| t.mse(v[0], v[1]),
        &filter,
    );
    bench_op("mean_abs 64x900", &[random(&[BATCH, 900], &mut rng)], 0.0, |t, v| t.mean_abs(v[0]), &filter);

    for arch in [
        Arch::DeepAe,
        Arch::Shallow { hidden: 256 },
        Arch::Shallow { hidden: 900 },
        Arch::Manifold,
        Arch::CaeUnpool,
        Arch::CaeDeconv,
        Arch::CaeDeconvUnpool,
    ] {
        let name = format!("training step {} (batch {BATCH})", arch.name());
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let mut model = Model::new(arch, &mut rng);
        let mut adam = model.adam(AdamConfig::default());
        let x =
            Tensor::from_vec(&[BATCH, PIXELS], (0..BATCH * PIXELS).map(|_| rng.random_range(0.0f32..1.0)).collect());
        let flops = step_flops(&model, BATCH);
        let s = median_seconds(|| {
            black_box(model.train_step(&mut adam, &x, &x, 0.0));
        });
        report(&name, s, flops);
    }
}
