//! The study: one file per section of the seed report, each training its models and
//! drawing its figures into one run folder.
//!
//! A run folder (`runs/<experiment>-NNN`, never an existing one) receives `config.json`
//! (every resolved setting), `metrics.json` (the numbers and the list of figures with their
//! captions), `loss.svg`, the PNGs, and the trained weights as `*.safetensors`. `all` puts
//! each experiment in a subfolder of one `runs/all-NNN` and writes `index.html` over them.
//! Every file is written to a temporary sibling and renamed into place.

mod cae;
mod denoise;
mod draw;
mod hidden;
mod manifold;
mod pca_ae;
pub mod probe;
pub mod probe_runs;
pub mod report;
pub mod report_tables;
pub mod representations;
pub mod seeds;
mod sparse;

use crate::checkpoint::{load_checkpoint, save_checkpoint};
use crate::data::Mnist;
use crate::models::{Arch, Model, PIXELS};
use crate::tensor::{rng_from_seed, Device, Tensor};
use crate::train::{evaluate, train, Evaluation, History, TrainConfig, TrainState};
use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The experiments, in the order of the seed report (and of `all`).
pub const EXPERIMENTS: [&str; 11] = [
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
    "all",
];

/// Every setting of a run, resolved from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    pub threads: usize,
    /// Where the models train; the figures are drawn from host copies either way.
    pub device: Device,
    pub data_dir: PathBuf,
    pub out: PathBuf,
    pub train_limit: Option<usize>,
    /// The class (0-9) whose first test image the single-digit figures show.
    pub digit: u8,
    pub components: usize,
    pub sizes: Vec<usize>,
    pub lambdas: Vec<f32>,
    pub noises: Vec<f32>,
    pub image: Option<PathBuf>,
}

impl Settings {
    pub fn to_json(&self, experiment: &str) -> Value {
        json!({
            "experiment": experiment,
            "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
            "threads": self.threads, "device": self.device.kind(),
            "gpu": match &self.device { Device::Cuda(gpu) => Some(gpu.name.clone()), Device::Cpu => None },
            "data": self.data_dir.display().to_string(), "out": self.out.display().to_string(),
            "train_limit": self.train_limit, "digit": self.digit, "components": self.components,
            "sizes": self.sizes, "lambdas": self.lambdas, "noises": self.noises,
            "image": self.image.as_ref().map(|p| p.display().to_string()),
            "crate_version": env!("CARGO_PKG_VERSION"),
        })
    }

    /// The settings a run folder's `config.json` recorded, and its experiment; `threads` and
    /// `device` are not taken from it but from this run's command line.
    pub fn from_json(v: &Value, threads: usize, device: Device) -> Result<(String, Settings)> {
        let text = |k: &str| v[k].as_str().map(str::to_string).with_context(|| format!("config.json lacks {k}"));
        let count = |k: &str| v[k].as_u64().map(|n| n as usize).with_context(|| format!("config.json lacks {k}"));
        let floats = |k: &str| -> Result<Vec<f32>> {
            v[k].as_array()
                .with_context(|| format!("config.json lacks {k}"))?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32).with_context(|| format!("config.json: {k} holds a non-number")))
                .collect()
        };
        let settings = Settings {
            epochs: count("epochs")?,
            batch_size: count("batch_size")?,
            lr: v["lr"].as_f64().context("config.json lacks lr")? as f32,
            seed: v["seed"].as_u64().context("config.json lacks seed")?,
            threads,
            device,
            data_dir: PathBuf::from(text("data")?),
            out: PathBuf::from(text("out")?),
            train_limit: v["train_limit"].as_u64().map(|n| n as usize),
            digit: count("digit")? as u8,
            components: count("components")?,
            sizes: floats("sizes")?.into_iter().map(|s| s as usize).collect(),
            lambdas: floats("lambdas")?,
            noises: floats("noises")?,
            image: v["image"].as_str().map(PathBuf::from),
        };
        Ok((text("experiment")?, settings))
    }

    pub fn train_config(&self, l1: f32, noise: f32) -> TrainConfig {
        TrainConfig { epochs: self.epochs, batch_size: self.batch_size, lr: self.lr, l1, noise }
    }
}

/// One trained model's results.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub model: String,
    pub eval: Evaluation,
    pub history: History,
}

/// A figure and the sentence that explains it.
#[derive(Clone, Debug)]
pub struct Figure {
    pub file: String,
    pub caption: String,
}

/// What an experiment produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub experiment: String,
    pub dir: PathBuf,
    pub runs: Vec<RunResult>,
    pub pca_test_mse: Option<f64>,
    pub figures: Vec<Figure>,
    /// Numbers particular to an experiment (PCA's sweeps, ...).
    pub extra: serde_json::Map<String, Value>,
}

impl Outcome {
    /// The one-line summary printed by `--json`, also the body of `metrics.json`.
    pub fn to_json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                json!({
                    "model": r.model, "test_mse": r.eval.mse, "mean_activation": r.eval.mean_activation,
                    "train_loss": r.history.epoch_loss, "epoch_seconds": r.history.epoch_seconds,
                })
            })
            .collect();
        let primary = self.runs.first();
        let mut v = json!({
            "experiment": self.experiment,
            "run_dir": self.dir.display().to_string(),
            "test_mse": primary.map(|r| r.eval.mse).or(self.pca_test_mse),
            "train_loss": primary.map(|r| r.history.epoch_loss.clone()).unwrap_or_default(),
            "epoch_seconds": primary.map(|r| r.history.epoch_seconds.clone()).unwrap_or_default(),
            "mean_activation": primary.map(|r| r.eval.mean_activation),
            "pca_test_mse": self.pca_test_mse,
            "runs": runs,
            "figures": self.figures.iter().map(|f| json!({"file": f.file, "caption": f.caption})).collect::<Vec<_>>(),
        });
        v.as_object_mut().expect("an object").extend(self.extra.clone());
        v
    }
}

/// What an experiment works with.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub data: &'a Mnist,
    pub outcome: Outcome,
    /// Continue from the checkpoints in the run folder rather than start afresh.
    pub resume: bool,
}

impl Context<'_> {
    pub fn path(&self, file: &str) -> PathBuf {
        self.outcome.dir.join(file)
    }

    pub fn figure(&mut self, file: &str, caption: impl Into<String>) {
        self.outcome.figures.push(Figure { file: file.to_string(), caption: caption.into() });
    }

    /// The index of the test image the single-digit figures show.
    pub fn digit_index(&self) -> usize {
        let labels = &self.data.test_labels.labels;
        labels.iter().position(|&l| l == self.settings.digit).unwrap_or(0)
    }

    /// A fresh model of `arch`, trained from the run's seed, evaluated on the test set, its
    /// weights saved as `<name>.safetensors`. The same seed gives the same model whichever
    /// experiment trains it.
    ///
    /// After every epoch the full training state goes to `<name>.checkpoint.safetensors`;
    /// when resuming, training continues from that file.
    ///
    /// The model is drawn and checked on the host, trained and evaluated on the run's device,
    /// and returned as a host copy, which the figures are drawn from.
    pub fn train(&mut self, arch: Arch, name: &str, l1: f32, noise: f32) -> Result<Model> {
        let cfg = self.settings.train_config(l1, noise);
        let mut rng = rng_from_seed(self.settings.seed);
        let mut model = Model::new(arch, &mut rng);
        // The study's decoders end in a ReLU, and on one output channel a negative last bias
        // can zero every output for every input: then no gradient flows anywhere and the
        // model never learns (about half of all initialisations of a CAE do this). Such a
        // draw is replaced by the next one from the same generator, so a seed still fixes
        // the run, and the replacement is reported.
        let probe = Tensor::from_vec(
            &[PROBE.min(self.data.train.n), PIXELS],
            self.data.train.to_f32(0..PROBE.min(self.data.train.n)),
        );
        let mut redraws = 0;
        while model.reconstruct(&probe).0.as_slice().iter().all(|&v| v == 0.0) && redraws < MAX_REDRAWS {
            model = Model::new(arch, &mut rng);
            redraws += 1;
        }
        if redraws > 0 {
            eprintln!("{name}: {redraws} initialisation(s) gave 0 for every output (a dead final ReLU, no gradient); drew again");
            self.outcome.extra.insert(format!("{name}_dead_initialisations_redrawn"), redraws.into());
        }
        let mut state = TrainState::new(&model, &cfg, rng);
        let checkpoint = self.path(&format!("{name}.checkpoint.safetensors"));
        if self.resume && checkpoint.exists() {
            state = load_checkpoint(&checkpoint, &mut model, state.adam)?;
            eprintln!("{name}: resuming after epoch {} of {}", state.epoch, cfg.epochs);
        }
        let mut model = model.to_device(&self.settings.device);
        let state = train(&mut model, &self.data.train, &cfg, state, name, |m, s| save_checkpoint(&checkpoint, m, s))?;
        let history = state.history;
        let eval = evaluate(&model, &self.data.test);
        let model = model.to_cpu();
        eprintln!("{name}: test MSE per pixel {:.5}, mean |code| {:.4}", eval.mse, eval.mean_activation);
        draw::save_model(&self.path(&format!("{name}.safetensors")), &model, name)?;
        self.outcome.runs.push(RunResult { model: name.to_string(), eval, history });
        Ok(model)
    }
}

/// Training images on which a fresh model's outputs are checked for life.
const PROBE: usize = 256;
/// Fresh draws tried before training a dead model anyway (it will not learn; the report shows it).
const MAX_REDRAWS: usize = 20;

/// Creates `out/<name>-NNN` with the first free NNN; never reuses an existing folder.
pub fn create_run_dir(out: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}; choose another with --out", out.display()))?;
    for k in 1..10_000 {
        let dir = out.join(format!("{name}-{k:03}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot write into the output folder {}; choose another with --out", out.display())
                })
            }
        }
    }
    anyhow::bail!("{} holds 9999 runs of {name}; clean it up or choose another --out", out.display())
}

/// Runs one experiment (not `all`) into `dir`, writing its config and metrics.
pub fn run_into(
    experiment: &str,
    settings: &Settings,
    data: &Mnist,
    dir: PathBuf,
    cache: &mut Cache,
    resume: bool,
) -> Result<Outcome> {
    let config = serde_json::to_vec_pretty(&settings.to_json(experiment))?;
    crate::io::write_atomic(&dir.join("config.json"), &config)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    let mut ctx = Context {
        settings,
        data,
        resume,
        outcome: Outcome { experiment: experiment.to_string(), dir: dir.clone(), ..Outcome::default() },
    };
    match experiment {
        "pca" => pca_ae::pca(&mut ctx, cache)?,
        "ae" => pca_ae::ae(&mut ctx, cache)?,
        "hidden" => hidden::hidden(&mut ctx, cache)?,
        "non-digit" => hidden::non_digit(&mut ctx, cache)?,
        "sparse" => sparse::sparse(&mut ctx)?,
        "denoise" => denoise::denoise(&mut ctx, cache)?,
        "manifold" => manifold::manifold(&mut ctx)?,
        "cae-unpool" => cae::cae(&mut ctx, Arch::CaeUnpool)?,
        "cae-deconv" => cae::cae(&mut ctx, Arch::CaeDeconv)?,
        "cae-deconv-unpool" => cae::cae(&mut ctx, Arch::CaeDeconvUnpool)?,
        other => anyhow::bail!("unknown experiment {other}"),
    }
    draw::loss_curves(&mut ctx)?;
    let metrics = serde_json::to_vec_pretty(&ctx.outcome.to_json())?;
    crate::io::write_atomic(&dir.join("metrics.json"), &metrics)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    Ok(ctx.outcome)
}

/// Results that later experiments of the same run reuse instead of recomputing: the PCA fit
/// and the plain h = 256 AE (the non-digit and denoising sections feed it).
#[derive(Default)]
pub struct Cache {
    pub pca: Option<crate::pca::Pca>,
    pub h256: Option<Model>,
}
