//! MNIST: where the files are, reading them, and fetching them when they are missing.
//!
//! Read in this order: `idx.rs` (the file format and its checks), this file (the four files
//! that make up MNIST and the data directory), `download.rs` (fetching the originals).
//!
//! MNIST is four IDX files (see `idx.rs` for the format), looked for in one directory:
//!
//! ```text
//! train-images-idx3-ubyte   60000 x 28 x 28 bytes     train-labels-idx1-ubyte   60000 bytes
//! t10k-images-idx3-ubyte    10000 x 28 x 28 bytes     t10k-labels-idx1-ubyte    10000 bytes
//! ```
//!
//! each either gzipped as distributed (`NAME.gz`) or decompressed (`NAME`); the `.gz` is taken
//! when both are there, since it is the form the mirrors serve.
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

pub use download::{download_mnist, download_sources, Source, MIRRORS, ORIGINALS};
pub use idx::{parse_images, parse_labels, read_images, read_labels, Images, Labels};

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// The four files, by their standard names without `.gz`.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

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

/// `dir/NAME.gz` if it is a file, else `dir/NAME` if it is, else `None`.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)].into_iter().find(|p| p.is_file())
}

/// The standard names (without `.gz`) of the MNIST files not found in `dir` in either form.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    FILES.into_iter().filter(|name| find_file(dir, name).is_none()).collect()
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
    /// empty set is a valid IDX file but nothing can be trained or tested on it).
    pub fn load(dir: &Path) -> Result<Mnist> {
        let missing = missing_files(dir);
        if !missing.is_empty() {
            bail!(
                "MNIST files not found in {} (looked for NAME.gz and NAME): {}; point --data DIR or MNIST_DIR at a folder that has them",
                dir.display(),
                missing.join(", ")
            );
        }
        // Each file was found a moment ago; should one vanish since, falling back to the plain
        // name makes `read_*` report it as it would any file it cannot open.
        let path = |name| find_file(dir, name).unwrap_or_else(|| dir.join(name));
        let (train_images_path, train_labels_path) = (path(TRAIN_IMAGES), path(TRAIN_LABELS));
        let (test_images_path, test_labels_path) = (path(TEST_IMAGES), path(TEST_LABELS));

        let train = read_images(&train_images_path)?;
        let train_labels = read_labels(&train_labels_path)?;
        let test = read_images(&test_images_path)?;
        let test_labels = read_labels(&test_labels_path)?;

        for (images, labels, ipath, lpath, split) in [
            (&train, &train_labels, &train_images_path, &train_labels_path, "training"),
            (&test, &test_labels, &test_images_path, &test_labels_path, "test"),
        ] {
            if images.n == 0 {
                bail!(
                    "{}: the {split} set has no images; re-download it or point --data at a good copy",
                    ipath.display()
                );
            }
            if images.n != labels.len() {
                bail!(
                    "{}: {} labels, but {} has {} images; the two files are from different copies, re-download both or point --data at a good copy",
                    lpath.display(),
                    labels.len(),
                    ipath.display(),
                    images.n
                );
            }
            if let Some((i, &l)) = labels.labels.iter().enumerate().find(|&(_, &l)| l > 9) {
                bail!(
                    "{}: label {l} at index {i} is not a digit 0..=9; re-download it or point --data at a good copy",
                    lpath.display()
                );
            }
        }
        if (train.rows, train.cols) != (test.rows, test.cols) {
            bail!(
                "{}: images are {}x{}, but {} has {}x{}; the files are from different data sets, point --data at one copy of MNIST",
                test_images_path.display(),
                test.rows,
                test.cols,
                train_images_path.display(),
                train.rows,
                train.cols
            );
        }
        Ok(Mnist { train, train_labels, test, test_labels })
    }
}

/// Resolve the data directory, download whatever is missing (see the policy at the top of
/// this file), and load MNIST.
pub fn ensure_mnist(flag: Option<&Path>) -> Result<Mnist> {
    let named = named_dir(flag);
    let dir = resolve_data_dir(flag);
    if !missing_files(&dir).is_empty() {
        if named.is_some() && !dir.is_dir() {
            bail!(
                "{}: no such directory (named by --data or MNIST_DIR); fix the path, or create the directory to have MNIST downloaded into it",
                dir.display()
            );
        }
        download_mnist(&dir, &MIRRORS)?;
    }
    Mnist::load(&dir)
}
