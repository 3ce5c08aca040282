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

/// Every value of config.json goes through the command line's checks, with its messages,
/// naming the file and the key: an edited config is refused in one line, not trusted (a
/// batch size of 0 used to divide by zero, a learning rate of -1 to train to 5e11).
#[test]
fn resume_checks_every_value_of_config_json() {
    use autoencoders::experiments::settings::{Experiment, Settings};
    let base = serde_json::to_value(Settings::study(Experiment::Pca).config()).unwrap();
    for (key, value, says) in [
        ("batch_size", serde_json::json!(0), "batch_size: 0 is not a whole number from 1 to"),
        ("sizes", serde_json::json!([0]), "sizes: 0 is not a whole number from 1 to 100000"),
        ("components", serde_json::json!(0), "components: 0 is not a whole number from 1 to 784"),
        ("components", serde_json::json!(785), "components: 785 is not a whole number from 1 to 784"),
        ("lr", serde_json::json!(-1), "lr: -1 must be a finite number above 0"),
        ("train_limit", serde_json::json!(0), "train_limit: 0 is not a whole number from 1 to"),
        ("epochs", serde_json::json!(-3), "epochs: -3 is not a whole number from 1 to"),
        ("digit", serde_json::json!(10), "digit: 10 is not a whole number from 0 to 9"),
        ("lambdas", serde_json::json!([]), "lambdas: an empty list"),
        ("noises", serde_json::json!([1e39]), "noises: inf must be a finite number, 0 or more"),
        ("kernels", serde_json::json!("simd"), "kernels: simd is neither reference nor fast"),
        ("experiment", serde_json::json!("autoencoder"), "unknown variant `autoencoder`"),
        // serde quotes the file's string; its line break comes out escaped, on the one line.
        ("experiment", serde_json::json!("hidd\nen"), "unknown variant `hidd\\nen`, expected one of"),
        ("epochs", serde_json::json!("ten"), "invalid type: string \"ten\""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base.clone();
        config[key] = value;
        let text = serde_json::to_vec_pretty(&config).unwrap();
        std::fs::write(dir.path().join("config.json"), &text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_autoencoders"))
            .args(["--resume", dir.path().to_str().unwrap(), "--device", "cpu"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{key}: {err}");
        let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{key}: no error in {err}"));
        assert!(line.contains("config.json: ") && line.contains(says), "{key}: {line}");
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["config.json"], "{key}: the refused run left files");
    }
}

/// `--resume DIR --epochs N` trains on to N epochs and ends with the bits of a run started
/// with N, from any working directory (config.json holds absolute paths), removing the
/// temporaries a killed writer left (those of processes still running are kept).
#[test]
fn resume_trains_longer_from_anywhere_and_cleans_up() {
    let Some(mnist) = common::mnist_dir() else { return };
    let place = tempfile::tempdir().unwrap();
    let mnist = std::fs::canonicalize(mnist).unwrap();
    std::os::unix::fs::symlink(&mnist, place.path().join("mn")).unwrap();
    let quick = ["denoise", "--noise", "0.3", "--train-limit", "300", "--json"];
    let in_place = |args: &[&str]| {
        let o = command(&mnist, args).current_dir(place.path()).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let whole = in_place(&[&quick[..], &["--epochs", "3", "--data", "mn", "--out", "whole"]].concat());
    let short = in_place(&[&quick[..], &["--epochs", "2", "--data", "mn", "--out", "runs"]].concat());
    let dir = place.path().join("runs/denoise-001");
    assert_eq!(Path::new(short["run_dir"].as_str().unwrap()), dir);
    let config: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(Path::new(config["data"].as_str().unwrap()), place.path().join("mn"), "stored absolute, as given");

    let dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait_with_output().unwrap();
    let stale = dir.join(format!(".h256.checkpoint.safetensors.tmp.{dead_pid}.0"));
    let live = dir.join(format!(".h256.checkpoint.safetensors.tmp.{}.0", std::process::id()));
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    std::fs::write(&live, b"a write under way").unwrap();

    // Fewer epochs than the run was started with cannot be had by resuming.
    let o = command(&mnist, &["--resume", dir.to_str().unwrap(), "--epochs", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));

    let o = command(&mnist, &["--resume", dir.to_str().unwrap(), "--epochs", "3", "--json"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resumed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(comparable(resumed), comparable(whole.clone()));
    let first = Path::new(whole["run_dir"].as_str().unwrap());
    for file in ["h256.safetensors", "denoise-0.3.safetensors", "h256.checkpoint.safetensors"] {
        let (a, _) = autoencoders::safetensors::load(&first.join(file)).unwrap();
        let (b, _) = autoencoders::safetensors::load(&dir.join(file)).unwrap();
        assert!(a == b, "{file} differs from the 3-epoch run's");
    }
    let config: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["epochs"], 3);
    assert!(!stale.exists(), "the dead writer's temporary is still there");
    assert!(live.exists(), "a running process's temporary was removed");
}
