//! PNG loading of every colour type and depth, saving, refusals and fuzzing.

mod common;
use autoencoders::figures::png_io::{
    builtin_non_digit, decode_grey, load_grey, load_grey_28, save_grey_png, save_grey_png_scaled, GreyImage,
};
use proptest::prelude::*;
use std::path::PathBuf;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("figures_png_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Encodes a PNG with the png crate: `palette`/`trns` only where the colour type needs them.
fn encode(
    w: u32,
    h: u32,
    ct: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
    trns: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(ct);
        e.set_depth(depth);
        if let Some(p) = palette {
            e.set_palette(p.to_vec());
        }
        if let Some(t) = trns {
            e.set_trns(t.to_vec());
        }
        let mut wr = e.write_header().unwrap();
        wr.write_image_data(data).unwrap();
    }
    out
}

fn decode(bytes: &[u8]) -> GreyImage {
    decode_grey(bytes, "test.png").unwrap()
}

#[test]
#[rustfmt::skip] // a table reads best one case per line
fn every_colour_type_and_depth_gives_bt601_grey() {
    use png::{BitDepth::*, ColorType::*};
    let (r, g, b) = (0.299f32, 0.587f32, 0.114f32);
    let cases: Vec<(&str, Vec<u8>, Vec<f32>)> = vec![
        ("grey8", encode(3, 1, Grayscale, Eight, &[0, 128, 255], None, None), vec![0.0, 128.0 / 255.0, 1.0]),
        ("grey16", encode(3, 1, Grayscale, Sixteen, &[0, 0, 0x80, 0x00, 0xff, 0xff], None, None), vec![0.0, 32768.0 / 65535.0, 1.0]),
        // 1-bit, 10 pixels 1011000011 packed MSB first: EXPAND scales 1 to 255.
        ("grey1", encode(10, 1, Grayscale, One, &[0b1011_0000, 0b1100_0000], None, None), vec![1., 0., 1., 1., 0., 0., 0., 0., 1., 1.]),
        // 2-bit 0..3 and 4-bit values scale by 255/3 and 255/15.
        ("grey2", encode(4, 1, Grayscale, Two, &[0b00_01_10_11], None, None), vec![0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]),
        ("grey4", encode(2, 1, Grayscale, Four, &[0x5f], None, None), vec![5.0 / 15.0, 1.0]),
        ("rgb8", encode(4, 1, Rgb, Eight, &[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255], None, None), vec![r, g, b, 1.0]),
        ("rgb16", encode(2, 1, Rgb, Sixteen, &[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0], None, None), vec![r, g]),
        // Alpha composites over black: value * alpha.
        ("rgba8", encode(2, 1, Rgba, Eight, &[255, 255, 255, 128, 255, 0, 0, 255], None, None), vec![128.0 / 255.0, r]),
        ("rgba16", encode(1, 1, Rgba, Sixteen, &[0, 0, 0xff, 0xff, 0, 0, 0x80, 0x00], None, None), vec![g * 32768.0 / 65535.0]),
        ("grey_alpha8", encode(2, 1, GrayscaleAlpha, Eight, &[200, 51, 255, 0], None, None), vec![200.0 / 255.0 * 51.0 / 255.0, 0.0]),
        ("grey_alpha16", encode(1, 1, GrayscaleAlpha, Sixteen, &[0xff, 0xff, 0x80, 0x00], None, None), vec![32768.0 / 65535.0]),
        ("palette8", encode(3, 1, Indexed, Eight, &[0, 1, 2], Some(&[0, 0, 0, 255, 0, 0, 0, 0, 255]), None), vec![0.0, r, b]),
        // Palette with tRNS: entry 1 half transparent, entry 2 opaque (implied by the short table).
        ("palette_trns", encode(3, 1, Indexed, Eight, &[0, 1, 2], Some(&[0, 0, 0, 255, 0, 0, 0, 0, 255]), Some(&[255, 128])), vec![0.0, r * 128.0 / 255.0, b]),
        ("palette1", encode(2, 1, Indexed, One, &[0b0100_0000], Some(&[0, 0, 0, 255, 255, 255]), None), vec![0.0, 1.0]),
        // Grey with a tRNS key: white declared transparent becomes black (no ink).
        ("grey_trns", encode(2, 1, Grayscale, Eight, &[255, 100], None, Some(&[0, 255])), vec![0.0, 100.0 / 255.0]),
    ];
    for (name, bytes, want) in cases {
        let img = decode(&bytes);
        assert_eq!((img.w * img.h, img.pixels.len()), (want.len(), want.len()), "{name}");
        for (i, (g, w)) in img.pixels.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-6, "{name} pixel {i}: got {g}, want {w}");
        }
    }
}

#[test]
fn save_then_load_gives_the_same_8bit_values() {
    let dir = tmp_dir("roundtrip");
    let (w, h) = (17, 5); // odd sizes catch row-stride mistakes
    let pixels: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 256) as f32 / 255.0).collect();
    let p = dir.join("r.png");
    save_grey_png(&p, w, h, &pixels).unwrap();
    let img = load_grey(&p).unwrap();
    assert_eq!((img.w, img.h), (w, h));
    assert_eq!(img.pixels, pixels, "k/255 must come back exactly");

    // Clamping: below 0 is black, above 1 white, NaN black; rounding to the nearest level.
    save_grey_png(&p, 5, 1, &[-1.0, 2.0, f32::NAN, 0.5, 0.2 / 255.0]).unwrap();
    assert_eq!(load_grey(&p).unwrap().pixels, vec![0.0, 1.0, 0.0, 128.0 / 255.0, 0.0]);

    // Nearest-neighbour upscaling replicates each pixel into a scale x scale square.
    save_grey_png_scaled(&p, 2, 2, &[0.0, 1.0, 1.0, 0.0], 3).unwrap();
    let img = load_grey(&p).unwrap();
    assert_eq!((img.w, img.h), (6, 6));
    for y in 0..6 {
        for x in 0..6 {
            let want = if (x / 3 + y / 3) % 2 == 1 { 1.0 } else { 0.0 };
            assert_eq!(img.pixels[y * 6 + x], want, "({x}, {y})");
        }
    }
    assert!(save_grey_png(&dir.join("no/such/dir.png"), 1, 1, &[0.0]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_grey(&bytes[..], "fuzz");
        // The same bytes after a PNG signature get past the first check.
        let mut sig = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        sig.extend_from_slice(&bytes);
        let _ = decode_grey(&sig[..], "fuzz");
    }

    #[test]
    fn corrupted_pngs_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let pixels: Vec<u8> = (0..28 * 28).map(|i| (i * 13 % 256) as u8).collect();
        let mut bytes = encode(28, 28, png::ColorType::Grayscale, png::BitDepth::Eight, &pixels, None, None);
        for (pos, val) in flips {
            let n = bytes.len();
            bytes[pos % n] = val;
        }
        let _ = decode_grey(&bytes[..], "fuzz");
    }
}

fn one_line_err(r: anyhow::Result<GreyImage>, name: &str, needle: &str) {
    let msg = format!("{:#}", r.expect_err("expected an error"));
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert!(msg.contains(name), "does not name the file: {msg}");
    assert!(msg.contains(needle), "does not mention {needle:?}: {msg}");
}

#[test]
fn not_a_png_and_truncated_files_are_one_line_errors() {
    let dir = tmp_dir("bad");
    let p = dir.join("text.png");
    std::fs::write(&p, b"hello, this is not an image").unwrap();
    one_line_err(load_grey(&p), "text.png", "not a valid PNG");
    one_line_err(load_grey(&dir.join("missing.png")), "missing.png", "cannot open");

    let pixels: Vec<u8> = (0..28 * 28).map(|i| (i % 251) as u8).collect();
    let full = encode(28, 28, png::ColorType::Grayscale, png::BitDepth::Eight, &pixels, None, None);
    // The IEND chunk is the last 12 bytes; cutting anywhere before it loses image data.
    for cut in 0..full.len() - 12 {
        let r = decode_grey(&full[..cut], "cut.png");
        assert!(r.is_err(), "prefix of {cut} of {} bytes decoded", full.len());
        assert!(!format!("{:#}", r.unwrap_err()).contains('\n'));
    }
    // Cutting only into IEND may decode, but then every pixel must be right.
    for cut in full.len() - 12..full.len() {
        if let Ok(img) = decode_grey(&full[..cut], "cut.png") {
            assert_eq!(img.pixels, pixels.iter().map(|&v| v as f32 / 255.0).collect::<Vec<_>>());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&common::crc32(&body).to_be_bytes());
    out
}

#[test]
fn huge_images_are_refused_quickly() {
    // A real 10000x10000 grey PNG of zero rows, streamed through the encoder (it compresses
    // to about 100 kB); decoding it would need 100 MB.
    let dir = tmp_dir("huge");
    let p = dir.join("huge.png");
    {
        let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        let mut e = png::Encoder::new(f, 10_000, 10_000);
        e.set_color(png::ColorType::Grayscale);
        e.set_compression(png::Compression::Fast);
        let mut w = e.write_header().unwrap().into_stream_writer().unwrap();
        let row = vec![0u8; 10_000];
        for _ in 0..10_000 {
            std::io::Write::write_all(&mut w, &row).unwrap();
        }
        w.finish().unwrap();
    }
    assert!(std::fs::metadata(&p).unwrap().len() < 2_000_000);
    // Refused from the header: tests/data_alloc.rs shows nothing near 100 MB is allocated.
    one_line_err(load_grey(&p), "huge.png", "10000x10000");

    // A bare header claiming 2^31-1 x 2^31-1 RGBA16 pixels (no image data at all).
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    ihdr.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]); // depth 16, RGBA, deflate, adaptive, no interlace
    let mut absurd = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    absurd.extend(chunk(b"IHDR", &ihdr));
    absurd.extend(chunk(b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1]));
    absurd.extend(chunk(b"IEND", &[]));
    let r = decode_grey(&absurd[..], "absurd.png");
    let msg = format!("{:#}", r.unwrap_err());
    assert!(msg.contains("absurd.png") && !msg.contains('\n'), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shared_photographs_load_and_resize() {
    let Some(dir) = common::images_dir(&["astronaut.png", "camera.png"]) else { return };
    for (name, mode) in [("astronaut.png", "RGB"), ("camera.png", "grey")] {
        let p = dir.join(name);
        let img = load_grey(&p).unwrap();
        assert_eq!((img.w, img.h), (512, 512), "{name} ({mode})");
        assert!(img.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        let d = load_grey_28(&p).unwrap();
        // Sums in f64: an f32 running sum of 262,144 pixels drifts by more than the tolerance.
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / 784.0;
        let full_mean = img.pixels.iter().map(|&v| v as f64).sum::<f64>() / img.pixels.len() as f64;
        assert!((mean - full_mean).abs() < 1e-4, "{name}: resize changed the mean");
        let (lo, hi) = d.iter().fold((1f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi - lo > 0.3, "{name}: a photograph should keep some contrast at 28x28");
    }
}

#[test]
fn builtin_non_digit_is_a_deterministic_antialiased_smiley() {
    let a = builtin_non_digit();
    assert_eq!(a, builtin_non_digit());
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(a.contains(&1.0) && a.contains(&0.0));
    assert!(a.iter().filter(|&&v| v > 0.0 && v < 1.0).count() > 20, "edges should be anti-aliased");
    let mean = a.iter().sum::<f32>() / 784.0;
    assert!((0.1..0.45).contains(&mean), "mean ink {mean}");
    for y in 0..28 {
        for x in 0..28 {
            assert_eq!(a[y * 28 + x], a[y * 28 + 27 - x], "mirror symmetry at ({x}, {y})");
        }
    }
    // Not symmetric top to bottom: the eyes are above the smile.
    assert!((0..784).any(|i| a[i] != a[(27 - i / 28) * 28 + i % 28]));
}
