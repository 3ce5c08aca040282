//! A whole run, as the command line asks for it: check the settings and the memory they need,
//! read MNIST, make the run folder (or reopen a resumed one), run one experiment or every
//! section of `all` (which then writes `index.html` over them), and summarise.
//!
//! Everything that can be refused is refused before the run folder exists, so a refused run
//! leaves nothing behind.

use super::report::write_report;
use super::{create_run_dir, run_into, Cache, Experiment, Metrics, Outcome, Settings};
use crate::data::{ensure_mnist, Images};
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::path::PathBuf;
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
    /// One per experiment run: one, or `all`'s ten sections.
    pub outcomes: Vec<Outcome>,
    pub wall_seconds: f64,
}

/// Runs `settings.experiment` into `folder`.
pub fn run(settings: &Settings, folder: Folder) -> Result<Finished> {
    settings.check_paths()?;
    if let Some(path) = &settings.image {
        crate::figures::png_io::load_grey_28(path)?;
    }
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

    let start = Instant::now();
    let (dir, resume) = match folder {
        Folder::New => (create_run_dir(&settings.out, settings.experiment.name())?, false),
        Folder::Resume(dir) => (dir, true),
    };
    let mut cache = Cache::default();
    let outcomes = if settings.experiment == Experiment::All {
        let config = serde_json::to_vec_pretty(&settings.config())?;
        crate::io::write_atomic(&dir.join("config.json"), &config)
            .with_context(|| format!("cannot write into {}", dir.display()))?;
        let mut outcomes = Vec::new();
        for section in Experiment::SECTIONS {
            eprintln!("== {}", section.name());
            let sub = dir.join(section.name());
            std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
            outcomes.push(run_into(section, settings, &data, sub, &mut cache, resume)?);
        }
        write_report(&dir, &outcomes, settings, start.elapsed().as_secs_f64())?;
        eprintln!("report: {}", dir.join("index.html").display());
        outcomes
    } else {
        vec![run_into(settings.experiment, settings, &data, dir.clone(), &mut cache, resume)?]
    };
    Ok(Finished { experiment: settings.experiment, dir, outcomes, wall_seconds: start.elapsed().as_secs_f64() })
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
        serde_json::to_string(&line).expect("numbers, strings and UTF-8 paths serialise")
    }

    /// The summary for a person: each model's test error and code activity, and the folder.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
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
        lines.push(format!("wrote {} ({:.0} s)", self.dir.display(), self.wall_seconds));
        lines
    }
}
