//! The command line: one subcommand per experiment of the study, and `all`.

use anyhow::{bail, Context as _, Result};
use autoencoders::data::{ensure_mnist, Images, Mnist};
use autoencoders::experiments::{self, report::write_report, Cache, Outcome, Settings, EXPERIMENTS};
use autoencoders::tensor::Device;
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The autoencoder study on MNIST: PCA, deep, sparse, denoising, manifold and
/// convolutional autoencoders, on an engine written from scratch.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Each run writes config.json, metrics.json, loss curves, figures and weights into a new folder under --out."
)]
struct Cli {
    /// pca | ae | hidden | non-digit | sparse | denoise | manifold | cae-unpool | cae-deconv | cae-deconv-unpool | all
    #[arg(value_parser = EXPERIMENTS, required_unless_present = "resume")]
    experiment: Option<String>,
    /// Continue the interrupted run in this folder, with the settings it was started with.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "experiment")]
    resume: Option<PathBuf>,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: u32,
    /// Images per Adam step.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive, allow_negative_numbers = true)]
    lr: f32,
    /// Seed of every random choice (initialisation, shuffling, noise).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// auto (the GPU if one is usable, else the CPU) | cpu | cuda.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    device: String,
    /// Folder of the MNIST IDX files (else $MNIST_DIR, else data/mnist, downloaded if missing).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where run folders are created.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    train_limit: Option<u32>,
    /// The class whose first test image the single-digit figures show.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=9))]
    digit: u8,
    /// PCA components.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=784))]
    components: u32,
    /// Hidden sizes for `hidden` (repeat the flag for several).
    #[arg(long = "size", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    sizes: Vec<u32>,
    /// L1 weights for `sparse` (repeat for several).
    #[arg(long = "lambda", value_parser = non_negative, allow_negative_numbers = true)]
    lambdas: Vec<f32>,
    /// Input-noise stds for `denoise` (repeat for several).
    #[arg(long = "noise", value_parser = non_negative, allow_negative_numbers = true)]
    noises: Vec<f32>,
    /// A PNG for `non-digit` (any size, colour or grey); default: a built-in drawing.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Print exactly one line of JSON on stdout at the end (everything else goes to stderr).
    #[arg(long)]
    json: bool,
}

fn positive(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be a finite number above 0"))
    }
}

fn non_negative(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s} is not a number"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be a finite number, 0 or more"))
    }
}

fn settings(cli: &Cli, device: Device) -> Settings {
    Settings {
        epochs: cli.epochs as usize,
        batch_size: cli.batch_size as usize,
        lr: cli.lr,
        seed: cli.seed,
        threads: rayon::current_num_threads(),
        device,
        data_dir: autoencoders::data::resolve_data_dir(cli.data.as_deref()),
        out: cli.out.clone(),
        train_limit: cli.train_limit.map(|n| n as usize),
        digit: cli.digit,
        components: cli.components as usize,
        sizes: if cli.sizes.is_empty() { vec![64, 128, 256] } else { cli.sizes.iter().map(|&s| s as usize).collect() },
        lambdas: if cli.lambdas.is_empty() { vec![0.001, 0.1, 1.0] } else { cli.lambdas.clone() },
        noises: if cli.noises.is_empty() { vec![0.1, 0.3, 0.7] } else { cli.noises.clone() },
        image: cli.image.clone(),
    }
}

/// The first `n` training images only.
fn limit(images: &mut Images, n: usize) {
    images.n = images.n.min(n);
    images.pixels.truncate(images.n * images.image_len());
}

fn run(cli: Cli) -> Result<()> {
    if let Some(threads) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads as usize)
            .build_global()
            .context("cannot start the thread pool")?;
    }
    let device = choose_device(&cli.device)?;
    let (experiment, settings) = match &cli.resume {
        Some(dir) => {
            let path = dir.join("config.json");
            let text = std::fs::read(&path).with_context(|| {
                format!("{}: no config.json; --resume takes a run folder this program made", dir.display())
            })?;
            let config =
                serde_json::from_slice(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
            Settings::from_json(&config, rayon::current_num_threads(), device)
                .with_context(|| format!("{}", path.display()))?
        }
        None => (cli.experiment.clone().expect("clap requires it without --resume"), settings(&cli, device)),
    };
    if let Some(path) = &settings.image {
        autoencoders::figures::png_io::load_grey_28(path)?;
    }
    // A resumed run reads the folder its config names; a new one follows --data, $MNIST_DIR,
    // then data/mnist (which alone may be created and downloaded into).
    let data_flag = if cli.resume.is_some() { Some(settings.data_dir.clone()) } else { cli.data.clone() };
    let mut data: Mnist = ensure_mnist(data_flag.as_deref())?;
    if let Some(n) = settings.train_limit {
        limit(&mut data.train, n);
    }
    if data.train.image_len() != autoencoders::models::PIXELS {
        bail!(
            "{}: images are {}x{}, but these models take 28x28; point --data at an MNIST-shaped set",
            settings.data_dir.display(),
            data.train.rows,
            data.train.cols
        );
    }

    let start = Instant::now();
    let resume = cli.resume.is_some();
    let dir = match &cli.resume {
        Some(dir) => dir.clone(),
        None => experiments::create_run_dir(&settings.out, &experiment)?,
    };
    let mut cache = Cache::default();
    let outcomes = if experiment == "all" {
        let config = serde_json::to_vec_pretty(&settings.to_json("all"))?;
        autoencoders::io::write_atomic(&dir.join("config.json"), &config)
            .with_context(|| format!("cannot write into {}", dir.display()))?;
        let mut outcomes = Vec::new();
        for experiment in EXPERIMENTS.iter().filter(|&&e| e != "all") {
            eprintln!("== {experiment}");
            let sub = dir.join(experiment);
            std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
            outcomes.push(experiments::run_into(experiment, &settings, &data, sub, &mut cache, resume)?);
        }
        write_report(&dir, &outcomes, &settings, start.elapsed().as_secs_f64())?;
        eprintln!("report: {}", dir.join("index.html").display());
        outcomes
    } else {
        vec![experiments::run_into(&experiment, &settings, &data, dir.clone(), &mut cache, resume)?]
    };
    let wall = start.elapsed().as_secs_f64();
    summarise(&cli, &experiment, &dir, &outcomes, wall);
    Ok(())
}

/// The device of `--device`, said in one line on stderr. `cuda` without a usable GPU is an
/// error carrying the probe's reason; `auto` falls back to the CPU and says why.
fn choose_device(flag: &str) -> Result<Device> {
    let device = match flag {
        "cpu" => Device::Cpu,
        "cuda" => Device::cuda().map_err(|reason| anyhow::anyhow!("--device cuda: {reason}"))?,
        _ => match Device::cuda() {
            Ok(gpu) => gpu,
            Err(reason) => {
                eprintln!("device: cpu (no usable GPU: {reason})");
                return Ok(Device::Cpu);
            }
        },
    };
    eprintln!("device: {device}");
    Ok(device)
}

fn summarise(cli: &Cli, experiment: &str, dir: &std::path::Path, outcomes: &[Outcome], wall: f64) {
    if cli.json {
        let line = if let [one] = outcomes {
            let mut v = one.to_json();
            v["wall_seconds"] = wall.into();
            v
        } else {
            let runs: Vec<_> =
                outcomes.iter().flat_map(|o| o.to_json()["runs"].as_array().cloned().unwrap_or_default()).collect();
            let primary = runs.first().cloned().unwrap_or_default();
            json!({
                "experiment": experiment, "run_dir": dir.display().to_string(), "wall_seconds": wall,
                "test_mse": primary["test_mse"], "train_loss": primary["train_loss"], "epoch_seconds": primary["epoch_seconds"],
                "mean_activation": primary["mean_activation"],
                "pca_test_mse": outcomes.iter().find_map(|o| o.pca_test_mse), "runs": runs,
            })
        };
        println!("{line}");
        return;
    }
    for o in outcomes {
        if let Some(p) = o.pca_test_mse {
            println!("{:<20} pca test MSE per pixel {p:.5}", o.experiment);
        }
        for r in &o.runs {
            println!(
                "{:<20} {:<18} test MSE per pixel {:.5}   mean |code| {:.4}",
                o.experiment, r.model, r.eval.mse, r.eval.mean_activation
            );
        }
    }
    println!("wrote {} ({wall:.0} s)", dir.display());
}

fn main() -> ExitCode {
    autoencoders::memory::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
