//! Checkpoints in the safetensors format, read and written by hand.
//!
//! The format (<https://github.com/huggingface/safetensors>), byte by byte:
//!
//! ```text
//!   [0, 8)          N, the header length: a u64, little-endian
//!   [8, 8 + N)      the header: a UTF-8 JSON object, padded at the end with spaces
//!   [8 + N, end)    the data region: the tensors' raw bytes, back to back
//! ```
//!
//! The header maps each tensor name to `{"dtype": "F32", "shape": [..], "data_offsets":
//! [begin, end]}`, offsets in bytes relative to the start of the data region, plus an
//! optional `"__metadata__": {string: string}` (we keep the training configuration there).
//! Values are little-endian. We pad the header with spaces so that 8 + N is a multiple of 8,
//! which keeps every f32 aligned in a memory-mapped file, as the reference writer does.
//! Tensors are laid out in the order given to `save`, and `load` returns them in file
//! order (sorted by offset), so a round trip preserves the order. (JSON objects have no
//! order of their own; the header's keys come out sorted by name.)
//!
//! The file comes from outside, so `load` trusts nothing: header length within the file and
//! under `MAX_HEADER_BYTES`; valid UTF-8 JSON; exactly the three fields per tensor; dtype
//! F32 only; shape product computed without overflow and equal to the byte length / 4;
//! offsets in bounds, non-overlapping and covering the data region exactly (no hidden
//! bytes); every value finite (a NaN weight means a diverged run, and we name the tensor).
//! Every failure is a one-line error naming the file; no input makes it panic.
//!
//! Integrity: `save` stores a SHA-256 of the tensors in the metadata, under
//! [`SHA256_KEY`] (see [`tensors_sha256`] for exactly what is hashed: names and shapes as well
//! as bytes, so that two tensors swapped, such as Adam's m and v, fail the check just as a
//! flipped bit does). `load` checks it and refuses a mismatch, naming the file. A file without
//! it (written by PyTorch or the reference library) still loads, with a note on stderr saying
//! that its data could not be checked. The key is the writer's business: `load` does not
//! return it among the metadata, and `save` refuses metadata that holds it.

use anyhow::{bail, Context, Result};
use byteorder::{ByteOrder, LittleEndian};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The largest header we accept, the reference implementation's own limit: a header is a
/// few hundred bytes per tensor, so anything larger is corrupt or hostile.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The reserved header key for the string-to-string metadata.
const METADATA_KEY: &str = "__metadata__";

/// The metadata key of the tensors' SHA-256, as 64 lowercase hex digits.
pub const SHA256_KEY: &str = "tensors_sha256";

/// Whether a loaded file's data was checked against the SHA-256 its metadata carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The metadata held a SHA-256 and the data match it.
    Verified,
    /// The metadata held none (a file from another writer): the data could not be checked.
    Unchecked,
}

/// The SHA-256 `save` stores: over the tensors sorted by name, for each its name's UTF-8
/// bytes and a 0 byte, then its number of dimensions and each dimension as u64
/// little-endian, then its data as in the file (f32 little-endian). In lowercase hex.
/// Independent of the order of the tensors in the file.
pub fn tensors_sha256(tensors: &[TensorEntry]) -> String {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| {
            let mut b = vec![0u8; 4 * t.data.len()];
            LittleEndian::write_f32_into(&t.data, &mut b);
            b
        })
        .collect();
    digest(tensors.iter().zip(&bytes).map(|(t, b)| (t.name.as_str(), t.shape.as_slice(), b.as_slice())))
}

/// [`tensors_sha256`] of (name, shape, data bytes) triples.
fn digest<'a>(items: impl Iterator<Item = (&'a str, &'a [usize], &'a [u8])>) -> String {
    let mut items: Vec<_> = items.collect();
    items.sort_by_key(|&(name, _, _)| name);
    let mut h = Sha256::new();
    for (name, shape, data) in items {
        h.update(name.as_bytes());
        h.update([0u8]);
        h.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One named f32 tensor: `data` in row-major order, `data.len()` = product of `shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Writes the tensors (in this order) and the metadata to `path` atomically.
pub fn save(path: &Path, tensors: &[TensorEntry], metadata: &BTreeMap<String, String>) -> Result<()> {
    let file = path.display();
    let mut header = Map::new();
    let mut offset = 0usize;
    for t in tensors {
        if t.name == METADATA_KEY {
            bail!("{file}: a tensor cannot be named {METADATA_KEY:?}; the format reserves it for metadata");
        }
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(t.data.len()) {
            bail!("{file}: tensor '{}' has shape {:?} but {} values; fix the caller", t.name, t.shape, t.data.len());
        }
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            bail!(
                "{file}: tensor '{}' holds a non-finite value ({} at index {i}); training diverged, \
                 not saving a checkpoint that cannot be loaded",
                t.name,
                t.data[i]
            );
        }
        let end = offset + 4 * t.data.len();
        let entry = json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]});
        if header.insert(t.name.clone(), entry).is_some() {
            bail!("{file}: tensor name '{}' is used twice; names must be unique", t.name);
        }
        offset = end;
    }
    if metadata.contains_key(SHA256_KEY) {
        bail!("{file}: metadata cannot hold {SHA256_KEY:?}; the writer reserves it for the tensors' checksum");
    }
    let mut metadata = metadata.clone();
    metadata.insert(SHA256_KEY.into(), tensors_sha256(tensors));
    header.insert(METADATA_KEY.into(), json!(metadata));
    let mut json = serde_json::to_string(&Value::Object(header))?.into_bytes();
    // Pad so the data region starts at a multiple of 8 (the length prefix is 8 bytes).
    json.resize(json.len().div_ceil(8) * 8, b' ');

    let mut bytes = Vec::with_capacity(8 + json.len() + offset);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for t in tensors {
        let start = bytes.len();
        bytes.resize(start + 4 * t.data.len(), 0);
        LittleEndian::write_f32_into(&t.data, &mut bytes[start..]);
    }
    crate::io::write_atomic(path, &bytes)
        .with_context(|| format!("{file}: cannot write the checkpoint; check the directory exists and is writable"))
}

/// Reads and validates a safetensors file (see the module comment for every check). A file
/// without a checksum is loaded with a note on stderr.
pub fn load(path: &Path) -> Result<(Vec<TensorEntry>, BTreeMap<String, String>)> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .with_context(|| format!("{file}: cannot read the checkpoint; check the path exists and is readable"))?;
    let (tensors, metadata, integrity) = parse_checked(&bytes, &file)?;
    if integrity == Integrity::Unchecked {
        crate::note!(
            "note: {}: no {SHA256_KEY} in its metadata (not written by this program), so its data could not be checked",
            crate::io::one_line(&file)
        );
    }
    Ok((tensors, metadata))
}

/// Parses safetensors bytes; `file` names the source in errors. All `load`'s checks.
pub fn parse(bytes: &[u8], file: &str) -> Result<(Vec<TensorEntry>, BTreeMap<String, String>)> {
    parse_checked(bytes, file).map(|(tensors, metadata, _)| (tensors, metadata))
}

/// [`parse`], saying too whether the data were checked against a stored SHA-256.
pub fn parse_checked(bytes: &[u8], file: &str) -> Result<(Vec<TensorEntry>, BTreeMap<String, String>, Integrity)> {
    // Errors quote the header's own strings (tensor names, dtypes, keys), and JSON escapes let
    // those hold line breaks and terminal control codes: escape them (`\n`, `\u{1b}`) so every
    // error stays one printable line. Found by fuzzing (fuzz/regressions/safetensors/).
    parse_raw(bytes, file).map_err(|e| anyhow::anyhow!("{}", crate::io::one_line(&format!("{e:#}"))))
}

/// What [`parse_checked`] returns.
type Parsed = (Vec<TensorEntry>, BTreeMap<String, String>, Integrity);

fn parse_raw(bytes: &[u8], file: &str) -> Result<Parsed> {
    let bad = |what: String| -> Result<Parsed> {
        bail!("{file}: not a valid safetensors file: {what}; re-save the checkpoint")
    };
    if bytes.len() < 8 {
        return bad(format!("{} bytes is shorter than the 8-byte header length", bytes.len()));
    }
    let n = LittleEndian::read_u64(&bytes[..8]);
    if n > MAX_HEADER_BYTES {
        return bad(format!("header length {n} is over the {MAX_HEADER_BYTES}-byte cap"));
    }
    if n > (bytes.len() - 8) as u64 {
        return bad(format!("header length {n} runs past the end of the {}-byte file (truncated?)", bytes.len()));
    }
    let (header, data) = bytes[8..].split_at(n as usize);
    let header = match std::str::from_utf8(header) {
        Ok(h) => h,
        Err(e) => return bad(format!("header is not UTF-8 ({e})")),
    };
    let header: Map<String, Value> = match serde_json::from_str(header) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return bad("header is JSON but not an object".into()),
        Err(e) => return bad(format!("header is not valid JSON ({e})")),
    };

    let mut metadata = BTreeMap::new();
    // (begin, end, name, shape) of each tensor, checked one by one, then as a layout.
    let mut spans: Vec<(usize, usize, String, Vec<usize>)> = Vec::new();
    for (name, value) in &header {
        if name == METADATA_KEY {
            let Some(m) = value.as_object() else {
                return bad(format!("{METADATA_KEY} is not an object"));
            };
            for (k, v) in m {
                let Some(v) = v.as_str() else {
                    return bad(format!("metadata value of '{k}' is not a string"));
                };
                metadata.insert(k.clone(), v.to_string());
            }
            continue;
        }
        let Some(info) = value.as_object() else {
            return bad(format!("tensor '{name}' is not an object"));
        };
        if let Some(k) = info.keys().find(|k| !["dtype", "shape", "data_offsets"].contains(&k.as_str())) {
            return bad(format!("tensor '{name}' has an unknown field '{k}'"));
        }
        match info.get("dtype").and_then(Value::as_str) {
            Some("F32") => {}
            Some(other) => {
                bail!(
                    "{file}: tensor '{name}' has dtype {other}, but only F32 is supported; \
                     convert it to float32 (e.g. tensor.float()) before saving"
                )
            }
            None => return bad(format!("tensor '{name}' has no string dtype")),
        }
        let Some(shape) = usize_list(info.get("shape")) else {
            return bad(format!("tensor '{name}' has no shape list of non-negative integers"));
        };
        let offsets = usize_list(info.get("data_offsets")).unwrap_or_default();
        let &[begin, end] = offsets.as_slice() else {
            return bad(format!("tensor '{name}' has no data_offsets pair [begin, end]"));
        };
        if begin > end || end > data.len() {
            return bad(format!(
                "tensor '{name}' has data_offsets [{begin}, {end}] outside the {}-byte data region",
                data.len()
            ));
        }
        let nbytes = shape.iter().try_fold(4usize, |a, &d| a.checked_mul(d));
        if nbytes != Some(end - begin) {
            return bad(format!(
                "tensor '{name}' has shape {shape:?}, which does not match its {} bytes of F32 data",
                end - begin
            ));
        }
        spans.push((begin, end, name.clone(), shape));
    }

    // Layout: sorted by offset, each tensor must start where the previous ended, and the
    // last must end at the end of the file: no overlaps, no gaps, no trailing bytes.
    spans.sort_by_key(|s| (s.0, s.1));
    let mut expected = 0usize;
    for (begin, end, name, _) in &spans {
        if *begin < expected {
            return bad(format!("tensor '{name}' at [{begin}, {end}] overlaps the previous tensor"));
        }
        if *begin > expected {
            return bad(format!("{} unused bytes before tensor '{name}'", begin - expected));
        }
        expected = *end;
    }
    if expected != data.len() {
        return bad(format!(
            "the tensors cover {expected} bytes but the data region has {} (trailing bytes)",
            data.len()
        ));
    }

    // The checksum before the values: a flipped bit that makes a NaN is damage, not a
    // diverged run, and should be reported as such.
    let integrity = match metadata.remove(SHA256_KEY) {
        None => Integrity::Unchecked,
        Some(want) => {
            let got = digest(spans.iter().map(|(b, e, name, shape)| (name.as_str(), shape.as_slice(), &data[*b..*e])));
            if !want.eq_ignore_ascii_case(&got) {
                bail!(
                    "{file}: the tensor data do not match the SHA-256 in its metadata (a flipped bit, or tensors swapped or renamed): \
                     the file is damaged; use an earlier checkpoint or retrain"
                );
            }
            Integrity::Verified
        }
    };

    let mut tensors = Vec::with_capacity(spans.len());
    for (begin, end, name, shape) in spans {
        let mut values = vec![0f32; (end - begin) / 4];
        LittleEndian::read_f32_into(&data[begin..end], &mut values);
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            bail!(
                "{file}: tensor '{name}' holds a non-finite value ({} at index {i}); \
                 the run that saved it diverged, use an earlier checkpoint",
                values[i]
            );
        }
        tensors.push(TensorEntry { name, shape, data: values });
    }
    Ok((tensors, metadata, integrity))
}

/// A JSON array of non-negative integers that fit in usize, or None.
fn usize_list(v: Option<&Value>) -> Option<Vec<usize>> {
    v?.as_array()?.iter().map(|x| x.as_u64().and_then(|u| usize::try_from(u).ok())).collect()
}
