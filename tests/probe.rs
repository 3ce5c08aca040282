//! The code evaluation (`experiments::probe`, `probe_runs`) and its charts: the k-NN vote
//! and the linear probe on fixtures whose answers are known, the per-class error by hand,
//! saved models found and reloaded (and damaged ones refused), and on the real MNIST files,
//! where present, the pixels' probes against the published figures.

mod common;

use autoencoders::data::{Labels, Mnist};
use autoencoders::experiments::probe::{self, Codes};
use autoencoders::experiments::probe_runs::{find_models, load_model};
use autoencoders::figures::charts::{bar_chart, scatter_chart};
use autoencoders::models::{Arch, Model};
use autoencoders::safetensors::{save, TensorEntry};
use autoencoders::tensor::{rng_from_seed, Rng64};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn codes(d: usize, values: Vec<f32>) -> Codes {
    Codes { n: values.len() / d, d, values }
}

fn labels(v: &[u8]) -> Labels {
    Labels { labels: v.to_vec() }
}

/// On a line: the nearest training point of the test point is of class 0, but three of its
/// five nearest are of class 1. 5-NN must say 1, 1-NN must say 0.
#[test]
fn five_neighbours_outvote_the_nearest() {
    let train = codes(1, vec![0.0, 1.0, 1.1, 1.2, 1.3, 5.0]);
    let train_labels = labels(&[0, 1, 1, 1, 0, 0]);
    let test = codes(1, vec![0.1]);
    assert_eq!(probe::knn_accuracy(&train, &train_labels, &test, &labels(&[1]), 5), 1.0);
    assert_eq!(probe::knn_accuracy(&train, &train_labels, &test, &labels(&[1]), 1), 0.0);
}

/// Ten clusters, each around its own corner of a 10-d cube with spread 0.1: both probes
/// classify every test point. With labels drawn independently of the codes, neither can beat
/// chance by much: 1,000 test points at p = 0.1 have a standard deviation of 0.0095, so
/// 0.16 is over six of them above chance.
#[test]
fn separable_clusters_are_found_and_random_labels_are_not() {
    let mut rng = rng_from_seed(4);
    let mut make = |n: usize| {
        let classes: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
        let values = classes
            .iter()
            .flat_map(|&c| (0..10).map(move |j| if j == c as usize { 1.0 } else { 0.0 }))
            .map(|v: f32| v + 0.1 * (rng.random::<f32>() - 0.5))
            .collect::<Vec<_>>();
        (codes(10, values), labels(&classes))
    };
    let ((train, train_labels), (test, test_labels)) = (make(3000), make(1000));
    assert_eq!(probe::linear_probe(train.clone(), &train_labels, &test, &test_labels, 0), 1.0);
    assert_eq!(probe::knn_accuracy(&train, &train_labels, &test, &test_labels, 5), 1.0);
    let mut rng = rng_from_seed(5);
    let shuffled = |n: usize, rng: &mut Rng64| labels(&(0..n).map(|_| rng.random_range(0..10u8)).collect::<Vec<_>>());
    let (random_train, random_test) = (shuffled(3000, &mut rng), shuffled(1000, &mut rng));
    let lp = probe::linear_probe(train.clone(), &random_train, &test, &random_test, 0);
    let knn = probe::knn_accuracy(&train, &random_train, &test, &random_test, 5);
    assert!(lp < 0.16 && knn < 0.16, "random labels predicted: linear {lp}, 5-NN {knn}");
}

/// A unit that never moves (a dead ReLU) keeps scale 1 instead of dividing by zero.
#[test]
fn a_constant_unit_is_not_divided_by_zero() {
    let train = codes(2, vec![1.0, 0.0, 3.0, 0.0]);
    let (mean, std) = probe::standardiser(&train);
    assert_eq!((mean, std), (vec![2.0, 0.0], vec![1.0, 1.0]));
}

/// Two pixels per image: class 0's images miss by (1, 0) and (0, 0), class 2's by (2, 2);
/// class 1 has no image and gets NaN, not 0.
#[test]
fn mse_per_class_by_hand() {
    let images = [1.0, 0.0, 0.0, 0.0, 2.0, 2.0];
    let recon = [0.0; 6];
    let m = probe::mse_per_class(&images, &recon, &[0, 0, 2], 2);
    assert_eq!((m[0], m[2]), (0.25, 4.0));
    assert!(m[1].is_nan());
}

fn save_as(path: &Path, model: &Model, name: &str, arch: &str) {
    let entries: Vec<TensorEntry> = model
        .params
        .iter()
        .map(|p| TensorEntry { name: p.name.clone(), shape: p.value.shape().to_vec(), data: p.value.to_vec() })
        .collect();
    let meta = BTreeMap::from([("model".to_string(), name.to_string()), ("arch".to_string(), arch.to_string())]);
    save(path, &entries, &meta).unwrap();
}

/// A model saved in a run folder (beside its training checkpoint, which is not a model) is
/// found, also from the `all` folder above it, and reloads to the same weights; files of
/// another architecture or without one are refused with the file's name.
#[test]
fn saved_models_are_found_and_reloaded() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("sparse");
    std::fs::create_dir(&run).unwrap();
    let model = Model::new(Arch::Shallow { hidden: 12 }, &mut rng_from_seed(3));
    save_as(&run.join("sparse-0.1.safetensors"), &model, "sparse-0.1", "h12");
    std::fs::write(run.join("sparse-0.1.checkpoint.safetensors"), b"not read").unwrap();
    let want: Vec<PathBuf> = vec![run.join("sparse-0.1.safetensors")];
    assert_eq!(find_models(&run).unwrap(), want);
    assert_eq!(find_models(root.path()).unwrap(), want, "one folder down, as in an all folder");
    let (name, loaded) = load_model(&want[0]).unwrap();
    assert_eq!(name, "sparse-0.1");
    for (a, b) in model.params.iter().zip(&loaded.params) {
        assert_eq!((&a.name, a.value.to_vec()), (&b.name, b.value.to_vec()));
    }

    save_as(&run.join("other.safetensors"), &model, "other", "h13");
    let err = format!("{:#}", load_model(&run.join("other.safetensors")).unwrap_err());
    assert!(err.contains("other.safetensors") && err.contains("shape"), "{err}");
    save_as(&run.join("nameless.safetensors"), &model, "x", "no-such-arch");
    let err = format!("{:#}", load_model(&run.join("nameless.safetensors")).unwrap_err());
    assert!(err.contains("unknown architecture"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = format!("{:#}", find_models(empty.path()).unwrap_err());
    assert!(err.contains("no trained models"), "{err}");
}

/// The map draws every point, one legend entry per class; the bars one rectangle per finite
/// value (NaN draws none), one legend swatch per series.
#[test]
fn charts_draw_every_point_and_bar() {
    let points: Vec<(f64, f64, usize)> = (0..500).map(|i| (i as f64, (i * i % 97) as f64, i % 10)).collect();
    let classes: Vec<String> = (0..10).map(|c| format!("digit {c}")).collect();
    let svg = scatter_chart("t", "x", "y", &points, &classes);
    assert_eq!(svg.matches("<circle class=\"c").count(), 500 + 10);
    assert!(svg.contains("digit 9") && svg.contains(".c9{fill:"));
    let cats: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let mut a = vec![0.01; 10];
    a[3] = f64::NAN;
    let svg = bar_chart("t", "digit", "mse", &cats, &[("pca-8".into(), a), ("manifold".into(), vec![0.02; 10])]);
    // One white canvas, 19 bars and 2 legend swatches.
    assert_eq!(svg.matches("<rect").count() - svg.matches("fill=\"none\"").count(), 1 + 19 + 2);
}

/// On the real files, the calibration the issue asks for, on the first 10,000 training and
/// 2,000 test images to keep the suite quick. With all 60,000 training images a linear
/// classifier on pixels misclassifies 7.6-12% of MNIST's test set and k-NN 3-5% (LeCun's
/// table; `probe` measures 92.42% and 96.93% on the full sets); with a sixth of the training
/// data both do worse (measured: 88.45% and 92.45%), so the bands are those published figures
/// widened downwards: a sanity band that a broken probe (chance is 10%) cannot reach.
#[test]
fn pixels_land_near_the_published_figures() {
    let Some(dir) = common::mnist_dir() else {
        eprintln!("SKIPPED pixels_land_near_the_published_figures: set MNIST_DIR to a folder with the MNIST files");
        return;
    };
    let m = Mnist::load(&dir).unwrap();
    let (train, test) = (codes(784, m.train.to_f32(0..10_000)), codes(784, m.test.to_f32(0..2000)));
    let (train_labels, test_labels) = (labels(&m.train_labels.labels[..10_000]), labels(&m.test_labels.labels[..2000]));
    let knn = probe::knn_accuracy(&train, &train_labels, &test, &test_labels, 5);
    let lp = probe::linear_probe(train, &train_labels, &test, &test_labels, 0);
    eprintln!("pixels, 10,000 training images: linear probe {lp:.4}, 5-NN {knn:.4}");
    assert!((0.85..0.95).contains(&lp), "linear probe on pixels {lp}");
    assert!((0.90..0.98).contains(&knn), "5-NN on pixels {knn}");
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_autoencoders")).args(args).output().expect("the binary runs")
}

/// Bad input from outside is one `error:` line and exit 1, and leaves no run folder: a
/// folder without models for `probe`, a peer file that is not torch_ref.py's JSON lines.
/// Misused `--seeds` is clap's exit 2.
#[test]
fn bad_probe_folders_peer_files_and_seed_lists_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let r = run(&["probe", empty.path().to_str().unwrap(), "--out", o, "--device", "cpu"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.lines().last().unwrap().starts_with("error:") && err.contains("no trained models"), "{err}");
    let peer = empty.path().join("peer.jsonl");
    std::fs::write(&peer, "not json\n").unwrap();
    let r = run(&["manifold", "--peer", peer.to_str().unwrap(), "--out", o, "--device", "cpu", "--epochs", "1"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("line 1 is not JSON"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).map(|d| d.count()).unwrap_or(0), 0, "no run folder was made");
    for bad in ["0", "1,1", "x", "2,-1"] {
        let r = run(&["manifold", "--seeds", bad, "--out", o]);
        assert_eq!(r.status.code(), Some(2), "--seeds {bad}: {}", String::from_utf8_lossy(&r.stderr));
    }
}
