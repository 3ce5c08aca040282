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
//! name, so a renamed or already-decompressed file still reads. A gzip file may hold several
//! members one after another (what `cat a.gz b.gz` makes); like `gunzip`, we read them all.
//!
//! Reading is in two steps, so that a caller holding several files can check their headers
//! against each other before any payload is read ([`crate::data::Mnist::load`] does):
//! [`IdxFile::open`] reads and checks the header alone: the magic, the data type, the number
//! of dimensions, that the product of the dimensions neither overflows nor exceeds
//! [`MAX_PAYLOAD_BYTES`], and (for a raw file, whose length we know up front) that the file
//! holds exactly header + payload. [`IdxFile::read_payload`] then reads the payload. A gzip
//! stream's decompressed length is only known by reading it, so there we read at most the
//! promised number of bytes, growing the buffer as data actually arrives (never reserving
//! more than the compressed file can hold), then insist the stream ends there.
//!
//! Every failure is an `anyhow` error of one line: the file, what is wrong, what to do.
//! No input makes this module panic.

use crate::data::images::{Images, Labels};
use crate::data::members::Members;
use anyhow::{anyhow, Result};
use byteorder::{BigEndian, ByteOrder};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// The largest payload we accept: 1 GiB. MNIST's largest file holds 47 MB (EMNIST's largest
/// split, 0.55 GB), so a header claiming more is corrupt, and refusing it up front avoids a
/// huge allocation.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// The most a gzip payload buffer reserves before its bytes have arrived: past this it grows
/// as data comes in, so a header's promise alone never costs more memory than this.
const RESERVE_AHEAD: usize = 64 << 20;

/// How far past the payload a gzip stream is decompressed to see whether it ends: enough to
/// reach the trailer of any real file's last member (which checks its CRC), small enough that
/// a bomb of zeros after a valid payload costs little time.
const TRAILING_CHECK: u64 = 16 << 20;

/// What to tell the user after any problem with a file's contents.
const REMEDY: &str = "re-download it or point --data at a good copy";

/// An IDX file whose header has been read and checked; the payload is still unread.
pub struct IdxFile<'a> {
    /// How the file is called in messages.
    path: PathBuf,
    /// The dimensions the header gives (for images: count, rows, cols).
    pub dims: Vec<usize>,
    /// Their product: the payload's length in bytes.
    pub payload_len: usize,
    body: Body<'a>,
}

/// The stream the payload comes from.
enum Body<'a> {
    /// A raw file, its length checked against the header: the payload is there.
    Raw(BufReader<Box<dyn Read + 'a>>),
    /// A gzip stream; `most` bounds its decompressed length (see `IdxFile::from_reader`).
    Gzip { gz: Members<BufReader<Box<dyn Read + 'a>>>, most: usize },
}

impl<'a> IdxFile<'a> {
    /// Open `path` and read its header, which must have `want_dims` dimensions; `what`
    /// ("images" or "labels") names the kind of file in messages.
    pub fn open(path: &Path, want_dims: usize, what: &str) -> Result<IdxFile<'static>> {
        // Opening a FIFO would block until something writes to it: look before opening.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(anyhow!(
                "{}: not a regular file (a directory, FIFO or device), so not an IDX {what} file; point --data at a folder that has the file",
                path.display()
            ));
        }
        let file = File::open(path).map_err(|e| {
            anyhow!(
                "{}: cannot open {what} file: {e}; check the path, or point --data at a folder that has it",
                path.display()
            )
        })?;
        let len = file.metadata().map_err(|e| file_error(path, &format!("cannot read: {e}")))?.len();
        IdxFile::from_reader(Box::new(file), len, path, want_dims, what)
    }

    /// [`IdxFile::open`] on any reader of `len` bytes, called `path` in messages. Reads only
    /// the header (at most 8 + 4 * ndims bytes of the decompressed stream, and for gzip what
    /// the decoder buffers).
    pub fn from_reader(
        reader: Box<dyn Read + 'a>,
        len: u64,
        path: &Path,
        want_dims: usize,
        what: &str,
    ) -> Result<IdxFile<'a>> {
        let fail = |problem: String| file_error(path, &problem);
        if len == 0 {
            return Err(fail("empty file (0 bytes)".into()));
        }
        // Peek at the first two bytes to tell gzip from raw, then put them back in front.
        let mut reader = reader;
        let mut head = [0u8; 2];
        let got = read_full(&mut reader, &mut head).map_err(|e| fail(format!("cannot read: {e}")))?;
        let gzip = got == 2 && head == [0x1f, 0x8b];
        let whole: Box<dyn Read + 'a> = Box::new(io::Cursor::new(head[..got].to_vec()).chain(reader));
        let buffered = BufReader::new(whole);

        let (dims, payload_len, body) = if gzip {
            // Deflate cannot expand data more than 1032-fold, so a gzip file of `len` bytes
            // holds at most this much; it bounds what a lying header can make us reserve.
            let most = usize::try_from(len.saturating_mul(1032)).unwrap_or(usize::MAX);
            let mut gz = Members::new(buffered);
            let (dims, n) = read_header(&mut gz, want_dims, what, None, gzip_error).map_err(fail)?;
            (dims, n, Body::Gzip { gz, most })
        } else {
            // Raw: the length is known, so the whole layout is checked before reading on.
            let mut raw = buffered;
            let (dims, n) = read_header(&mut raw, want_dims, what, Some(len), read_error).map_err(fail)?;
            (dims, n, Body::Raw(raw))
        };
        if want_dims == 3 && (dims[1] == 0 || dims[2] == 0) {
            return Err(fail(format!("images of {}x{} pixels are empty", dims[1], dims[2])));
        }
        Ok(IdxFile { path: path.to_path_buf(), dims, payload_len, body })
    }

    /// Read the payload: exactly the `payload_len` bytes the header promised, and nothing
    /// may follow them.
    pub fn read_payload(self) -> Result<Vec<u8>> {
        let path = self.path;
        let fail = |problem: String| file_error(&path, &problem);
        let n = self.payload_len;
        let claim = format!("header says {} = {n} bytes", dims_text(&self.dims));
        match self.body {
            Body::Raw(mut raw) => {
                // The file's length was checked against the header: these bytes exist.
                let mut payload = Vec::new();
                payload.try_reserve_exact(n).map_err(|e| fail(format!("cannot allocate {n} bytes: {e}")))?;
                (&mut raw).take(n as u64).read_to_end(&mut payload).map_err(|e| fail(read_error(e)))?;
                if payload.len() < n {
                    // The file shrank since it was opened.
                    return Err(fail(format!("truncated while reading: {} of {n} bytes", payload.len())));
                }
                Ok(payload)
            }
            Body::Gzip { mut gz, most } => {
                let mut payload = Vec::new();
                let ahead = n.min(most).min(RESERVE_AHEAD);
                payload.try_reserve_exact(ahead).map_err(|e| fail(format!("cannot allocate {ahead} bytes: {e}")))?;
                (&mut gz).take(n as u64).read_to_end(&mut payload).map_err(|e| fail(gzip_error(e)))?;
                if gz.garbage() {
                    return Err(fail("garbage after the end of the gzip stream".into()));
                }
                if payload.len() < n {
                    return Err(fail(format!("truncated: {claim}, decompressed file has {}", payload.len())));
                }
                // The decompressed stream must end exactly at the end of the payload. Reading
                // to the end is also what makes the decoder verify each member's trailer
                // (CRC-32 and length), so extra bytes are drained (up to TRAILING_CHECK)
                // before being called trailing: bytes that come from a corrupt stream fail the
                // CRC and are reported as corruption instead.
                let extra = io::copy(&mut (&mut gz).take(TRAILING_CHECK + 1), &mut io::sink())
                    .map_err(|e| fail(gzip_error(e)))?;
                if gz.garbage() {
                    return Err(fail("garbage after the end of the gzip stream".into()));
                }
                if extra > TRAILING_CHECK {
                    return Err(fail(format!(
                        "trailing bytes: {claim}, the decompressed file has more than {TRAILING_CHECK} more"
                    )));
                }
                if extra > 0 {
                    return Err(fail(format!("trailing bytes: {claim}, the decompressed file has {extra} more")));
                }
                Ok(payload)
            }
        }
    }

    /// How the file is called in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Read an images file (IDX, 3 dimensions: count, rows, cols), raw or gzipped.
///
/// An empty set (count 0) is a valid file and is returned as such; [`crate::data::Mnist::load`]
/// is where an empty training or test set is refused. Images of zero rows or columns are refused
/// here, since no caller can do anything with them.
pub fn read_images(path: &Path) -> Result<Images> {
    images_from(IdxFile::open(path, 3, "images")?)
}

/// Read a labels file (IDX, 1 dimension: count), raw or gzipped.
pub fn read_labels(path: &Path) -> Result<Labels> {
    Ok(Labels { labels: IdxFile::open(path, 1, "labels")?.read_payload()? })
}

/// [`read_images`] on a file's bytes already in memory; `name` stands for the file in errors.
/// Same checks, same errors, byte for byte (the fuzz target `fuzz/fuzz_targets/idx.rs` and
/// `tests/fuzz_replay.rs` drive the reader through this, without touching the disk).
pub fn parse_images(bytes: &[u8], name: &str) -> Result<Images> {
    images_from(IdxFile::from_reader(Box::new(bytes), bytes.len() as u64, Path::new(name), 3, "images")?)
}

/// [`read_labels`] on a file's bytes already in memory, as [`parse_images`].
pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Labels> {
    let file = IdxFile::from_reader(Box::new(bytes), bytes.len() as u64, Path::new(name), 1, "labels")?;
    Ok(Labels { labels: file.read_payload()? })
}

/// The images of an opened images file.
pub fn images_from(file: IdxFile) -> Result<Images> {
    let (n, rows, cols) = (file.dims[0], file.dims[1], file.dims[2]);
    Ok(Images { n, rows, cols, pixels: file.read_payload()? })
}

/// `"{path}: {problem}; {remedy}"`, the one-line shape of every error about a file's contents.
fn file_error(path: &Path, problem: &str) -> anyhow::Error {
    anyhow!("{}: {problem}; {REMEDY}", path.display())
}

/// A read error of a raw file, as the problem in a message.
fn read_error(e: io::Error) -> String {
    format!("cannot read: {e}")
}

/// A read error inside a gzip stream: the compressed data is bad, so say so.
fn gzip_error(e: io::Error) -> String {
    format!("corrupt or truncated gzip data ({e})")
}

/// Parse and check the header from `r`, which must have `want_dims` dimensions; returns the
/// dimensions and their product. `length` is the raw file's length, `None` for a gzip stream,
/// whose decompressed length is not known; `io_err` says what a read error means. Errors are
/// the problem alone; the caller adds the file name and the remedy.
fn read_header<R: Read>(
    r: &mut R,
    want_dims: usize,
    what: &str,
    length: Option<u64>,
    io_err: fn(io::Error) -> String,
) -> Result<(Vec<usize>, usize), String> {
    // Sizes in messages are of what the header describes: for gzip, the decompressed bytes.
    let file = if length.is_some() { "file" } else { "decompressed file" };

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
    if let Some(len) = length {
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
    Ok((dims, n))
}

/// Read until `buf` is full or the input ends; returns the number of bytes read.
/// (`read_exact` would not say how many bytes a short file had.)
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
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
pub(crate) fn dims_text(dims: &[usize]) -> String {
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
