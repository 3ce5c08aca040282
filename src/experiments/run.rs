//! A whole run, as the command line asks for it: check the settings and the memory they need,
//! read MNIST, make the run folder (or reopen a resumed one), run one experiment or every
//! section of `all` (which then writes `index.html` over them), and summarise.
//!
//! Everything that can be refused is refused before the run folder exists, so a refused run
//! leaves nothing behind.

use super::report::write_report_seeds;
use super::report_tables::Seeds;
use super::seeds::read_peer;
use super::{create_run_dir, run_into, Cache, Experiment, Metrics, Outcome, Settings};
use crate::data::{ensure_mnist, Images, Mnist};
use crate::memory;
use crate::models::Arch;
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a run's files go.
pub enum Folder {
    /// A new `out/<experiment>-NNN`.
    New,
    /// The folder of an interrupted (or finished) run, continued from its checkpoints.
    Resume(PathBuf),
}

/// What a run produced.
pub struct Finished {
    pub experiment: Experiment,
    pub dir: PathBuf,
    /// One per experiment run: one, or `all`'s ten sections and the probe; the first seed's.
    pub outcomes: Vec<Outcome>,
    /// The same for every seed, in the order of `seeds`.
    pub per_seed: Vec<Vec<Outcome>>,
    pub seeds: Vec<u64>,
    pub wall_seconds: f64,
}

/// Runs `settings.experiment` into `folder`.
pub fn run(settings: &Settings, folder: Folder) -> Result<Finished> {
    settings.check_paths()?;
    let peer = settings.peer.as_deref().map(read_peer).transpose()?;
    for dir in &settings.probe_dirs {
        super::probe_runs::find_models(dir)?;
    }
    if let Some(path) = &settings.image {
        crate::figures::png_io::load_grey_28(path)?;
    }
    check_memory(settings)?;
    let mut data = ensure_mnist(settings.data_named.then_some(settings.data_dir.as_path()))?;
    if let Some(n) = settings.train_limit {
        limit(&mut data.train, n);
    }
    if data.train.image_len() != crate::models::PIXELS {
        bail!(
            "{}: images are {}x{}, but these models take 28x28; point --data at an MNIST-shaped set",
            settings.data_dir.display(),
            data.train.rows,
            data.train.cols
        );
    }
    // The covariance divides by n - 1.
    let pca = matches!(settings.experiment, Experiment::Pca | Experiment::Ae | Experiment::All);
    if pca && data.train.n < 2 {
        bail!("PCA needs at least 2 training images, but this run has {}; raise --train-limit", data.train.n);
    }

    let start = Instant::now();
    let (dir, resume) = match folder {
        Folder::New => (create_run_dir(&settings.out, settings.experiment.name())?, false),
        Folder::Resume(dir) => {
            remove_stale_temporaries(&dir)?;
            (dir, true)
        }
    };
    if settings.seeds.len() > 1 || settings.experiment == Experiment::All {
        let config = serde_json::to_vec_pretty(&settings.config())?;
        crate::io::write_atomic(&dir.join("config.json"), &config)
            .with_context(|| format!("cannot write into {}", dir.display()))?;
    }
    // One seed runs in the folder itself; several each in a folder seed-S of it.
    let mut per_seed = Vec::new();
    for &seed in &settings.seeds {
        let settings = Settings { seed, ..settings.clone() };
        let sub = if settings.seeds.len() > 1 { dir.join(format!("seed-{seed}")) } else { dir.clone() };
        std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
        if settings.seeds.len() > 1 {
            crate::note!("=== seed {seed}");
        }
        per_seed.push(run_seed(&settings, &data, sub, resume)?);
    }
    if settings.experiment == Experiment::All {
        let seeds = Seeds { seeds: &settings.seeds, runs: &per_seed, peer: peer.as_ref() };
        write_report_seeds(&dir, &seeds, settings, start.elapsed().as_secs_f64())?;
        crate::note!("report: {}", dir.join("index.html").display());
    }
    let outcomes = per_seed[0].clone();
    Ok(Finished {
        experiment: settings.experiment,
        dir,
        outcomes,
        per_seed,
        seeds: settings.seeds.clone(),
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// One seed's run into `dir`: the experiment, or every section of `all` and then the probe
/// of the models they trained (in `dir/probe`).
fn run_seed(settings: &Settings, data: &Mnist, dir: PathBuf, resume: bool) -> Result<Vec<Outcome>> {
    let mut cache = Cache::default();
    if settings.experiment != Experiment::All {
        return Ok(vec![run_into(settings.experiment, settings, data, dir, &mut cache, resume)?]);
    }
    let mut outcomes = Vec::new();
    for section in Experiment::SECTIONS {
        crate::note!("== {}", section.name());
        let sub = dir.join(section.name());
        std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
        outcomes.push(run_into(section, settings, data, sub, &mut cache, resume)?);
    }
    crate::note!("== probe");
    let sub = dir.join("probe");
    std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
    // The sections that trained models (pca trains none), in the study's order.
    let trained = Experiment::SECTIONS.iter().map(|e| dir.join(e.name()));
    let trained = trained.filter(|d| super::probe_runs::find_models(d).is_ok()).collect();
    let probe = Settings { probe_dirs: trained, ..settings.clone() };
    outcomes.push(run_into(Experiment::Probe, &probe, data, sub, &mut cache, resume)?);
    Ok(outcomes)
}

/// The models `experiment` trains (one at a time).
fn models(experiment: Experiment, settings: &Settings) -> Vec<Arch> {
    let shallow = |h| Arch::Shallow { hidden: h };
    match experiment {
        Experiment::Pca | Experiment::Probe => vec![],
        Experiment::Ae => vec![Arch::DeepAe],
        Experiment::Hidden => settings.sizes.iter().map(|&h| shallow(h)).collect(),
        Experiment::NonDigit | Experiment::Denoise => vec![shallow(256)],
        Experiment::Sparse => vec![shallow(900)],
        Experiment::Manifold => vec![Arch::Manifold],
        Experiment::CaeUnpool => vec![Arch::CaeUnpool],
        Experiment::CaeDeconv => vec![Arch::CaeDeconv],
        Experiment::CaeDeconvUnpool => vec![Arch::CaeDeconvUnpool],
        Experiment::All => Experiment::SECTIONS.iter().flat_map(|&e| models(e, settings)).collect(),
    }
}

/// Refuses a run whose largest model would not fit in the machine's memory (see
/// `memory::training_bytes`), before anything is allocated or created.
fn check_memory(settings: &Settings) -> Result<()> {
    let Some((kind, available)) = memory::available_bytes() else { return Ok(()) };
    let needs = |arch: &Arch| memory::training_bytes(*arch, settings.batch_size);
    if let Some(arch) = models(settings.experiment, settings).iter().max_by_key(|a| needs(a)) {
        if needs(arch) > available {
            bail!(
                "training {} on batches of {} needs at least {} (weights, gradients, Adam's moments and activations), but this machine has {} {kind}; choose a smaller --batch-size or model",
                arch.name(),
                settings.batch_size,
                memory::human(needs(arch)),
                memory::human(available)
            );
        }
    }
    Ok(())
}

/// Deletes what writers killed mid-write left in a resumed run folder and in `all`'s
/// section folders (see `io::remove_stale_temporaries`): their temporaries, which no later
/// write would reuse or remove.
fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let sections = Experiment::SECTIONS.iter().map(|e| dir.join(e.name())).filter(|d| d.is_dir());
    for folder in std::iter::once(dir.to_path_buf()).chain(sections) {
        let removed = crate::io::remove_stale_temporaries(&folder)
            .with_context(|| format!("cannot clean up {}; is it a run folder you may write into?", folder.display()))?;
        for path in removed {
            crate::note!("removed {}, left by a process killed while writing it", path.display());
        }
    }
    Ok(())
}

/// The first `n` training images only.
fn limit(images: &mut Images, n: usize) {
    images.n = images.n.min(n);
    images.pixels.truncate(images.n * images.image_len());
}

/// `--json`'s line: the metrics of the experiment (for `all`, every section's models in
/// `runs`, the first at the top) and the wall time.
#[derive(Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    metrics: Metrics<'a>,
    wall_seconds: f64,
}

impl Finished {
    /// One line of JSON (see `JsonLine`).
    pub fn json_line(&self) -> String {
        let all;
        let outcome = match &self.outcomes[..] {
            [one] => one,
            sections => {
                all = Outcome {
                    experiment: self.experiment.name().to_string(),
                    dir: self.dir.clone(),
                    runs: sections.iter().flat_map(|o| o.runs.iter().cloned()).collect(),
                    pca_test_mse: sections.iter().find_map(|o| o.pca_test_mse),
                    ..Outcome::default()
                };
                &all
            }
        };
        let line = JsonLine { metrics: outcome.metrics(), wall_seconds: self.wall_seconds };
        let mut line = serde_json::to_value(&line).expect("numbers, strings and UTF-8 paths serialise");
        if self.seeds.len() > 1 {
            // Every seed's models, and the mean ± sd of each over the seeds.
            let seeds = self.spreads();
            let models: Vec<String> = self.outcomes.iter().flat_map(|o| &o.runs).map(|r| r.model.clone()).collect();
            let summary: Vec<serde_json::Value> = models
                .iter()
                .map(|m| {
                    let (mse, act) = (seeds.mse(m), seeds.activation(m));
                    serde_json::json!({"model": m, "test_mse_mean": mse.map(|s| s.mean), "test_mse_sd": mse.map(|s| s.sd),
                        "mean_activation_mean": act.map(|s| s.mean), "mean_activation_sd": act.map(|s| s.sd)})
                })
                .collect();
            let by_seed: Vec<serde_json::Value> = self
                .seeds
                .iter()
                .zip(&self.per_seed)
                .map(|(seed, o)| {
                    let runs: Vec<serde_json::Value> = o
                        .iter()
                        .flat_map(|o| &o.runs)
                        .map(|r| serde_json::json!({"model": r.model, "test_mse": r.eval.mse, "mean_activation": r.eval.mean_activation}))
                        .collect();
                    serde_json::json!({"seed": seed, "runs": runs})
                })
                .collect();
            line["seeds"] = serde_json::json!(self.seeds);
            line["over_seeds"] = summary.into();
            line["by_seed"] = by_seed.into();
        }
        line.to_string()
    }

    /// The runs of every seed, for their spreads.
    fn spreads(&self) -> Seeds<'_> {
        Seeds { seeds: &self.seeds, runs: &self.per_seed, peer: None }
    }

    /// The summary for a person: each model's test error and code activity (mean ± sd over
    /// the seeds when there are several), the probe's table, and the folder.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let seeds = self.spreads();
        if self.seeds.len() > 1 {
            for o in &self.outcomes {
                for r in &o.runs {
                    let (mse, act) =
                        (seeds.mse(&r.model).expect("trained"), seeds.activation(&r.model).expect("trained"));
                    lines.push(format!(
                        "{:<20} {:<18} test MSE per pixel {}   mean |code| {}   ({} seeds)",
                        o.experiment,
                        r.model,
                        mse.show(5),
                        act.show(4),
                        mse.n
                    ));
                }
            }
            lines.extend(super::report_tables::probe_lines(&seeds));
            lines.push(format!("wrote {} ({:.0} s)", self.dir.display(), self.wall_seconds));
            return lines;
        }
        for o in &self.outcomes {
            if let Some(p) = o.pca_test_mse {
                lines.push(format!("{:<20} pca test MSE per pixel {p:.5}", o.experiment));
            }
            for r in &o.runs {
                lines.push(format!(
                    "{:<20} {:<18} test MSE per pixel {:.5}   mean |code| {:.4}",
                    o.experiment, r.model, r.eval.mse, r.eval.mean_activation
                ));
            }
        }
        lines.extend(super::report_tables::probe_lines(&seeds));
        lines.push(format!("wrote {} ({:.0} s)", self.dir.display(), self.wall_seconds));
        lines
    }
}
