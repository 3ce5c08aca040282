//! Checkpoints: an exact round trip, and a one-line refusal of every damaged or foreign file.

use autoencoders::checkpoint::{load_checkpoint, save_checkpoint};
use autoencoders::models::{Arch, Model};
use autoencoders::tensor::{rng_from_seed, Tensor};
use autoencoders::train::TrainConfig;
use autoencoders::train::TrainState;
use rand::Rng;

fn trained_state(arch: Arch) -> (Model, TrainState) {
    let mut rng = rng_from_seed(4);
    let mut model = Model::new(arch, &mut rng);
    let cfg = TrainConfig { epochs: 1, batch_size: 4, lr: 1e-3, l1: 0.0, noise: 0.0 };
    let mut state = TrainState::new(&model, &cfg, rng);
    let x = Tensor::from_vec(&[4, 784], (0..4 * 784).map(|_| state.rng.random_range(0.0f32..1.0)).collect());
    for _ in 0..3 {
        let loss = model.train_step(&mut state.adam, &x, &x, 0.0);
        state.history.step_loss.push(loss);
    }
    state.epoch = 1;
    state.history.epoch_loss.push(0.25);
    state.history.epoch_seconds.push(1.5);
    (model, state)
}

fn err_of(r: anyhow::Result<TrainState>) -> String {
    let e = format!("{:#}", r.expect_err("must be refused"));
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (model, state) = trained_state(Arch::Shallow { hidden: 16 });
    save_checkpoint(&path, &model, &state).unwrap();
    let mut fresh = Model::new(Arch::Shallow { hidden: 16 }, &mut rng_from_seed(99));
    let adam = fresh.adam(Default::default());
    let back = load_checkpoint(&path, &mut fresh, adam).unwrap();
    for (a, b) in model.params.iter().zip(&fresh.params) {
        assert_eq!(a.value.to_vec(), b.value.to_vec(), "{}", a.name);
    }
    assert_eq!((back.epoch, back.adam.t), (1, 3));
    let host = |moments: &[Tensor]| moments.iter().map(Tensor::to_vec).collect::<Vec<_>>();
    assert_eq!(host(&back.adam.m), host(&state.adam.m));
    assert_eq!(host(&back.adam.v), host(&state.adam.v));
    assert_eq!(back.history, state.history);
    let (mut r1, mut r2) = (state.rng.clone(), back.rng.clone());
    let (a, b): (Vec<u64>, Vec<u64>) = ((0..8).map(|_| r1.random()).collect(), (0..8).map(|_| r2.random()).collect());
    assert_eq!(a, b, "the generator continues where it stood");
}

/// A checkpoint of a small trained model: its folder, and the file's bytes.
fn saved_checkpoint() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (model, state) = trained_state(Arch::Shallow { hidden: 16 });
    save_checkpoint(&path, &model, &state).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (dir, bytes)
}

/// Writes `bytes` to `dir/name` and loads it as a checkpoint of that model, which must fail:
/// returns the error.
fn refusal(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let mut m = Model::new(Arch::Shallow { hidden: 16 }, &mut rng_from_seed(1));
    let adam = m.adam(Default::default());
    err_of(load_checkpoint(&p, &mut m, adam))
}

#[test]
fn foreign_and_damaged_checkpoints_are_refused() {
    let (dir, bytes) = saved_checkpoint();
    let path = dir.path().join("c.safetensors");

    // Another architecture: a different hidden size, and a different family.
    for arch in [Arch::Shallow { hidden: 17 }, Arch::CaeUnpool] {
        let mut other = Model::new(arch, &mut rng_from_seed(1));
        let adam = other.adam(Default::default());
        let e = err_of(load_checkpoint(&path, &mut other, adam));
        assert!(e.contains("architecture") || e.contains("checkpoint of"), "{e}");
    }

    let load_bytes = |name: &str, b: &[u8]| refusal(dir.path(), name, b);
    // Truncated.
    assert!(load_bytes("t.safetensors", &bytes[..bytes.len() - 100]).contains("t.safetensors"));
    assert!(load_bytes("e.safetensors", &[]).contains("e.safetensors"));
    // A NaN in the data region (the last value of the file): damage the checksum catches.
    let mut nan = bytes.clone();
    let n = nan.len();
    nan[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(load_bytes("n.safetensors", &nan).contains("SHA-256"));
    // A header that lies about an offset: make the first "data_offsets":[0, end] start at 8.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("\"data_offsets\":[0,").expect("offsets in the header");
    let mut lie = bytes.clone();
    lie[at + "\"data_offsets\":[".len()] = b'8';
    // Refused for the lie itself: 8 bytes fewer than its shape needs.
    let e = load_bytes("l.safetensors", &lie);
    assert!(e.contains("l.safetensors") && e.contains("does not match its") && e.contains("bytes of F32 data"), "{e}");
    // A plain weights file (no training state) is not a checkpoint.
    let weights = dir.path().join("w.safetensors");
    autoencoders::safetensors::save(
        &weights,
        &[autoencoders::safetensors::TensorEntry { name: "x".into(), shape: vec![1], data: vec![1.0] }],
        &Default::default(),
    )
    .unwrap();
    let mut m = Model::new(Arch::Shallow { hidden: 16 }, &mut rng_from_seed(1));
    let adam = m.adam(Default::default());
    assert!(err_of(load_checkpoint(&weights, &mut m, adam)).contains("not a training checkpoint"));
}

#[test]
fn a_flipped_bit_or_swapped_adam_moments_are_refused() {
    // #17: both used to load silently. The checksum in the metadata names the file.
    let (dir, bytes) = saved_checkpoint();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The lowest mantissa bit of a value in the middle of the data: still finite, so only
    // the checksum can tell.
    let mut flipped = bytes.clone();
    let mid = header_end + (bytes.len() - header_end) / 8 * 4;
    flipped[mid] ^= 1;
    let value = f32::from_le_bytes(flipped[mid..mid + 4].try_into().unwrap());
    assert!(value.is_finite());
    // Adam's m and v swapped: each "adam.m." in the header becomes "adam.v." and back.
    let header = String::from_utf8(bytes[8..header_end].to_vec()).unwrap();
    let swapped = header.replace("adam.m.", "adam.X.").replace("adam.v.", "adam.m.").replace("adam.X.", "adam.v.");
    assert_ne!(swapped, header);
    let swapped = [&bytes[..8], swapped.as_bytes(), &bytes[header_end..]].concat();
    for damaged in [flipped, swapped] {
        let e = refusal(dir.path(), "damaged.safetensors", &damaged);
        assert!(e.contains("damaged.safetensors") && e.contains("SHA-256"), "{e}");
    }
}
