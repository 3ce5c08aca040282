//! The command line's flags (part of the binary, beside `main.rs`): those every run takes
//! (`Machine`, `Common`), each experiment's own (`Own`), and the parser of path flags. Every
//! value goes through the checks of `experiments::settings`, which `config.json` passes too.

use autoencoders::experiments::settings::{self as s, Experiment, Settings};
use autoencoders::ops::Kernels;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::Args;
use std::ffi::OsStr;
use std::path::PathBuf;

/// Where and how a run computes, and how it reports: not part of its result.
#[derive(Args, Debug)]
pub(crate) struct Machine {
    /// CPU threads (default: one per core).
    #[arg(long, value_parser = |v: &str| s::THREADS.parse(v))]
    pub(crate) threads: Option<usize>,
    /// auto (the GPU if one is usable, else the CPU) | cpu | cuda.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    pub(crate) device: String,
    /// Print exactly one line of JSON on stdout at the end (everything else goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Time every op of every training step, forward and backward apart, and Adam: a table
    /// on stderr per model, the same in metrics.json and a bar chart MODEL.profile.svg.
    #[arg(long)]
    pub(crate) profile: bool,
}

/// The flags of every experiment.
#[derive(Args, Debug)]
pub(crate) struct Common {
    /// Passes over the training set.
    #[arg(long, default_value_t = s::EPOCHS_DEFAULT, value_parser = |v: &str| s::EPOCHS.parse(v))]
    epochs: usize,
    /// Images per Adam step.
    #[arg(long, default_value_t = s::BATCH_SIZE_DEFAULT, value_parser = |v: &str| s::BATCH_SIZE.parse(v))]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = s::LR_DEFAULT, allow_negative_numbers = true,
          value_parser = |v: &str| s::parse_real(v, s::positive))]
    lr: f32,
    /// Seed of every random choice (initialisation, shuffling, noise).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of the MNIST IDX files (else $MNIST_DIR, else data/mnist, downloaded if missing).
    #[arg(long, value_parser = Utf8Path)]
    data: Option<PathBuf>,
    /// Where run folders are created.
    #[arg(long, default_value = s::OUT_DEFAULT, value_parser = Utf8Path)]
    out: PathBuf,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_name = "N", value_parser = |v: &str| s::TRAIN_LIMIT.parse(v))]
    train_limit: Option<usize>,
    /// The class whose first test image the single-digit figures show.
    #[arg(long, default_value_t = s::DIGIT_DEFAULT, value_parser = |v: &str| s::DIGIT.parse(v))]
    digit: usize,
    /// The CPU floor: the fast kernels, or the plain loops that define each op (slow; the
    /// same losses to rounding).
    #[arg(long, default_value = "fast", value_parser = PossibleValuesParser::new(["reference", "fast"])
          .map(|k| Kernels::from_name(&k).expect("one of the possible values")))]
    kernels: Kernels,
    /// Train at several seeds and report mean ± sd: a count N (the seeds --seed to
    /// --seed + N - 1) or a list such as 0,4,7.
    #[arg(long, value_name = "N|LIST", value_parser = parse_seeds)]
    seeds: Option<Seeds>,
    /// PyTorch's runs, as the JSON lines ../shared/peers/torch_ref.py prints, for the report's
    /// table (mean ± sd per model).
    #[arg(long, value_name = "FILE", value_parser = Utf8Path)]
    peer: Option<PathBuf>,
    #[command(flatten)]
    machine: Machine,
}

/// `--seeds`: how many, or which.
#[derive(Clone, Debug)]
pub(crate) enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// A seed count allows up to 1,000 runs of each model: more is a typo, not a study.
const MAX_SEEDS: u64 = 1000;

fn parse_seeds(v: &str) -> Result<Seeds, String> {
    let bad = || format!("{v}: give a count from 1 to {MAX_SEEDS} or a comma-separated list of seeds, such as 0,4,7");
    if !v.contains(',') {
        let n: u64 = v.trim().parse().map_err(|_| bad())?;
        return if (1..=MAX_SEEDS).contains(&n) { Ok(Seeds::Count(n)) } else { Err(bad()) };
    }
    let list: Vec<u64> = v.split(',').map(|s| s.trim().parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let mut sorted = list.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != list.len() || list.len() as u64 > MAX_SEEDS {
        return Err(format!("{v}: each seed once, at most {MAX_SEEDS}"));
    }
    Ok(Seeds::List(list))
}

/// The flags of `probe`: what it reads, where it writes, and the seed of the probe's shuffles.
#[derive(Args, Debug)]
pub(crate) struct ProbeFlags {
    /// Finished run folders (an experiment's, or all's), holding trained models (*.safetensors).
    #[arg(required = true, value_name = "RUN_DIR", value_parser = Utf8Path)]
    run_dirs: Vec<PathBuf>,
    /// Seed of the linear probe's shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of the MNIST IDX files (else $MNIST_DIR, else data/mnist, downloaded if missing).
    #[arg(long, value_parser = Utf8Path)]
    data: Option<PathBuf>,
    /// Where run folders are created.
    #[arg(long, default_value = s::OUT_DEFAULT, value_parser = Utf8Path)]
    out: PathBuf,
    #[command(flatten)]
    machine: Machine,
}

impl ProbeFlags {
    pub(crate) fn settings(self) -> (Settings, Machine, Option<PathBuf>) {
        let mut s = Settings::study(Experiment::Probe);
        (s.seed, s.seeds, s.out, s.probe_dirs) = (self.seed, vec![self.seed], self.out, self.run_dirs);
        (s, self.machine, self.data)
    }
}

/// An experiment's flags: the common ones and its own (`F`).
#[derive(Args, Debug)]
pub(crate) struct With<F: Args + Own> {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    own: F,
}

/// Flags particular to some experiments, each written into the settings it sets.
pub(crate) trait Own {
    fn apply(self, s: &mut Settings);
}

#[derive(Args, Debug)]
pub(crate) struct Components {
    /// PCA components (the size of its code).
    #[arg(long, default_value_t = s::COMPONENTS_DEFAULT, value_parser = |v: &str| s::COMPONENTS.parse(v))]
    components: usize,
}

#[derive(Args, Debug)]
pub(crate) struct Sizes {
    /// Hidden sizes h (repeat the flag for several).
    #[arg(long = "size", value_name = "H", default_values_t = s::SIZES_DEFAULT, value_parser = |v: &str| s::SIZE.parse(v))]
    sizes: Vec<usize>,
}

#[derive(Args, Debug)]
pub(crate) struct Lambdas {
    /// Weights of the L1 penalty on the code (repeat for several).
    #[arg(long = "lambda", value_name = "LAMBDA", default_values_t = s::LAMBDAS_DEFAULT, allow_negative_numbers = true,
          value_parser = |v: &str| s::parse_real(v, s::non_negative))]
    lambdas: Vec<f32>,
}

#[derive(Args, Debug)]
pub(crate) struct Noises {
    /// Standard deviations of the input noise (repeat for several).
    #[arg(long = "noise", value_name = "SIGMA", default_values_t = s::NOISES_DEFAULT, allow_negative_numbers = true,
          value_parser = |v: &str| s::parse_real(v, s::non_negative))]
    noises: Vec<f32>,
}

#[derive(Args, Debug)]
pub(crate) struct Image {
    /// A PNG to pass through the h = 256 AE (any size, colour or grey); default: a built-in drawing.
    #[arg(long, value_parser = Utf8Path)]
    image: Option<PathBuf>,
}

/// No flags of its own.
#[derive(Args, Debug)]
pub(crate) struct Nothing {}

/// `all`: every experiment's flags.
#[derive(Args, Debug)]
pub(crate) struct Every {
    #[command(flatten)]
    components: Components,
    #[command(flatten)]
    sizes: Sizes,
    #[command(flatten)]
    image: Image,
    #[command(flatten)]
    lambdas: Lambdas,
    #[command(flatten)]
    noises: Noises,
}

impl Own for Components {
    fn apply(self, s: &mut Settings) {
        s.components = self.components;
    }
}

impl Own for Sizes {
    fn apply(self, s: &mut Settings) {
        s.sizes = self.sizes;
    }
}

impl Own for Lambdas {
    fn apply(self, s: &mut Settings) {
        s.lambdas = self.lambdas;
    }
}

impl Own for Noises {
    fn apply(self, s: &mut Settings) {
        s.noises = self.noises;
    }
}

impl Own for Image {
    fn apply(self, s: &mut Settings) {
        s.image = self.image;
    }
}

impl Own for Nothing {
    fn apply(self, _: &mut Settings) {}
}

impl Own for Every {
    fn apply(self, s: &mut Settings) {
        self.components.apply(s);
        self.sizes.apply(s);
        self.image.apply(s);
        self.lambdas.apply(s);
        self.noises.apply(s);
    }
}

impl<F: Args + Own> With<F> {
    pub(crate) fn settings(self, experiment: Experiment) -> (Settings, Machine, Option<PathBuf>) {
        let mut s = Settings::study(experiment);
        self.own.apply(&mut s);
        let c = self.common;
        (s.epochs, s.batch_size, s.lr, s.seed) = (c.epochs, c.batch_size, c.lr, c.seed);
        (s.kernels, s.out, s.train_limit, s.digit) = (c.kernels, c.out, c.train_limit, c.digit as u8);
        s.seeds = match c.seeds {
            None => vec![s.seed],
            Some(Seeds::Count(n)) => (0..n).map(|k| s.seed.wrapping_add(k)).collect(),
            Some(Seeds::List(list)) => list,
        };
        (s.seed, s.peer) = (s.seeds[0], c.peer);
        (s, c.machine, c.data)
    }
}

/// A path flag, refused unless it is UTF-8: config.json must record it exactly for
/// `--resume` (a lossy copy would name another file).
#[derive(Clone)]
pub(crate) struct Utf8Path;

impl TypedValueParser for Utf8Path {
    type Value = PathBuf;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<PathBuf, clap::Error> {
        value.to_str().map(PathBuf::from).ok_or_else(|| {
            let flag = arg.map_or_else(|| "a path".to_string(), |a| format!("--{}", a.get_id()));
            cmd.clone().error(
                ErrorKind::InvalidUtf8,
                format!(
                    "{flag} {} is not valid UTF-8, so config.json cannot record it for --resume; rename it or pass a link to it",
                    value.to_string_lossy()
                ),
            )
        })
    }
}
