//! Every kernel against its CPU function, on the same fixtures: |gpu - cpu| <= 1e-5 +
//! 1e-5 |cpu| elementwise, pool indices equal. The CPU functions are the specification
//! (llm.c's way); `ops::x::f` is checked against `cuda::x::f` of the same name.
//!
//! Without a usable GPU each test prints "skipped: <the probe's reason>" and passes; with
//! REQUIRE_CUDA=1 (scripts/gpu-check.sh sets it) it fails instead.
//!
//! Fixtures for the linear maps (gemm, conv, linear) are dyadic: multiples of 1/16 in
//! [-1, 1]. Their products are multiples of 1/256 and every sum here stays far below 2^24
//! such steps, so both devices compute every value *exactly*, whatever order they add in:
//! a difference is an indexing bug, never rounding. The losses and Adam, which round, use
//! ordinary random values and the tolerance.

mod common;

use autoencoders::cuda::{self, Gpu};
use autoencoders::geom::ConvGeom;
use autoencoders::optim::AdamStep;
use autoencoders::tensor::{rng_from_seed, Rng64};
use autoencoders::{cpu, ops};
use cudarc::driver::CudaSlice;

use rand::Rng;
use std::sync::OnceLock;

/// One GPU for the whole file: compiling the kernels takes a moment, once is enough.
static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();

/// The GPU, or None after printing why the test is skipped (a panic under REQUIRE_CUDA=1).
fn gpu() -> Option<&'static Gpu> {
    common::cuda(GPU.get_or_init(Gpu::new).as_ref().map_err(Clone::clone))
}

fn up<T: cudarc::driver::DeviceRepr>(gpu: &Gpu, host: &[T]) -> CudaSlice<T> {
    gpu.upload(host).expect("upload")
}

fn down<T: cudarc::driver::DeviceRepr>(gpu: &Gpu, dev: &CudaSlice<T>) -> Vec<T> {
    gpu.download(dev).expect("download (a kernel failed?)")
}

/// Multiples of 1/16 in [-1, 1]: exact in every sum these tests form (see the header).
fn dyadic(len: usize, rng: &mut Rng64) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-16i32..=16) as f32 / 16.0).collect()
}

fn uniform(len: usize, rng: &mut Rng64) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// |gpu - cpu| <= 1e-5 + 1e-5 |cpu| everywhere, else the first offender and the count.
fn assert_close(what: &str, gpu: &[f32], cpu: &[f32]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    // Negated on purpose: a NaN (an unwritten output) fails `<=`, so it counts as bad.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    let bad: Vec<usize> =
        (0..cpu.len()).filter(|&i| !((gpu[i] - cpu[i]).abs() <= 1e-5 + 1e-5 * cpu[i].abs())).collect();
    if let Some(&i) = bad.first() {
        panic!("{what}: {} of {} values differ; first at {i}: gpu {} cpu {}", bad.len(), cpu.len(), gpu[i], cpu[i]);
    }
}

#[test]
fn gemm_matches_cpu_for_every_view() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(1);
    // Sizes below, at and across the 64 x 64 x 16 tiles, and degenerate ones; the last
    // three have so few tiles for their k that k is split (into 5, 19 and 3 slices, the
    // last one short).
    for (m, k, n) in
        [(1, 1, 1), (5, 7, 3), (64, 16, 64), (65, 17, 130), (130, 33, 1), (3, 200, 70), (64, 900, 100), (2, 130, 3)]
    {
        for (ta, tb, beta) in
            [(false, false, 0.0), (true, false, 1.0), (false, true, 1.0), (true, true, 0.0), (true, true, 1.0)]
        {
            let (a, b, c0) = (dyadic(m * k, &mut rng), dyadic(k * n, &mut rng), dyadic(m * n, &mut rng));
            // A transposed view stores A^T row-major and swaps the strides back.
            let a_cpu = if ta { cpu::gemm::Mat::new(&a, k, m).t() } else { cpu::gemm::Mat::new(&a, m, k) };
            let b_cpu = if tb { cpu::gemm::Mat::new(&b, n, k).t() } else { cpu::gemm::Mat::new(&b, k, n) };
            let mut c_cpu = c0.clone();
            cpu::gemm::gemm(a_cpu, b_cpu, beta, &mut c_cpu);

            let (a_dev, b_dev) = (up(g, &a), up(g, &b));
            let a_gpu = if ta { cuda::gemm::Mat::new(&a_dev, k, m).t() } else { cuda::gemm::Mat::new(&a_dev, m, k) };
            let b_gpu = if tb { cuda::gemm::Mat::new(&b_dev, n, k).t() } else { cuda::gemm::Mat::new(&b_dev, k, n) };
            // With beta = 0, C must not be read: start it at NaN to prove it.
            let start = if beta == 0.0 { vec![f32::NAN; m * n] } else { c0 };
            let mut c_dev = up(g, &start);
            cuda::gemm::gemm(g, a_gpu, b_gpu, beta, &mut c_dev).unwrap();
            assert_close(&format!("gemm {m}x{k}x{n} ta={ta} tb={tb} beta={beta}"), &down(g, &c_dev), &c_cpu);
        }
    }
}

#[test]
fn batched_gemm_matches_a_loop_of_cpu_products() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(2);
    // k = 20 is computed whole; k = 300 in 7 slices per product (3 products of 2 tiles).
    for (count, m, k, n) in [(3, 9, 20, 70), (3, 9, 300, 70)] {
        // A shared (batch stride 0), as a convolution's weight; B and C one block per product.
        let (a, b) = (dyadic(m * k, &mut rng), dyadic(count * k * n, &mut rng));
        let mut c_cpu = vec![0.0; count * m * n];
        for z in 0..count {
            let b_z = cpu::gemm::Mat::new(&b[z * k * n..(z + 1) * k * n], k, n);
            cpu::gemm::gemm(cpu::gemm::Mat::new(&a, m, k), b_z, 0.0, &mut c_cpu[z * m * n..(z + 1) * m * n]);
        }
        let (a_dev, b_dev) = (up(g, &a), up(g, &b));
        let mut c_dev = g.zeros(count * m * n).unwrap();
        let batch = cuda::gemm::Batch { count, a: 0, b: k * n, c: m * n };
        cuda::gemm::gemm_batched(
            g,
            cuda::gemm::Mat::new(&a_dev, m, k),
            cuda::gemm::Mat::new(&b_dev, k, n),
            0.0,
            &mut c_dev,
            batch,
        )
        .unwrap();
        assert_close(&format!("batched gemm {count} x {m}x{k}x{n}"), &down(g, &c_dev), &c_cpu);
    }
}

/// Geometries with padding, strides 1 and 2, non-square kernels and odd sizes.
fn geometries() -> Vec<ConvGeom> {
    vec![
        ConvGeom::new(2, 5, 7, 3, 3, 1, 1),
        ConvGeom::new(1, 7, 7, 2, 3, 2, 0),
        ConvGeom::new(3, 8, 6, 3, 3, 2, 1),
        ConvGeom::new(1, 28, 28, 5, 5, 2, 2),
    ]
}

#[test]
fn im2col_and_col2im_match_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(3);
    let n = 3;
    for geom in geometries() {
        let (image, block) = (geom.c * geom.h * geom.w, geom.col_rows() * geom.col_cols());
        let x = dyadic(n * image, &mut rng);
        let mut col_cpu = vec![0.0; n * block];
        for i in 0..n {
            cpu::im2col::im2col(&x[i * image..(i + 1) * image], &geom, &mut col_cpu[i * block..(i + 1) * block]);
        }
        let mut col_dev = g.zeros(n * block).unwrap();
        cuda::im2col::im2col(g, &up(g, &x), &geom, n, &mut col_dev).unwrap();
        assert_close(&format!("im2col {geom:?}"), &down(g, &col_dev), &col_cpu);

        // col2im adds into x: start from a nonzero x.
        let (col, x0) = (dyadic(n * block, &mut rng), dyadic(n * image, &mut rng));
        let mut x_cpu = x0.clone();
        for i in 0..n {
            cpu::im2col::col2im(&col[i * block..(i + 1) * block], &geom, &mut x_cpu[i * image..(i + 1) * image]);
        }
        let mut x_dev = up(g, &x0);
        cuda::im2col::col2im(g, &up(g, &col), &geom, n, &mut x_dev).unwrap();
        assert_close(&format!("col2im {geom:?}"), &down(g, &x_dev), &x_cpu);
    }
}

#[test]
fn conv2d_forward_and_backward_match_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(4);
    let (n, c_out) = (2, 3);
    for geom in geometries() {
        let (k, p) = (geom.col_rows(), geom.col_cols());
        let x = dyadic(n * geom.c * geom.h * geom.w, &mut rng);
        let w = dyadic(c_out * k, &mut rng);
        let b = dyadic(c_out, &mut rng);
        let (x_dev, w_dev, b_dev) = (up(g, &x), up(g, &w), up(g, &b));
        for bias in [Some(&b), None] {
            let mut y_cpu = vec![0.0; n * c_out * p];
            ops::conv::conv2d_forward(&x, &w, bias.map(|b| b.as_slice()), &mut y_cpu, &geom, c_out);
            let mut y_dev = up(g, &vec![f32::NAN; n * c_out * p]); // every value must be written
            cuda::conv::conv2d_forward(g, &x_dev, &w_dev, bias.map(|_| &b_dev), &mut y_dev, &geom, c_out).unwrap();
            assert_close(&format!("conv2d_forward bias={} {geom:?}", bias.is_some()), &down(g, &y_dev), &y_cpu);
        }
        // The backward rules accumulate: start every gradient nonzero.
        let dout = dyadic(n * c_out * p, &mut rng);
        let (dx0, dw0, db0) = (dyadic(x.len(), &mut rng), dyadic(w.len(), &mut rng), dyadic(c_out, &mut rng));
        let dout_dev = up(g, &dout);
        let (mut dx, mut dw, mut db) = (dx0.clone(), dw0.clone(), db0.clone());
        ops::conv::conv2d_backward_input(&dout, &w, &mut dx, &geom, c_out);
        ops::conv::conv2d_backward_weight(&dout, &x, &mut dw, &geom, c_out);
        ops::conv::conv_backward_bias(&dout, &mut db, p);
        let (mut dx_dev, mut dw_dev, mut db_dev) = (up(g, &dx0), up(g, &dw0), up(g, &db0));
        cuda::conv::conv2d_backward_input(g, &dout_dev, &w_dev, &mut dx_dev, &geom, c_out).unwrap();
        cuda::conv::conv2d_backward_weight(g, &dout_dev, &x_dev, &mut dw_dev, &geom, c_out).unwrap();
        cuda::conv::conv_backward_bias(g, &dout_dev, &mut db_dev, p).unwrap();
        assert_close(&format!("conv2d_backward_input {geom:?}"), &down(g, &dx_dev), &dx);
        assert_close(&format!("conv2d_backward_weight {geom:?}"), &down(g, &dw_dev), &dw);
        assert_close(&format!("conv_backward_bias {geom:?}"), &down(g, &db_dev), &db);
    }
}

#[test]
fn conv_transpose2d_forward_and_backward_match_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(5);
    let (n, c_in) = (2, 3);
    // `geom` is the adjoint conv2d's: convT maps (c_in, oh, ow) images to (c, h, w) ones.
    for geom in geometries() {
        let (k, p, out) = (geom.col_rows(), geom.col_cols(), geom.c * geom.h * geom.w);
        let x = dyadic(n * c_in * p, &mut rng);
        let w = dyadic(c_in * k, &mut rng);
        let b = dyadic(geom.c, &mut rng);
        let (x_dev, w_dev, b_dev) = (up(g, &x), up(g, &w), up(g, &b));
        for bias in [Some(&b), None] {
            let mut y_cpu = vec![0.0; n * out];
            ops::conv::conv_transpose2d_forward(&x, &w, bias.map(|b| b.as_slice()), &mut y_cpu, &geom, c_in);
            let mut y_dev = up(g, &vec![f32::NAN; n * out]);
            cuda::conv::conv_transpose2d_forward(g, &x_dev, &w_dev, bias.map(|_| &b_dev), &mut y_dev, &geom, c_in)
                .unwrap();
            assert_close(
                &format!("conv_transpose2d_forward bias={} {geom:?}", bias.is_some()),
                &down(g, &y_dev),
                &y_cpu,
            );
        }
        let dout = dyadic(n * out, &mut rng);
        let (dx0, dw0) = (dyadic(x.len(), &mut rng), dyadic(w.len(), &mut rng));
        let dout_dev = up(g, &dout);
        let (mut dx, mut dw) = (dx0.clone(), dw0.clone());
        ops::conv::conv_transpose2d_backward_input(&dout, &w, &mut dx, &geom, c_in);
        ops::conv::conv_transpose2d_backward_weight(&dout, &x, &mut dw, &geom, c_in);
        let (mut dx_dev, mut dw_dev) = (up(g, &dx0), up(g, &dw0));
        cuda::conv::conv_transpose2d_backward_input(g, &dout_dev, &w_dev, &mut dx_dev, &geom, c_in).unwrap();
        cuda::conv::conv_transpose2d_backward_weight(g, &dout_dev, &x_dev, &mut dw_dev, &geom, c_in).unwrap();
        assert_close(&format!("conv_transpose2d_backward_input {geom:?}"), &down(g, &dx_dev), &dx);
        assert_close(&format!("conv_transpose2d_backward_weight {geom:?}"), &down(g, &dw_dev), &dw);
    }
}

#[test]
fn linear_forward_and_backward_match_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(6);
    for (n, d_in, d_out) in [(1, 1, 1), (4, 784, 30), (70, 33, 65)] {
        let (x, w, b) = (dyadic(n * d_in, &mut rng), dyadic(d_out * d_in, &mut rng), dyadic(d_out, &mut rng));
        let (x_dev, w_dev, b_dev) = (up(g, &x), up(g, &w), up(g, &b));
        for bias in [Some(&b), None] {
            let mut y = vec![0.0; n * d_out];
            ops::linear::linear_forward(&x, &w, bias.map(|b| b.as_slice()), &mut y, d_in, d_out);
            let mut y_dev = up(g, &vec![f32::NAN; n * d_out]);
            cuda::linear::linear_forward(g, &x_dev, &w_dev, bias.map(|_| &b_dev), &mut y_dev, d_in, d_out).unwrap();
            assert_close(&format!("linear_forward {n}x{d_in}->{d_out} bias={}", bias.is_some()), &down(g, &y_dev), &y);
        }
        let dout = dyadic(n * d_out, &mut rng);
        let (dx0, dw0, db0) = (dyadic(x.len(), &mut rng), dyadic(w.len(), &mut rng), dyadic(d_out, &mut rng));
        let dout_dev = up(g, &dout);
        let (mut dx, mut dw, mut db) = (dx0.clone(), dw0.clone(), db0.clone());
        ops::linear::linear_backward_input(&dout, &w, &mut dx, d_in, d_out);
        ops::linear::linear_backward_weight(&dout, &x, &mut dw, d_in, d_out);
        ops::linear::linear_backward_bias(&dout, &mut db);
        let (mut dx_dev, mut dw_dev, mut db_dev) = (up(g, &dx0), up(g, &dw0), up(g, &db0));
        cuda::linear::linear_backward_input(g, &dout_dev, &w_dev, &mut dx_dev, d_in, d_out).unwrap();
        cuda::linear::linear_backward_weight(g, &dout_dev, &x_dev, &mut dw_dev, d_in, d_out).unwrap();
        cuda::linear::linear_backward_bias(g, &dout_dev, &mut db_dev).unwrap();
        assert_close("linear_backward_input", &down(g, &dx_dev), &dx);
        assert_close("linear_backward_weight", &down(g, &dw_dev), &dw);
        assert_close("linear_backward_bias", &down(g, &db_dev), &db);
    }
}

#[test]
fn pool_family_matches_cpu_including_ties() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(7);
    // Values from {0, 1/2, 1} make ties in most windows; odd sizes drop a row or column.
    let few =
        |len: usize, rng: &mut Rng64| -> Vec<f32> { (0..len).map(|_| rng.random_range(0..3) as f32 / 2.0).collect() };
    for (planes, h, w) in [(1, 2, 2), (3, 4, 6), (2, 5, 7), (4, 28, 28), (2, 7, 7)] {
        let (ph, pw) = (h / 2, w / 2);
        for x in [few(planes * h * w, &mut rng), uniform(planes * h * w, &mut rng)] {
            let (mut y, mut idx) = (vec![0.0; planes * ph * pw], vec![0u32; planes * ph * pw]);
            ops::pool::maxpool2d_forward(&x, &mut y, &mut idx, h, w);
            let (mut y_dev, mut idx_dev) = (g.zeros::<f32>(y.len()).unwrap(), g.zeros::<u32>(idx.len()).unwrap());
            cuda::pool::maxpool2d_forward(g, &up(g, &x), &mut y_dev, &mut idx_dev, h, w).unwrap();
            let what = format!("{planes} planes {h}x{w}");
            assert_eq!(down(g, &idx_dev), idx, "maxpool2d_forward indices, {what}");
            assert_close(&format!("maxpool2d_forward {what}"), &down(g, &y_dev), &y);

            let (dout, dx0) = (uniform(y.len(), &mut rng), uniform(x.len(), &mut rng));
            let mut dx = dx0.clone();
            ops::pool::maxpool2d_backward(&dout, &idx, &mut dx, h, w);
            let mut dx_dev = up(g, &dx0);
            cuda::pool::maxpool2d_backward(g, &up(g, &dout), &idx_dev, &mut dx_dev, h, w).unwrap();
            assert_close(&format!("maxpool2d_backward {what}"), &down(g, &dx_dev), &dx);

            let pooled = uniform(y.len(), &mut rng);
            let mut un = vec![0.0; x.len()];
            ops::pool::maxunpool2d_forward(&pooled, &idx, &mut un, ph, pw, h, w);
            let mut un_dev = up(g, &vec![f32::NAN; x.len()]); // the zeros must be written too
            cuda::pool::maxunpool2d_forward(g, &up(g, &pooled), &idx_dev, &mut un_dev, ph, pw, h, w).unwrap();
            assert_close(&format!("maxunpool2d_forward {what}"), &down(g, &un_dev), &un);

            let (dout, dx0) = (uniform(x.len(), &mut rng), uniform(y.len(), &mut rng));
            let mut dx = dx0.clone();
            ops::pool::maxunpool2d_backward(&dout, &idx, &mut dx, ph, pw, h, w);
            let mut dx_dev = up(g, &dx0);
            cuda::pool::maxunpool2d_backward(g, &up(g, &dout), &idx_dev, &mut dx_dev, ph, pw, h, w).unwrap();
            assert_close(&format!("maxunpool2d_backward {what}"), &down(g, &dx_dev), &dx);
        }
    }
}

#[test]
fn pool_ties_go_to_the_first_maximum() {
    let Some(g) = gpu() else { return };
    // The example of src/ops/pool.rs, and a window of four equal values: index 1, then 0.
    for (x, h, w, want) in [(vec![1.0, 5.0, 9.0, 5.0, 2.0, 0.0], 2, 3, 1u32), (vec![3.0; 4], 2, 2, 0)] {
        let (mut y_dev, mut idx_dev) = (g.zeros::<f32>(1).unwrap(), g.zeros::<u32>(1).unwrap());
        cuda::pool::maxpool2d_forward(g, &up(g, &x), &mut y_dev, &mut idx_dev, h, w).unwrap();
        assert_eq!(down(g, &idx_dev), [want]);
        assert_eq!(down(g, &y_dev), [x[want as usize]]);
    }
}

#[test]
fn elementwise_kernels_match_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(8);
    for len in [1, 255, 256, 257, 100_000] {
        // Some exact zeros: the ReLU kink, where the subgradient is 0 on both devices.
        let x: Vec<f32> =
            uniform(len, &mut rng).into_iter().enumerate().map(|(i, v)| if i % 7 == 0 { 0.0 } else { v }).collect();
        let x_dev = up(g, &x);
        let mut y = vec![0.0; len];
        ops::relu::relu_forward(&x, &mut y);
        let mut y_dev = g.zeros(len).unwrap();
        cuda::elementwise::relu_forward(g, &x_dev, &mut y_dev).unwrap();
        assert_close("relu_forward", &down(g, &y_dev), &y);

        let (dout, dx0) = (uniform(len, &mut rng), uniform(len, &mut rng));
        let dout_dev = up(g, &dout);
        let mut dx = dx0.clone();
        ops::relu::relu_backward(&y, &dout, &mut dx);
        let mut dx_dev = up(g, &dx0);
        cuda::elementwise::relu_backward(g, &y_dev, &dout_dev, &mut dx_dev).unwrap();
        assert_close("relu_backward", &down(g, &dx_dev), &dx);

        // add, scale and add_into against the loops of ops/shape.rs.
        let sum: Vec<f32> = x.iter().zip(&dout).map(|(a, b)| a + b).collect();
        let mut sum_dev = g.zeros(len).unwrap();
        cuda::elementwise::add(g, &x_dev, &dout_dev, &mut sum_dev).unwrap();
        assert_close("add", &down(g, &sum_dev), &sum);
        let scaled: Vec<f32> = x.iter().map(|v| v * 0.37).collect();
        let mut scaled_dev = g.zeros(len).unwrap();
        cuda::elementwise::scale(g, &x_dev, 0.37, &mut scaled_dev).unwrap();
        assert_close("scale", &down(g, &scaled_dev), &scaled);
        let into: Vec<f32> = dx0.iter().zip(&dout).map(|(d, g)| d + -2.5 * g).collect();
        let mut into_dev = up(g, &dx0);
        cuda::elementwise::add_into(g, &mut into_dev, &dout_dev, -2.5).unwrap();
        assert_close("add_into", &down(g, &into_dev), &into);
    }
}

#[test]
fn losses_match_cpu_and_repeat_bit_for_bit() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(9);
    // Below one block, across blocks, and past the 256 x 256 threads of the first pass.
    for len in [1, 7, 1000, 65_539, 300_000] {
        let x: Vec<f32> =
            uniform(len, &mut rng).into_iter().enumerate().map(|(i, v)| if i % 5 == 0 { 0.0 } else { v }).collect();
        let t = uniform(len, &mut rng);
        let (x_dev, t_dev) = (up(g, &x), up(g, &t));
        let mut out = g.zeros::<f32>(1).unwrap();
        cuda::loss::mse_forward(g, &x_dev, &t_dev, &mut out).unwrap();
        let first = down(g, &out);
        assert_close(&format!("mse_forward {len}"), &first, &[ops::loss::mse_forward(&x, &t)]);
        cuda::loss::mse_forward(g, &x_dev, &t_dev, &mut out).unwrap();
        assert_eq!(down(g, &out)[0].to_bits(), first[0].to_bits(), "mse_forward must repeat exactly");
        cuda::loss::mean_abs_forward(g, &x_dev, &mut out).unwrap();
        assert_close(&format!("mean_abs_forward {len}"), &down(g, &out), &[ops::loss::mean_abs_forward(&x)]);

        // The loss's gradient on the device; the kernels form the CPU's scale from it.
        let (d0, dout) = (uniform(len, &mut rng), 0.7f32);
        let dout_dev = up(g, &[dout]);
        for factor in [2.0f32, -2.0] {
            let mut d = d0.clone();
            ops::loss::mse_backward(&x, &t, factor * dout / len as f32, &mut d);
            let mut d_dev = up(g, &d0);
            cuda::loss::mse_backward(g, &x_dev, &t_dev, &dout_dev, factor, &mut d_dev).unwrap();
            assert_close(&format!("mse_backward {len} factor {factor}"), &down(g, &d_dev), &d);
        }
        let mut d = d0.clone();
        ops::loss::mean_abs_backward(&x, dout / len as f32, &mut d);
        let mut d_dev = up(g, &d0);
        cuda::loss::mean_abs_backward(g, &x_dev, &dout_dev, &mut d_dev).unwrap();
        assert_close(&format!("mean_abs_backward {len}"), &down(g, &d_dev), &d);
    }
}

#[test]
fn adam_update_matches_cpu_over_steps() {
    let Some(g) = gpu() else { return };
    let mut rng = rng_from_seed(10);
    let len = 10_000;
    let (beta1, beta2, lr, eps) = (0.9f32, 0.999f32, 1e-3f32, 1e-8f32);
    let (mut p, mut m, mut v) = (uniform(len, &mut rng), vec![0.0; len], vec![0.0; len]);
    let (mut p_dev, mut m_dev, mut v_dev) = (up(g, &p), g.zeros(len).unwrap(), g.zeros(len).unwrap());
    for t in 1..=5 {
        // The bias corrections as `Adam::step` computes them, in f64.
        let step_size = (lr as f64 / (1.0 - (beta1 as f64).powi(t))) as f32;
        let sqrt_bc2 = (1.0 - (beta2 as f64).powi(t)).sqrt() as f32;
        let grad = uniform(len, &mut rng);
        let step = AdamStep { beta1, beta2, step_size, sqrt_bc2, eps };
        autoencoders::optim::adam_update(&mut p, &grad, &mut m, &mut v, step);
        cuda::adam::adam_update(
            g,
            &mut p_dev,
            &up(g, &grad),
            &mut m_dev,
            &mut v_dev,
            beta1,
            beta2,
            step_size,
            sqrt_bc2,
            eps,
        )
        .unwrap();
        assert_close(&format!("adam p, step {t}"), &down(g, &p_dev), &p);
        assert_close(&format!("adam m, step {t}"), &down(g, &m_dev), &m);
        assert_close(&format!("adam v, step {t}"), &down(g, &v_dev), &v);
    }
}
