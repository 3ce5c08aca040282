//! Reading IDX files, the format MNIST is distributed in, raw or gzipped.
//!
//! An IDX file is a header followed by a dense array, everything big-endian:
//!
//! ```text
//! offset  size      field
//! 0       2         0x00 0x00              (always zero)
//! 2       1         data type              0x08 = unsigned byte (the only one MNIST uses;
//!                                          0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)
//! 3       1         number of dimensions   3 for images (count, rows, cols), 1 for labels
//! 4       4*ndims   each dimension, u32
//! ...     product   the data, row-major, one byte per element for type 0x08
//! ```
//!
//! So `train-images-idx3-ubyte` starts `00 00 08 03 | 00 00 ea 60 | 00 00 00 1c | 00 00 00 1c`
//! (60000 images of 28x28) and is 16 + 47,040,000 bytes long.
//!
//! Files are usually shipped gzipped. We detect gzip by its magic bytes `1f 8b`, not by the
//! name, so a renamed or already-decompressed file still reads.
//!
//! Everything is checked before the payload is allocated: the magic, the data type, the number
//! of dimensions, that the product of the dimensions neither overflows nor exceeds
//! [`MAX_PAYLOAD_BYTES`], and (for a raw file, whose length we know up front) that the file
//! holds exactly header + payload. A gzip stream's decompressed length is only known by reading
//! it, so there we read at most the promised number of bytes, growing the buffer as data
//! actually arrives, then insist the stream ends there and nothing follows it.
//!
//! Every failure is an `anyhow` error of one line: the file, what is wrong, what to do.
//! No input makes this module panic.

use anyhow::{anyhow, Result};
use byteorder::{BigEndian, ByteOrder};
use flate2::bufread::GzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

/// The largest payload we accept: 2 GiB. MNIST's largest file holds 47 MB, so a header
/// claiming more is corrupt, and refusing it up front avoids a huge allocation.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 31;

/// What to tell the user after any problem with a file's contents.
const REMEDY: &str = "re-download it or point --data at a good copy";

/// A set of greyscale images, `n` images of `rows x cols`, kept as the file's bytes
/// (0 = background, 255 = ink), image after image, row-major. Kept as `u8` because that is
/// a quarter of the memory of `f32`, and scaling a batch when it is used is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// One class label (0..=9 for MNIST) per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub labels: Vec<u8>,
}

impl Images {
    /// Pixels per image, `rows * cols` (784 for MNIST).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.image_len();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// Images `range` as `f32` in [0, 1], shape `[range.len(), rows * cols]`.
    pub fn to_f32(&self, range: Range<usize>) -> Vec<f32> {
        assert!(range.start <= range.end && range.end <= self.n, "to_f32: range {range:?} outside 0..{}", self.n);
        let d = self.image_len();
        self.pixels[range.start * d..range.end * d].iter().map(|&p| scale(p)).collect()
    }

    /// Gather the images at `indices` (a shuffled mini-batch) into `out`, shape
    /// `[indices.len(), rows * cols]`, as `f32` in [0, 1]. Writing into a caller's buffer
    /// lets the training loop reuse one allocation for every batch.
    pub fn batch_into(&self, indices: &[usize], out: &mut [f32]) {
        let d = self.image_len();
        assert_eq!(
            out.len(),
            indices.len() * d,
            "batch_into: out has {} floats, want {} x {d}",
            out.len(),
            indices.len()
        );
        for (dst, &i) in out.chunks_exact_mut(d).zip(indices) {
            for (o, &p) in dst.iter_mut().zip(self.image(i)) {
                *o = scale(p);
            }
        }
    }
}

impl Labels {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Byte to [0, 1]. A division rather than a multiply by 1/255 so that 255 maps to exactly 1.0.
fn scale(p: u8) -> f32 {
    p as f32 / 255.0
}

/// Read an images file (IDX, 3 dimensions: count, rows, cols), raw or gzipped.
///
/// An empty set (count 0) is a valid file and is returned as such; [`crate::data::Mnist::load`]
/// is where an empty training or test set is refused. Images of zero rows or columns are refused
/// here, since no caller can do anything with them.
pub fn read_images(path: &Path) -> Result<Images> {
    let (file, len) = open_idx(path, "images")?;
    images_from(file, len, path)
}

/// [`read_images`] on a file's bytes already in memory; `name` stands for the file in errors.
/// Same checks, same errors, byte for byte (the fuzz target `fuzz/fuzz_targets/idx.rs` and
/// `tests/fuzz_replay.rs` drive the reader through this, without touching the disk).
pub fn parse_images(bytes: &[u8], name: &str) -> Result<Images> {
    images_from(io::Cursor::new(bytes), bytes.len() as u64, Path::new(name))
}

/// [`read_labels`] on a file's bytes already in memory, as [`parse_images`].
pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Labels> {
    let (_, labels) = read_idx(io::Cursor::new(bytes), bytes.len() as u64, Path::new(name), 1, "labels")?;
    Ok(Labels { labels })
}

fn images_from<R: Read + Seek>(file: R, file_len: u64, path: &Path) -> Result<Images> {
    let (dims, pixels) = read_idx(file, file_len, path, 3, "images")?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(file_error(path, &format!("images of {rows}x{cols} pixels are empty")));
    }
    Ok(Images { n, rows, cols, pixels })
}

/// Read a labels file (IDX, 1 dimension: count), raw or gzipped.
pub fn read_labels(path: &Path) -> Result<Labels> {
    let (file, len) = open_idx(path, "labels")?;
    let (_, labels) = read_idx(file, len, path, 1, "labels")?;
    Ok(Labels { labels })
}

/// `"{path}: {problem}; {remedy}"`, the one-line shape of every error about a file's contents.
fn file_error(path: &Path, problem: &str) -> anyhow::Error {
    anyhow!("{}: {problem}; {REMEDY}", path.display())
}

/// Open an IDX file; returns it and its length. `what` names the kind of file in messages.
fn open_idx(path: &Path, what: &str) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| {
        anyhow!(
            "{}: cannot open {what} file: {e}; check the path, or point --data at a folder that has it",
            path.display()
        )
    })?;
    let file_len = file.metadata().map_err(|e| file_error(path, &format!("cannot read: {e}")))?.len();
    Ok((file, file_len))
}

/// Read an IDX file of unsigned bytes with `want_dims` dimensions from `file`, which is
/// `file_len` bytes long and is called `path` in messages; `what` names the kind of file in
/// messages. Returns the dimensions and the payload.
fn read_idx<R: Read + Seek>(
    mut file: R,
    file_len: u64,
    path: &Path,
    want_dims: usize,
    what: &str,
) -> Result<(Vec<usize>, Vec<u8>)> {
    let fail = |problem: String| file_error(path, &problem);
    if file_len == 0 {
        return Err(fail("empty file (0 bytes)".into()));
    }

    // Peek at the first two bytes to tell gzip from raw, then start again from the top.
    let mut head = [0u8; 2];
    let got = read_full(&mut file, &mut head).map_err(|e| fail(format!("cannot read: {e}")))?;
    let gzip = got == 2 && head == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0)).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut reader = BufReader::new(file);

    if !gzip {
        // Raw: the length is known, so the whole layout can be checked before reading on.
        return read_body(&mut reader, want_dims, what, Known(file_len)).map_err(fail);
    }

    // Deflate cannot expand data more than 1032-fold, so a gzip file of `file_len` bytes holds
    // at most this much; it bounds what a lying header can make us reserve.
    let most = usize::try_from(file_len.saturating_mul(1032)).unwrap_or(usize::MAX);
    let mut gz = GzDecoder::new(reader);
    let body = read_body(&mut gz, want_dims, what, AtMost(most)).map_err(fail)?;
    // The decompressed stream must end exactly at the end of the payload. Reading to the end
    // is also what makes the decoder verify the gzip trailer (CRC-32 and length), so extra
    // bytes are drained (at most what the file can hold) before being called trailing: bytes
    // that come from a corrupt stream fail the CRC and are reported as corruption instead.
    let extra = io::copy(&mut (&mut gz).take(most as u64), &mut io::sink())
        .map_err(|e| fail(format!("corrupt or truncated gzip data ({e})")))?;
    if extra > 0 {
        let (dims, _) = &body;
        return Err(fail(format!(
            "trailing bytes: header says {} = {} bytes, the decompressed file has {extra} more",
            dims_text(dims),
            dims.iter().product::<usize>()
        )));
    }
    // A second gzip member or junk after the first is not part of any IDX file we know.
    let mut rest = gz.into_inner();
    match rest.fill_buf() {
        Ok([]) => Ok(body),
        Ok(_) => Err(fail("garbage after the end of the gzip stream".into())),
        Err(e) => Err(fail(format!("cannot read: {e}"))),
    }
}

/// What is known of the length of the stream `read_body` reads.
#[derive(Clone, Copy)]
enum Length {
    /// A raw file: its exact length, header included.
    Known(u64),
    /// A gzip stream: only an upper bound on its decompressed length.
    AtMost(usize),
}
use Length::{AtMost, Known};

/// Parse the header from `r` and read the payload. For a raw file (`Known` length) truncation
/// and trailing bytes are caught before the payload is allocated.
/// Errors are the problem alone; the caller adds the file name and the remedy.
fn read_body<R: Read>(
    r: &mut R,
    want_dims: usize,
    what: &str,
    length: Length,
) -> Result<(Vec<usize>, Vec<u8>), String> {
    // A read error inside a gzip stream means the compressed data is bad, so say so.
    let io_err = |e: io::Error| match length {
        Known(_) => format!("cannot read: {e}"),
        AtMost(_) => format!("corrupt or truncated gzip data ({e})"),
    };
    // Sizes in messages are of what the header describes: for gzip, the decompressed bytes.
    let file = match length {
        Known(_) => "file",
        AtMost(_) => "decompressed file",
    };

    let mut magic = [0u8; 4];
    let got = read_full(r, &mut magic).map_err(io_err)?;
    if got < 4 {
        return Err(format!("truncated header: the {file} has {got} bytes, an IDX header needs at least 4"));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format!(
            "wrong magic number 0x{:08x}: not an IDX file (those start 00 00 08 0N)",
            BigEndian::read_u32(&magic)
        ));
    }
    let (dtype, ndims) = (magic[2], magic[3] as usize);
    if dtype != 0x08 {
        return Err(format!(
            "data type 0x{dtype:02x} ({}) is not supported: only 0x08 (unsigned byte), which MNIST uses",
            dtype_name(dtype)
        ));
    }
    if ndims != want_dims {
        return Err(format!(
            "header says the array is {ndims}-dimensional, an IDX {what} file is {want_dims}-dimensional{}",
            match ndims {
                1 => " (is this a labels file?)",
                3 => " (is this an images file?)",
                _ => "",
            }
        ));
    }

    let header_len = 4 + 4 * ndims;
    let mut raw_dims = vec![0u8; 4 * ndims];
    let got = read_full(r, &mut raw_dims).map_err(io_err)?;
    if got < raw_dims.len() {
        return Err(format!(
            "truncated header: the {file} has {} bytes, a {ndims}-dimensional IDX header needs {header_len}",
            4 + got
        ));
    }
    let dims: Vec<usize> = raw_dims.chunks_exact(4).map(|c| BigEndian::read_u32(c) as usize).collect();
    let n = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("header dimensions {} overflow: the header is corrupt", dims_text(&dims)))?;
    if n > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "header says {} = {n} bytes, more than the {MAX_PAYLOAD_BYTES}-byte limit (MNIST is 47 MB): the header is corrupt",
            dims_text(&dims)
        ));
    }

    if let Known(len) = length {
        let have = len.saturating_sub(header_len as u64);
        if have < n as u64 {
            return Err(format!("truncated: header says {} = {n} bytes, file has {have}", dims_text(&dims)));
        }
        if have > n as u64 {
            return Err(format!(
                "trailing bytes: header says {} = {n} bytes, file has {have} ({} extra)",
                dims_text(&dims),
                have - n as u64
            ));
        }
    }

    // For a raw file `n` bytes are now known to be on disk. For gzip `n` is only a promise, so
    // reserve no more than the file could hold; should it hold less, reading finds out.
    let reserve = match length {
        Known(_) => n,
        AtMost(most) => n.min(most),
    };
    let mut payload = Vec::new();
    payload.try_reserve_exact(reserve).map_err(|e| format!("cannot allocate {reserve} bytes: {e}"))?;
    r.take(n as u64).read_to_end(&mut payload).map_err(io_err)?;
    if payload.len() < n {
        return Err(format!("truncated: header says {} = {n} bytes, {file} has {}", dims_text(&dims), payload.len()));
    }
    Ok((dims, payload))
}

/// Read until `buf` is full or the input ends; returns the number of bytes read.
/// (`read_exact` would not say how many bytes a short file had.)
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `60000x28x28`, as people write the shape.
fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

fn dtype_name(t: u8) -> &'static str {
    match t {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown",
    }
}
