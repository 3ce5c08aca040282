//! The command line end to end: a quick training run per experiment, the files a run
//! leaves, `--json`'s one line, and the one-line errors of bad input.

use autoencoders::data::Mnist;
use autoencoders::models::{Arch, Model};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

/// The MNIST files, where the command line finds them (raw or gzipped), for every command
/// run; quiet, since the tests that need them ask `need_mnist!`.
fn mnist_dir() -> Option<PathBuf> {
    common::find_mnist().ok()
}

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoencoders"));
    cmd.args(args).env_remove("MNIST_DIR");
    if let Some(dir) = mnist_dir() {
        cmd.env("MNIST_DIR", dir);
    }
    cmd.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure must be one line on stderr, no panic, the given exit code.
fn assert_fails(args: &[&str], code: i32, mentions: &str) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?} should exit {code}; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(err.contains(mentions), "{args:?}: the message should mention {mentions:?}: {err}");
    let first =
        err.lines().find(|l| l.starts_with("error")).unwrap_or_else(|| panic!("{args:?}: no error line in {err}"));
    assert!(first.len() > 10, "{args:?}: an empty error: {err}");
}

macro_rules! need_mnist {
    () => {
        if common::mnist_dir().is_none() {
            return;
        }
    };
}

#[test]
fn cae_unpool_quick_run_leaves_a_complete_folder() {
    need_mnist!();
    let out = tempfile::tempdir().unwrap();
    let o =
        run(&["cae-unpool", "--epochs", "1", "--train-limit", "256", "--json", "--out", out.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "--json prints exactly one line: {stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["experiment"], "cae-unpool");
    let mse = v["test_mse"].as_f64().unwrap();
    // One epoch on 256 images barely trains (an all-zero output scores about 0.11), so no
    // bound on the value says much; instead the number must be the saved model's own test
    // MSE, recomputed below from its weights.
    assert!(mse.is_finite() && mse > 0.0, "test MSE {mse}");
    assert_eq!(v["train_loss"].as_array().unwrap().len(), 1);
    assert_eq!(v["epoch_seconds"].as_array().unwrap().len(), 1);
    let dir = Path::new(v["run_dir"].as_str().unwrap());
    assert_eq!(dir.parent().unwrap(), out.path());
    for file in [
        "config.json",
        "metrics.json",
        "loss.svg",
        "loss_steps.svg",
        "cae-unpool_digit.png",
        "cae-unpool_grid.png",
        "cae-unpool_decoder1_kernels.png",
        "cae-unpool.safetensors",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing from {}", dir.display());
    }
    let config: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["epochs"], 1);
    assert_eq!(config["kernels"], "fast");
    assert_eq!(config["experiment"], "cae-unpool");
    assert_eq!(config["crate_version"], env!("CARGO_PKG_VERSION"));
    let (tensors, meta) = autoencoders::safetensors::load(&dir.join("cae-unpool.safetensors")).unwrap();
    assert_eq!(meta["arch"], "cae-unpool");
    assert!(tensors.iter().any(|t| t.name == "encoder.1.weight" && t.shape == [8, 1, 3, 3]));
    let mut model = Model::new(Arch::CaeUnpool, &mut autoencoders::tensor::rng_from_seed(0));
    for p in &mut model.params {
        let t = tensors.iter().find(|t| t.name == p.name).unwrap_or_else(|| panic!("{} not saved", p.name));
        p.value = autoencoders::Tensor::from_vec(&t.shape, t.data.clone());
    }
    let test = Mnist::load(&mnist_dir().unwrap()).unwrap().test;
    let x = autoencoders::Tensor::from_vec(&[test.n, test.image_len()], test.to_f32(0..test.n));
    let ours = model
        .reconstruct(&x)
        .0
        .as_slice()
        .iter()
        .zip(x.as_slice())
        .map(|(&o, &t)| ((o - t) as f64).powi(2))
        .sum::<f64>()
        / x.len() as f64;
    // The same f32 outputs summed in f64 in another order: equal to 1e-12 or so.
    assert!((ours - mse).abs() <= 1e-9 * ours, "reported test MSE {mse}, the saved model's {ours}");
    // No temporary files are left behind.
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "a temporary file survived: {name}");
    }

    // A second run never reuses the folder.
    let o =
        run(&["manifold", "--epochs", "1", "--train-limit", "128", "--json", "--out", out.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // On another thread count too: the sums are split the same way whatever the count.
    let again = run(&[
        "manifold",
        "--epochs",
        "1",
        "--train-limit",
        "128",
        "--json",
        "--threads",
        "1",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let b: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_ne!(a["run_dir"], b["run_dir"]);
    assert_eq!(a["test_mse"], b["test_mse"], "same seed, same result");
}

#[test]
fn all_runs_every_experiment_and_writes_the_report() {
    need_mnist!();
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "all",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--json",
        "--out",
        out.path().to_str().unwrap(),
        "--size",
        "32",
        "--lambda",
        "0.01",
        "--noise",
        "0.3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let dir = Path::new(v["run_dir"].as_str().unwrap());
    let models: Vec<&str> = v["runs"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    for m in [
        "ae",
        "h32",
        "h256",
        "sparse-0.01",
        "h900",
        "denoise-0.3",
        "manifold",
        "cae-unpool",
        "cae-deconv",
        "cae-deconv-unpool",
    ] {
        assert!(models.contains(&m), "{m} missing from {models:?}");
    }
    let pca = v["pca_test_mse"].as_f64().unwrap();
    assert!(pca > 0.005 && pca < 0.05, "PCA test MSE {pca}");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for section in [
        "pca",
        "ae",
        "hidden",
        "non-digit",
        "sparse",
        "denoise",
        "manifold",
        "cae-unpool",
        "cae-deconv",
        "cae-deconv-unpool",
    ] {
        assert!(html.contains(&format!("<h2 id=\"{section}\">")), "section {section} missing");
        assert!(dir.join(section).join("metrics.json").is_file());
    }
    assert!(!html.contains("<script"), "the report needs no scripts");
    assert!(!html.contains("http://") && !html.contains("https://"), "the report loads nothing from the network");
    assert!(html.matches("data:image/png;base64,").count() > 40);
}

/// `--kernels reference` runs the plain loops and says so in config.json; the test MSE is the
/// fast kernels' up to rounding (issue 15's bound: 1e-4 relative, far above the few ulps a
/// reordered f32 sum changes over two steps, far below any real difference in training).
#[test]
fn kernels_flag_is_recorded_and_changes_only_rounding() {
    need_mnist!();
    let out = tempfile::tempdir().unwrap();
    let out_str = out.path().to_str().unwrap();
    let mut mse = Vec::new();
    for kernels in ["reference", "fast"] {
        let args =
            ["manifold", "--epochs", "1", "--train-limit", "128", "--json", "--out", out_str, "--kernels", kernels];
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let dir = Path::new(v["run_dir"].as_str().unwrap());
        let config: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["kernels"], kernels);
        mse.push(v["test_mse"].as_f64().unwrap());
    }
    assert!((mse[0] - mse[1]).abs() <= 1e-4 * mse[1], "reference {} against fast {}", mse[0], mse[1]);
}

#[test]
fn command_line_misuse_exits_2() {
    for (args, mentions) in [
        (&["ae", "--epochs", "0"][..], "--epochs"),
        (&["ae", "--batch-size", "0"][..], "--batch-size"),
        (&["sparse", "--lambda", "-1"][..], "--lambda"),
        (&["sparse", "--lambda", "NaN"][..], "--lambda"),
        (&["denoise", "--noise", "nan"][..], "--noise"),
        (&["ae", "--lr", "0"][..], "--lr"),
        (&["ae", "--digit", "10"][..], "--digit"),
        (&["autoencoder"][..], "autoencoder"),
        (&[][..], "EXPERIMENT"),
        (&["ae", "--kernels", "simd"][..], "--kernels"),
        // Each experiment takes only its own flags, and the refusal names their owners.
        (&["manifold", "--size", "8"][..], "--size is a flag of hidden and all only"),
        (&["hidden", "--noise", "0.5"][..], "--noise is a flag of denoise and all only"),
        (&["sparse", "--components", "5"][..], "--components is a flag of pca, ae and all only"),
        (&["ae", "--lambda", "3"][..], "--lambda is a flag of sparse and all only"),
        (&["pca", "--image", "x.png"][..], "--image is a flag of non-digit and all only"),
        // --resume keeps the run's settings: only how long and where it runs may change.
        (&["--resume", "runs/x", "--lr", "0.1"][..], "--lr cannot be given with --resume"),
        (&["--resume", "runs/x", "--kernels", "reference"][..], "--kernels cannot be given with --resume"),
        (&["--epochs", "3"][..], "--resume"),
        (&["--resume", "runs/x", "ae"][..], "ae"),
    ] {
        assert_fails(args, 2, mentions);
    }
}

#[test]
fn bad_input_gives_one_line_and_exit_1() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let missing = out.path().join("nowhere");
    let not_png = out.path().join("x.png");
    std::fs::write(&not_png, b"GIF89a").unwrap();
    assert_fails(&["ae", "--data", missing.to_str().unwrap(), "--out", out.path().to_str().unwrap()], 1, "nowhere");
    assert_fails(
        &["non-digit", "--image", not_png.to_str().unwrap(), "--out", out.path().to_str().unwrap()],
        1,
        "x.png",
    );
    // Only where there is no GPU: on a GPU machine `--device cuda` is right, and trains.
    if autoencoders::cuda::probe().is_err() {
        assert_fails(&["ae", "--device", "cuda", "--out", out.path().to_str().unwrap()], 1, "cuda");
    }
    if common::mnist_dir().is_some() {
        assert_fails(
            &["manifold", "--epochs", "1", "--train-limit", "64", "--out", file.to_str().unwrap()],
            1,
            "not-a-folder",
        );
        // PCA's covariance divides by n - 1 (it used to panic on one image).
        assert_fails(
            &["ae", "--train-limit", "1", "--out", out.path().join("pca").to_str().unwrap()],
            1,
            "PCA needs at least 2 training images",
        );
        assert!(!out.path().join("pca").exists(), "a refused run made its folder");
        // A learning rate that blows the weights up: stopped at the first non-finite loss.
        assert_fails(
            &["ae", "--lr", "1e30", "--epochs", "2", "--train-limit", "640", "--out", out.path().to_str().unwrap()],
            1,
            "diverged: the loss became inf at epoch 1, step",
        );
    }
}

/// A run asking for more memory than the machine has is refused in one line giving both
/// figures, before any folder is made (it used to abort in the allocator, rc 134).
#[test]
fn a_run_too_large_for_memory_is_refused_before_it_starts() {
    let out = tempfile::tempdir().unwrap();
    let runs = out.path().join("runs");
    for args in [&["hidden", "--size", "100000"][..], &["hidden", "--size", "8", "--batch-size", "1000000000"][..]] {
        let args: Vec<&str> = args.iter().copied().chain(["--out", runs.to_str().unwrap()]).collect();
        assert_fails(&args, 1, "needs at least");
        assert_fails(&args, 1, "this machine has");
        assert!(!runs.exists(), "{args:?} created {}", runs.display());
    }
}

/// A path that is not UTF-8 cannot be recorded exactly in config.json, so the run could not
/// be resumed: refused at the start.
#[test]
fn a_path_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let o = Command::new(env!("CARGO_BIN_EXE_autoencoders"))
        .arg("ae")
        .arg("--data")
        .arg(std::ffi::OsStr::from_bytes(b"mn\xff"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: --data mn") && err.contains("not valid UTF-8"), "{err}");
}

/// Progress and log lines must never stop a run: with stderr closed it trains on silently
/// and succeeds; with stdout closed under --json it finishes, keeps its files and exits 1
/// saying so (it used to panic, rc 101, after the first line).
#[test]
fn closed_pipes_do_not_kill_a_run() {
    need_mnist!();
    use std::process::Stdio;
    let out = tempfile::tempdir().unwrap();
    let args = ["manifold", "--epochs", "2", "--train-limit", "128", "--json", "--out", out.path().to_str().unwrap()];
    let spawn = |stdout: Stdio, stderr: Stdio| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoencoders"));
        cmd.args(args).env("MNIST_DIR", mnist_dir().unwrap()).stdout(stdout).stderr(stderr);
        cmd.spawn().unwrap()
    };

    // stderr's reading end closed before the run writes anything.
    let mut child = spawn(Stdio::piped(), Stdio::piped());
    drop(child.stderr.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "with stderr closed: {:?}", o.status);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(Path::new(v["run_dir"].as_str().unwrap()).join("metrics.json").is_file());

    // stdout's reading end closed: the run completes, the one line cannot be delivered.
    let mut child = spawn(Stdio::piped(), Stdio::piped());
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "with stdout closed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("error: cannot write the results to stdout; the run is complete in"), "{err}");
    let dir = out.path().join("manifold-002");
    for file in ["config.json", "metrics.json", "manifold.safetensors", "manifold_walk.png"] {
        assert!(dir.join(file).is_file(), "{file} missing from {}", dir.display());
    }
}

/// A divergence on the very first step, before any update, is not the learning rate's doing:
/// the message names the noise that put the loss past f32's range.
#[test]
fn a_divergence_from_noise_names_the_noise() {
    need_mnist!();
    let out = tempfile::tempdir().unwrap();
    let args =
        ["denoise", "--noise", "1e30", "--epochs", "1", "--train-limit", "64", "--out", out.path().to_str().unwrap()];
    assert_fails(&args, 1, "so --lr is not the cause: try a smaller --noise (1e30 here");
}
