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
pub mod run;
pub mod seeds;
pub mod settings;
mod sparse;

pub use settings::{Experiment, Settings};

use crate::checkpoint::{load_checkpoint, save_checkpoint};
use crate::data::Mnist;
use crate::models::{Arch, Model, PIXELS};
use crate::tensor::{rng_from_seed, Tensor};
use crate::train::{evaluate, train, Evaluation, History, TrainState};
use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One trained model's results.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub model: String,
    pub eval: Evaluation,
    pub history: History,
}

/// A figure and the sentence that explains it.
#[derive(Clone, Debug, Serialize)]
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
    /// The body of `metrics.json`, also the one line printed by `--json`.
    pub fn metrics(&self) -> Metrics<'_> {
        let primary = self.runs.first();
        Metrics {
            experiment: &self.experiment,
            run_dir: &self.dir,
            test_mse: primary.map(|r| r.eval.mse).or(self.pca_test_mse),
            train_loss: primary.map_or(&[], |r| &r.history.epoch_loss),
            epoch_seconds: primary.map_or(&[], |r| &r.history.epoch_seconds),
            mean_activation: primary.map(|r| r.eval.mean_activation),
            pca_test_mse: self.pca_test_mse,
            runs: self.runs.iter().map(RunMetrics::of).collect(),
            figures: &self.figures,
            extra: &self.extra,
        }
    }
}

/// `metrics.json`: the first model's numbers at the top (what a script of one model reads),
/// every model's in `runs`, the figures with their captions, and what is particular to the
/// experiment (PCA's fit, the noisy test errors, ...).
#[derive(Serialize)]
pub struct Metrics<'a> {
    pub experiment: &'a str,
    pub run_dir: &'a Path,
    pub test_mse: Option<f64>,
    pub train_loss: &'a [f64],
    pub epoch_seconds: &'a [f64],
    pub mean_activation: Option<f64>,
    pub pca_test_mse: Option<f64>,
    pub runs: Vec<RunMetrics<'a>>,
    #[serde(skip_serializing_if = "no_figures")]
    pub figures: &'a [Figure],
    #[serde(flatten)]
    pub extra: &'a serde_json::Map<String, Value>,
}

fn no_figures(figures: &&[Figure]) -> bool {
    figures.is_empty()
}

/// One model's line of `metrics.json`.
#[derive(Serialize)]
pub struct RunMetrics<'a> {
    pub model: &'a str,
    pub test_mse: f64,
    pub mean_activation: f64,
    pub train_loss: &'a [f64],
    pub epoch_seconds: &'a [f64],
}

impl RunMetrics<'_> {
    fn of(r: &RunResult) -> RunMetrics<'_> {
        RunMetrics {
            model: &r.model,
            test_mse: r.eval.mse,
            mean_activation: r.eval.mean_activation,
            train_loss: &r.history.epoch_loss,
            epoch_seconds: &r.history.epoch_seconds,
        }
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
        let kernels = self.settings.kernels;
        let mut model = Model::new(arch, &mut rng).with_kernels(kernels);
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
            model = Model::new(arch, &mut rng).with_kernels(kernels);
            redraws += 1;
        }
        if redraws > 0 {
            crate::note!("{name}: {redraws} initialisation(s) gave 0 for every output (a dead final ReLU, no gradient); drew again");
            self.outcome.extra.insert(format!("{name}_dead_initialisations_redrawn"), redraws.into());
        }
        let mut state = TrainState::new(&model, &cfg, rng);
        let checkpoint = self.path(&format!("{name}.checkpoint.safetensors"));
        if self.resume && checkpoint.exists() {
            state = load_checkpoint(&checkpoint, &mut model, state.adam)?;
            // Training cannot be undone: a run of fewer epochs than this file holds would be
            // reported as one while its weights are those of the longer run.
            if state.epoch > cfg.epochs {
                anyhow::bail!(
                    "{}: the checkpoint is after epoch {}, but config.json asks for {} epochs; resume with --epochs {} or more",
                    checkpoint.display(),
                    state.epoch,
                    cfg.epochs,
                    state.epoch
                );
            }
            crate::note!("{name}: resuming after epoch {} of {}", state.epoch, cfg.epochs);
        }
        // The tape of one step, drawn from the host copy (a forward pass's work, no training).
        let graph = crate::graph::Graph::of_step(&model, cfg.batch_size, l1);
        crate::graph::write_files(&graph, &self.outcome.dir, &format!("{name}.graph"))?;
        self.figure(
            &format!("{name}.graph.svg"),
            format!("{name}: the tape of one training step (forward and loss), which backward walks in reverse; dashed red arrows carry the pool indices an unpool reuses"),
        );
        // With --profile, what this model's training measures, and nothing from before.
        crate::profile::take();
        let mut model = model.to_device(&self.settings.device);
        let state = train(&mut model, &self.data.train, &cfg, state, name, |m, s| save_checkpoint(&checkpoint, m, s))?;
        if crate::profile::enabled() {
            self.profile(name)?;
        }
        let history = state.history;
        let eval = evaluate(&model, &self.data.test);
        let model = model.to_cpu();
        crate::note!("{name}: test MSE per pixel {:.5}, mean |code| {:.4}", eval.mse, eval.mean_activation);
        draw::save_model(&self.path(&format!("{name}.safetensors")), &model, name)?;
        self.outcome.runs.push(RunResult { model: name.to_string(), eval, history });
        Ok(model)
    }

    /// `--profile`: the table of `name`'s training on stderr, its bar chart, and its entry
    /// in metrics.json's "profile".
    fn profile(&mut self, name: &str) -> Result<()> {
        let profile = crate::profile::take();
        crate::note!("{}", profile.table(name).trim_end());
        let file = format!("{name}.profile.svg");
        let chart = crate::profile::chart::bar_chart(&profile, &format!("{name}: where a training step's time goes"));
        crate::figures::svg::save_svg(&self.path(&file), &chart)?;
        self.figure(
            &file,
            format!("{name} (--profile): time per op kind over the whole training, forward, backward and Adam apart, as shares of the steps measured from outside"),
        );
        let entry = self.outcome.extra.entry("profile").or_insert_with(|| Value::Object(Default::default()));
        entry[name] = profile.to_json();
        Ok(())
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

/// Runs one experiment (not `all`) into `dir`, writing its config and metrics; `settings`
/// may be `all`'s, of which this experiment is a section.
pub fn run_into(
    experiment: Experiment,
    settings: &Settings,
    data: &Mnist,
    dir: PathBuf,
    cache: &mut Cache,
    resume: bool,
) -> Result<Outcome> {
    let config = Settings { experiment, ..settings.clone() }.config();
    let config = serde_json::to_vec_pretty(&config)?;
    crate::io::write_atomic(&dir.join("config.json"), &config)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    let mut ctx = Context {
        settings,
        data,
        resume,
        outcome: Outcome { experiment: experiment.name().to_string(), dir: dir.clone(), ..Outcome::default() },
    };
    match experiment {
        Experiment::Pca => pca_ae::pca(&mut ctx, cache)?,
        Experiment::Ae => pca_ae::ae(&mut ctx, cache)?,
        Experiment::Hidden => hidden::hidden(&mut ctx, cache)?,
        Experiment::NonDigit => hidden::non_digit(&mut ctx, cache)?,
        Experiment::Sparse => sparse::sparse(&mut ctx)?,
        Experiment::Denoise => denoise::denoise(&mut ctx, cache)?,
        Experiment::Manifold => manifold::manifold(&mut ctx)?,
        Experiment::CaeUnpool => cae::cae(&mut ctx, Arch::CaeUnpool)?,
        Experiment::CaeDeconv => cae::cae(&mut ctx, Arch::CaeDeconv)?,
        Experiment::CaeDeconvUnpool => cae::cae(&mut ctx, Arch::CaeDeconvUnpool)?,
        Experiment::All => anyhow::bail!("all is run by experiments::run, section by section"),
        Experiment::Probe => probe_runs::probe_runs(&mut ctx, &settings.probe_dirs)?,
    }
    draw::loss_curves(&mut ctx)?;
    let metrics = serde_json::to_vec_pretty(&ctx.outcome.metrics())?;
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
