//! `index.html`: every figure of every experiment next to its numbers and the seed report's,
//! in one self-contained page (images embedded as data URIs; no network, no scripts).

use super::report_tables::{mse_table, observations_html, probe_table, Seeds};
use super::Settings;
use anyhow::{Context as _, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The seed report's test MSE per pixel, and the PyTorch peer's where the seed gives none
/// (SPEC.md).
const REFERENCE: [(&str, f64, &str); 15] = [
    ("pca", 0.018, "seed"),
    ("ae", 0.014, "seed"),
    ("h64", 0.012, "seed"),
    ("h128", 0.0095, "seed"),
    ("h256", 0.0074, "seed"),
    ("sparse-0.001", 0.033, "seed"),
    ("sparse-0.1", 0.072, "seed"),
    ("sparse-1", 0.11, "seed"),
    ("denoise-0.1", 0.0082, "seed"),
    ("denoise-0.3", 0.0117, "seed"),
    ("denoise-0.7", 0.0216, "seed"),
    ("manifold", 0.034, "seed"),
    ("cae-unpool", 0.0040, "PyTorch peer"),
    ("cae-deconv", 0.0073, "PyTorch peer"),
    ("cae-deconv-unpool", 0.0025, "PyTorch peer"),
];

/// What each section shows, in a sentence.
fn explain(experiment: &str) -> &'static str {
    match experiment {
        "pca" => "PCA keeps the 30 directions of largest variance of the training images: the best linear 30-d code.",
        "ae" => "A deep autoencoder with the same 30-d code but nonlinear maps on both sides reconstructs with a lower error than PCA.",
        "hidden" => "A single hidden layer of h units: the more units, the more detail survives, and the error falls as h grows.",
        "non-digit" => "An autoencoder trained on digits has learned to draw digits: a picture of something else comes out as digit-like strokes.",
        "sparse" => "An L1 penalty on the 900-unit code makes most units silent; the error rises with lambda, the codes are far sparser than the plain AE's, and at large lambda the code dies and every output is the same.",
        "denoise" => "Trained to map noisy inputs to clean images, the denoising AE removes noise that the plain AE copies through; the error rises with sigma.",
        "manifold" => "An 8-d code: small perturbations of a digit's code decode to the same digit restyled, large ones leave the manifold of digits.",
        "cae-unpool" => "The convolutional encoder's pooling indices tell the decoder where each maximum was; unpooling puts values back there.",
        "cae-deconv" => "Transposed convolutions learn the upsampling instead of remembering positions.",
        "cae-deconv-unpool" => "Unpooling with indices followed by learned transposed convolutions: positions remembered, details learned.",
        "probe" => "Judging the codes, not only the pixels: a softmax classifier trained on each model's standardised codes (the linear probe) and a 5-nearest-neighbour vote over the 60,000 training codes, beside PCA with as many components and the raw pixels; straight lines between two digits in pixel, PCA and code space; each model's test codes on their two principal components; the test error per digit.",
        _ => "",
    }
}

pub(super) fn reference(model: &str) -> Option<(f64, &'static str)> {
    REFERENCE.iter().find(|(m, _, _)| *m == model).map(|&(_, v, who)| (v, who))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The report over one or more seeds: the tables give mean ± sd over them, the figures are
/// the first seed's.
pub fn write_report_seeds(dir: &Path, seeds: &Seeds, settings: &Settings, wall_seconds: f64) -> Result<()> {
    let outcomes = &seeds.runs[0];
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Autoencoders on MNIST</title><style>\
         body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}\
         figure{{display:inline-block;margin:.5em;vertical-align:top;max-width:480px}}img{{max-width:480px;image-rendering:pixelated}}\
         td:first-child{{text-align:left}}figcaption{{font-size:.85em}}.note{{background:#fff4d6;padding:.5em}}.ok{{color:#070}}.noise{{color:#850}}.no{{color:#b00}}</style></head><body>\
         <h1>Autoencoders on MNIST</h1><p>{} epoch{}, batch {}, Adam lr {}, seed{} {}, {} threads, device {}{}. Wall time {:.0} s.</p>",
        settings.epochs, if settings.epochs == 1 { "" } else { "s" }, settings.batch_size, settings.lr, if seeds.seeds.len() > 1 { "s" } else { "" },
        seeds.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "), settings.threads, settings.device,
        settings.train_limit.map_or(String::new(), |n| format!(", first {n} training images")), wall_seconds
    );
    if settings.epochs < 10 || settings.train_limit.is_some() {
        html.push_str("<p class=\"note\">A shortened run (fewer than the study's 10 epochs, or part of the training set): the numbers are not comparable with the seed's, and the orderings below may not hold yet.</p>");
    }
    html.push_str("<h2>Test MSE per pixel</h2>");
    html.push_str(&mse_table(seeds));
    html.push_str("<h2>The seed's observations, checked</h2>");
    html.push_str(&observations_html(seeds));
    for o in outcomes {
        let title = if o.experiment == "probe" { "Representations" } else { &o.experiment };
        let _ = write!(html, "<h2 id=\"{}\">{}</h2><p>{}</p>", escape(&o.experiment), title, explain(&o.experiment));
        if o.experiment == "probe" {
            html.push_str(&probe_table(seeds).unwrap_or_default());
        }
        for f in &o.figures {
            let path = o.dir.join(&f.file);
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read the figure {}", path.display()))?;
            let mime = if f.file.ends_with(".svg") { "image/svg+xml" } else { "image/png" };
            let _ = write!(
                html,
                "<figure><img alt=\"{}\" src=\"data:{mime};base64,{}\"><figcaption>{}</figcaption></figure>",
                escape(&f.file),
                base64(&bytes),
                escape(&f.caption)
            );
        }
    }
    html.push_str("</body></html>\n");
    crate::io::write_atomic(&dir.join("index.html"), html.as_bytes())
        .with_context(|| format!("cannot write the report into {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), want);
        }
    }
}
