//! safetensors: round trips, the exact byte layout, a table of bad files, fuzzing, and
//! interoperability with the reference Python implementation where it is installed.

mod common;

use autoencoders::safetensors::{load, parse, save, TensorEntry};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("figures_st_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn t(name: &str, shape: &[usize], data: Vec<f32>) -> TensorEntry {
    TensorEntry { name: name.into(), shape: shape.to_vec(), data }
}

/// Names out of alphabetical order, a scalar, empty tensors and awkward values.
fn sample() -> (Vec<TensorEntry>, BTreeMap<String, String>) {
    let tensors = vec![
        t("encoder.0.weight", &[3, 2], vec![0.5, -1.25, 3.0e-38, 1.0e38, -0.0, 7.0]),
        t("decoder.bias", &[5], vec![1.0, 2.0, 3.0, 4.0, 5.0]),
        t("a_scalar", &[], vec![42.0]),
        t("empty", &[0], vec![]),
        t("zz_empty_3d", &[2, 0, 3], vec![]),
        t("conv.weight", &[2, 1, 2, 2], (0..8).map(|i| i as f32 * 0.1 - 0.35).collect()),
    ];
    let meta = BTreeMap::from([
        ("model".to_string(), "deep_ae".to_string()),
        ("epoch".into(), "10".into()),
        ("note".into(), "quotes \" and \\ and unicode é survive".into()),
    ]);
    (tensors, meta)
}

#[test]
fn round_trip_preserves_everything_and_the_order() {
    let dir = tmp_dir("rt");
    let p = dir.join("ckpt.safetensors");
    let (tensors, meta) = sample();
    save(&p, &tensors, &meta).unwrap();
    let (back, meta2) = load(&p).unwrap();
    assert_eq!(meta2, meta);
    // Bit-exact values (-0.0 included), the written order kept; the two empty tensors share
    // an offset and come back in name order, which here is also the written order.
    assert_eq!(back.len(), tensors.len());
    for (a, b) in back.iter().zip(&tensors) {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        assert_eq!(
            a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    // No metadata, no tensors: still a valid file.
    save(&p, &[], &BTreeMap::new()).unwrap();
    assert_eq!(load(&p).unwrap(), (vec![], BTreeMap::new()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn byte_layout_follows_the_spec() {
    let dir = tmp_dir("layout");
    let p = dir.join("x.safetensors");
    save(&p, &[t("b", &[2], vec![1.0, -2.0]), t("a", &[1], vec![0.5])], &BTreeMap::new()).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0, "data must start 8-byte aligned");
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(header.starts_with('{') && header.trim_end().ends_with('}'));
    assert!(header[header.trim_end().len()..].bytes().all(|b| b == b' '), "padding is spaces");
    let json: serde_json::Value = serde_json::from_str(header).unwrap();
    assert_eq!(json["b"]["data_offsets"], serde_json::json!([0, 8]));
    assert_eq!(json["a"]["data_offsets"], serde_json::json!([8, 12]));
    assert_eq!(json["a"]["dtype"], "F32");
    // The only metadata is the checksum the writer adds (see tensors_sha256).
    let want = autoencoders::safetensors::tensors_sha256(&[t("b", &[2], vec![1.0, -2.0]), t("a", &[1], vec![0.5])]);
    assert_eq!(json["__metadata__"], serde_json::json!({ "tensors_sha256": want }));
    let data = &bytes[8 + n..];
    assert_eq!(data, [1.0f32.to_le_bytes(), (-2.0f32).to_le_bytes(), 0.5f32.to_le_bytes()].concat());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn save_refuses_what_load_would_reject() {
    let dir = tmp_dir("save_bad");
    let p = dir.join("x.safetensors");
    let m = BTreeMap::new();
    let cases: Vec<(Vec<TensorEntry>, &str)> = vec![
        (vec![t("w", &[2], vec![1.0, f32::NAN])], "non-finite"),
        (vec![t("w", &[2], vec![f32::INFINITY, 1.0])], "non-finite"),
        (vec![t("w", &[3], vec![1.0, 2.0])], "shape [3] but 2 values"),
        (vec![t("w", &[1], vec![1.0]), t("w", &[1], vec![2.0])], "used twice"),
        (vec![t("__metadata__", &[1], vec![1.0])], "reserves"),
    ];
    for (tensors, needle) in cases {
        let msg = format!("{:#}", save(&p, &tensors, &m).unwrap_err());
        assert!(msg.contains(needle) && msg.contains("x.safetensors") && !msg.contains('\n'), "{msg}");
        assert!(!p.exists(), "nothing written on error");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file from a header string and raw data bytes.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn bad_files_are_refused_with_the_problem_named() {
    let good = good_bytes();
    let w = |shape: &str, offs: &str| format!(r#"{{"w":{{"dtype":"F32","shape":{shape},"data_offsets":{offs}}}}}"#);
    let d8 = f32s(&[1.0, 2.0]);
    let mut huge_len = good.to_vec();
    huge_len[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut long_len = file("{}", &[]);
    long_len[..8].copy_from_slice(&1000u64.to_le_bytes());
    let mut not_utf8 = file("{\"w\":  }", &[]);
    not_utf8[10] = 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty file", vec![], "shorter than the 8-byte"),
        ("truncated data", good[..good.len() - 3].to_vec(), "outside"),
        ("truncated header", good[..20].to_vec(), "runs past the end"),
        ("header length over the cap", huge_len, "cap"),
        ("header length past the file", long_len, "runs past the end"),
        ("not UTF-8", not_utf8, "UTF-8"),
        ("bad JSON", file("{\"w\": [1, 2", &[]), "not valid JSON"),
        ("JSON not an object", file("[1, 2]", &[]), "not an object"),
        ("tensor not an object", file(r#"{"w": 3}"#, &[]), "tensor 'w' is not an object"),
        ("offsets out of range", file(&w("[2]", "[0, 16]"), &d8), "outside"),
        ("begin after end", file(&w("[0]", "[8, 4]"), &d8), "outside"),
        ("offsets not a pair", file(&w("[2]", "[0]"), &d8), "data_offsets"),
        ("offsets negative", file(&w("[2]", "[-8, 0]"), &d8), "data_offsets"),
        ("shape mismatch", file(&w("[3]", "[0, 8]"), &d8), "does not match"),
        (
            "shape overflows usize",
            file(&w("[4611686018427387904, 4611686018427387904]", "[0, 8]"), &d8),
            "does not match",
        ),
        ("shape negative", file(&w("[-2]", "[0, 8]"), &d8), "shape"),
        ("wrong dtype", file(r#"{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#, &d8), "only F32"),
        ("missing dtype", file(r#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, &d8), "dtype"),
        (
            "unknown field",
            file(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}"#, &d8),
            "unknown field",
        ),
        (
            "overlapping",
            file(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &f32s(&[1.0, 2.0, 3.0]),
            ),
            "overlaps",
        ),
        (
            "gap",
            file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                &f32s(&[1.0, 2.0, 3.0]),
            ),
            "unused bytes",
        ),
        ("trailing bytes", file(&w("[1]", "[0, 4]"), &d8), "trailing"),
        ("NaN", file(&w("[2]", "[0, 8]"), &f32s(&[1.0, f32::NAN])), "tensor 'w' holds a non-finite"),
        ("infinity", file(&w("[2]", "[0, 8]"), &f32s(&[f32::NEG_INFINITY, 1.0])), "tensor 'w' holds a non-finite"),
        ("metadata not strings", file(r#"{"__metadata__":{"epoch":10}}"#, &[]), "metadata"),
        ("metadata not an object", file(r#"{"__metadata__":[]}"#, &[]), "__metadata__"),
    ];
    for (what, bytes, needle) in cases {
        let msg = format!("{:#}", parse(&bytes, "bad.safetensors").expect_err(what));
        assert!(msg.contains(needle), "{what}: {msg:?} does not mention {needle:?}");
        assert!(msg.contains("bad.safetensors") && !msg.contains('\n'), "{what}: {msg:?}");
    }
    // Through the file system too, with the path in the message.
    let dir = tmp_dir("bad_path");
    let p = dir.join("nan.safetensors");
    std::fs::write(&p, file(&w("[2]", "[0, 8]"), &f32s(&[1.0, f32::NAN]))).unwrap();
    assert!(format!("{:#}", load(&p).unwrap_err()).contains("nan.safetensors: tensor 'w'"));
    assert!(format!("{:#}", load(&dir.join("missing")).unwrap_err()).contains("cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The bytes of `sample()` saved, made once (each save fsyncs, too slow for every case).
fn good_bytes() -> &'static [u8] {
    static GOOD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    GOOD.get_or_init(|| {
        let dir = tmp_dir("good");
        let p = dir.join("g.safetensors");
        let (tensors, meta) = sample();
        save(&p, &tensors, &meta).unwrap();
        let b = std::fs::read(&p).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0u64..300) {
        let _ = parse(&bytes, "fuzz");
        // With a plausible header length, the JSON checks get exercised too.
        let mut b = n.to_le_bytes().to_vec();
        b.extend_from_slice(&bytes);
        let _ = parse(&b, "fuzz");
    }

    #[test]
    fn corrupted_files_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = good_bytes().to_vec();
        for (pos, val) in flips {
            let n = bytes.len();
            bytes[pos % n] = val;
        }
        if let Ok((back, _)) = parse(&bytes, "fuzz") {
            // Whatever is accepted is consistent.
            for t in back {
                prop_assert_eq!(t.shape.iter().product::<usize>(), t.data.len());
                prop_assert!(t.data.iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// Runs a Python script with `interpreter` (found by `common::python_with`): its stdout.
fn python(interpreter: &str, script: &str) -> String {
    let out = std::process::Command::new(interpreter).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn interoperates_with_the_reference_python_library() {
    let Some(py) = common::python_with(&["safetensors.numpy", "numpy"]) else { return };
    let dir = tmp_dir("python");
    let ours = dir.join("ours.safetensors");
    let (tensors, meta) = sample();
    save(&ours, &tensors, &meta).unwrap();
    // The reference reader (the same Rust core that safetensors.torch.load_file uses).
    let script = format!(
        r#"
import json, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
d = load_file({path:?})
with safe_open({path:?}, framework="numpy") as f:
    meta = f.metadata()
print(json.dumps({{"meta": meta, "t": {{k: [list(v.shape), str(v.dtype), [float(x) for x in v.ravel()]] for k, v in d.items()}}}}))
"#,
        path = ours.to_str().unwrap()
    );
    let got: serde_json::Value = serde_json::from_str(&python(&py, &script)).unwrap();
    for (k, v) in &meta {
        assert_eq!(got["meta"][k], serde_json::json!(v));
    }
    for t in &tensors {
        let e = &got["t"][&t.name];
        assert_eq!(e[0], serde_json::json!(t.shape), "{}", t.name);
        assert_eq!(e[1], "float32");
        let vals: Vec<f32> = e[2].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(vals, t.data, "{}", t.name);
    }
    // The reference writer, read by us.
    let theirs = dir.join("theirs.safetensors");
    let script = format!(
        r#"
import numpy as np
from safetensors.numpy import save_file
save_file({{"w": np.arange(6, dtype=np.float32).reshape(2, 3) / 4, "b": np.array([-1.5], dtype=np.float32)}},
          {path:?}, metadata={{"epoch": "3"}})
"#,
        path = theirs.to_str().unwrap()
    );
    python(&py, &script);
    let (back, m) = load(&theirs).unwrap();
    assert_eq!(m, BTreeMap::from([("epoch".to_string(), "3".to_string())]));
    let by_name: BTreeMap<_, _> = back.iter().map(|t| (t.name.as_str(), t)).collect();
    assert_eq!(by_name["w"].shape, vec![2, 3]);
    assert_eq!(by_name["w"].data, vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
    assert_eq!((by_name["b"].shape.clone(), by_name["b"].data.clone()), (vec![1], vec![-1.5]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_checksum_catches_a_flipped_bit_and_swapped_tensors() {
    use autoencoders::safetensors::{parse_checked, Integrity};
    let dir = tmp_dir("sha");
    let p = dir.join("c.safetensors");
    let (a, b) = (t("adam.m.w", &[2], vec![1.0, 2.0]), t("adam.v.w", &[2], vec![3.0, 4.0]));
    save(&p, &[a.clone(), b.clone()], &BTreeMap::new()).unwrap();
    let good = std::fs::read(&p).unwrap();
    let (back, meta, integrity) = parse_checked(&good, "c").unwrap();
    assert_eq!((back, meta.len(), integrity), (vec![a, b], 0, Integrity::Verified));
    let data = good.len() - 16;

    // The lowest mantissa bit of the first value: 1.0 becomes 1.0000001, still finite.
    let mut flipped = good.clone();
    flipped[data] ^= 1;
    // The two tensors' names swapped in the header (same length: the layout stays valid).
    let header = String::from_utf8_lossy(&good[8..data]).replace("adam.m.", "adam.X.").replace("adam.v.", "adam.m.");
    let swapped_names = [&good[..8], header.replace("adam.X.", "adam.v.").as_bytes(), &good[data..]].concat();
    // The two tensors' bytes swapped, the header kept.
    let swapped_data = [&good[..data], &good[data + 8..], &good[data..data + 8]].concat();
    for (what, bytes) in [("flipped bit", flipped), ("names swapped", swapped_names), ("data swapped", swapped_data)] {
        assert_ne!(bytes, good, "{what}: the test did not change the file");
        let e = format!("{:#}", parse_checked(&bytes, "c.safetensors").expect_err(what));
        assert!(e.contains("c.safetensors") && e.contains("SHA-256") && !e.contains('\n'), "{what}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_without_a_checksum_load_unchecked_and_save_keeps_its_key() {
    use autoencoders::safetensors::{parse_checked, Integrity, SHA256_KEY};
    let plain = file(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"epoch":"3"}}"#,
        &f32s(&[1.0, 2.0]),
    );
    let (tensors, meta, integrity) = parse_checked(&plain, "p").unwrap();
    assert_eq!((tensors.len(), integrity), (1, Integrity::Unchecked));
    assert_eq!(meta, BTreeMap::from([("epoch".to_string(), "3".to_string())]));
    // A non-finite value is still refused as such in a file without a checksum.
    let nan = file(r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &f32s(&[f32::NAN]));
    assert!(format!("{:#}", parse_checked(&nan, "n").unwrap_err()).contains("non-finite"));
    // The key is the writer's.
    let dir = tmp_dir("sha-key");
    let meta = BTreeMap::from([(SHA256_KEY.to_string(), "0".repeat(64))]);
    let e = format!("{:#}", save(&dir.join("x.safetensors"), &[], &meta).unwrap_err());
    assert!(e.contains(SHA256_KEY), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
