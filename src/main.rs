//! The command line: one subcommand per experiment of the study, `all`, and `--resume`.
//!
//! Each subcommand takes the flags every run shares (`Common`, flattened into each) and only
//! its own (`--size` for `hidden`, ...), so `--help` per experiment lists only what applies
//! and a flag of another experiment is refused. To add a flag every run takes, add it to
//! `Common` (and to `Settings`); to add a subcommand, add a variant to `Command` and its arm
//! in `run`. The checks of each value are those of `config.json` (`experiments::settings`).
//!
//! Exit codes: 0 done; 1 bad input from outside (data, image, output folder, GPU, a closed
//! stdout), one `error:` line; 2 command-line misuse (clap's message).

use anyhow::{Context as _, Result};
use autoencoders::experiments::run::{run as run_study, Finished, Folder};
use autoencoders::experiments::settings::{self as s, Experiment, Settings};
use autoencoders::ops::Kernels;
use autoencoders::tensor::Device;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;

/// The autoencoder study on MNIST: PCA, deep, sparse, denoising, manifold and
/// convolutional autoencoders, on an engine written from scratch.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    subcommand_value_name = "EXPERIMENT",
    subcommand_help_heading = "Experiments",
    args_conflicts_with_subcommands = true,
    after_help = "Each run writes config.json, metrics.json, loss curves, figures and weights into a new folder under --out. `autoencoders EXPERIMENT --help` lists an experiment's flags."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    resume: Resume,
}

/// `--resume RUN_DIR`: the run's settings come from its config.json; only how long it
/// trains and where it runs may be given.
#[derive(Args, Debug)]
struct Resume {
    /// Continue the interrupted (or finished) run in this folder, with the settings it was started with.
    #[arg(long, value_name = "RUN_DIR", value_parser = Utf8Path)]
    resume: Option<PathBuf>,
    /// With --resume: train up to this many epochs in all (at least the run's own count); the
    /// result is that of a run started with this count.
    #[arg(long, requires = "resume", value_parser = |v: &str| s::EPOCHS.parse(v))]
    epochs: Option<usize>,
    #[command(flatten)]
    machine: Machine,
}

/// Where and how a run computes, and how it reports: not part of its result.
#[derive(Args, Debug)]
struct Machine {
    /// CPU threads (default: one per core).
    #[arg(long, value_parser = |v: &str| s::THREADS.parse(v))]
    threads: Option<usize>,
    /// auto (the GPU if one is usable, else the CPU) | cpu | cuda.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    device: String,
    /// Print exactly one line of JSON on stdout at the end (everything else goes to stderr).
    #[arg(long)]
    json: bool,
}

/// The flags of every experiment.
#[derive(Args, Debug)]
struct Common {
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
enum Seeds {
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
struct ProbeFlags {
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

#[derive(Args, Debug)]
struct Components {
    /// PCA components (the size of its code).
    #[arg(long, default_value_t = s::COMPONENTS_DEFAULT, value_parser = |v: &str| s::COMPONENTS.parse(v))]
    components: usize,
}

#[derive(Args, Debug)]
struct Sizes {
    /// Hidden sizes h (repeat the flag for several).
    #[arg(long = "size", value_name = "H", default_values_t = s::SIZES_DEFAULT, value_parser = |v: &str| s::SIZE.parse(v))]
    sizes: Vec<usize>,
}

#[derive(Args, Debug)]
struct Lambdas {
    /// Weights of the L1 penalty on the code (repeat for several).
    #[arg(long = "lambda", value_name = "LAMBDA", default_values_t = s::LAMBDAS_DEFAULT, allow_negative_numbers = true,
          value_parser = |v: &str| s::parse_real(v, s::non_negative))]
    lambdas: Vec<f32>,
}

#[derive(Args, Debug)]
struct Noises {
    /// Standard deviations of the input noise (repeat for several).
    #[arg(long = "noise", value_name = "SIGMA", default_values_t = s::NOISES_DEFAULT, allow_negative_numbers = true,
          value_parser = |v: &str| s::parse_real(v, s::non_negative))]
    noises: Vec<f32>,
}

#[derive(Args, Debug)]
struct Image {
    /// A PNG to pass through the h = 256 AE (any size, colour or grey); default: a built-in drawing.
    #[arg(long, value_parser = Utf8Path)]
    image: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// PCA on the training images: a digit, ten digits and the components.
    Pca {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        pca: Components,
    },
    /// The deep AE (784-512-256-128-30 and back) beside PCA with as many components.
    Ae {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        pca: Components,
    },
    /// 784 -> h -> h -> 784 for each hidden size.
    Hidden {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        sizes: Sizes,
    },
    /// A picture that is not a digit through the h = 256 AE.
    NonDigit {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        image: Image,
    },
    /// h = 900 with an L1 penalty on the code, for each lambda, and the plain h = 900 AE.
    Sparse {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        lambdas: Lambdas,
    },
    /// h = 256 trained on noisy inputs, for each noise level, beside the plain h = 256 AE.
    Denoise {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        noises: Noises,
    },
    /// An 8-d code, perturbed by noise and decoded.
    Manifold {
        #[command(flatten)]
        common: Common,
    },
    /// The convolutional AE whose decoder unpools with the encoder's indices.
    CaeUnpool {
        #[command(flatten)]
        common: Common,
    },
    /// The convolutional AE whose decoder is transposed convolutions.
    CaeDeconv {
        #[command(flatten)]
        common: Common,
    },
    /// The convolutional AE whose decoder unpools, then applies transposed convolutions.
    CaeDeconvUnpool {
        #[command(flatten)]
        common: Common,
    },
    /// The codes of every model in finished run folders: linear probe, 5-NN, error per digit,
    /// beside PCA of each code size and the pixels; interpolations, 2-D maps, per-digit bars.
    Probe {
        #[command(flatten)]
        probe: ProbeFlags,
    },
    /// Every experiment into one folder, the probe of its models, and index.html over them.
    All {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        pca: Components,
        #[command(flatten)]
        sizes: Sizes,
        #[command(flatten)]
        image: Image,
        #[command(flatten)]
        lambdas: Lambdas,
        #[command(flatten)]
        noises: Noises,
    },
}

impl Command {
    /// The experiment's settings: the study's defaults, overwritten by the flags.
    fn settings(self) -> (Settings, Machine, Option<PathBuf>) {
        use Command::*;
        let experiment = match &self {
            Pca { .. } => Experiment::Pca,
            Ae { .. } => Experiment::Ae,
            Hidden { .. } => Experiment::Hidden,
            NonDigit { .. } => Experiment::NonDigit,
            Sparse { .. } => Experiment::Sparse,
            Denoise { .. } => Experiment::Denoise,
            Manifold { .. } => Experiment::Manifold,
            CaeUnpool { .. } => Experiment::CaeUnpool,
            CaeDeconv { .. } => Experiment::CaeDeconv,
            CaeDeconvUnpool { .. } => Experiment::CaeDeconvUnpool,
            All { .. } => Experiment::All,
            Probe { .. } => Experiment::Probe,
        };
        let mut s = Settings::study(experiment);
        let common = match self {
            Probe { probe } => {
                (s.seed, s.seeds, s.out) = (probe.seed, vec![probe.seed], probe.out);
                s.probe_dirs = probe.run_dirs;
                return (s, probe.machine, probe.data);
            }
            Pca { common, pca } | Ae { common, pca } => {
                s.components = pca.components;
                common
            }
            Hidden { common, sizes } => {
                s.sizes = sizes.sizes;
                common
            }
            NonDigit { common, image } => {
                s.image = image.image;
                common
            }
            Sparse { common, lambdas } => {
                s.lambdas = lambdas.lambdas;
                common
            }
            Denoise { common, noises } => {
                s.noises = noises.noises;
                common
            }
            Manifold { common } | CaeUnpool { common } | CaeDeconv { common } | CaeDeconvUnpool { common } => common,
            All { common, pca, sizes, image, lambdas, noises } => {
                (s.components, s.sizes, s.image) = (pca.components, sizes.sizes, image.image);
                (s.lambdas, s.noises) = (lambdas.lambdas, noises.noises);
                common
            }
        };
        s.epochs = common.epochs;
        s.batch_size = common.batch_size;
        s.lr = common.lr;
        s.seed = common.seed;
        s.kernels = common.kernels;
        s.out = common.out;
        s.train_limit = common.train_limit;
        s.digit = common.digit as u8;
        s.seeds = match common.seeds {
            None => vec![s.seed],
            Some(Seeds::Count(n)) => (0..n).map(|k| s.seed.wrapping_add(k)).collect(),
            Some(Seeds::List(list)) => list,
        };
        s.seed = s.seeds[0];
        s.peer = common.peer;
        (s, common.machine, common.data)
    }
}

/// A path flag, refused unless it is UTF-8: config.json must record it exactly for
/// `--resume` (a lossy copy would name another file).
#[derive(Clone)]
struct Utf8Path;

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

/// A path made absolute against the working directory, so that a resumed run finds it from
/// anywhere.
fn absolute(path: PathBuf) -> Result<PathBuf> {
    std::path::absolute(&path).with_context(|| format!("{}: cannot make the path absolute", path.display()))
}

fn run(cli: Cli) -> Result<()> {
    let (settings, machine, folder) = match cli.command {
        Some(command) => {
            let (mut settings, machine, data) = command.settings();
            let device = start_machine(&machine)?;
            settings.device = device;
            settings.threads = rayon::current_num_threads();
            settings.data_named = data.is_some() || std::env::var_os("MNIST_DIR").is_some_and(|v| !v.is_empty());
            settings.data_dir = absolute(autoencoders::data::resolve_data_dir(data.as_deref()))?;
            settings.out = absolute(settings.out)?;
            settings.image = settings.image.map(absolute).transpose()?;
            settings.peer = settings.peer.map(absolute).transpose()?;
            settings.probe_dirs = settings.probe_dirs.into_iter().map(absolute).collect::<Result<_>>()?;
            (settings, machine, Folder::New)
        }
        None => {
            let dir = cli.resume.resume.expect("main asks for an experiment or --resume");
            let machine = cli.resume.machine;
            let device = start_machine(&machine)?;
            let mut settings = Settings::load(&dir, rayon::current_num_threads(), device)?;
            if let Some(epochs) = cli.resume.epochs {
                if epochs < settings.epochs {
                    misuse(
                        ErrorKind::ArgumentConflict,
                        format!(
                            "--epochs {epochs}: {} was started for {} epochs, and --resume can only train longer",
                            dir.display(),
                            settings.epochs
                        ),
                    );
                }
                settings.epochs = epochs;
            }
            (settings, machine, Folder::Resume(dir))
        }
    };
    let finished = run_study(&settings, folder)?;
    summarise(&finished, machine.json)
}

/// The thread pool and the device of `machine`, the device said in one line on stderr.
/// `cuda` without a usable GPU is an error carrying the probe's reason; `auto` falls back to
/// the CPU and says why.
fn start_machine(machine: &Machine) -> Result<Device> {
    if let Some(threads) = machine.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot start the thread pool")?;
    }
    let device = match machine.device.as_str() {
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

fn summarise(finished: &Finished, json: bool) -> Result<()> {
    if json {
        println!("{}", finished.json_line());
    } else {
        for line in finished.lines() {
            println!("{line}");
        }
    }
    Ok(())
}

/// Command-line misuse found after parsing: clap's message and exit code 2.
fn misuse(kind: ErrorKind, message: String) -> ! {
    Cli::command().error(kind, message).exit()
}

/// The flags particular to some experiments, and those experiments.
const OWN_FLAGS: [(&str, &str); 5] = [
    ("--components", "pca, ae and all"),
    ("--size", "hidden and all"),
    ("--image", "non-digit and all"),
    ("--lambda", "sparse and all"),
    ("--noise", "denoise and all"),
];

/// The flags `--resume` takes; the others would change a run whose settings are fixed.
const RESUME_FLAGS: &str = "--epochs (to train longer), --threads, --device and --json";

fn main() -> ExitCode {
    autoencoders::memory::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--resume DIR --lr 0.1`: say why, rather than only that --lr is unexpected.
        Err(e)
            if e.kind() == ErrorKind::UnknownArgument
                && std::env::args().any(|a| a == "--resume" || a.starts_with("--resume=")) =>
        {
            let flag =
                e.get(clap::error::ContextKind::InvalidArg).map_or_else(|| "that flag".to_string(), |v| v.to_string());
            misuse(
                ErrorKind::UnknownArgument,
                format!("{flag} cannot be given with --resume: the run keeps the settings in its config.json; --resume takes only {RESUME_FLAGS}"),
            )
        }
        // `manifold --size 8`: name the experiments the flag belongs to.
        Err(e) if e.kind() == ErrorKind::UnknownArgument => {
            let flag = e.get(clap::error::ContextKind::InvalidArg).map(|v| v.to_string()).unwrap_or_default();
            let flag = flag.split('=').next().unwrap_or_default();
            match OWN_FLAGS.iter().find(|(f, _)| *f == flag) {
                Some((flag, owners)) => {
                    misuse(ErrorKind::UnknownArgument, format!("{flag} is a flag of {owners} only"))
                }
                None => e.exit(),
            }
        }
        Err(e) => e.exit(),
    };
    if cli.command.is_none() && cli.resume.resume.is_none() {
        let names: Vec<&str> = Experiment::SECTIONS.iter().chain([&Experiment::All]).map(|e| e.name()).collect();
        misuse(ErrorKind::MissingSubcommand, format!("name an EXPERIMENT ({}) or --resume RUN_DIR", names.join(", ")));
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
