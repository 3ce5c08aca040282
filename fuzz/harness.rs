//! The fuzz harness, one function per target, shared by the cargo-fuzz targets in
//! `fuzz/fuzz_targets/` and by `tests/fuzz_replay.rs` (which replays every committed input in
//! ordinary `cargo test`), so both run exactly the same code: `#[path]`-included, not a crate.
//!
//! Each function feeds arbitrary bytes to one loader. A panic (an index out of bounds, an
//! overflow, an `unwrap`, an allocation failure) is a bug. Beyond "no panic", each checks the
//! loader's promises: on success the result is self-consistent; on failure the error is one
//! line (the CLI prints it as the one line on stderr).

#![allow(dead_code)] // each fuzz target uses one of the functions

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// The name the inputs go by in error messages.
const NAME: &str = "fuzz-input";

/// The IDX reader, as images and as labels. The first byte picks the container: odd, the
/// rest is gzip-compressed first (so mutations of a raw IDX reach the gzip path with a valid
/// stream); even, the rest is read as it is (raw, or gzip when it starts `1f 8b`, which is how
/// corrupt gzip streams get in).
pub fn idx(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let compressed;
    let file = if mode & 1 == 1 {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(rest).unwrap();
        compressed = e.finish().unwrap();
        &compressed[..]
    } else {
        rest
    };
    match autoencoders::data::parse_images(file, NAME) {
        Ok(im) => {
            assert!(im.rows > 0 && im.cols > 0, "accepted empty images");
            assert_eq!(im.pixels.len(), im.n * im.rows * im.cols);
            if im.n > 0 {
                // What training does with them: every image can be had as floats.
                let last = im.to_f32(im.n - 1..im.n);
                assert_eq!(last.len(), im.image_len());
            }
        }
        Err(e) => one_line(&e),
    }
    match autoencoders::data::parse_labels(file, NAME) {
        Ok(_) => {}
        Err(e) => one_line(&e),
    }
}

/// The PNG loader of `non-digit`: decode to grey, then what `load_grey_28` does with it.
pub fn png(data: &[u8]) {
    use autoencoders::figures::png_io::{area_resize, decode_grey};
    match decode_grey(data, NAME) {
        Ok(img) => {
            assert!(img.w > 0 && img.h > 0, "decoded a {}x{} image", img.w, img.h);
            assert_eq!(img.pixels.len(), img.w * img.h);
            assert!(img.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
            let small = area_resize(&img, 28, 28);
            assert!(small.pixels.iter().all(|v| v.is_finite()));
        }
        Err(e) => one_line(&e),
    }
}

/// The safetensors checkpoint loader.
pub fn safetensors(data: &[u8]) {
    match autoencoders::safetensors::parse(data, NAME) {
        Ok((tensors, _metadata)) => {
            for t in &tensors {
                assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
                assert!(t.data.iter().all(|v| v.is_finite()));
            }
        }
        Err(e) => one_line(&e),
    }
}

/// What `--resume DIR` reads: `config.json`, then a model's checkpoint. The input is the
/// config's bytes, a 0 byte, then the checkpoint's bytes (no 0 byte: all config, no
/// checkpoint), so that the fuzzer mutates both halves independently.
///
/// The config goes through `Settings::from_json`, as `--resume` reads it: what it accepts
/// must survive being written back (`Settings::config`, as JSON) and read again, unchanged,
/// and what it refuses must be one printable line. The checkpoint goes
/// through `load_checkpoint` (from a temporary file: it reads a path) for the smallest model
/// there is, a 784-1-1-784 shallow autoencoder; what it accepts must be a state training can
/// continue from: every value finite, the moments as long as the parameters, the loss
/// history as long as the epoch count.
pub fn resume(data: &[u8]) {
    use autoencoders::experiments::settings::Settings;
    use autoencoders::tensor::Device;
    let (config, checkpoint) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let read = |bytes: &[u8]| Settings::from_json(bytes, 1, Device::Cpu).map_err(anyhow::Error::msg);
    match read(config) {
        Ok(settings) => {
            let written = serde_json::to_vec(&settings.config()).expect("a config serialises");
            let back = read(&written).unwrap_or_else(|e| panic!("its own config.json is refused: {e:#}"));
            assert_eq!(back.config(), settings.config(), "config.json changes when written back");
        }
        Err(e) => printable(&e),
    }
    if let Some(bytes) = checkpoint {
        checkpoint_of_smallest_model(bytes);
    }
}

/// `load_checkpoint` on `bytes`, for the model of [`resume`].
fn checkpoint_of_smallest_model(bytes: &[u8]) {
    use autoencoders::checkpoint::load_checkpoint;
    use autoencoders::models::{Arch, Model};
    use autoencoders::tensor::rng_from_seed;
    // One file per process and thread: cargo test replays in threads, libFuzzer in processes.
    let path = std::env::temp_dir().join(format!(
        "fuzz-resume-{}-{:?}.checkpoint.safetensors",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let mut model = Model::new(Arch::Shallow { hidden: 1 }, &mut rng_from_seed(0));
    let adam = model.adam(Default::default());
    let loaded = load_checkpoint(&path, &mut model, adam);
    let _ = std::fs::remove_file(&path);
    match loaded {
        Ok(state) => {
            assert_eq!(state.history.epoch_loss.len(), state.epoch);
            for (i, p) in model.params.iter().enumerate() {
                assert!(p.value.to_vec().iter().all(|v| v.is_finite()), "{}", p.name);
                assert_eq!(state.adam.m[i].len(), p.value.len(), "{}", p.name);
                assert_eq!(state.adam.v[i].len(), p.value.len(), "{}", p.name);
            }
        }
        Err(e) => {
            printable(&e);
            assert!(format!("{e:#}").contains("fuzz-resume-"), "error does not name the file: {e:#}");
        }
    }
}

/// The error is one printable line (no file name to look for: the caller adds it).
fn printable(e: &anyhow::Error) {
    let msg = format!("{e:#}");
    assert!(!msg.chars().any(char::is_control), "error is not one printable line: {msg:?}");
}

/// The error is one printable line: no line break, no terminal control code (a file's own
/// strings, quoted in a message, must come out escaped), and it names the file.
fn one_line(e: &anyhow::Error) {
    let msg = format!("{e:#}");
    assert!(!msg.chars().any(char::is_control), "error is not one printable line: {msg:?}");
    assert!(msg.contains(NAME), "error does not name the file: {msg:?}");
}
