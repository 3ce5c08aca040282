//! The command line: one subcommand per experiment of the study, `all`, and `--resume`.
//!
//! Each subcommand takes the flags every run shares (`flags::Common`, flattened into each)
//! and only its own (`--size` for `hidden`, ...), so `--help` per experiment lists only what
//! applies and a flag of another experiment is refused. To add:
//!
//! - a flag every run takes: a field of `flags::Common` (and of `Settings`, set in
//!   `With::settings`);
//! - an experiment's own flags: a struct implementing `flags::Own`;
//! - a subcommand: a variant of `Command` and its arm in `Command::settings`, or, for one
//!   that is not an experiment (`graph`), in `run`.
//!
//! The checks of each value are those that `config.json` passes too (`experiments::settings`).
//!
//! Exit codes: 0 done; 1 bad input from outside (data, image, output folder, GPU, a closed
//! stdout), one `error:` line; 2 command-line misuse (clap's message).

mod flags;

use anyhow::{Context as _, Result};
use autoencoders::experiments::run::{run as run_study, Finished, Folder};
use autoencoders::experiments::settings::{self as s, Experiment, Settings};
use autoencoders::models::{Arch, Model};
use autoencoders::tensor::Device;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use flags::{Components, Every, Image, Lambdas, Machine, Noises, Nothing, ProbeFlags, Sizes, Utf8Path, With};
use std::io::Write as _;
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

#[derive(Subcommand, Debug)]
enum Command {
    /// PCA on the training images: a digit, ten digits and the components.
    Pca(With<Components>),
    /// The deep AE (784-512-256-128-30 and back) beside PCA with as many components.
    Ae(With<Components>),
    /// 784 -> h -> h -> 784 for each hidden size.
    Hidden(With<Sizes>),
    /// A picture that is not a digit through the h = 256 AE.
    NonDigit(With<Image>),
    /// h = 900 with an L1 penalty on the code, for each lambda, and the plain h = 900 AE.
    Sparse(With<Lambdas>),
    /// h = 256 trained on noisy inputs, for each noise level, beside the plain h = 256 AE.
    Denoise(With<Noises>),
    /// An 8-d code, perturbed by noise and decoded.
    Manifold(With<Nothing>),
    /// The convolutional AE whose decoder unpools with the encoder's indices.
    CaeUnpool(With<Nothing>),
    /// The convolutional AE whose decoder is transposed convolutions.
    CaeDeconv(With<Nothing>),
    /// The convolutional AE whose decoder unpools, then applies transposed convolutions.
    CaeDeconvUnpool(With<Nothing>),
    /// Every experiment into one folder, the probe of its models, and index.html over them.
    All(With<Every>),
    /// The codes of every model in finished run folders: linear probe, 5-NN, error per digit,
    /// beside PCA of each code size and the pixels; interpolations, 2-D maps, per-digit bars.
    Probe(ProbeFlags),
    /// The tape of one training step of MODEL as MODEL.dot and MODEL.svg (trains nothing).
    Graph(GraphArgs),
}

#[derive(Args, Debug)]
struct GraphArgs {
    /// ae | h<H> (h64, h900, ...) | manifold | cae-unpool | cae-deconv | cae-deconv-unpool
    #[arg(value_name = "MODEL", value_parser = model_name)]
    model: Arch,
    /// The folder to write MODEL.dot and MODEL.svg into (made if missing).
    #[arg(long, default_value = ".", value_parser = Utf8Path)]
    out: PathBuf,
    /// Images in the batch the step is recorded with (the shapes the graph shows).
    #[arg(long, default_value_t = s::BATCH_SIZE_DEFAULT, value_parser = |v: &str| s::BATCH_SIZE.parse(v))]
    batch_size: usize,
}

/// A model of the study by name; h<H> with H as `--size` allows it.
fn model_name(name: &str) -> Result<Arch, String> {
    let refuse = || {
        format!(
            "{name} is not a model: ae, h<H> (h64, h900, ...), manifold, cae-unpool, cae-deconv or cae-deconv-unpool"
        )
    };
    match Arch::from_name(name).ok_or_else(refuse)? {
        Arch::Shallow { hidden } => s::SIZE.parse(&hidden.to_string()).map(|hidden| Arch::Shallow { hidden }),
        arch => Ok(arch),
    }
}

/// `graph MODEL`: one step's forward and loss recorded on the CPU, drawn, written.
fn draw_graph(args: GraphArgs) -> Result<()> {
    if let Some((kind, available)) = autoencoders::memory::available_bytes() {
        let needs = autoencoders::memory::training_bytes(args.model, args.batch_size);
        anyhow::ensure!(
            needs <= available,
            "recording a step of {} on {} images needs {}, but this machine has {} {kind}; choose a smaller --batch-size",
            args.model.name(),
            args.batch_size,
            autoencoders::memory::human(needs),
            autoencoders::memory::human(available)
        );
    }
    let model = Model::new(args.model, &mut autoencoders::tensor::rng_from_seed(0));
    let graph = autoencoders::graph::Graph::of_step(&model, args.batch_size, 0.0);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the folder {}; choose another with --out", args.out.display()))?;
    let [dot, svg] = autoencoders::graph::write_files(&graph, &args.out, &graph.name)?;
    let text = format!("wrote {} and {}\n", dot.display(), svg.display());
    std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write to stdout; the files are written")
}

impl Command {
    /// The experiment's settings (the study's defaults, overwritten by the flags), and the
    /// flags that are not settings of the run: the machine's, and --data as given.
    fn settings(self) -> (Settings, Machine, Option<PathBuf>) {
        use Command::*;
        match self {
            Pca(w) => w.settings(Experiment::Pca),
            Ae(w) => w.settings(Experiment::Ae),
            Hidden(w) => w.settings(Experiment::Hidden),
            NonDigit(w) => w.settings(Experiment::NonDigit),
            Sparse(w) => w.settings(Experiment::Sparse),
            Denoise(w) => w.settings(Experiment::Denoise),
            Manifold(w) => w.settings(Experiment::Manifold),
            CaeUnpool(w) => w.settings(Experiment::CaeUnpool),
            CaeDeconv(w) => w.settings(Experiment::CaeDeconv),
            CaeDeconvUnpool(w) => w.settings(Experiment::CaeDeconvUnpool),
            All(w) => w.settings(Experiment::All),
            Probe(p) => p.settings(),
            Graph(_) => unreachable!("`run` draws graphs itself: `graph` is not an experiment"),
        }
    }
}

/// A path made absolute against the working directory, so that a resumed run finds it from
/// anywhere.
fn absolute(path: PathBuf) -> Result<PathBuf> {
    std::path::absolute(&path).with_context(|| format!("{}: cannot make the path absolute", path.display()))
}

fn run(cli: Cli) -> Result<()> {
    let (settings, machine, folder) = match cli.command {
        Some(Command::Graph(args)) => return draw_graph(args),
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
    autoencoders::profile::enable(machine.profile);
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
                autoencoders::note!("device: cpu (no usable GPU: {reason})");
                return Ok(Device::Cpu);
            }
        },
    };
    autoencoders::note!("device: {device}");
    Ok(device)
}

/// The results on stdout. A closed stdout (`| head`, a reader gone) is an error, since
/// that reader gets nothing; the run itself is complete and its folder says so.
fn summarise(finished: &Finished, json: bool) -> Result<()> {
    let text = if json { finished.json_line() + "\n" } else { finished.lines().join("\n") + "\n" };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).with_context(|| {
        format!("cannot write the results to stdout; the run is complete in {}", finished.dir.display())
    })
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
const RESUME_FLAGS: &str = "--epochs (to train longer), --threads, --device, --profile and --json";

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
            // One line, whatever the error quotes (a path or a file's own strings).
            autoencoders::note!("error: {}", autoencoders::io::one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
