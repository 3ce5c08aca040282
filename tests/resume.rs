//! A run killed mid-training and resumed with `--resume` ends with exactly the bits of a run
//! never interrupted: weights, Adam's moments, the generator and the loss history all come
//! back from the per-epoch checkpoint.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

/// The binary on `args`, reading MNIST from `mnist` (what common::mnist_dir found).
fn command(mnist: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoencoders"));
    cmd.args(args).env("MNIST_DIR", mnist).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn run_json(mnist: &Path, args: &[&str]) -> Value {
    let o = command(mnist, args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The epochs completed according to a checkpoint, if it can be read yet.
fn epochs_done(path: &Path) -> usize {
    autoencoders::safetensors::load(path).ok().and_then(|(_, meta)| meta.get("epoch")?.parse().ok()).unwrap_or(0)
}

/// metrics.json without what legitimately differs between two runs: timings and folder.
fn comparable(mut v: Value) -> Value {
    for key in ["run_dir", "epoch_seconds", "wall_seconds"] {
        v.as_object_mut().unwrap().remove(key);
    }
    for run in v["runs"].as_array_mut().unwrap() {
        run.as_object_mut().unwrap().remove("epoch_seconds");
    }
    v
}

#[test]
fn killed_and_resumed_equals_uninterrupted() {
    let Some(mnist) = common::mnist_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let out_str = out.path().to_str().unwrap();
    // Denoising draws noise from the generator every step, and trains two models (the plain
    // h = 256 AE first): the generator's state and multi-model runs are both exercised.
    let args = ["denoise", "--noise", "0.3", "--epochs", "5", "--train-limit", "1500", "--out", out_str, "--json"];
    let whole = run_json(&mnist, &args);

    let mut child = command(&mnist, &args).spawn().unwrap();
    let dir = out.path().join("denoise-002");
    let checkpoint = dir.join("h256.checkpoint.safetensors");
    // No deadline: the loop ends when the checkpoint appears or the run ends without one.
    while epochs_done(&checkpoint) < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("metrics.json").exists(), "the run was not interrupted");

    let resumed = run_json(&mnist, &["--resume", dir.to_str().unwrap(), "--json"]);
    assert_eq!(comparable(resumed.clone()), comparable(whole.clone()));
    let first = Path::new(whole["run_dir"].as_str().unwrap());
    for file in ["h256.safetensors", "denoise-0.3.safetensors", "denoise-0.3_noisy.png"] {
        assert!(
            std::fs::read(first.join(file)).unwrap() == std::fs::read(dir.join(file)).unwrap(),
            "{file} differs after resuming"
        );
    }
    // The final checkpoints agree in every tensor (weights, Adam's moments) and in the
    // generator's state; only the recorded epoch timings differ.
    for file in ["h256.checkpoint.safetensors", "denoise-0.3.checkpoint.safetensors"] {
        let (a, mut meta_a) = autoencoders::safetensors::load(&first.join(file)).unwrap();
        let (b, mut meta_b) = autoencoders::safetensors::load(&dir.join(file)).unwrap();
        assert!(a == b, "{file}: tensors differ after resuming");
        meta_a.remove("history");
        meta_b.remove("history");
        assert_eq!(meta_a, meta_b, "{file}");
    }
}

#[test]
fn resume_refuses_what_is_not_a_run() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_autoencoders"))
        .args(["--resume", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("config.json") && !err.contains("panicked"), "{err}");
}
