//! Replays every committed fuzz input through the fuzz harness, so ordinary `cargo test`
//! covers them: the seeds (`fuzz/seeds/<target>/`) and the reproducers of fixed crashes
//! (`fuzz/regressions/<target>/`). The harness, `fuzz/harness.rs`, is the very code the
//! cargo-fuzz targets run: any panic there fails this test, naming the file.
//!
//! The seeds are made by `write_seeds` below (ignored; run it with
//! `cargo test --release --test fuzz_replay -- --ignored write_seeds` to rewrite them).

#[path = "../fuzz/harness.rs"]
mod harness;

mod common;
mod mnist_files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A fuzz target: it takes the input's bytes and panics on a bug.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] =
    [("idx", harness::idx), ("png", harness::png), ("safetensors", harness::safetensors), ("resume", harness::resume)];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `target` on every input of `kind` (seeds or regressions); returns how many.
fn replay(kind: &str, target: &str, run: Target) -> usize {
    let files = inputs(&fuzz_dir().join(kind).join(target));
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "fuzz target {target} panicked on {}", f.display());
    }
    files.len()
}

#[test]
fn seeds_and_regressions_do_not_panic() {
    for (target, run) in TARGETS {
        let seeds = replay("seeds", target, run);
        assert!(seeds >= 3, "fuzz/seeds/{target} has only {seeds} inputs");
        let fixed = replay("regressions", target, run);
        eprintln!("{target}: {seeds} seeds, {fixed} regressions replayed");
        // The reproducers committed so far (more may be added, none lost): a folder that went
        // missing or moved would otherwise replay nothing and pass.
        let committed = match target {
            "png" => 3,
            "safetensors" => 4,
            "resume" => 1,
            _ => 0,
        };
        assert!(fixed >= committed, "fuzz/regressions/{target}: {fixed} inputs, {committed} were committed");
    }
}

/// Writes the seed corpus. Each input is small: mutations of small valid files are where a
/// fuzzer finds the edge cases fastest, and the committed corpus stays a few kilobytes.
#[test]
#[ignore]
fn write_seeds() {
    use mnist_files::{gzip, images_file, labels_file};
    let seeds = fuzz_dir().join("seeds");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    // IDX. The harness's first byte: 0 = the rest as it is, 1 = gzip the rest first.
    let with = |mode: u8, file: &[u8]| [&[mode][..], file].concat();
    let images = images_file(3, 4, 4);
    let labels = labels_file(&[3, 1, 4, 1, 5]);
    put("idx", "images-raw", &with(0, &images));
    put("idx", "images-gzip-by-harness", &with(1, &images));
    put("idx", "images-gzip", &with(0, &gzip(&images)));
    put("idx", "labels-raw", &with(0, &labels));
    put("idx", "labels-gzip-by-harness", &with(1, &labels));
    put("idx", "labels-gzip", &with(0, &gzip(&labels)));
    put("idx", "images-empty-set", &with(0, &images_file(0, 28, 28)));
    put("idx", "images-header-only", &with(0, &images[..16]));
    put("idx", "images-truncated-payload", &with(0, &images[..30]));
    put("idx", "images-trailing-byte", &with(0, &[&images[..], &[7]].concat()));
    let gz = gzip(&images);
    put("idx", "images-gzip-truncated", &with(0, &gz[..gz.len() / 2]));
    put("idx", "images-gzip-two-members", &with(0, &[&gz[..], &gz[..]].concat()));
    let huge = mnist_files::idx(0x08, &[60000, 28, 28], &[]);
    put("idx", "images-huge-claim-gzip", &with(1, &huge));

    // PNG: every colour type and bit depth the loader handles, 5x3 pixels.
    let (w, h) = (5u32, 3u32);
    use png::{BitDepth as D, ColorType as C};
    let plain: [(&str, C, D, usize); 11] = [
        ("grey1", C::Grayscale, D::One, 1),
        ("grey2", C::Grayscale, D::Two, 1),
        ("grey4", C::Grayscale, D::Four, 1),
        ("grey8", C::Grayscale, D::Eight, 1),
        ("grey16", C::Grayscale, D::Sixteen, 2),
        ("greyalpha8", C::GrayscaleAlpha, D::Eight, 2),
        ("greyalpha16", C::GrayscaleAlpha, D::Sixteen, 4),
        ("rgb8", C::Rgb, D::Eight, 3),
        ("rgb16", C::Rgb, D::Sixteen, 6),
        ("rgba8", C::Rgba, D::Eight, 4),
        ("rgba16", C::Rgba, D::Sixteen, 8),
    ];
    for (name, color, depth, bytes_per_px) in plain {
        let bits = depth as usize;
        let row = if bits < 8 { (w as usize * bits).div_ceil(8) } else { w as usize * bytes_per_px };
        let data: Vec<u8> = (0..row * h as usize).map(|k| (k * 37 % 256) as u8).collect();
        put("png", &format!("{name}.png"), &encode_png(w, h, color, depth, &data, |_| {}));
    }
    // Palette, 4 bits, with transparency for two entries.
    let data: Vec<u8> = (0..3 * h as usize).map(|k| (k * 0x13 % 256) as u8 & 0x33).collect();
    let palette = encode_png(w, h, C::Indexed, D::Four, &data, |e| {
        e.set_palette((0..4 * 3).map(|k| (k * 60 % 256) as u8).collect::<Vec<u8>>());
        e.set_trns(vec![0u8, 128]);
    });
    put("png", "palette4-trns.png", &palette);
    // Grey with a tRNS colour key: becomes grey+alpha.
    let data: Vec<u8> = (0..w * h).map(|k| (k * 50 % 256) as u8).collect();
    put("png", "grey8-trns.png", &encode_png(w, h, C::Grayscale, D::Eight, &data, |e| e.set_trns(vec![0u8, 100])));
    put("png", "grey8-1x1.png", &encode_png(1, 1, C::Grayscale, D::Eight, &[200], |_| {}));
    let interlaced = interlaced_grey_3x3();
    let img = autoencoders::figures::png_io::decode_grey(&interlaced[..], "interlaced").unwrap();
    let want: Vec<f32> = (1..=9).map(|k| (k * 10) as f32 / 255.0).collect();
    assert_eq!(img.pixels, want, "the hand-made interlaced PNG is wrong");
    put("png", "grey8-interlaced-3x3.png", &interlaced);
    let anim = apng();
    let img = autoencoders::figures::png_io::decode_grey(&anim[..], "apng").unwrap();
    assert_eq!((img.w, img.h), (4, 4));
    put("png", "apng-two-frames.png", &anim);
    let good = encode_png(w, h, C::Rgb, D::Eight, &[90u8; 15 * 3], |_| {});
    put("png", "rgb8-truncated.png", &good[..good.len() - 20]);

    // Safetensors, written by the crate's own writer.
    use autoencoders::safetensors::{save, TensorEntry};
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("c.safetensors");
    let t = |name: &str, shape: &[usize]| TensorEntry {
        name: name.into(),
        shape: shape.to_vec(),
        data: (0..shape.iter().product::<usize>()).map(|k| k as f32 * 0.25 - 1.0).collect(),
    };
    let meta: BTreeMap<String, String> =
        [("experiment".to_string(), "ae-dense".to_string()), ("epoch".into(), "3".into())].into();
    let saved = |name: &str, tensors: &[TensorEntry], meta: &BTreeMap<String, String>| {
        save(&file, tensors, meta).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        put("safetensors", name, &bytes);
        bytes
    };
    let two = saved("two-tensors-metadata", &[t("enc.w", &[3, 2]), t("enc.b", &[2])], &meta);
    saved("scalar-and-empty", &[t("s", &[]), t("e", &[0, 4])], &BTreeMap::new());
    saved("metadata-only", &[], &meta);
    put("safetensors", "truncated-data", &two[..two.len() - 3]);
    put("safetensors", "truncated-header", &two[..20]);
    put("safetensors", "two-tensors-no-checksum", &without_checksum(&two));

    // Resume: config.json, a 0 byte, a checkpoint of the harness's 784-1-1-784 model.
    use autoencoders::checkpoint::save_checkpoint;
    use autoencoders::experiments::settings::{Experiment, Settings};
    use autoencoders::models::{Arch, Model};
    use autoencoders::tensor::rng_from_seed;
    use autoencoders::train::TrainState;
    let settings = Settings {
        epochs: 3,
        seed: 7,
        threads: 1,
        data_dir: "/data/mnist".into(),
        train_limit: Some(640),
        sizes: vec![64, 128],
        lambdas: vec![0.001, 0.1],
        noises: vec![0.3],
        ..Settings::study(Experiment::Hidden)
    };
    let config = serde_json::to_vec_pretty(&settings.config()).unwrap();
    let mut rng = rng_from_seed(0);
    let model = Model::new(Arch::Shallow { hidden: 1 }, &mut rng);
    let cfg = settings.train_config(0.0, 0.0);
    let mut state = TrainState::new(&model, &cfg, rng);
    state.epoch = 2;
    state.adam.t = 20;
    state.history.epoch_loss = vec![0.25, 0.125];
    state.history.step_loss = vec![0.5; 20];
    state.history.epoch_seconds = vec![1.5, 1.25];
    save_checkpoint(&file, &model, &state).unwrap();
    let checkpoint = std::fs::read(&file).unwrap();
    let both = |c: &[u8]| [&config[..], &[0], c].concat();
    put("resume", "config-only", &config);
    put("resume", "config-and-checkpoint", &both(&checkpoint));
    put("resume", "config-and-checkpoint-no-checksum", &both(&without_checksum(&checkpoint)));
    put("resume", "checkpoint-only", &[&[0u8][..], &checkpoint].concat());
}

/// A safetensors file with the `tensors_sha256` entry taken out of its metadata, as another
/// writer would have made it.
fn without_checksum(bytes: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = header["__metadata__"].as_object_mut().unwrap();
    assert!(meta.remove(autoencoders::safetensors::SHA256_KEY).is_some());
    let header = serde_json::to_vec(&header).unwrap();
    [&(header.len() as u64).to_le_bytes()[..], &header, &bytes[8 + n..]].concat()
}

/// A PNG from the `png` crate's encoder; `setup` sets palette, transparency and so on.
fn encode_png(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    setup: impl FnOnce(&mut png::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(color);
        e.set_depth(depth);
        setup(&mut e);
        let mut wr = e.write_header().unwrap();
        wr.write_image_data(data).unwrap();
    }
    out
}

/// Two frames, the second a 2x2 sub-rectangle at (1, 1) of a 4x4 image.
fn apng() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, 4, 4);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.set_animated(2, 0).unwrap();
        let mut wr = e.write_header().unwrap();
        wr.write_image_data(&[40; 16]).unwrap();
        wr.set_frame_dimension(2, 2).unwrap();
        wr.set_frame_position(1, 1).unwrap();
        wr.write_image_data(&[250; 4]).unwrap();
    }
    out
}

/// A 3x3 8-bit grey Adam7-interlaced PNG, built by hand (the encoder does not interlace).
fn interlaced_grey_3x3() -> Vec<u8> {
    use flate2::write::ZlibEncoder;
    use std::io::Write;
    // Adam7 on 3x3 (the pattern's top-left corner: rows `1 6 4`, `7 7 7`, `5 6 5`), passes
    // in order, each reduced row led by filter byte 0 (None): 1: (0,0). 2, 3: empty.
    // 4: (2,0). 5: row 2, x = 0, 2. 6: rows 0 and 2, x = 1. 7: row 1.
    let raw = [
        0, 10, // pass 1
        0, 30, // pass 4
        0, 70, 90, // pass 5
        0, 20, 0, 80, // pass 6
        0, 40, 50, 60, // pass 7
    ];
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&3u32.to_be_bytes());
    ihdr.extend_from_slice(&3u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 1]); // depth 8, grey, deflate, filter 0, Adam7
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(b"IHDR", &ihdr[..]), (b"IDAT", &idat[..]), (b"IEND", &[][..])] {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let crc = common::crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}
