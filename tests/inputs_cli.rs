//! Hostile inputs to the program itself (#17): a FIFO as `--image`, gzip bombs and a directory
//! where an IDX file should be, through the binary as a user would meet them. Each must give
//! one `error:` line and exit 1, without a panic, a hang, or a run folder left behind.

mod mnist_files;

use mnist_files::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the program with `args`, killing it (and failing) should it run for a minute: the
/// cases here must be refused before any training, in well under a second, and a hang is
/// exactly the bug some of them had. Returns the exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_autoencoders"))
        .args(args)
        .args(["--device", "cpu"])
        .env_remove("MNIST_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{args:?}: still running after a minute (a hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Exit 1, no panic, and an `error:` line that mentions every word of `words`; the run
/// folder `out` stays empty.
fn assert_refused(args: &[&str], out: &Path, words: &[&str]) {
    let (code, err) = run(args);
    assert_eq!(code, Some(1), "{args:?}: stderr {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {err}"));
    for w in words {
        assert!(line.contains(w), "{args:?}: the error lacks {w:?}: {line}");
    }
    let left: Vec<_> = std::fs::read_dir(out).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{args:?} left {left:?}");
}

#[cfg(unix)]
#[test]
fn a_fifo_as_image_is_refused_before_it_is_opened() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("f.png");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let out = d.path().join("runs");
    let args = ["non-digit", "--image", fifo.to_str().unwrap(), "--out", out.to_str().unwrap()];
    assert_refused(&args, &out, &["f.png", "not a regular file"]);
    // A directory, likewise.
    let args = ["non-digit", "--image", d.path().to_str().unwrap(), "--out", out.to_str().unwrap()];
    assert_refused(&args, &out, &["is a directory"]);
}

#[test]
fn gzip_bombs_are_refused_from_their_headers() {
    // The reproduction: four files of 2 MB each, a valid header claiming 2e9 images
    // (or labels) of 1x1, then 2 GiB of gzipped zeros.
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let images = gzip_bomb(&[2_000_000_000, 1, 1], 2048);
    let labels = gzip_bomb(&[2_000_000_000], 2048);
    for (name, bytes) in autoencoders::data::FILES.iter().zip([&images, &labels, &images, &labels]) {
        write(&data, &format!("{name}.gz"), bytes);
    }
    let out = d.path().join("runs");
    let args = ["ae", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
    assert_refused(&args, &out, &["train-images-idx3-ubyte.gz", "2000000000x1x1", "limit"]);
    // Counts each file could hold, but images and labels that disagree.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    mini_mnist_sized(&data, 28, 28);
    write(&data, "train-images-idx3-ubyte.gz", &gzip_bomb(&[60_000, 28, 28], 46));
    write(&data, "train-labels-idx1-ubyte.gz", &gzip_bomb(&[900_000], 1));
    assert_refused(&args, &out, &["train-labels-idx1-ubyte.gz", "900000 labels", "60000 images"]);
}

#[test]
fn a_directory_where_an_idx_file_should_be_is_named_and_nothing_is_downloaded() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    mini_mnist_sized(&data, 28, 28);
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    std::fs::create_dir(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let out = d.path().join("runs");
    let args = ["ae", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
    assert_refused(&args, &out, &["t10k-labels-idx1-ubyte", "is a directory"]);
    let (_, err) = run(&args);
    assert!(!err.contains("download"), "a download was attempted: {err}");
}
