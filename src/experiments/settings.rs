//! Every setting of a run: the study's defaults, the checks each value must pass, and
//! `config.json`, the file a run folder keeps them in.
//!
//! The command line and `config.json` go through the same checks (`Whole`, `positive`,
//! `non_negative`), with the same messages: a value edited into a run folder's config is
//! refused as it would be on the command line, naming the file and the key. The file's
//! numbers are read as wide types (`i64`, `f32`) so that `epochs: -3` reaches the check and
//! is called out of range, instead of failing to parse as "not a usize".

use crate::ops::Kernels;
use crate::tensor::Device;
use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The experiments, in the order of the seed report (and of `all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    Pca,
    Ae,
    Hidden,
    NonDigit,
    Sparse,
    Denoise,
    Manifold,
    CaeUnpool,
    CaeDeconv,
    CaeDeconvUnpool,
    All,
    /// The code evaluation of finished run folders (`probe_runs`).
    Probe,
}

impl Experiment {
    /// The sections `all` runs, in order.
    pub const SECTIONS: [Experiment; 10] = [
        Experiment::Pca,
        Experiment::Ae,
        Experiment::Hidden,
        Experiment::NonDigit,
        Experiment::Sparse,
        Experiment::Denoise,
        Experiment::Manifold,
        Experiment::CaeUnpool,
        Experiment::CaeDeconv,
        Experiment::CaeDeconvUnpool,
    ];

    /// The name on the command line, in `config.json` and of the run folder.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Pca => "pca",
            Experiment::Ae => "ae",
            Experiment::Hidden => "hidden",
            Experiment::NonDigit => "non-digit",
            Experiment::Sparse => "sparse",
            Experiment::Denoise => "denoise",
            Experiment::Manifold => "manifold",
            Experiment::CaeUnpool => "cae-unpool",
            Experiment::CaeDeconv => "cae-deconv",
            Experiment::CaeDeconvUnpool => "cae-deconv-unpool",
            Experiment::All => "all",
            Experiment::Probe => "probe",
        }
    }
}

// The study's defaults (SPEC.md): Adam at 1e-3, batches of 64, 10 epochs; 30 PCA
// components; the hidden sizes, L1 weights and noise levels of the seed report.
pub const EPOCHS_DEFAULT: usize = 10;
pub const BATCH_SIZE_DEFAULT: usize = 64;
pub const LR_DEFAULT: f32 = 1e-3;
pub const DIGIT_DEFAULT: usize = 3;
pub const COMPONENTS_DEFAULT: usize = 30;
pub const SIZES_DEFAULT: [usize; 3] = [64, 128, 256];
pub const LAMBDAS_DEFAULT: [f32; 3] = [0.001, 0.1, 1.0];
pub const NOISES_DEFAULT: [f32; 3] = [0.1, 0.3, 0.7];
pub const OUT_DEFAULT: &str = "runs";

/// A whole-number setting and the range it must lie in.
#[derive(Clone, Copy, Debug)]
pub struct Whole {
    pub lo: i64,
    pub hi: i64,
}

impl Whole {
    pub fn check(self, v: i64) -> Result<usize, String> {
        if (self.lo..=self.hi).contains(&v) {
            Ok(v as usize)
        } else {
            Err(format!("{v} is not a whole number from {} to {}", self.lo, self.hi))
        }
    }

    /// The command line's parser: the same check on the flag's text.
    pub fn parse(self, s: &str) -> Result<usize, String> {
        self.check(s.trim().parse().map_err(|_| format!("{s} is not a whole number from {} to {}", self.lo, self.hi))?)
    }
}

pub const EPOCHS: Whole = Whole { lo: 1, hi: u32::MAX as i64 };
pub const BATCH_SIZE: Whole = Whole { lo: 1, hi: u32::MAX as i64 };
pub const TRAIN_LIMIT: Whole = Whole { lo: 1, hi: u32::MAX as i64 };
pub const THREADS: Whole = Whole { lo: 1, hi: 1024 };
pub const DIGIT: Whole = Whole { lo: 0, hi: 9 };
/// A PCA of 784 pixels has at most 784 components.
pub const COMPONENTS: Whole = Whole { lo: 1, hi: crate::models::PIXELS as i64 };
/// A hidden layer past 100,000 units is not an autoencoder of 784 pixels any more (its
/// square middle weight alone would be 40 GB); the memory check refuses far less.
pub const SIZE: Whole = Whole { lo: 1, hi: 100_000 };

/// Learning rates: finite and above 0.
pub fn positive(v: f32) -> Result<f32, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be a finite number above 0"))
    }
}

/// L1 weights and noise levels: finite, 0 or more.
pub fn non_negative(v: f32) -> Result<f32, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be a finite number, 0 or more"))
    }
}

/// A real number from the command line, then `check`.
pub fn parse_real(s: &str, check: fn(f32) -> Result<f32, String>) -> Result<f32, String> {
    check(s.trim().parse().map_err(|_| format!("{s} is not a number"))?)
}

/// Every setting of a run, resolved and checked.
#[derive(Clone, Debug)]
pub struct Settings {
    pub experiment: Experiment,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    pub threads: usize,
    /// Where the models train; the figures are drawn from host copies either way.
    pub device: Device,
    /// The CPU floor the models compute on (`ops::Kernels`).
    pub kernels: Kernels,
    /// The MNIST folder, absolute.
    pub data_dir: PathBuf,
    /// Whether the user named `data_dir` (flag, `$MNIST_DIR`, or a resumed run's config): a
    /// named folder must exist, the default one may be created and downloaded into.
    pub data_named: bool,
    pub out: PathBuf,
    pub train_limit: Option<usize>,
    /// The class (0-9) whose first test image the single-digit figures show.
    pub digit: u8,
    pub components: usize,
    pub sizes: Vec<usize>,
    pub lambdas: Vec<f32>,
    pub noises: Vec<f32>,
    pub image: Option<PathBuf>,
    /// Every seed to train at (`seed` alone unless `--seeds` was given); `seed` is the first.
    pub seeds: Vec<u64>,
    /// PyTorch's runs (`torch_ref.py`'s JSON lines) for the report's table.
    pub peer: Option<PathBuf>,
    /// The run folders `probe` evaluates.
    pub probe_dirs: Vec<PathBuf>,
}

impl Settings {
    /// The study's defaults for `experiment`, on the CPU, reading the default data folder;
    /// `threads` is left 0 for the caller to fill in.
    pub fn study(experiment: Experiment) -> Settings {
        Settings {
            experiment,
            epochs: EPOCHS_DEFAULT,
            batch_size: BATCH_SIZE_DEFAULT,
            lr: LR_DEFAULT,
            seed: 0,
            // The pool's, once whoever runs the study has started it (asking rayon now would
            // start the default pool, and a later --threads could not be had).
            threads: 0,
            device: Device::Cpu,
            kernels: Kernels::Fast,
            data_dir: crate::data::resolve_data_dir(None),
            data_named: false,
            out: PathBuf::from(OUT_DEFAULT),
            train_limit: None,
            digit: DIGIT_DEFAULT as u8,
            components: COMPONENTS_DEFAULT,
            sizes: SIZES_DEFAULT.to_vec(),
            lambdas: LAMBDAS_DEFAULT.to_vec(),
            noises: NOISES_DEFAULT.to_vec(),
            image: None,
            seeds: vec![0],
            peer: None,
            probe_dirs: Vec::new(),
        }
    }

    /// The `config.json` of these settings.
    pub fn config(&self) -> Config {
        Config {
            experiment: self.experiment,
            epochs: self.epochs as i64,
            batch_size: self.batch_size as i64,
            lr: self.lr,
            seed: self.seed,
            threads: self.threads,
            device: self.device.kind().to_string(),
            gpu: match &self.device {
                Device::Cuda(gpu) => Some(gpu.name.clone()),
                Device::Cpu => None,
            },
            kernels: self.kernels.name().to_string(),
            data: exact(&self.data_dir),
            out: exact(&self.out),
            train_limit: self.train_limit.map(|n| n as i64),
            digit: self.digit as i64,
            components: self.components as i64,
            sizes: self.sizes.iter().map(|&s| s as i64).collect(),
            lambdas: self.lambdas.clone(),
            noises: self.noises.clone(),
            image: self.image.as_deref().map(exact),
            seeds: self.seeds.clone(),
            peer: self.peer.as_deref().map(exact),
            probe_dirs: self.probe_dirs.iter().map(|p| exact(p)).collect(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The settings a run folder's `config.json` recorded, each value checked as the command
    /// line checks it; `threads` and `device` are this run's, not the file's.
    pub fn from_config(c: Config, threads: usize, device: Device) -> Result<Settings, String> {
        fn key(k: &'static str) -> impl Fn(String) -> String {
            move |e| format!("{k}: {e}")
        }
        let list = |k: &str, n: usize| if n == 0 { Err(format!("{k}: an empty list")) } else { Ok(()) };
        list("sizes", c.sizes.len())?;
        list("lambdas", c.lambdas.len())?;
        list("noises", c.noises.len())?;
        Ok(Settings {
            experiment: c.experiment,
            epochs: EPOCHS.check(c.epochs).map_err(key("epochs"))?,
            batch_size: BATCH_SIZE.check(c.batch_size).map_err(key("batch_size"))?,
            lr: positive(c.lr).map_err(key("lr"))?,
            seed: c.seed,
            threads,
            device,
            kernels: Kernels::from_name(&c.kernels)
                .ok_or_else(|| format!("kernels: {} is neither reference nor fast", c.kernels))?,
            data_dir: PathBuf::from(c.data),
            data_named: true,
            out: PathBuf::from(c.out),
            train_limit: c.train_limit.map(|n| TRAIN_LIMIT.check(n)).transpose().map_err(key("train_limit"))?,
            digit: DIGIT.check(c.digit).map_err(key("digit"))? as u8,
            components: COMPONENTS.check(c.components).map_err(key("components"))?,
            sizes: c.sizes.iter().map(|&s| SIZE.check(s)).collect::<Result<_, _>>().map_err(key("sizes"))?,
            lambdas: c.lambdas.iter().map(|&l| non_negative(l)).collect::<Result<_, _>>().map_err(key("lambdas"))?,
            noises: c.noises.iter().map(|&l| non_negative(l)).collect::<Result<_, _>>().map_err(key("noises"))?,
            image: c.image.map(PathBuf::from),
            seeds: if c.seeds.is_empty() { vec![c.seed] } else { c.seeds },
            peer: c.peer.map(PathBuf::from),
            probe_dirs: c.probe_dirs.into_iter().map(PathBuf::from).collect(),
        })
    }

    /// Reads and checks `dir/config.json`.
    pub fn load(dir: &Path, threads: usize, device: Device) -> Result<Settings> {
        let path = dir.join("config.json");
        let text = std::fs::read(&path).with_context(|| {
            format!("{}: no config.json; --resume takes a run folder this program made", dir.display())
        })?;
        Settings::from_json(&text, threads, device).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and checks the bytes of a config.json (what `load` and the `resume` fuzz target
    /// read). The error is one printable line: serde quotes the file's own strings (an
    /// experiment name it does not know), and JSON lets those hold line breaks (found by
    /// fuzzing: fuzz/regressions/resume/).
    pub fn from_json(text: &[u8], threads: usize, device: Device) -> Result<Settings, String> {
        let config: Config = serde_json::from_slice(text).map_err(|e| {
            format!("{}; the file is damaged, or not from this program", crate::io::one_line(&e.to_string()))
        })?;
        Settings::from_config(config, threads, device).map_err(|e| crate::io::one_line(&e))
    }

    /// Refuses paths that `config.json` cannot store exactly (it is UTF-8 text): such a run
    /// could never be resumed.
    pub fn check_paths(&self) -> Result<()> {
        for (what, path) in
            [("the data folder", Some(&self.data_dir)), ("--out", Some(&self.out)), ("--image", self.image.as_ref())]
                .into_iter()
                .chain([("--peer", self.peer.as_ref())])
                .chain(self.probe_dirs.iter().map(|d| ("the run folder", Some(d))))
        {
            if let Some(path) = path.filter(|p| p.to_str().is_none()) {
                bail!(
                    "{what} {} is not valid UTF-8, so config.json cannot record it for --resume; rename it or pass a link to it",
                    path.display()
                );
            }
        }
        Ok(())
    }

    pub fn train_config(&self, l1: f32, noise: f32) -> crate::train::TrainConfig {
        crate::train::TrainConfig { epochs: self.epochs, batch_size: self.batch_size, lr: self.lr, l1, noise }
    }
}

/// A path as `config.json` stores it (`check_paths` has refused those that are not UTF-8).
fn exact(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `config.json`: every setting of a run, as written and read back by `--resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub experiment: Experiment,
    pub epochs: i64,
    pub batch_size: i64,
    pub lr: f32,
    pub seed: u64,
    /// The machine's, for the record; a resumed run uses its own.
    pub threads: usize,
    pub device: String,
    pub gpu: Option<String>,
    /// Absent from the files of earlier versions, which ran on the fast kernels.
    #[serde(default = "fast")]
    pub kernels: String,
    pub data: String,
    pub out: String,
    pub train_limit: Option<i64>,
    pub digit: i64,
    pub components: i64,
    pub sizes: Vec<i64>,
    pub lambdas: Vec<f32>,
    pub noises: Vec<f32>,
    pub image: Option<String>,
    /// Absent from the files of earlier versions, which trained at `seed` alone.
    #[serde(default)]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub probe_dirs: Vec<String>,
    pub crate_version: String,
}

fn fast() -> String {
    Kernels::Fast.name().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config.json written before `kernels` existed (this is one, from the previous
    /// version's `manifold` run) still resumes, on the fast kernels it ran on.
    #[test]
    fn earlier_config_files_still_read() {
        let old = r#"{"batch_size": 64, "components": 30, "crate_version": "0.1.0", "data": "/work/shared/mnist",
            "device": "cpu", "digit": 3, "epochs": 1, "experiment": "manifold", "gpu": null, "image": null,
            "lambdas": [0.0010000000474974513, 0.10000000149011612, 1.0], "lr": 0.0010000000474974513,
            "noises": [0.10000000149011612, 0.30000001192092896, 0.699999988079071], "out": "/tmp/runs",
            "seed": 0, "sizes": [64, 128, 256], "threads": 2, "train_limit": 128}"#;
        let s = Settings::from_config(serde_json::from_str(old).unwrap(), 1, Device::Cpu).unwrap();
        assert_eq!(
            (s.experiment, s.kernels, s.epochs, s.train_limit),
            (Experiment::Manifold, Kernels::Fast, 1, Some(128))
        );
        assert_eq!((s.lr, s.lambdas, s.noises), (LR_DEFAULT, LAMBDAS_DEFAULT.to_vec(), NOISES_DEFAULT.to_vec()));
    }

    /// What is written reads back as the same settings.
    #[test]
    fn config_round_trips() {
        let mut s = Settings::study(Experiment::All);
        (s.kernels, s.train_limit, s.image) = (Kernels::Reference, Some(7), Some(PathBuf::from("/a b/ü.png")));
        let text = serde_json::to_string(&s.config()).unwrap();
        let back = Settings::from_config(serde_json::from_str(&text).unwrap(), s.threads, Device::Cpu).unwrap();
        assert_eq!(back.config(), s.config());
    }

    #[test]
    fn whole_numbers_are_checked_on_both_paths_alike() {
        assert_eq!(EPOCHS.parse("3"), EPOCHS.check(3));
        assert_eq!(EPOCHS.parse("-3"), EPOCHS.check(-3));
        assert_eq!(EPOCHS.check(-3).unwrap_err(), "-3 is not a whole number from 1 to 4294967295");
        assert!(COMPONENTS.check(784).is_ok() && COMPONENTS.check(785).is_err() && DIGIT.check(0).is_ok());
        assert!(EPOCHS.parse("2.5").is_err() && EPOCHS.parse("").is_err());
    }
}
