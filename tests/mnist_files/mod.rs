//! Fixtures shared by the integration tests: IDX files made in memory, written to temp dirs.
#![allow(dead_code)] // each test binary uses a different subset

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An IDX file: magic `00 00 dtype ndims`, the dimensions big-endian, then `payload`.
pub fn idx(dtype: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, dtype, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// An images file of `n` images of `rows x cols` whose pixel k is `k * 7 mod 256`.
pub fn images_file(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let len = (n * rows * cols) as usize;
    let pixels: Vec<u8> = (0..len).map(|k| (k * 7 % 256) as u8).collect();
    idx(0x08, &[n, rows, cols], &pixels)
}

/// A labels file holding `labels`.
pub fn labels_file(labels: &[u8]) -> Vec<u8> {
    idx(0x08, &[labels.len() as u32], labels)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error message of `r`, which must be an `Err` of one line mentioning every word in
/// `words` (case-insensitive).
pub fn expect_err<T: std::fmt::Debug>(r: anyhow::Result<T>, words: &[&str]) -> String {
    let msg = format!("{:#}", r.expect_err("expected an error"));
    eprintln!("error message: {msg}"); // shown with --nocapture, to read them
    assert!(!msg.contains('\n'), "error is not one line: {msg}");
    for w in words {
        assert!(msg.to_lowercase().contains(&w.to_lowercase()), "error lacks {w:?}: {msg}");
    }
    msg
}

/// A small but complete MNIST directory: 5 training and 3 test images of 4x3, the training
/// files gzipped, the test files raw.
pub fn mini_mnist(dir: &Path) {
    mini_mnist_sized(dir, 4, 3);
}

/// [`mini_mnist`] with images of `rows x cols`.
pub fn mini_mnist_sized(dir: &Path, rows: u32, cols: u32) {
    write(dir, "train-images-idx3-ubyte.gz", &gzip(&images_file(5, rows, cols)));
    write(dir, "train-labels-idx1-ubyte.gz", &gzip(&labels_file(&[5, 0, 4, 1, 9])));
    write(dir, "t10k-images-idx3-ubyte", &images_file(3, rows, cols));
    write(dir, "t10k-labels-idx1-ubyte", &labels_file(&[7, 2, 1]));
}

/// A gzip bomb: an IDX header claiming `dims`, then `zeros_mib` MiB of zeros, as a valid
/// gzip file of many identical members (a MiB of zeros deflates to about 1 KB), so that
/// gigabytes of content cost a few megabytes to build and to keep.
pub fn gzip_bomb(dims: &[u32], zeros_mib: usize) -> Vec<u8> {
    let mut out = gzip(&idx(0x08, dims, &[]));
    let member = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..zeros_mib {
        out.extend_from_slice(&member);
    }
    out
}
