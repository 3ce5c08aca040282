//! Training on the GPU against training on the CPU: the deep AE and the three CAEs (and a
//! sparse, denoising shallow AE, for the L1 penalty and the noise), each trained 20 steps by
//! `train::train` on both devices from the same seed, images and shuffles; the losses of
//! every step agree to 1e-4 relative. Also: the batch gather against its CPU twin (exact),
//! tensors and checkpoints moving between the devices, and the command line's device choice.
//!
//! The two devices add in different orders (a tiled GEMM against the CPU's), so the weights
//! drift apart by rounding, step by step; 1e-4 after 20 steps is far above that drift and far
//! below what a wrong kernel, a gradient on the wrong buffer or a missed batch would give.
//!
//! Without a usable GPU each GPU test prints "skipped: <the probe's reason>" and passes;
//! with REQUIRE_CUDA=1 (scripts/gpu-check.sh sets it) it fails instead.

mod common;

use autoencoders::autograd::Tape;
use autoencoders::checkpoint::{load_checkpoint, save_checkpoint};
use autoencoders::cuda::data::{batch_into, DeviceImages};
use autoencoders::data::Images;
use autoencoders::models::{Arch, Model, PIXELS, SIDE};
use autoencoders::tensor::{rng_from_seed, Device, Rng64, Tensor};
use autoencoders::train::{train, TrainConfig, TrainState};
use rand::Rng;
use std::process::Command;
use std::sync::OnceLock;

static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();

/// The GPU, or None after printing why the test is skipped (a panic under REQUIRE_CUDA=1).
fn gpu() -> Option<Device> {
    common::cuda(DEVICE.get_or_init(Device::cuda).clone())
}

/// Batches of 8 and 160 images: 20 steps in one epoch.
const BATCH: usize = 8;
const IMAGES: usize = 160;

/// Digit-like bytes: mostly background (0), some ink of any grey.
fn images(n: usize, rng: &mut Rng64) -> Images {
    let pixels =
        (0..n * PIXELS).map(|_| if rng.random_range(0..10) < 7 { 0 } else { rng.random_range(1..=255u8) }).collect();
    Images { n, rows: SIDE, cols: SIDE, pixels }
}

/// The first model from `seed` on whose outputs some gradient can flow (the study redraws a
/// dead initialisation too; a dead one would agree on both devices without proving much).
fn live_model(arch: Arch, seed: u64, set: &Images) -> (Model, Rng64) {
    let mut rng = rng_from_seed(seed);
    let probe = Tensor::from_vec(&[set.n, PIXELS], set.to_f32(0..set.n));
    for _ in 0..100 {
        let model = Model::new(arch, &mut rng);
        if model.reconstruct(&probe).0.as_slice().iter().any(|&v| v > 0.0) {
            return (model, rng);
        }
    }
    panic!("{}: no live initialisation in 100 draws", arch.name());
}

/// The loss of each of the 20 steps of one epoch of `model` trained on `device`, and the
/// model afterwards.
fn losses_on(device: &Device, model: &Model, rng: &Rng64, set: &Images, l1: f32, noise: f32) -> (Vec<f32>, Model) {
    let mut model = model.to_device(device);
    let cfg = TrainConfig { epochs: 1, batch_size: BATCH, lr: 1e-3, l1, noise };
    let state = TrainState::new(&model, &cfg, rng.clone());
    let state = train(&mut model, set, &cfg, state, "parity", |_, _| Ok(())).expect("training runs");
    (state.history.step_loss, model)
}

fn trains_alike(arch: Arch, l1: f32, noise: f32) {
    let Some(cuda) = gpu() else { return };
    let set = images(IMAGES, &mut rng_from_seed(1));
    let (model, rng) = live_model(arch, 7, &set);
    let (cpu, _) = losses_on(&Device::Cpu, &model, &rng, &set, l1, noise);
    let (gpu, trained) = losses_on(&cuda, &model, &rng, &set, l1, noise);
    assert!(matches!(trained.device(), Device::Cuda(_)), "the model trained on the GPU stays there");
    assert_eq!(cpu.len(), IMAGES / BATCH);
    assert_eq!(gpu.len(), cpu.len(), "{}: one loss per step on both devices", arch.name());
    for (step, (&g, &c)) in gpu.iter().zip(&cpu).enumerate() {
        assert!(
            (g - c).abs() <= 1e-4 * c.abs(),
            "{} step {}: gpu loss {g}, cpu loss {c} (relative {:e})",
            arch.name(),
            step + 1,
            ((g - c) / c).abs()
        );
    }
    assert!(cpu[cpu.len() - 1] < cpu[0], "{}: the loss should fall over 20 steps ({:?})", arch.name(), cpu);
}

#[test]
fn deep_ae_trains_alike_on_both_devices() {
    trains_alike(Arch::DeepAe, 0.0, 0.0);
}

#[test]
fn cae_unpool_trains_alike_on_both_devices() {
    trains_alike(Arch::CaeUnpool, 0.0, 0.0);
}

#[test]
fn cae_deconv_trains_alike_on_both_devices() {
    trains_alike(Arch::CaeDeconv, 0.0, 0.0);
}

#[test]
fn cae_deconv_unpool_trains_alike_on_both_devices() {
    trains_alike(Arch::CaeDeconvUnpool, 0.0, 0.0);
}

#[test]
fn sparse_denoising_ae_trains_alike_on_both_devices() {
    // The L1 penalty (mean_abs, scale, add on the tape) and the noise drawn on the host.
    trains_alike(Arch::Shallow { hidden: 32 }, 0.1, 0.3);
}

/// The losses' tape rules on the GPU against the CPU's, for both of mse's arguments: the
/// models never ask for the target's gradient, so a sign lost there would go unseen by the
/// training tests (mutation testing found one such mutant). Each gradient value is
/// (2/N)(x - t) plus (1/N) sign(x), formed with a few roundings on either device: they agree
/// within 8 units of f32 rounding of those terms' sizes.
#[test]
fn loss_rules_give_both_arguments_their_gradients() {
    let Some(cuda) = gpu() else { return };
    let mut rng = rng_from_seed(3);
    let (x, t) = (Tensor::uniform(&[4, 25], 1.0, &mut rng), Tensor::uniform(&[4, 25], 1.0, &mut rng));
    let grads = |device: &Device| {
        let mut tape = Tape::new();
        let (xv, tv) = (tape.param(x.to_device(device)), tape.param(t.to_device(device)));
        let (mse, l1) = (tape.mse(xv, tv), tape.mean_abs(xv));
        let loss = tape.add(mse, l1);
        tape.backward(loss);
        [xv, tv].map(|v| tape.grad(v).expect("a parameter gets a gradient").to_device(&Device::Cpu).to_vec())
    };
    let (on_gpu, on_cpu) = (grads(&cuda), grads(&Device::Cpu));
    let n = x.len() as f32;
    let (x, t) = (x.to_vec(), t.to_vec());
    for (which, (gpu, cpu)) in ["x", "target"].iter().zip(on_gpu.iter().zip(&on_cpu)) {
        for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
            let size = (2.0 * (x[i] - t[i]).abs() + 1.0) / n;
            assert!((g - c).abs() <= 8.0 * f32::EPSILON / 2.0 * size, "d{which}[{i}]: GPU {g}, CPU {c}");
        }
    }
}

#[test]
fn batch_gather_matches_the_host_exactly() {
    let Some(Device::Cuda(gpu)) = gpu() else { return };
    let set = images(50, &mut rng_from_seed(2));
    // An epoch's order, and batches as windows of it (the last one short), as in training.
    let order = [49usize, 0, 7, 7, 23, 1, 48];
    let on_device = DeviceImages::upload(&gpu, &set).unwrap();
    let order_dev = gpu.upload(&order.map(|r| r as u32)).unwrap();
    for first in (0..order.len()).step_by(3) {
        let rows = &order[first..(first + 3).min(order.len())];
        let mut want = vec![0.0; rows.len() * PIXELS];
        set.batch_into(rows, &mut want);
        // Start from NaN: every value must be written.
        let mut out = gpu.upload(&vec![f32::NAN; rows.len() * PIXELS]).unwrap();
        batch_into(&gpu, &on_device, &order_dev.slice(first..first + rows.len()), &mut out).unwrap();
        let got = gpu.download(&out).unwrap();
        assert!(
            got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()),
            "rows {rows:?}: the gathered batch differs from Images::batch_into"
        );
    }
}

#[test]
fn tensors_move_between_devices_and_refuse_hidden_reads() {
    let Some(cuda) = gpu() else { return };
    let host = Tensor::from_vec(&[2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, -6.25]);
    let dev = host.to_device(&cuda);
    assert_eq!(dev.shape(), [2, 3]);
    assert_eq!(dev.to_vec(), host.to_vec());
    assert_eq!(dev.reshape(&[3, 2]).to_cpu().as_slice(), host.as_slice());
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dev.as_slice().len()));
    let message = *read.expect_err("as_slice on a GPU tensor must panic").downcast::<String>().unwrap();
    assert!(message.contains("to_cpu()"), "{message}");
}

#[test]
fn a_checkpoint_of_a_gpu_run_restores_onto_the_gpu() {
    let Some(cuda) = gpu() else { return };
    let set = images(IMAGES, &mut rng_from_seed(3));
    let (model, rng) = live_model(Arch::Shallow { hidden: 16 }, 3, &set);
    let (_, trained) = losses_on(&cuda, &model, &rng, &set, 0.0, 0.0);
    let mut state =
        TrainState::new(&trained, &TrainConfig { epochs: 1, batch_size: BATCH, lr: 1e-3, l1: 0.0, noise: 0.0 }, rng);
    state.adam.m[0] = Tensor::from_vec(state.adam.m[0].shape(), (0..state.adam.m[0].len()).map(|i| i as f32).collect())
        .to_device(&cuda);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    save_checkpoint(&path, &trained, &state).unwrap();
    let mut fresh = Model::new(Arch::Shallow { hidden: 16 }, &mut rng_from_seed(99)).to_device(&cuda);
    let adam = fresh.adam(Default::default());
    let back = load_checkpoint(&path, &mut fresh, adam).unwrap();
    for (a, b) in trained.params.iter().zip(&fresh.params) {
        assert!(matches!(b.value.device(), Device::Cuda(_)), "{} came back to the host", b.name);
        assert_eq!(a.value.to_vec(), b.value.to_vec(), "{}", a.name);
    }
    assert!(matches!(back.adam.m[0].device(), Device::Cuda(_)));
    assert_eq!(back.adam.m[0].to_vec(), state.adam.m[0].to_vec());
}

/// The main binary: built beside this test by cargo; on the GPU machine, where this test
/// binary is carried without the build tree, scripts/gpu-check.sh names it.
fn main_binary() -> String {
    std::env::var("AUTOENCODERS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_autoencoders").to_string())
}

#[test]
fn the_command_line_says_which_device_it_uses() {
    // Runs everywhere. The device is chosen before the data is read, so a missing data
    // folder ends the run right after the device line.
    let missing = tempfile::tempdir().unwrap();
    let data = missing.path().join("nowhere");
    let run = |device: &str| {
        let o = Command::new(main_binary())
            .args([
                "ae",
                "--device",
                device,
                "--data",
                data.to_str().unwrap(),
                "--out",
                missing.path().to_str().unwrap(),
            ])
            .output()
            .expect("the binary runs");
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (_, auto) = run("auto");
    let (code, cuda) = run("cuda");
    assert!(!auto.contains("panicked") && !cuda.contains("panicked"), "{auto}\n{cuda}");
    match Device::cuda() {
        Ok(device) => {
            assert!(auto.contains(&format!("device: {device}")), "auto should take the GPU: {auto}");
            assert!(cuda.contains(&format!("device: {device}")), "{cuda}");
        }
        Err(reason) => {
            assert!(
                auto.contains(&format!("device: cpu (no usable GPU: {reason})")),
                "auto should fall back and say why: {auto}"
            );
            assert_eq!(code, Some(1), "--device cuda without a GPU must fail: {cuda}");
            assert_eq!(cuda.trim(), format!("error: --device cuda: {reason}"), "one line, the probe's reason");
        }
    }
}
