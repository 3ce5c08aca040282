//! MNIST: where the files are, reading them, and fetching them when they are missing.
//!
//! Read in this order: `images.rs` (what a file decodes to), `idx.rs` (the file format and its
//! checks; `members.rs`, the gzip reader it uses), this file (the four files that make up
//! MNIST, the data directory, and the checks of the four headers against each other),
//! `download.rs` (fetching the originals).
//!
//! MNIST is four IDX files (see `idx.rs` for the format), looked for in one directory:
//!
//! ```text
//! train-images-idx3-ubyte   60000 x 28 x 28 bytes     train-labels-idx1-ubyte   60000 bytes
//! t10k-images-idx3-ubyte    10000 x 28 x 28 bytes     t10k-labels-idx1-ubyte    10000 bytes
//! ```
//!
//! each either gzipped as distributed (`NAME.gz`) or decompressed (`NAME`); the `.gz` is taken
//! when both are there, since it is the form the mirrors serve. Something else under either
//! name (a directory, a FIFO, a broken or looping symlink) is reported as such, not taken
//! for a missing file.
//!
//! The directory is, in order: the `--data DIR` flag, else `$MNIST_DIR`, else `data/mnist`,
//! else (when that is incomplete) `../shared/mnist` if it holds all four files.
//!
//! [`ensure_mnist`]'s download policy: missing files are downloaded into the directory, hash
//! checked against the originals. The default `data/mnist` is created if need be. A directory
//! the user named (flag or variable) must already exist: a typo should produce an error, not a
//! fresh directory with 11 MB downloaded into it. Files already present are never hash checked,
//! because good copies need not be byte-identical to the originals (the shared copy's training
//! images, for one, were recovered and differ); their contents are checked by reading them.

pub mod download;
pub mod idx;
pub mod images;
mod members;

pub use download::{download_mnist, download_sources, verbose, Source, MIRRORS, ORIGINALS, VERBOSE_VAR};
pub use idx::{images_from, parse_images, parse_labels, read_images, read_labels, IdxFile};
pub use images::{Images, Labels};

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// The four files, by their standard names without `.gz`.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// MNIST's images are 28x28; [`ensure_mnist`] refuses any other size before reading pixels.
pub const ROWS: usize = 28;
pub const COLS: usize = 28;

/// The most images a split may hold: MNIST has 60,000, the largest of its kin (EMNIST's
/// by-class training split) 697,932. A header claiming more is refused before its payload
/// is read, whatever the image size.
pub const MAX_IMAGES: usize = 1_000_000;

/// Used when neither `--data` nor `$MNIST_DIR` is given; relative to the working directory.
pub const DEFAULT_DIR: &str = "data/mnist";

/// Where this project's own machines keep the files, beside the repository (they have no
/// internet to download from); looked at only when `data/mnist` is incomplete.
pub const SHARED_DIR: &str = "../shared/mnist";

/// The data directory: `--data DIR`, else `$MNIST_DIR`, else `data/mnist` (where a download
/// goes), unless that is incomplete and `../shared/mnist` holds all four files.
/// An empty `$MNIST_DIR` counts as unset.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    match named_dir(flag) {
        Some(dir) => dir,
        None if !missing_files(Path::new(DEFAULT_DIR)).is_empty()
            && missing_files(Path::new(SHARED_DIR)).is_empty() =>
        {
            PathBuf::from(SHARED_DIR)
        }
        None => PathBuf::from(DEFAULT_DIR),
    }
}

/// The directory the user named, by flag or environment, if any.
fn named_dir(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    std::env::var_os("MNIST_DIR").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// What stands in `dir` under one of the four names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `dir/NAME.gz`, else `dir/NAME`: a regular file (or a symlink to one).
    File(PathBuf),
    /// Neither name exists.
    Absent,
    /// The first of the two names that exists is not a readable regular file: a directory,
    /// a FIFO, a dangling symlink or a symlink loop, or it cannot be looked at. The message
    /// says which, in one line, naming the path.
    Unusable(String),
}

/// What `dir` holds under `name` (without `.gz`): `NAME.gz` is looked at first, then `NAME`.
/// Something under a name that is not a regular file is reported, not skipped: a directory
/// or a symlink loop where a file should be is a mistake to show the user, not a missing
/// file to download over (and opening a FIFO would block forever).
pub fn locate(dir: &Path, name: &str) -> Entry {
    for path in [dir.join(format!("{name}.gz")), dir.join(name)] {
        let unusable = |what: String| {
            Entry::Unusable(format!(
                "{}: {what}, not an IDX file; replace it with the file, or point --data at a folder that has it",
                path.display()
            ))
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => return Entry::File(path),
            Ok(m) if m.is_dir() => return unusable("is a directory".into()),
            Ok(_) => return unusable("is not a regular file (a FIFO, socket or device)".into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // metadata follows symlinks: a link to nothing also reads as not found.
                if std::fs::symlink_metadata(&path).is_ok() {
                    return unusable("is a symlink to nothing".into());
                }
            }
            // A symlink loop, a permission problem on the way to it, ...
            Err(e) => return unusable(format!("cannot be looked at ({e})")),
        }
    }
    Entry::Absent
}

/// `dir/NAME.gz` if it is a regular file, else `dir/NAME` if it is, else `None` (see
/// [`locate`] for what else may stand there).
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    match locate(dir, name) {
        Entry::File(path) => Some(path),
        _ => None,
    }
}

/// The standard names (without `.gz`) of the MNIST files not found in `dir` in either form.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    FILES.into_iter().filter(|name| find_file(dir, name).is_none()).collect()
}

/// The first of the four names under which `dir` holds something unusable, as its message.
fn unusable_entry(dir: &Path) -> Option<String> {
    FILES.into_iter().find_map(|name| match locate(dir, name) {
        Entry::Unusable(why) => Some(why),
        _ => None,
    })
}

/// The four parts of MNIST, checked to fit together.
#[derive(Debug, Clone)]
pub struct Mnist {
    pub train: Images,
    pub train_labels: Labels,
    pub test: Images,
    pub test_labels: Labels,
}

impl Mnist {
    /// Read the four files from `dir` and check that they fit together: as many labels as
    /// images, labels in 0..=9, the same image size in both splits, neither split empty (an
    /// empty set is a valid IDX file but nothing can be trained or tested on it). Any image
    /// size is accepted; [`ensure_mnist`] insists on 28x28.
    pub fn load(dir: &Path) -> Result<Mnist> {
        Mnist::load_shaped(dir, None)
    }

    /// [`Mnist::load`], and when `shape` is given, images of `(rows, cols)` only.
    pub fn load_shaped(dir: &Path, shape: Option<(usize, usize)>) -> Result<Mnist> {
        if let Some(why) = unusable_entry(dir) {
            bail!(why);
        }
        let missing = missing_files(dir);
        if !missing.is_empty() {
            bail!(
                "MNIST files not found in {} (looked for NAME.gz and NAME): {}; point --data DIR or MNIST_DIR at a folder that has them",
                dir.display(),
                missing.join(", ")
            );
        }
        // Each file was found a moment ago; should one vanish since, falling back to the plain
        // name makes `IdxFile::open` report it as it would any file it cannot open.
        let path = |name| find_file(dir, name).unwrap_or_else(|| dir.join(name));
        let files = [
            IdxFile::open(&path(TRAIN_IMAGES), 3, "images")?,
            IdxFile::open(&path(TRAIN_LABELS), 1, "labels")?,
            IdxFile::open(&path(TEST_IMAGES), 3, "images")?,
            IdxFile::open(&path(TEST_LABELS), 1, "labels")?,
        ];
        Mnist::from_files(files, shape)
    }

    /// The four files opened, their headers read: train images, train labels, test images,
    /// test labels. Every header is checked against the others (and against `shape`, when
    /// given) before any payload is read, so that a file whose header claims billions of
    /// images is refused after reading a few bytes, not after decompressing gigabytes.
    pub fn from_files(files: [IdxFile; 4], shape: Option<(usize, usize)>) -> Result<Mnist> {
        let [train, train_labels, test, test_labels] = files;
        for (images, labels, split) in [(&train, &train_labels, "training"), (&test, &test_labels, "test")] {
            let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
            let ipath = images.path().display();
            if n == 0 {
                bail!("{ipath}: the {split} set has no images; re-download it or point --data at a good copy");
            }
            if n > MAX_IMAGES {
                bail!(
                    "{ipath}: the header claims {n} images, more than the {MAX_IMAGES} any MNIST-like {split} set holds: the header is corrupt; re-download it or point --data at a good copy"
                );
            }
            if labels.dims[0] != n {
                bail!(
                    "{}: {} labels, but {ipath} has {n} images; the two files are from different copies, re-download both or point --data at a good copy",
                    labels.path().display(),
                    labels.dims[0],
                );
            }
            if let Some((want_rows, want_cols)) = shape.filter(|&s| s != (rows, cols)) {
                bail!(
                    "{ipath}: images are {rows}x{cols}, but these models take {want_rows}x{want_cols}; point --data at an MNIST-shaped set"
                );
            }
        }
        if (train.dims[1], train.dims[2]) != (test.dims[1], test.dims[2]) {
            bail!(
                "{}: images are {}x{}, but {} has {}x{}; the files are from different data sets, point --data at one copy of MNIST",
                test.path().display(),
                test.dims[1],
                test.dims[2],
                train.path().display(),
                train.dims[1],
                train.dims[2]
            );
        }

        // The label files' names, for the digit check's message, before reading consumes them.
        let lpaths = [train_labels.path().to_path_buf(), test_labels.path().to_path_buf()];
        let train = images_from(train)?;
        let train_labels = Labels { labels: train_labels.read_payload()? };
        let test = images_from(test)?;
        let test_labels = Labels { labels: test_labels.read_payload()? };
        for (labels, lpath) in [&train_labels, &test_labels].into_iter().zip(&lpaths) {
            if let Some((i, &l)) = labels.labels.iter().enumerate().find(|&(_, &l)| l > 9) {
                bail!(
                    "{}: label {l} at index {i} is not a digit 0..=9; re-download it or point --data at a good copy",
                    lpath.display()
                );
            }
        }
        Ok(Mnist { train, train_labels, test, test_labels })
    }
}

/// Resolve the data directory, download whatever is missing (see the policy at the top of
/// this file), and load MNIST, whose images must be 28x28.
pub fn ensure_mnist(flag: Option<&Path>) -> Result<Mnist> {
    let named = named_dir(flag);
    let dir = resolve_data_dir(flag);
    if let Some(why) = unusable_entry(&dir) {
        bail!(why); // not a missing file: downloading would not help
    }
    if !missing_files(&dir).is_empty() {
        if named.is_some() && !dir.is_dir() {
            bail!(
                "{}: no such directory (named by --data or MNIST_DIR); fix the path, or create the directory to have MNIST downloaded into it",
                dir.display()
            );
        }
        // Where else the files were looked for: the shared copy, when no folder was named.
        let also = if named.is_none() { vec![Path::new(SHARED_DIR)] } else { vec![] };
        download::download_looked(&dir, &also, &MIRRORS, &ORIGINALS)?;
    }
    Mnist::load_shaped(&dir, Some((ROWS, COLS)))
}
