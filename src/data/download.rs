//! Downloading the original MNIST files from public mirrors.
//!
//! For each of the four `.gz` files that the data directory lacks (in either form, `NAME.gz`
//! or `NAME`), try each mirror in turn:
//!
//! 1. GET `{mirror}{name}` with connect and per-read timeouts, so a dead or stalled mirror
//!    costs seconds, not forever;
//! 2. refuse a non-2xx status, or a `Content-Length` other than the original's size;
//! 3. stream the body into a sibling temporary file (`.{name}.download-{pid}-{n}`), hashing it
//!    with SHA-256 on the way and stopping as soon as it passes the expected size, so a
//!    misbehaving server cannot fill the disk;
//! 4. if the size and the hash are the original's, fsync and rename it into place; otherwise
//!    delete it and try the next mirror. A rename within one directory is atomic, so the
//!    directory never holds a partial file under the real name.
//!
//! The expected sizes and hashes are those of the files as LeCun published them and the
//! mirrors serve them. They apply to downloads only: a file already in the directory is used
//! as it is, because good copies need not be byte-identical (see `mod.rs`).
//!
//! When every mirror fails, the error is one short line: the missing files, each distinct
//! cause once ("host not found (offline?)", "HTTP 404", "SHA-256 mismatch"), and what to do.
//! The full answer of each mirror is printed as it comes only when [`verbose`] is on (set
//! `AUTOENCODERS_VERBOSE=1`, or any `RUST_LOG`).
//!
//! The mirrors and the table are parameters of [`download_sources`], so tests can serve their
//! own files from a local server.

use crate::data::find_file;
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A file to fetch: its name on the mirrors, its exact size and its SHA-256 (lowercase hex).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub name: &'a str,
    pub bytes: u64,
    pub sha256: &'a str,
}

/// The four original files (sizes and hashes from the table in the shared MNIST README).
pub const ORIGINALS: [Source<'static>; 4] = [
    Source {
        name: "train-images-idx3-ubyte.gz",
        bytes: 9_912_422,
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    },
    Source {
        name: "train-labels-idx1-ubyte.gz",
        bytes: 28_881,
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    Source {
        name: "t10k-images-idx3-ubyte.gz",
        bytes: 1_648_877,
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    },
    Source {
        name: "t10k-labels-idx1-ubyte.gz",
        bytes: 4_542,
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
];

/// Public mirrors of the original files, tried in this order. (LeCun's own site now often
/// refuses scripted downloads, so it is not listed.)
pub const MIRRORS: [&str; 2] =
    ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"];

/// Time to establish a connection: a mirror that does not answer in this long is skipped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for any one read: a server that stalls mid-file is given up on. No total
/// timeout: 10 MB on a slow link can legitimately take minutes.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that turns on the per-attempt report (any value but empty or `0`);
/// a set `RUST_LOG` does too.
pub const VERBOSE_VAR: &str = "AUTOENCODERS_VERBOSE";

/// Whether to print each download attempt and its full outcome (see [`VERBOSE_VAR`]).
pub fn verbose() -> bool {
    let set = |var| std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0");
    set(VERBOSE_VAR) || set("RUST_LOG")
}

/// Download every original MNIST file missing from `dir`, trying `mirrors` in turn.
/// Creates `dir` if it does not exist.
pub fn download_mnist(dir: &Path, mirrors: &[&str]) -> Result<()> {
    download_sources(dir, mirrors, &ORIGINALS)
}

/// Download every file of `sources` missing from `dir` (as `NAME.gz` or as `NAME` without
/// the `.gz`), from the first of `mirrors` that serves it with the right size and hash.
/// Tries every file even after one fails, then reports all that are still missing.
pub fn download_sources(dir: &Path, mirrors: &[&str], sources: &[Source]) -> Result<()> {
    download_looked(dir, &[], mirrors, sources)
}

/// [`download_sources`]; should it fail, the error says that the files were also looked for,
/// in vain, in the folders `also`.
pub(crate) fn download_looked(dir: &Path, also: &[&Path], mirrors: &[&str], sources: &[Source]) -> Result<()> {
    if let Err(e) = fs::create_dir_all(dir) {
        bail!(
            "{}: cannot create the data directory: {e}; create it, or point --data DIR or MNIST_DIR at another",
            dir.display()
        );
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            // We report the status ourselves, naming the URL.
            .http_status_as_error(false)
            .build(),
    );

    let verbose = verbose();
    let mut missing = Vec::new();
    // Each distinct cause once, in the order met.
    let mut causes: Vec<String> = Vec::new();
    let mut announced = false;
    for src in sources {
        let stem = src.name.strip_suffix(".gz").unwrap_or(src.name);
        if find_file(dir, stem).is_some() {
            continue; // present: trusted as it is, see the top of this file
        }
        if !announced && !verbose {
            crate::note!("downloading MNIST into {}", dir.display());
            announced = true;
        }
        let mut done = false;
        for mirror in mirrors {
            let url =
                if mirror.ends_with('/') { format!("{mirror}{}", src.name) } else { format!("{mirror}/{}", src.name) };
            if verbose {
                crate::note!("downloading {url}");
            }
            match fetch(&agent, &url, dir, src) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(failure) => {
                    if verbose {
                        crate::note!("  failed: {}", failure.detail.replace(['\n', '\r'], " "));
                    }
                    if !causes.contains(&failure.cause) {
                        causes.push(failure.cause);
                    }
                }
            }
        }
        if !done {
            missing.push(src.name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if mirrors.is_empty() {
        causes.push("no mirrors to try".into());
    }
    let which = match missing.len() == sources.len() && sources.len() > 2 {
        true => format!("all {} files", sources.len()),
        false => missing.join(", "),
    };
    let looked = match also {
        [] => String::new(),
        _ => format!(" (nor in {})", also.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")),
    };
    let hint = if verbose { String::new() } else { format!("; {VERBOSE_VAR}=1 shows each attempt") };
    bail!(
        "MNIST is not in {}{looked} and could not be downloaded ({}); missing {which}: put them there, or point --data DIR or MNIST_DIR=DIR at a copy{hint}",
        dir.display(),
        causes.join("; ")
    )
}

/// Why one download failed: `cause`, a few words that many attempts may share (for the
/// one-line error), and `detail`, the full story of this attempt (for the verbose report).
struct Failure {
    cause: String,
    detail: String,
}

impl Failure {
    fn new(cause: &str, detail: String) -> Failure {
        Failure { cause: cause.to_string(), detail }
    }

    /// A failure to reach the server or to talk to it.
    fn transport(e: ureq::Error) -> Failure {
        let cause = match &e {
            ureq::Error::HostNotFound => "host not found (offline?)".to_string(),
            ureq::Error::Timeout(_) => "timed out".to_string(),
            ureq::Error::ConnectionFailed => "connection failed".to_string(),
            ureq::Error::Io(io) => match io.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                io::ErrorKind::TimedOut => "timed out".to_string(),
                // What std says when getaddrinfo fails (it has no ErrorKind of its own).
                _ if io.to_string().contains("lookup address") => "host name lookup failed (offline?)".to_string(),
                _ => io.to_string().chars().take(60).collect(),
            },
            other => other.to_string().chars().take(60).collect(),
        };
        Failure { cause, detail: e.to_string() }
    }
}

/// Fetch one file from one URL into `dir`, or say why not. On failure nothing is left
/// behind: the temporary file is removed by `Temp`'s `Drop`.
fn fetch(agent: &ureq::Agent, url: &str, dir: &Path, src: &Source) -> Result<(), Failure> {
    let response = agent.get(url).call().map_err(Failure::transport)?;
    let status = response.status();
    if !status.is_success() {
        let status = format!("HTTP {}", status.as_u16());
        return Err(Failure::new(&status, status.clone()));
    }
    let body = response.into_body();
    if let Some(len) = body.content_length() {
        if len != src.bytes {
            return Err(Failure::new(
                "wrong size",
                format!("server offers {len} bytes, the original has {}", src.bytes),
            ));
        }
    }
    // ureq errors out if the connection closes before Content-Length bytes have come; without a
    // Content-Length, the size check below catches a short file.
    let mut reader = body.into_reader();

    let mut temp = Temp::create(dir, src.name).map_err(|e| {
        Failure::new("cannot write there", format!("cannot create a temporary file in {}: {e}", dir.display()))
    })?;
    let bar = progress_bar(src);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total: u64 = 0;
    let result = loop {
        let k = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(Failure::new("cut off mid-file", format!("after {total} of {} bytes: {e}", src.bytes)))
            }
        };
        total += k as u64;
        if total > src.bytes {
            break Err(Failure::new("wrong size", format!("server sent more than the original's {} bytes", src.bytes)));
        }
        hasher.update(&buf[..k]);
        if let Err(e) = temp.file.write_all(&buf[..k]) {
            break Err(Failure::new("cannot write there", format!("cannot write {}: {e}", temp.path.display())));
        }
        bar.inc(k as u64);
    };
    bar.finish_and_clear();
    result?;

    if total != src.bytes {
        return Err(Failure::new("truncated", format!("truncated: got {total} of {} bytes", src.bytes)));
    }
    let got: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if !got.eq_ignore_ascii_case(src.sha256) {
        return Err(Failure::new(
            "SHA-256 mismatch",
            format!("SHA-256 mismatch: got {got}, the original is {}", src.sha256),
        ));
    }
    temp.persist(&dir.join(src.name))
        .map_err(|e| Failure::new("cannot write there", format!("cannot move the download into place: {e}")))
}

/// A bar on stderr. indicatif hides it by itself when stderr is not a terminal (tests, CI).
fn progress_bar(src: &Source) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(src.bytes), ProgressDrawTarget::stderr());
    // The template is a constant, so this cannot fail; fall back rather than panic anyway.
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(src.name.to_string());
    bar
}

/// Distinguishes temporaries made by threads of one process; the pid distinguishes processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file beside its destination, removed when dropped unless persisted.
struct Temp {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl Temp {
    fn create(dir: &Path, name: &str) -> io::Result<Temp> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.download-{}-{n}", std::process::id()));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(Temp { path, file, keep: false })
    }

    /// fsync, then rename over `dest`: the data must be on disk before the name points at it.
    fn persist(mut self, dest: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}
