//! The optimisation ladder of docs/performance.md: each op at one of the study's shapes
//! (batch 64), from the reference loop of `src/ops/` up through each fast step of `src/cpu/`,
//! with its time, its speed-up over the reference, its GFLOP/s, and that rate as a fraction of
//! this machine's SGEMM rate (matrixmultiply, 1024^3, measured in the same run).
//!
//!     cargo bench --bench ladder                  # every op
//!     cargo bench --bench ladder -- conv          # only the ops whose name contains "conv"
//!     RAYON_NUM_THREADS=2 cargo bench --bench ladder
//!
//! Each time is the median of repeated runs after a warm-up. The flops are those of the op
//! as the reference computes it (2 per multiply-add), whatever a fast step leaves out: a rung
//! that skips work shows it as a higher rate. Markdown on stdout, ready for the docs.

use autoencoders::cpu;
use autoencoders::cpu::conv::Route;
use autoencoders::cpu::gemm::{par_gemm, Mat};
use autoencoders::geom::ConvGeom;
use autoencoders::ops::{conv, linear, loss, pool, relu};
use autoencoders::tensor::{rng_from_seed, Rng64};
use rand::Rng;
use std::hint::black_box;

mod timing;

/// Median seconds of `f` over enough repetitions to fill about `budget` seconds (3 to 200).
fn median_seconds(budget: f64, f: impl FnMut()) -> f64 {
    timing::median_seconds(budget, 3, 200, f)
}

fn values(len: usize, rng: &mut Rng64) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// One op's ladder: rungs of (name, seconds), printed as a Markdown table.
struct Ladder {
    op: String,
    flops: f64,
    sgemm: f64,
    rungs: Vec<(String, f64)>,
}

impl Ladder {
    fn rung(&mut self, name: &str, budget: f64, f: impl FnMut()) {
        self.rungs.push((name.to_string(), median_seconds(budget, f)));
    }

    fn print(&self) {
        match self.flops > 0.0 {
            true => println!("\n**{}** ({:.1} MFLOP as the reference computes it)\n", self.op, self.flops / 1e6),
            false => println!("\n**{}** (moves values: no arithmetic to rate)\n", self.op),
        }
        println!("| step | ms | speed-up | GFLOP/s | of SGEMM |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        let reference = self.rungs[0].1;
        for (name, s) in &self.rungs {
            let rate = self.flops / s / 1e9;
            let (rate, share) = if self.flops > 0.0 {
                (format!("{rate:.1}"), format!("{:.0}%", 100.0 * rate / self.sgemm))
            } else {
                ("-".into(), "-".into())
            };
            println!("| {name} | {:.3} | {:.1}x | {rate} | {share} |", s * 1e3, reference / s);
        }
    }
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));
    let mut rng = rng_from_seed(0);
    let threads = rayon::current_num_threads();

    let n = 1024;
    let (a, b) = (values(n * n, &mut rng), values(n * n, &mut rng));
    let mut c = vec![0.0; n * n];
    let s = median_seconds(2.0, || par_gemm(Mat::new(&a, n, n), Mat::new(&b, n, n), 0.0, &mut c));
    let sgemm = 2.0 * (n * n * n) as f64 / s / 1e9;
    println!("SGEMM (par_gemm, 1024^3): {sgemm:.1} GFLOP/s on {threads} threads");
    let ladder = |op: &str, flops: f64| Ladder { op: op.to_string(), flops, sgemm, rungs: Vec::new() };

    // The deep AE's first layer, 784 -> 512: forward and both backward products.
    if wanted("linear") {
        let (bn, d_in, d_out) = (64, 784, 512);
        let (mut x, w, b) = (values(bn * d_in, &mut rng), values(d_out * d_in, &mut rng), values(d_out, &mut rng));
        let mut dout = values(bn * d_out, &mut rng);
        let (mut y, mut dx, mut dw) = (vec![0.0; bn * d_out], vec![0.0; bn * d_in], vec![0.0; d_out * d_in]);
        let mut l = ladder("linear 64 x 784 -> 512, forward + dx + dW", 3.0 * 2.0 * (bn * d_in * d_out) as f64);
        l.rung("reference loops (ops::linear)", 2.0, || {
            linear::linear_forward(&x, &w, Some(&b), &mut y, d_in, d_out);
            linear::linear_backward_input(&dout, &w, &mut dx, d_in, d_out);
            linear::linear_backward_weight(&dout, &x, &mut dw, d_in, d_out);
        });
        l.rung("packed GEMM (matrixmultiply, par_gemm)", 1.0, || {
            par_gemm(Mat::new(&x, bn, d_in), Mat::new(&w, d_out, d_in).t(), 0.0, &mut y);
            par_gemm(Mat::new(&dout, bn, d_out), Mat::new(&w, d_out, d_in), 1.0, &mut dx);
            par_gemm(Mat::new(&dout, bn, d_out).t(), Mat::new(&x, bn, d_in), 1.0, &mut dw);
        });
        let fast_name = if cpu::thin::applies() {
            "operands read in place (AVX-512, cpu::thin)"
        } else {
            "cpu::linear (no AVX-512 here: the packed GEMM)"
        };
        l.rung(fast_name, 1.0, || {
            cpu::linear::linear_forward(&x, &w, Some(&b), &mut y, d_in, d_out);
            cpu::linear::linear_backward_input(&dout, &w, &mut dx, d_in, d_out);
            cpu::linear::linear_backward_weight(&dout, &x, &mut dw, d_in, d_out);
        });
        // What a batch of MNIST behind a ReLU looks like: a third of the pixels zero in every
        // image, and (measured in training) a third of the layer's units without gradient.
        x.iter_mut().enumerate().filter(|(i, _)| i % d_in % 3 == 0).for_each(|(_, v)| *v = 0.0);
        dout.iter_mut().enumerate().filter(|(i, _)| i % d_out % 3 == 1).for_each(|(_, v)| *v = 0.0);
        l.rung("+ units the batch leaves at zero left out (a third each side)", 1.0, || {
            cpu::linear::linear_forward(&x, &w, Some(&b), &mut y, d_in, d_out);
            cpu::linear::linear_backward_input(&dout, &w, &mut dx, d_in, d_out);
            cpu::linear::linear_backward_weight(&dout, &x, &mut dw, d_in, d_out);
        });
        black_box((&y, &dx, &dw));
        l.print();
    }

    // The CAE encoder's layers, k3 p1: 1 -> 16 on 28x28 and 16 -> 8 on 14x14.
    for (c_in, hw, c_out) in [(1, 28, 16), (16, 14, 8)] {
        let name = format!("conv2d {c_in} -> {c_out} on {hw}x{hw}, k3 p1, forward + dx + dW");
        if !wanted(&name) {
            continue;
        }
        let (bn, g) = (64, ConvGeom::new(c_in, hw, hw, 3, 3, 1, 1));
        let (x, w, b) =
            (values(bn * c_in * hw * hw, &mut rng), values(c_out * c_in * 9, &mut rng), values(c_out, &mut rng));
        let dout = values(bn * c_out * hw * hw, &mut rng);
        let (mut y, mut dx, mut dw) = (vec![0.0; dout.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        let mut l = ladder(&name, 3.0 * 2.0 * (bn * c_out * hw * hw * c_in * 9) as f64);
        l.rung("reference loops (ops::conv)", 2.0, || {
            conv::conv2d_forward(&x, &w, Some(&b), &mut y, &g, c_out);
            conv::conv2d_backward_input(&dout, &w, &mut dx, &g, c_out);
            conv::conv2d_backward_weight(&dout, &x, &mut dw, &g, c_out);
        });
        for (route, what) in
            [(Route::Im2col, "im2col + GEMM, per image in parallel"), (Route::Direct, "direct: sums of shifted planes")]
        {
            l.rung(what, 1.0, || {
                cpu::conv::conv2d_forward_by(route, &x, &w, Some(&b), &mut y, &g, c_out);
                cpu::conv::conv2d_backward_input_by(route, &dout, &w, &mut dx, &g, c_out);
                cpu::conv::conv2d_backward_weight_by(route, &dout, &x, &mut dw, &g, c_out);
            });
        }
        black_box((&y, &dx, &dw));
        l.print();
    }

    // cae-deconv's strided layer: 16 -> 8, 7x7 -> 14x14, k4 s2 p1 (im2col only).
    if wanted("conv_transpose2d") {
        let (bn, c_in, c_out) = (64, 16, 8);
        let g = ConvGeom::new(c_out, 14, 14, 4, 4, 2, 1);
        let (x, w) = (values(bn * c_in * 49, &mut rng), values(c_in * c_out * 16, &mut rng));
        let dout = values(bn * c_out * 196, &mut rng);
        let (mut y, mut dx, mut dw) = (vec![0.0; dout.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        let mut l = ladder(
            "conv_transpose2d 16 -> 8, 7x7 -> 14x14, k4 s2 p1, forward + dx + dW",
            3.0 * 2.0 * (bn * c_in * 49 * c_out * 16) as f64,
        );
        l.rung("reference loops (ops::conv)", 2.0, || {
            conv::conv_transpose2d_forward(&x, &w, None, &mut y, &g, c_in);
            conv::conv_transpose2d_backward_input(&dout, &w, &mut dx, &g, c_in);
            conv::conv_transpose2d_backward_weight(&dout, &x, &mut dw, &g, c_in);
        });
        l.rung("im2col + GEMM, dout's columns built once", 1.0, || {
            cpu::conv::conv_transpose2d_forward(&x, &w, None, &mut y, &g, c_in);
            let cols = cpu::conv::DoutColumns::of(&dout, &g);
            cpu::conv::conv_transpose2d_backward_input_with(&cols, &dout, &w, &mut dx, &g, c_in);
            cpu::conv::conv_transpose2d_backward_weight_with(&cols, &dout, &x, &mut dw, &g, c_in);
        });
        black_box((&y, &dx, &dw));
        l.print();
    }

    // The CAE's first pool, 64 x 16 x 28 x 28 -> 14 x 14, and the unpool that mirrors it.
    if wanted("pool") {
        let (planes, h, w) = (64 * 16, 28, 28);
        let x = values(planes * h * w, &mut rng);
        let (mut y, mut idx, mut up) = (vec![0.0; planes * 196], vec![0u32; planes * 196], vec![0.0; x.len()]);
        let mut l = ladder("max-pool 64 x 16 x 28 x 28 and the unpool of its output", 0.0);
        l.rung("reference loops (ops::pool)", 1.0, || {
            pool::maxpool2d_forward(&x, &mut y, &mut idx, h, w);
            pool::maxunpool2d_forward(&y, &idx, &mut up, 14, 14, h, w);
        });
        l.rung("planes in parallel, the window as branch-free selects", 1.0, || {
            cpu::pool::maxpool2d_forward(&x, &mut y, &mut idx, h, w);
            cpu::pool::maxunpool2d_forward(&y, &idx, &mut up, 14, 14, h, w);
        });
        // What the tape calls: the unpool's output made a plane at a time, each plane zeroed
        // by the task that fills it, instead of a given buffer cleared and written.
        l.rung("+ the unpool into a new buffer, a plane zeroed as it is filled", 1.0, || {
            cpu::pool::maxpool2d_forward(&x, &mut y, &mut idx, h, w);
            black_box(cpu::pool::maxunpool2d_forward_new(&y, &idx, 14, 14, h, w));
        });
        black_box(&up);
        l.print();
    }

    // h900's activations, 64 x 900: ReLU forward and backward, and the MSE of 64 x 784.
    if wanted("elementwise") {
        let (x, dout) = (values(64 * 900, &mut rng), values(64 * 900, &mut rng));
        let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let (p, t) = (values(64 * 784, &mut rng), values(64 * 784, &mut rng));
        let mut dp = vec![0.0; p.len()];
        let mut l = ladder("elementwise: ReLU of 64 x 900 (forward, backward) and MSE of 64 x 784", 0.0);
        l.rung("reference loops (ops::relu, ops::loss)", 0.5, || {
            relu::relu_forward(&x, &mut y);
            relu::relu_backward(&y, &dout, &mut dx);
            black_box(loss::mse_forward(&p, &t));
            loss::mse_backward(&p, &t, 1e-3, &mut dp);
        });
        l.rung("chunks of 16K values in parallel", 0.5, || {
            cpu::relu::relu_forward(&x, &mut y);
            cpu::relu::relu_backward(&y, &dout, &mut dx);
            black_box(cpu::loss::mse_forward(&p, &t));
            cpu::loss::mse_backward(&p, &t, 1e-3, &mut dp);
        });
        // What the tape calls: the ReLU's output and the first gradient to reach its input
        // written once into new buffers, not into given (already cleared) ones.
        l.rung("+ ReLU's output and gradient into new buffers, written once", 0.5, || {
            black_box(cpu::relu::relu_forward_new(&x));
            black_box(cpu::relu::relu_backward_new(&y, &dout));
            black_box(cpu::loss::mse_forward(&p, &t));
            cpu::loss::mse_backward(&p, &t, 1e-3, &mut dp);
        });
        black_box((&dx, &dp));
        l.print();
    }
}
