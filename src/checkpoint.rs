//! Training checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! One safetensors file per model, rewritten (atomically) after every epoch:
//!
//! ```text
//!   <param name>           the weights, as in the final `<model>.safetensors`
//!   adam.m.<param name>    Adam's first moments
//!   adam.v.<param name>    Adam's second moments
//!   __metadata__           epoch (completed), adam_t (steps taken), arch, and the state of the
//!                          random generator: seed, stream and word position of the ChaCha
//!                          stream, which fix every later shuffle and noise draw; and the loss
//!                          history so far, as JSON
//! ```
//!
//! Resuming from it replays nothing and skips nothing: the weights, the moments, the step
//! count and the generator are exactly those after the epoch, so a run interrupted after
//! epoch k and resumed ends with the same bits as one never interrupted. A run killed while
//! writing leaves the previous epoch's file (see `io::write_atomic`).

use crate::models::Model;
use crate::optim::Adam;
use crate::safetensors::{load, save, TensorEntry};
use crate::tensor::{Rng64, Tensor};
use crate::train::{History, TrainState};
use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::Path;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len().is_multiple_of(2).then_some(())?;
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

pub fn save_checkpoint(path: &Path, model: &Model, state: &TrainState) -> Result<()> {
    let mut tensors = Vec::new();
    for (prefix, values) in [("", None), ("adam.m.", Some(&state.adam.m)), ("adam.v.", Some(&state.adam.v))] {
        for (i, p) in model.params.iter().enumerate() {
            // Host copies: on the GPU, this is where an epoch's weights come back.
            let data = values.map_or_else(|| p.value.to_vec(), |v: &Vec<Tensor>| v[i].to_vec());
            tensors.push(TensorEntry { name: format!("{prefix}{}", p.name), shape: p.value.shape().to_vec(), data });
        }
    }
    let metadata = BTreeMap::from([
        ("arch".to_string(), model.name()),
        ("epoch".to_string(), state.epoch.to_string()),
        ("adam_t".to_string(), state.adam.t.to_string()),
        ("rng_seed".to_string(), hex(&state.rng.get_seed())),
        ("rng_stream".to_string(), state.rng.get_stream().to_string()),
        ("rng_word_pos".to_string(), state.rng.get_word_pos().to_string()),
        ("history".to_string(), serde_json::to_string(&state.history).expect("numbers serialise")),
    ]);
    save(path, &tensors, &metadata)
}

/// Restores `model`'s weights and returns the training state saved at `path`. The file
/// must come from the same architecture: every parameter, by name and shape.
pub fn load_checkpoint(path: &Path, model: &mut Model, mut adam: Adam) -> Result<TrainState> {
    let (tensors, meta) = load(path)?;
    let name = path.display();
    let field = |key: &str| {
        meta.get(key).with_context(|| {
            format!("{name}: not a training checkpoint (no {key} in its metadata); start a new run instead of --resume")
        })
    };
    if field("arch")? != &model.name() {
        bail!("{name}: a checkpoint of {}, not of {}; resume the run it belongs to", field("arch")?, model.name());
    }
    let by_name: BTreeMap<&str, &TensorEntry> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let get = |key: String, shape: &[usize]| -> Result<Vec<f32>> {
        match by_name.get(key.as_str()) {
            Some(t) if t.shape == shape => Ok(t.data.clone()),
            Some(t) => bail!(
                "{name}: {key} has shape {:?}, the model needs {shape:?}; this checkpoint is of another architecture",
                t.shape
            ),
            None => bail!("{name}: {key} is missing; this checkpoint is of another architecture or damaged"),
        }
    };
    // Each tensor is put back on the device it was on (the model's and the moments').
    let restore = |old: &Tensor, data: Vec<f32>| Tensor::from_vec(old.shape(), data).to_device(&old.device());
    for (i, p) in model.params.iter_mut().enumerate() {
        let shape = p.value.shape().to_vec();
        p.value = restore(&p.value, get(p.name.clone(), &shape)?);
        adam.m[i] = restore(&adam.m[i], get(format!("adam.m.{}", p.name), &shape)?);
        adam.v[i] = restore(&adam.v[i], get(format!("adam.v.{}", p.name), &shape)?);
    }
    if tensors.len() != 3 * model.params.len() {
        bail!("{name}: {} tensors where the model has {} parameters (x3 with Adam's moments); this checkpoint is of another architecture", tensors.len(), model.params.len());
    }
    let number = |key: &str| -> Result<u128> {
        field(key)?.parse().with_context(|| format!("{name}: metadata {key} is not a number"))
    };
    adam.t = number("adam_t")? as u64;
    let seed: [u8; 32] = unhex(field("rng_seed")?)
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("{name}: a damaged generator seed"))?;
    let mut rng = Rng64::from_seed(seed);
    rng.set_stream(number("rng_stream")? as u64);
    rng.set_word_pos(number("rng_word_pos")?);
    let history: History =
        serde_json::from_str(field("history")?).with_context(|| format!("{name}: a damaged loss history"))?;
    let epoch = number("epoch")? as usize;
    if history.epoch_loss.len() != epoch {
        bail!(
            "{name}: the loss history covers {} epochs but the checkpoint says {epoch}; the file is damaged",
            history.epoch_loss.len()
        );
    }
    Ok(TrainState { epoch, adam, rng, history })
}
