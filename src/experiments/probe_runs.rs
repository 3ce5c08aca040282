//! `probe RUN_DIR...`: the code evaluation of `probe` and the figures of `representations`
//! for every model saved in finished run folders, beside PCA of each model's code size and
//! the raw pixels.
//!
//! A run folder holds each trained model as `<name>.safetensors` (its metadata names the
//! model and its architecture); an `all` folder holds them one level down, one subfolder
//! per experiment. Training checkpoints (`*.checkpoint.safetensors`) are not models.
//! PCA is fitted once, with every component, on the training images; PCA-k keeps the
//! first k. A code wider than the 784 pixels (the 900-unit sparse AEs) has no PCA of its size.

use super::probe::{self, Codes, ProbeRow, K_NEIGHBOURS};
use super::{representations, Context};
use crate::data::{Images, Mnist};
use crate::models::{Arch, Model, PIXELS};
use crate::pca::Pca;
use crate::safetensors::load;
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The models saved in `dir`, or in its subfolders when it holds none itself (an `all`
/// folder), in the order of their paths.
pub fn find_models(dir: &Path) -> Result<Vec<PathBuf>> {
    let models_in = |dir: &Path| -> Result<Vec<PathBuf>> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read this folder; probe takes run folders", dir.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".safetensors") && !name.ends_with(".checkpoint.safetensors") {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    };
    let mut found = models_in(dir)?;
    if found.is_empty() {
        let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        subs.sort();
        for sub in subs.iter().filter(|p| p.is_dir()) {
            found.extend(models_in(sub)?);
        }
    }
    if found.is_empty() {
        bail!(
            "{}: no trained models (*.safetensors) here or one folder down; give a finished run folder",
            dir.display()
        );
    }
    Ok(found)
}

/// A model saved by `draw::save_model`: its name and its weights in a fresh model of its
/// architecture, every parameter checked by name and shape.
pub fn load_model(path: &Path) -> Result<(String, Model)> {
    let (tensors, meta) = load(path)?;
    let file = path.display();
    let arch_name = meta.get("arch").with_context(|| format!("{file}: no arch in its metadata; not a saved model"))?;
    let arch = Arch::from_name(arch_name).with_context(|| format!("{file}: unknown architecture {arch_name}"))?;
    let name = meta.get("model").cloned().unwrap_or_else(|| arch.name());
    let mut model = Model::new(arch, &mut crate::tensor::rng_from_seed(0));
    if tensors.len() != model.params.len() {
        bail!(
            "{file}: {} tensors, but {arch_name} has {} parameters; the file is damaged",
            tensors.len(),
            model.params.len()
        );
    }
    for p in &mut model.params {
        let Some(t) = tensors.iter().find(|t| t.name == p.name) else {
            bail!("{file}: {} is missing; the file is damaged or of another model", p.name)
        };
        if t.shape != p.value.shape() {
            bail!("{file}: {} has shape {:?}, {arch_name} needs {:?}", p.name, t.shape, p.value.shape());
        }
        p.value = crate::tensor::Tensor::from_vec(&t.shape, t.data.clone());
    }
    Ok((name, model))
}

/// PCA-k from a fit with every component: the first k components.
fn truncate(full: &Pca, k: usize) -> Pca {
    Pca {
        mean: full.mean.clone(),
        components: full.components[..k * PIXELS].to_vec(),
        explained_variance: full.explained_variance[..k].to_vec(),
        sweeps: full.sweeps,
    }
}

/// Both probes of a pair of code sets: (linear probe, k-NN). The training codes are used up
/// (the linear probe standardises them in place), so the k-NN vote runs first.
fn scores(train: Codes, test: &Codes, data: &Mnist, seed: u64) -> (f64, f64) {
    let knn = probe::knn_accuracy(&train, &data.train_labels, test, &data.test_labels, K_NEIGHBOURS);
    let lp = probe::linear_probe(train, &data.train_labels, test, &data.test_labels, seed);
    (lp, knn)
}

/// The row of a model, and its test codes (for its map).
fn model_row(name: &str, model: &Model, data: &Mnist, seed: u64) -> (ProbeRow, Codes) {
    let (train, _) = probe::model_codes(model, &data.train, false);
    let (test, recon) = probe::model_codes(model, &data.test, true);
    let recon = recon.expect("asked for");
    let images = data.test.to_f32(0..data.test.n);
    let per_class = probe::mse_per_class(&images, &recon, &data.test_labels.labels, PIXELS);
    let mse = images.iter().zip(&recon).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>() / images.len() as f64;
    let (linear_probe, knn) = scores(train, &test, data, seed);
    let row = ProbeRow {
        name: name.to_string(),
        code_size: test.d,
        linear_probe,
        knn,
        mse: Some(mse),
        mse_per_class: Some(per_class),
        mean_abs_code: probe::mean_abs(&test),
    };
    (row, test)
}

/// Images converted to f32 at a time by `pca_codes`: 12.8 MB of them.
const PCA_SLAB: usize = 4096;

/// The PCA codes of `images`, converted to f32 a slab at a time: all 60,000 training images
/// as f32 would hold 188 MB more. Each code depends on its own image alone, so the slabs
/// change no bit. (The test images are converted whole anyway, for their reconstructions.)
fn pca_codes(pca: &Pca, images: &Images) -> Codes {
    let k = pca.explained_variance.len();
    let mut values = Vec::with_capacity(images.n * k);
    for start in (0..images.n).step_by(PCA_SLAB) {
        let end = (start + PCA_SLAB).min(images.n);
        values.extend(pca.project(&images.to_f32(start..end), end - start));
    }
    Codes { n: images.n, d: k, values }
}

/// The row of PCA-k, and its test codes.
fn pca_row(pca: &Pca, data: &Mnist, seed: u64) -> (ProbeRow, Codes) {
    let k = pca.explained_variance.len();
    let test_x = data.test.to_f32(0..data.test.n);
    let train = pca_codes(pca, &data.train);
    let test = Codes { n: data.test.n, d: k, values: pca.project(&test_x, data.test.n) };
    let recon = pca.reconstruct(&test.values, test.n);
    let per_class = probe::mse_per_class(&test_x, &recon, &data.test_labels.labels, PIXELS);
    let (linear_probe, knn) = scores(train, &test, data, seed);
    let row = ProbeRow {
        name: format!("pca-{k}"),
        code_size: k,
        linear_probe,
        knn,
        mse: Some(pca.reconstruction_mse(&test_x, test.n)),
        mse_per_class: Some(per_class),
        mean_abs_code: probe::mean_abs(&test),
    };
    (row, test)
}

/// Probes every model of `run_dirs` into the context's folder: the table as `probe.json`
/// and in the outcome (`extra.probe`), the figures with their captions.
pub fn probe_runs(ctx: &mut Context, run_dirs: &[PathBuf]) -> Result<()> {
    let mut paths = Vec::new();
    for dir in run_dirs {
        paths.extend(find_models(dir)?);
    }
    // Every file is read and checked before the long work starts.
    let models: Vec<(String, Model)> = paths.iter().map(|p| load_model(p)).collect::<Result<_>>()?;
    let (data, seed) = (ctx.data, ctx.settings.seed);
    let start = Instant::now();
    let train = &data.train;
    let full = Pca::fit(&train.to_f32(0..train.n), train.n, PIXELS, PIXELS);
    crate::note!("probe: PCA with every component in {:.1} s", start.elapsed().as_secs_f64());

    let mut rows: Vec<ProbeRow> = Vec::new();
    let test_pixels = probe::pixel_codes(&data.test);
    let (lp, knn) = scores(probe::pixel_codes(&data.train), &test_pixels, data, seed);
    let mean_abs_code = probe::mean_abs(&test_pixels);
    rows.push(ProbeRow {
        name: "pixels".into(),
        code_size: PIXELS,
        linear_probe: lp,
        knn,
        mse: None,
        mse_per_class: None,
        mean_abs_code,
    });
    crate::note!("probe: pixels: linear probe {:.2}%, {K_NEIGHBOURS}-NN {:.2}%", 100.0 * lp, 100.0 * knn);
    let map = representations::code_map(&ctx.path("pixels_map.svg"), "pixels", &test_pixels, &data.test_labels.labels)?;
    ctx.figure("pixels_map.svg", map);
    drop(test_pixels);
    crate::memory::return_freed_memory();

    for (name, model) in &models {
        let (row, codes) = model_row(name, model, data, seed);
        let d = row.code_size;
        crate::note!(
            "probe: {name}: linear probe {:.2}%, {K_NEIGHBOURS}-NN {:.2}%",
            100.0 * row.linear_probe,
            100.0 * row.knn
        );
        let pca = (d < PIXELS).then(|| truncate(&full, d));
        let pca_name = format!("pca-{d}");
        let pca_row = match &pca {
            Some(pca) => match rows.iter().find(|r| r.name == pca_name) {
                Some(r) => Some(r.clone()),
                None => {
                    let (r, pca_codes) = pca_row(pca, data, seed);
                    let file = format!("{pca_name}_map.svg");
                    let caption =
                        representations::code_map(&ctx.path(&file), &pca_name, &pca_codes, &data.test_labels.labels)?;
                    ctx.figure(&file, caption);
                    Some(r)
                }
            },
            None => None,
        };
        let file = format!("{name}_map.svg");
        let caption = representations::code_map(&ctx.path(&file), name, &codes, &data.test_labels.labels)?;
        ctx.figure(&file, caption);
        let file = format!("{name}_interpolation.png");
        let caption = representations::interpolation(&ctx.path(&file), model, name, pca.as_ref(), data)?;
        ctx.figure(&file, caption);
        let file = format!("{name}_per_digit.svg");
        let pair: Vec<&ProbeRow> = pca_row.iter().chain([&row]).collect();
        let caption = representations::per_digit_bars(&ctx.path(&file), name, &pair)?;
        ctx.figure(&file, caption);
        if let Some(r) = pca_row.filter(|r| !rows.iter().any(|x| x.name == r.name)) {
            rows.push(r);
        }
        rows.push(row);
        crate::memory::return_freed_memory();
    }
    let table: Vec<Value> = rows.iter().map(row_json).collect();
    ctx.outcome.extra.insert("probe".into(), Value::Array(table));
    ctx.outcome.extra.insert("probe_seconds".into(), start.elapsed().as_secs_f64().into());
    Ok(())
}

pub fn row_json(r: &ProbeRow) -> Value {
    json!({
        "name": r.name, "code_size": r.code_size, "linear_probe": r.linear_probe, "knn": r.knn,
        "test_mse": r.mse, "mse_per_class": r.mse_per_class.map(|m| m.to_vec()), "mean_abs_code": r.mean_abs_code,
    })
}
