//! `--profile` (src/profile/): the rows of a profiled training run add up to its measured
//! steps, count every op of every step, and profiling off records nothing.
//!
//! One test function: the profile is one per process, and tests of one binary run in
//! parallel threads.

use autoencoders::data::Images;
use autoencoders::models::{Arch, Model, SIDE};
use autoencoders::profile::{self, Phase, Profile};
use autoencoders::tensor::rng_from_seed;
use autoencoders::train::{train, TrainConfig, TrainState};
use autoencoders::{Tape, Tensor};
use rand::Rng as _;

const BATCH: usize = 64;
const STEPS: usize = 30;

fn profiled_run(arch: Arch) -> Profile {
    let mut rng = rng_from_seed(1);
    let n = BATCH * STEPS;
    let pixels = (0..n * SIDE * SIDE).map(|_| rng.random::<u8>()).collect();
    let images = Images { n, rows: SIDE, cols: SIDE, pixels };
    let mut model = Model::new(arch, &mut rng);
    let cfg = TrainConfig { epochs: 1, batch_size: BATCH, lr: 1e-3, l1: 0.0, noise: 0.0 };
    let state = TrainState::new(&model, &cfg, rng);
    profile::take();
    train(&mut model, &images, &cfg, state, "profile test", |_, _| Ok(())).expect("training runs");
    profile::take()
}

fn calls(p: &Profile, phase: Phase, op: &str) -> u64 {
    p.rows.iter().filter(|r| r.phase == phase && r.op == op).map(|r| r.calls).sum()
}

#[test]
fn profile_rows_add_up_to_the_step() {
    profile::enable(true);
    // (model, its linear or conv layers, its parameters)
    for (arch, op, layers, params) in [(Arch::DeepAe, "linear", 8, 16), (Arch::CaeUnpool, "conv2d", 5, 10)] {
        let p = profiled_run(arch);
        eprintln!("{}", p.table(&format!("{arch:?}")));
        assert_eq!(p.steps, STEPS as u64);
        let (rows, steps) = (p.rows_seconds(), p.step_seconds);
        // What no row holds is the tape's making and dropping and the walk's bookkeeping;
        // the rows must hold 90% to 100% of the steps (they cannot hold more: each lap lies
        // inside a step).
        assert!(rows <= steps && rows >= 0.9 * steps, "{arch:?}: rows {rows:.4} s of steps {steps:.4} s");
        let per_step = |k: u64| k * STEPS as u64;
        assert_eq!(calls(&p, Phase::Forward, op), per_step(layers), "{arch:?}");
        assert_eq!(calls(&p, Phase::Backward, op), per_step(layers), "{arch:?}");
        assert_eq!(calls(&p, Phase::Adam, "adam"), per_step(params), "{arch:?}");
        assert_eq!((calls(&p, Phase::Forward, "mse"), calls(&p, Phase::Backward, "mse")), (per_step(1), per_step(1)));
        let product = p.rows.iter().find(|r| r.phase == Phase::Forward && r.op == op).expect("a row");
        assert!(Profile::gflops(product).is_some_and(|g| g > 0.0), "{arch:?}: the products have a rate");
    }
    // Evaluation (a no_grad tape) is not part of the steps: profiling on, it records nothing.
    let mut eval = Tape::no_grad();
    let x = eval.input(Tensor::from_vec(&[2, 3], vec![1.0, -2.0, 3.0, 0.5, 0.0, -1.0]));
    let w = eval.param(Tensor::from_vec(&[4, 3], vec![0.25; 12]));
    eval.linear(x, w, None);
    drop(eval);
    assert_eq!(profile::take(), Profile::default(), "a no_grad tape's ops went into the profile");
    profile::enable(false);
    assert_eq!(profiled_run(Arch::Shallow { hidden: 64 }), Profile::default(), "profiling off records nothing");
}

/// `cae-unpool --profile` on a few real images: the table on stderr, metrics.json's
/// "profile" entry for the model, and the bar chart beside the graph.
#[test]
fn profile_flag_writes_table_metrics_and_chart() {
    let Some(mnist) = std::env::var_os("MNIST_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("skipped: set MNIST_DIR to the MNIST IDX files to run the --profile command");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autoencoders"))
        .args(["cae-unpool", "--epochs", "1", "--train-limit", "256", "--device", "cpu", "--profile", "--out"])
        .arg(dir.path())
        .arg("--data")
        .arg(&mnist)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("profile of cae-unpool: 4 steps") && stderr.contains("max_unpool2d"), "{stderr}");
    let run = dir.path().join("cae-unpool-001");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).expect("metrics.json")).expect("JSON");
    let entry = &metrics["profile"]["cae-unpool"];
    assert_eq!(entry["steps"], 4);
    let rows = entry["rows"].as_array().expect("rows");
    assert!(rows.iter().any(|r| r["phase"] == "adam") && rows.iter().any(|r| r["op"] == "conv2d"));
    for file in ["cae-unpool.profile.svg", "cae-unpool.graph.svg", "cae-unpool.graph.dot"] {
        assert!(run.join(file).exists(), "{file}");
    }
}
