//! Greyscale images in and out of PNG files, area-averaging resize, and a built-in test picture.
//!
//! Loading: any PNG (grey, grey+alpha, RGB, RGBA or palette; 1, 2, 4, 8 or 16 bits per
//! sample; interlaced or not) becomes a `GreyImage` of f32 in [0, 1]. The `png` crate's
//! `Transformations::EXPAND` turns palettes into RGB(A), sub-byte greys into 8 bits and tRNS
//! transparency into an alpha channel, so only four layouts remain, in 8 or 16 bits
//! (16-bit samples are big-endian and are divided by 65535, keeping their precision).
//!
//! - Colour becomes grey by ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B, applied to
//!   the stored (gamma-encoded) values, as PIL's `convert("L")` and torchvision do, so a
//!   photograph looks the same here as in the PyTorch study.
//! - Alpha is composited over *black*: MNIST digits are bright ink on a black background,
//!   so a transparent region means "no ink", and a transparent PNG of a white glyph becomes
//!   exactly the kind of input the autoencoders were trained on.
//!
//! Decoding is capped before any pixel is read (see `MAX_DECODED_BYTES`): the header gives
//! the size, and an oversized image is refused with an error instead of exhausting memory.
//!
//! Resizing is by area averaging: each output pixel is the exact area-weighted mean of the
//! input pixels it covers (see `area_resize`), which is correct for shrinking a 512x512
//! photograph to 28x28 (no aliasing, unlike nearest or bilinear sampling) and still sensible
//! when enlarging (each output pixel then lies within one or two input pixels).

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// The largest decoded pixel buffer (in the PNG's own sample format) we accept, and also
/// the memory limit handed to the decoder for its internal buffers. 64 MiB holds a
/// 4096x4096 RGBA photograph, far beyond anything a 28x28 study needs, while a hostile
/// header claiming 10000x10000 (100 MB even in 8-bit grey) is refused before decoding.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// The largest pixel count we accept: the f32 copy we make must also fit in 64 MiB.
pub const MAX_PIXELS: usize = MAX_DECODED_BYTES / 4;

/// A greyscale image: `pixels[y * w + x]`, row-major, values in [0, 1], 0 black, 1 white.
#[derive(Clone, Debug, PartialEq)]
pub struct GreyImage {
    pub w: usize,
    pub h: usize,
    pub pixels: Vec<f32>,
}

/// Loads any PNG file as greyscale (see the module comment for the conversion rules).
/// Anything but a regular file (or a symlink to one) is refused before it is opened: opening
/// a FIFO would block until something writes to it, and a directory or device is no image.
pub fn load_grey(path: &Path) -> Result<GreyImage> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{name}: cannot open the image; check the path exists and is readable"))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
        bail!("{name}: is {what}, not a PNG file; give the path of a PNG image");
    }
    let file = File::open(path)
        .with_context(|| format!("{name}: cannot open the image; check the path exists and is readable"))?;
    decode_grey(BufReader::new(file), &name)
}

/// Loads any PNG and area-resizes it to 28x28 (the whole image, stretched if not square),
/// ready to be fed to an MNIST autoencoder.
pub fn load_grey_28(path: &Path) -> Result<[f32; 784]> {
    let img = area_resize(&load_grey(path)?, 28, 28);
    let mut out = [0.0f32; 784];
    out.copy_from_slice(&img.pixels);
    Ok(out)
}

/// Decodes a PNG from any reader; `name` (a path or a description) is used in errors.
/// Every failure is a one-line error; no input makes it panic.
pub fn decode_grey<R: Read>(reader: R, name: &str) -> Result<GreyImage> {
    let mut decoder = png::Decoder::new_with_limits(reader, png::Limits { bytes: MAX_DECODED_BYTES });
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| decode_error(name, e))?;
    // The png crate (0.17.16, and 0.18.1 too: image-rs/image-png#694) panics, slicing out of
    // bounds in `create_rgba_palette`, when it expands a palette image whose PLTE chunk is not
    // a whole number of RGB entries or holds more than 256. The PNG spec (11.2.3) allows 1 to
    // 256 entries of 3 bytes, so refuse anything else here, before a pixel is expanded.
    // Found by fuzzing (fuzz/regressions/png/).
    if reader.info().color_type == png::ColorType::Indexed {
        if let Some(plte) = reader.info().palette.as_deref() {
            if plte.is_empty() || plte.len() % 3 != 0 || plte.len() > 3 * 256 {
                bail!(
                    "{name}: cannot decode PNG (its PLTE chunk has {} bytes, not 1 to 256 \
                     RGB entries of 3 bytes); the file is not a valid PNG, re-export it",
                    plte.len()
                );
            }
        }
    }

    let (w, h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    // read_info has checked that this product does not overflow.
    let bytes = reader.output_buffer_size();
    if bytes > MAX_DECODED_BYTES || w.saturating_mul(h) > MAX_PIXELS {
        bail!(
            "{name}: the image is {w}x{h} pixels ({} MiB decoded), over the {} MiB cap; \
             shrink it (e.g. below 4096x4096) before loading",
            bytes >> 20,
            MAX_DECODED_BYTES >> 20
        );
    }
    let mut buf = vec![0u8; bytes];
    let frame = reader.next_frame(&mut buf).map_err(|e| decode_error(name, e))?;
    let (color, depth) = (frame.color_type, frame.bit_depth);
    // The frame's own size, not the header's: for an animated PNG whose first frame is a
    // sub-rectangle they differ, and only the frame's size matches the buffer we index.
    let (w, h) = (frame.width as usize, frame.height as usize);
    let buf = &buf[..frame.buffer_size()];

    // After EXPAND, samples are 8 or 16 bits; read sample i of the buffer as [0, 1].
    let sample: Box<dyn Fn(usize) -> f32> = match depth {
        png::BitDepth::Eight => Box::new(|i| buf[i] as f32 / 255.0),
        png::BitDepth::Sixteen => Box::new(|i| u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]) as f32 / 65535.0),
        other => bail!("{name}: unexpected {other:?}-bit samples after expansion; re-save the PNG"),
    };
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => bail!("{name}: palette not expanded; re-save the PNG as RGB"),
    };
    let luma = |s: usize| 0.299 * sample(s) + 0.587 * sample(s + 1) + 0.114 * sample(s + 2);
    let pixels = (0..w * h)
        .map(|p| {
            let s = p * channels;
            let v = match channels {
                1 => sample(s),
                2 => sample(s) * sample(s + 1), // over black: v * alpha + 0 * (1 - alpha)
                3 => luma(s),
                _ => luma(s) * sample(s + 3),
            };
            v.clamp(0.0, 1.0) // luma weights sum to 1 only up to rounding
        })
        .collect();
    Ok(GreyImage { w, h, pixels })
}

fn decode_error(name: &str, e: png::DecodingError) -> anyhow::Error {
    let hint = match e {
        png::DecodingError::LimitsExceeded => {
            "the image is too large to decode within \
            the 64 MiB cap; shrink it before loading"
        }
        png::DecodingError::IoError(_) => "the file is truncated or unreadable; re-export it",
        _ => "the file is not a valid PNG; check its format or re-export it as PNG",
    };
    // The png crate's messages are single lines; keep ours one line too.
    let detail = e.to_string().replace('\n', " ");
    anyhow!("{name}: cannot decode PNG ({detail}); {hint}")
}

/// Area-averaging resize to `ow` x `oh`.
///
/// Put both images on the same unit square. Output pixel x covers input columns in
/// [x * w / ow, (x + 1) * w / ow); its value is the mean of the input over that rectangle,
/// i.e. the sum over input pixels of (overlap area) * value, divided by the output pixel's
/// area. The rectangle is a product of an x-interval and a y-interval, so the weights
/// factor: resize the rows, then the columns. To keep the weights exact we measure lengths
/// in units of 1/ow of an input pixel: output pixel x spans [x * w, (x + 1) * w) and input
/// pixel i spans [i * ow, (i + 1) * ow), so overlaps are integers and each weight is
/// overlap / w. Shrinking 56 -> 28 gives weights 1/2, 1/2; enlarging 1 -> 28 gives one
/// weight of 1 (a constant image), and 3 -> 28 makes the output pixels that straddle two
/// input pixels a weighted mix of the two.
pub fn area_resize(img: &GreyImage, ow: usize, oh: usize) -> GreyImage {
    assert!(img.w > 0 && img.h > 0 && ow > 0 && oh > 0, "area_resize: empty image {}x{} -> {ow}x{oh}", img.w, img.h);
    assert_eq!(img.pixels.len(), img.w * img.h, "area_resize: pixel count != w * h");
    let wx = area_weights(img.w, ow);
    let wy = area_weights(img.h, oh);
    // Pass 1: each input row resized horizontally, h x ow, in f64 to keep sums exact-ish.
    let mut rows = vec![0.0f64; img.h * ow];
    for y in 0..img.h {
        for (x, taps) in wx.iter().enumerate() {
            rows[y * ow + x] = taps.iter().map(|&(i, wt)| wt * img.pixels[y * img.w + i] as f64).sum();
        }
    }
    // Pass 2: columns resized vertically, oh x ow.
    let mut pixels = vec![0.0f32; oh * ow];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..ow {
            pixels[y * ow + x] = taps.iter().map(|&(j, wt)| wt * rows[j * ow + x]).sum::<f64>() as f32;
        }
    }
    GreyImage { w: ow, h: oh, pixels }
}

/// For each of `n_out` output pixels along one axis, the (input index, weight) pairs of the
/// input pixels it overlaps, weights summing to 1 (see `area_resize`).
fn area_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f64)>> {
    (0..n_out)
        .map(|o| {
            let (lo, hi) = (o * n_in, (o + 1) * n_in); // in units of 1/n_out input pixel
            let first = lo / n_out;
            let last = (hi - 1) / n_out; // the input pixel holding the last covered point
            (first..=last)
                .map(|i| {
                    let overlap = hi.min((i + 1) * n_out) - lo.max(i * n_out);
                    (i, overlap as f64 / n_in as f64)
                })
                .collect()
        })
        .collect()
}

/// Saves a greyscale image as an 8-bit grey PNG, atomically. Values are clamped to [0, 1]
/// (NaN becomes 0, black) and rounded to the nearest of 256 levels, so saving `k / 255.0`
/// and loading gives back exactly `k / 255.0`.
pub fn save_grey_png(path: &Path, w: usize, h: usize, pixels: &[f32]) -> Result<()> {
    save_grey_png_scaled(path, w, h, pixels, 1)
}

/// As `save_grey_png`, enlarged `scale` times by pixel replication (nearest neighbour), so a
/// 28x28 digit or a 3x3 kernel is big enough to see and its pixels stay crisp squares.
pub fn save_grey_png_scaled(path: &Path, w: usize, h: usize, pixels: &[f32], scale: usize) -> Result<()> {
    assert_eq!(pixels.len(), w * h, "save_grey_png: {} pixels for a {w}x{h} image", pixels.len());
    assert!(scale >= 1, "save_grey_png: scale must be at least 1");
    let name = path.display();
    let (sw, sh) = (w * scale, h * scale);
    if sw == 0 || sh == 0 || sw > u32::MAX as usize || sh > u32::MAX as usize {
        bail!("{name}: cannot save a {sw}x{sh} image as PNG; width and height must be 1..2^32");
    }
    let mut data = Vec::with_capacity(sw * sh);
    for y in 0..sh {
        for x in 0..sw {
            let v = pixels[(y / scale) * w + x / scale];
            let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
            data.push((v * 255.0).round() as u8);
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, sw as u32, sh as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().with_context(|| format!("{name}: PNG encoding failed"))?;
        writer.write_image_data(&data).with_context(|| format!("{name}: PNG encoding failed"))?;
    }
    crate::io::write_atomic(path, &bytes)
        .with_context(|| format!("{name}: cannot write the PNG; check the directory exists and is writable"))
}

/// A deterministic 28x28 picture that is not a digit: a smiley face (a ring, two eyes and a
/// smile), bright on black like MNIST, for the "what does a digit AE make of a non-digit?"
/// experiment when no photograph is at hand. Edges are anti-aliased by 4x4 supersampling:
/// each pixel is the fraction of its 16 sample points that fall inside a shape.
pub fn builtin_non_digit() -> [f32; 784] {
    const SS: usize = 4;
    let inside = |x: f32, y: f32| -> bool {
        let (cx, cy) = (14.0f32, 14.0f32);
        let r = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
        let ring = (9.8..=11.8).contains(&r);
        let eye = |ex: f32| ((x - ex).powi(2) + (y - 10.5).powi(2)).sqrt() <= 1.8;
        // The smile: the lower part of a circle of radius 6 around (14, 14).
        let smile = (5.0..=6.6).contains(&r) && y >= 16.0;
        ring || eye(10.5) || eye(17.5) || smile
    };
    let mut out = [0.0f32; 784];
    for py in 0..28 {
        for px in 0..28 {
            let mut hits = 0;
            for sy in 0..SS {
                for sx in 0..SS {
                    // Sample points at the centres of a 4x4 sub-grid of the pixel.
                    let x = px as f32 + (sx as f32 + 0.5) / SS as f32;
                    let y = py as f32 + (sy as f32 + 0.5) / SS as f32;
                    hits += inside(x, y) as usize;
                }
            }
            out[py * 28 + px] = hits as f32 / (SS * SS) as f32;
        }
    }
    out
}
