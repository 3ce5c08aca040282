//! Shared test helpers: seeded random fixtures and the finite-difference checker.
//!
//! The check follows CS231n's `gradient_check.py` and ggml's `test-backend-ops`: for a random
//! r of the output's shape, the scalar L(x) = <f(x), r> has gradient (from our backward, fed
//! dout = r) that must match the central difference (L(x + h e_i) - L(x - h e_i)) / 2h for
//! every element i of every input, to a tolerance relative to the two values and to the
//! rounding of L's terms (`max_grad_error`). The ops run in f32, so h is large (1e-2) and the sums of
//! L are taken in f64; fixtures keep kinks (ReLU at 0, ties in a pool window) farther than h
//! from every sample, so the difference quotient sees one smooth piece. Only the outputs an
//! element touches change between the two evaluations, the others are bit-identical, which
//! keeps the f32 noise in the quotient near 1e-5.
#![allow(dead_code)]

use autoencoders::tensor::{rng_from_seed, Rng64, Tensor};
use autoencoders::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The message a caught panic carried: `panic!` with arguments leaves a `String`, a bare
/// literal a `&str`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied())
}

pub fn rng(seed: u64) -> Rng64 {
    rng_from_seed(seed)
}

/// Standard-normal values.
pub fn normal(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| StandardNormal.sample(rng)).collect())
}

/// Values with |v| in [0.1, 1]: at least 10 steps of h = 1e-2 from the kink at 0.
pub fn away_from_zero(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n).map(|_| rng.random_range(0.1f32..1.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }).collect(),
    )
}

/// Distinct values 0.1 apart in random order: no two in a pool window come within 2h.
pub fn distinct(shape: &[usize], rng: &mut Rng64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.1).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.random_range(0..=i));
    }
    Tensor::from_vec(shape, v)
}

pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// How far backward may stray from the difference quotient, relative to the larger of the
/// two: the ops' gradients are short f32 sums. Over the 402 checks of tests/gradcheck.rs the
/// worst `max_grad_error` is 0.08 and the median 0.002 (of the limit 1); a wrong index or a
/// missing term is off by O(1), a gradient scaled by 1.1 by 1/11, both far above.
pub const GRAD_REL: f64 = 1e-3;

/// The rounding of one evaluation of L = <f(x), r>: each output f_j is an f32 sum off by
/// a few ulps of its size, weighted by |r_j|; 16 ulps (eps32 = 2^-24) of sum |r_j f_j|
/// bounds the whole. The quotient divides two such roundings by its step.
pub const OBJECTIVE_ULPS: f64 = 16.0 / (1u64 << 24) as f64;

/// The largest ratio, over every element of every input marked in `wrt`, of
/// |analytic - numeric| to what the arithmetic allows: `GRAD_REL` of the larger of the
/// two, plus the rounding of the two evaluations of L divided by the step. Below 1 passes.
// `i` indexes the input, its perturbed copy and the analytic gradient alike.
#[allow(clippy::needless_range_loop)]
pub fn max_grad_error(
    inputs: &[Tensor],
    wrt: &[bool],
    f: &dyn Fn(&mut Tape, &[Var]) -> Var,
    h: f32,
    rng: &mut Rng64,
) -> f64 {
    let mut tape = Tape::new();
    let vars: Vec<Var> =
        inputs.iter().zip(wrt).map(|(t, &g)| if g { tape.param(t.clone()) } else { tape.input(t.clone()) }).collect();
    let y = f(&mut tape, &vars);
    let r = normal(tape.shape(y), rng);
    let r_arr = ArrayD::from_shape_vec(IxDyn(r.shape()), r.to_vec()).unwrap();
    tape.backward_with(y, r_arr);

    // L and the size of its terms, sum |r_j f_j|.
    let objective = |xs: &[Tensor]| -> (f64, f64) {
        let mut t = Tape::no_grad();
        let vs: Vec<Var> = xs.iter().map(|x| t.input(x.clone())).collect();
        let y = f(&mut t, &vs);
        let terms = t.value(y).as_slice().iter().zip(r.as_slice()).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        (dot(t.value(y).as_slice(), r.as_slice()), terms)
    };
    let mut worst: f64 = 0.0;
    for (k, input) in inputs.iter().enumerate() {
        if !wrt[k] {
            continue;
        }
        let analytic = tape.grad(vars[k]).map(Tensor::to_vec).unwrap_or_else(|| vec![0.0; input.len()]);
        let mut xs = inputs.to_vec();
        for i in 0..input.len() {
            let x0 = input.as_slice()[i];
            let (up, down) = (x0 + h, x0 - h);
            xs[k].as_slice_mut()[i] = up;
            let (plus, plus_terms) = objective(&xs);
            xs[k].as_slice_mut()[i] = down;
            let (minus, minus_terms) = objective(&xs);
            xs[k].as_slice_mut()[i] = x0;
            // The step as taken: x0 +- h rounded to f32 is not exactly 2h apart.
            let step = up as f64 - down as f64;
            let numeric = (plus - minus) / step;
            let a = analytic[i] as f64;
            let allowed = GRAD_REL * a.abs().max(numeric.abs()) + OBJECTIVE_ULPS * (plus_terms + minus_terms) / step;
            worst = worst.max((a - numeric).abs() / allowed);
        }
    }
    worst
}

/// Asserts the finite-difference check of `f` passes: `max_grad_error` below 1.
pub fn assert_grads(
    name: &str,
    inputs: &[Tensor],
    wrt: &[bool],
    f: &dyn Fn(&mut Tape, &[Var]) -> Var,
    rng: &mut Rng64,
) {
    // A large step for f32: the ops are piecewise linear or quadratic, so the quotient has
    // no truncation error on a smooth piece, and the fixtures keep kinks 10 steps away.
    const H: f32 = 1e-2;
    let err = max_grad_error(inputs, wrt, f, H, rng);
    assert!(
        err < 1.0,
        "{name}: gradient differs from finite differences by {err:.1} times what f32 rounding allows (shapes {:?})",
        inputs.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>()
    );
}

/// CRC-32 (ISO-HDLC, the one PNG chunks carry), bit by bit: for hand-made test files only.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

// ---------------------------------------------------------------------------------------
// One skip policy. A test that needs something the machine may lack (the MNIST files, NVRTC,
// a GPU, a processor feature, a Python package, the shared photographs) asks here. Absent, it
// prints one line, "skipped: <test>: <why>", and returns; under REQUIRE_<THING>=1 (.ci/run
// sets REQUIRE_MNIST and REQUIRE_NVRTC, scripts/gpu-check.sh REQUIRE_CUDA) it fails instead.
// Each is looked for where the project's own code looks, never at a path of one machine.

/// `found`, or None after the skip line (a panic under REQUIRE_`thing`=1).
pub fn require<T>(thing: &str, found: Result<T, String>) -> Option<T> {
    let why = match found {
        Ok(value) => return Some(value),
        Err(why) => why,
    };
    let test = std::thread::current().name().unwrap_or("test").to_string();
    if std::env::var(format!("REQUIRE_{thing}")).as_deref() == Ok("1") {
        panic!("{test}: REQUIRE_{thing}=1 but {why}");
    }
    eprintln!("skipped: {test}: {why} (REQUIRE_{thing}=1 makes this a failure)");
    None
}

/// The MNIST folder the command line would use with no `--data` (`$MNIST_DIR`, else
/// `data/mnist`, else `../shared/mnist`: `data::resolve_data_dir`), if all four files are
/// there, raw or gzipped; else why not. Quiet: `mnist_dir` is the policy.
pub fn find_mnist() -> Result<std::path::PathBuf, String> {
    use autoencoders::data::{missing_files, resolve_data_dir};
    let dir = resolve_data_dir(None);
    let missing = missing_files(&dir);
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!("no MNIST files in {} (missing {}); set MNIST_DIR", dir.display(), missing.join(", ")))
    }
}

/// `find_mnist` through the skip policy.
pub fn mnist_dir() -> Option<std::path::PathBuf> {
    require("MNIST", find_mnist())
}

/// NVRTC, which compiles the kernels without a GPU: its (major, minor) version.
pub fn nvrtc() -> Option<(i32, i32)> {
    require("NVRTC", autoencoders::cuda::probe_nvrtc())
}

/// A GPU handle (`Gpu::new`, `Device::cuda`, ...) or the reason there is none, through the
/// policy for CUDA.
pub fn cuda<T>(found: Result<T, String>) -> Option<T> {
    require("CUDA", found)
}

/// Whether the processor has AVX-512F (with the policy's skip line when not).
pub fn avx512() -> bool {
    let found = if cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("avx512f") {
        Ok(())
    } else {
        Err("this processor has no AVX-512F".to_string())
    };
    require("AVX512", found).is_some()
}

/// Whether the processor has AVX2 and FMA.
pub fn avx2() -> bool {
    let found = if cfg!(target_arch = "x86_64")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        Ok(())
    } else {
        Err("this processor has no AVX2 with FMA".to_string())
    };
    require("AVX2", found).is_some()
}

/// The Python interpreter (`$PYTHON`, else `python3`) if it imports every module named.
pub fn python_with(modules: &[&str]) -> Option<String> {
    let python = std::env::var("PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    let script = format!("import {}", modules.join(", "));
    let found = match std::process::Command::new(&python).args(["-c", &script]).output() {
        Ok(out) if out.status.success() => Ok(python),
        Ok(out) => Err(format!(
            "{python} cannot {script} ({}); pip install them, or point PYTHON at a venv that has them",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no message")
        )),
        Err(e) => Err(format!("no {python} ({e}); install Python 3 or set PYTHON")),
    };
    require("PYTHON", found)
}

/// The shared photographs: `$IMAGES_DIR`, else `../shared/images` from the crate's root (cargo
/// runs tests there; `.ci/run` finds MNIST beside it too), if it holds every file named.
pub fn images_dir(files: &[&str]) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("IMAGES_DIR")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("../shared/images"));
    let missing: Vec<&str> = files.iter().copied().filter(|f| !dir.join(f).is_file()).collect();
    let found = if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!("{} lacks {}; set IMAGES_DIR to a folder with them", dir.display(), missing.join(", ")))
    };
    require("IMAGES", found)
}
