//! The IDX reader on small synthetic files: good files raw and gzipped, and one test per kind
//! of bad input, each asserting a one-line error that names the problem.

mod mnist_files;

use autoencoders::data::{
    find_file, locate, missing_files, read_images, read_labels, resolve_data_dir, Entry, IdxFile, Mnist, FILES,
};
use mnist_files::*;
use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn raw_and_gzip_give_the_same_images_and_labels() {
    let d = tmp();
    let img = images_file(3, 2, 4);
    let lab = labels_file(&[3, 1, 4]);
    let raw = read_images(&write(d.path(), "i", &img)).unwrap();
    let gz = read_images(&write(d.path(), "i.gz", &gzip(&img))).unwrap();
    assert_eq!(raw, gz);
    assert_eq!((raw.n, raw.rows, raw.cols), (3, 2, 4));
    assert_eq!(raw.pixels, &img[16..]);
    let raw_l = read_labels(&write(d.path(), "l", &lab)).unwrap();
    let gz_l = read_labels(&write(d.path(), "l.gz", &gzip(&lab))).unwrap();
    assert_eq!(raw_l, gz_l);
    assert_eq!(raw_l.labels, [3, 1, 4]);
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let d = tmp();
    let img = images_file(2, 3, 3);
    // Gzipped bytes under a plain name, plain bytes under a .gz name: both read.
    let a = read_images(&write(d.path(), "plain-name", &gzip(&img))).unwrap();
    let b = read_images(&write(d.path(), "looks.gz", &img)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn batches_scale_to_unit_interval() {
    let d = tmp();
    let mut img = images_file(3, 1, 2);
    img[16..].copy_from_slice(&[0, 255, 51, 102, 153, 204]);
    let im = read_images(&write(d.path(), "i", &img)).unwrap();
    assert_eq!(im.to_f32(1..3), [0.2, 0.4, 0.6, 0.8]);
    assert_eq!(im.to_f32(0..1), [0.0, 1.0]);
    let mut out = vec![9.0; 4];
    im.batch_into(&[2, 0], &mut out);
    assert_eq!(out, [0.6, 0.8, 0.0, 1.0]);
    assert_eq!(im.image(1), &[51, 102]);
}

#[test]
fn missing_file() {
    let d = tmp();
    expect_err(read_images(&d.path().join("nope-idx3-ubyte")), &["nope-idx3-ubyte", "cannot open"]);
}

#[test]
fn empty_file() {
    let d = tmp();
    expect_err(read_images(&write(d.path(), "e", &[])), &["empty"]);
    // An empty gzip member decompresses to nothing: a truncated header.
    expect_err(read_images(&write(d.path(), "e.gz", &gzip(&[]))), &["truncated header"]);
}

#[test]
fn wrong_magic() {
    let d = tmp();
    let mut f = images_file(1, 2, 2);
    f[0] = 0x50; // e.g. a PNG or text file
    expect_err(read_images(&write(d.path(), "m", &f)), &["magic", "not an IDX file"]);
}

#[test]
fn wrong_data_type() {
    let d = tmp();
    let f = idx(0x0D, &[1, 1, 1], &[0, 0, 0, 0]);
    expect_err(read_images(&write(d.path(), "t", &f)), &["data type 0x0d", "f32", "only 0x08"]);
}

#[test]
fn wrong_number_of_dimensions() {
    let d = tmp();
    let p = write(d.path(), "l", &labels_file(&[1, 2]));
    expect_err(read_images(&p), &["1-dimensional", "labels file"]);
    let p = write(d.path(), "i", &images_file(1, 1, 1));
    expect_err(read_labels(&p), &["3-dimensional", "images file"]);
}

#[test]
fn truncated_header() {
    let d = tmp();
    let f = images_file(1, 2, 2);
    expect_err(read_images(&write(d.path(), "a", &f[..3])), &["truncated header", "3 bytes"]);
    expect_err(read_images(&write(d.path(), "b", &f[..10])), &["truncated header", "10 bytes", "needs 16"]);
    expect_err(read_images(&write(d.path(), "c.gz", &gzip(&f[..10]))), &["truncated header"]);
}

#[test]
fn truncated_payload() {
    let d = tmp();
    let f = images_file(2, 2, 2);
    let msg = expect_err(read_images(&write(d.path(), "x-idx3", &f[..16 + 5])), &["truncated", "x-idx3"]);
    assert!(msg.contains("header says 2x2x2 = 8 bytes, file has 5"), "{msg}");
    assert!(msg.contains("re-download"), "{msg}");
    let msg = expect_err(read_images(&write(d.path(), "x.gz", &gzip(&f[..16 + 5]))), &["truncated"]);
    assert!(msg.contains("decompressed file has 5"), "{msg}");
}

#[test]
fn trailing_bytes() {
    let d = tmp();
    let mut f = images_file(2, 2, 2);
    f.extend_from_slice(&[1, 2, 3]);
    expect_err(read_images(&write(d.path(), "t", &f)), &["trailing", "3 extra"]);
    expect_err(read_images(&write(d.path(), "t.gz", &gzip(&f))), &["trailing", "3 more"]);
}

#[test]
fn dims_whose_product_overflows() {
    let d = tmp();
    let f = idx(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[]);
    expect_err(read_images(&write(d.path(), "o", &f)), &["overflow"]);
}

#[test]
fn dims_above_the_cap() {
    let d = tmp();
    let f = idx(0x08, &[1_000_000, 1000, 1000], &[1, 2, 3]);
    expect_err(read_images(&write(d.path(), "big", &f)), &["limit", "1000000x1000x1000"]);
}

#[test]
fn dims_claiming_hundreds_of_megabytes_fail_fast() {
    // 1,000,000 x 28 x 28 = 784 MB: under the cap, so only the file length can refute it.
    // (tests/alloc.rs checks that no large allocation is made.)
    let d = tmp();
    let f = idx(0x08, &[1_000_000, 28, 28], &[0; 100]);
    for (name, bytes) in [("big", f.clone()), ("big.gz", gzip(&f))] {
        // That nothing of the claimed size is allocated is tests/data_alloc.rs's to show.
        expect_err(read_images(&write(d.path(), name, &bytes)), &["truncated", "784000000 bytes"]);
    }
}

#[test]
fn zero_images_is_a_valid_file_but_not_a_valid_mnist() {
    let d = tmp();
    let im = read_images(&write(d.path(), "z", &images_file(0, 28, 28))).unwrap();
    assert_eq!((im.n, im.pixels.len()), (0, 0));
    assert!(read_labels(&write(d.path(), "zl", &labels_file(&[]))).unwrap().is_empty());

    mini_mnist(d.path());
    write(d.path(), "train-images-idx3-ubyte.gz", &gzip(&images_file(0, 4, 3)));
    write(d.path(), "train-labels-idx1-ubyte.gz", &gzip(&labels_file(&[])));
    expect_err(Mnist::load(d.path()), &["training set has no images"]);
}

#[test]
fn zero_rows_or_cols_is_refused() {
    let d = tmp();
    expect_err(read_images(&write(d.path(), "r", &images_file(5, 0, 28))), &["0x28", "empty"]);
    expect_err(read_images(&write(d.path(), "c", &images_file(5, 28, 0))), &["28x0", "empty"]);
}

#[test]
fn corrupt_gzip_stream() {
    let d = tmp();
    let mut g = gzip(&images_file(20, 8, 8));
    let mid = g.len() / 2;
    for b in &mut g[mid..mid + 8] {
        *b ^= 0xA5;
    }
    expect_err(read_images(&write(d.path(), "c.gz", &g)), &["c.gz", "corrupt or truncated gzip data"]);
    // A damaged gzip header (compression method 8 = deflate is the only one there is).
    let mut g = gzip(&images_file(2, 2, 2));
    g[2] = 7;
    expect_err(read_images(&write(d.path(), "h.gz", &g)), &["h.gz", "gzip"]);
    // Cut short mid-stream.
    let g = gzip(&images_file(20, 8, 8));
    expect_err(read_images(&write(d.path(), "cut.gz", &g[..g.len() / 2])), &["truncated"]);
}

#[test]
fn gzip_with_garbage_after() {
    let d = tmp();
    let mut g = gzip(&images_file(2, 2, 2));
    g.extend_from_slice(b"garbage");
    expect_err(read_images(&write(d.path(), "g.gz", &g)), &["garbage after the end of the gzip stream"]);
}

#[test]
fn no_input_panics() {
    // Every truncation and every single-byte corruption of a small file, raw and gzipped:
    // the reader must return (Ok or Err), never panic.
    let d = tmp();
    let raw = images_file(2, 3, 3);
    let gz = gzip(&raw);
    let p = d.path().join("f");
    for base in [&raw, &gz] {
        for cut in 0..base.len() {
            std::fs::write(&p, &base[..cut]).unwrap();
            let _ = read_images(&p);
        }
        for i in 0..base.len() {
            for flip in [0x01, 0x80, 0xFF] {
                let mut b = base.clone();
                b[i] ^= flip;
                std::fs::write(&p, &b).unwrap();
                let _ = read_images(&p);
                let _ = read_labels(&p);
            }
        }
    }
}

#[test]
fn mnist_load_reads_a_complete_directory() {
    let d = tmp();
    mini_mnist(d.path());
    let m = Mnist::load(d.path()).unwrap();
    assert_eq!((m.train.n, m.test.n, m.train.rows, m.train.cols), (5, 3, 4, 3));
    assert_eq!(m.test_labels.labels, [7, 2, 1]);
    assert!(missing_files(d.path()).is_empty());
}

#[test]
fn mnist_load_prefers_gz_and_accepts_raw() {
    let d = tmp();
    mini_mnist(d.path());
    assert_eq!(find_file(d.path(), "train-images-idx3-ubyte").unwrap(), d.path().join("train-images-idx3-ubyte.gz"));
    assert_eq!(find_file(d.path(), "t10k-images-idx3-ubyte").unwrap(), d.path().join("t10k-images-idx3-ubyte"));
    // With both present, the .gz is read: make the raw one unreadable garbage to prove it.
    write(d.path(), "train-images-idx3-ubyte", b"junk");
    Mnist::load(d.path()).unwrap();
}

#[test]
fn mnist_load_lists_missing_files() {
    let d = tmp();
    mini_mnist(d.path());
    std::fs::remove_file(d.path().join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::remove_file(d.path().join("train-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(missing_files(d.path()), ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"]);
    expect_err(Mnist::load(d.path()), &["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "--data", "MNIST_DIR"]);
}

#[test]
fn images_and_labels_disagreeing_in_count() {
    let d = tmp();
    mini_mnist(d.path());
    write(d.path(), "t10k-labels-idx1-ubyte", &labels_file(&[7, 2]));
    expect_err(Mnist::load(d.path()), &["t10k-labels-idx1-ubyte", "2 labels", "3 images"]);
}

#[test]
fn train_and_test_image_sizes_disagreeing() {
    let d = tmp();
    mini_mnist(d.path());
    write(d.path(), "t10k-images-idx3-ubyte", &images_file(3, 3, 4));
    expect_err(Mnist::load(d.path()), &["3x4", "4x3"]);
}

#[test]
fn labels_outside_0_to_9() {
    let d = tmp();
    mini_mnist(d.path());
    write(d.path(), "t10k-labels-idx1-ubyte", &labels_file(&[7, 12, 1]));
    expect_err(Mnist::load(d.path()), &["label 12 at index 1"]);
}

#[test]
fn data_dir_flag_wins() {
    // Only the flag is tested: setting MNIST_DIR would race with other tests in this process.
    assert_eq!(resolve_data_dir(Some(Path::new("/x/y"))), Path::new("/x/y"));
}

#[test]
fn ensure_mnist_with_a_complete_named_dir_does_not_download() {
    let d = tmp();
    mini_mnist_sized(d.path(), 28, 28);
    // No server exists; a download attempt would fail (and the files are present anyway).
    let m = autoencoders::data::ensure_mnist(Some(d.path())).unwrap();
    assert_eq!(m.train.n, 5);
}

#[test]
fn ensure_mnist_refuses_a_named_dir_that_does_not_exist() {
    // Must fail before any network access: the directory check comes first.
    let d = tmp();
    let missing = d.path().join("typo");
    expect_err(autoencoders::data::ensure_mnist(Some(&missing)), &["typo", "no such directory"]);
    assert!(!missing.exists());
}

#[test]
fn ensure_mnist_insists_on_28x28() {
    let d = tmp();
    mini_mnist(d.path());
    expect_err(autoencoders::data::ensure_mnist(Some(d.path())), &["images are 4x3", "take 28x28", "--data"]);
}

#[test]
fn a_multi_member_gzip_is_read_whole() {
    // What `cat a.gz b.gz` makes, and `gunzip` reads: the contents of a, then of b. Cut
    // inside the header, and again inside the pixels.
    let d = tmp();
    let f = images_file(4, 5, 5);
    let members = [gzip(&f[..7]), gzip(&f[7..50]), gzip(&f[50..])].concat();
    assert_eq!(
        read_images(&write(d.path(), "m.gz", &members)).unwrap(),
        read_images(&write(d.path(), "r", &f)).unwrap()
    );
    // A second member after a complete file is trailing data, as in a single member.
    let twice = [gzip(&f), gzip(&[1, 2])].concat();
    expect_err(read_images(&write(d.path(), "t.gz", &twice)), &["trailing", "2 more"]);
    // A damaged second member is corruption, not garbage.
    let mut bad = [gzip(&f[..50]), gzip(&f[50..])].concat();
    let at = gzip(&f[..50]).len() + 12;
    bad[at] ^= 0x55;
    expect_err(read_images(&write(d.path(), "b.gz", &bad)), &["corrupt or truncated gzip data"]);
}

/// A reader that counts the bytes taken from it, into a counter shared with the test.
struct Counted<'a> {
    bytes: &'a [u8],
    taken: Rc<Cell<u64>>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.bytes.read(buf)?;
        self.taken.set(self.taken.get() + k as u64);
        Ok(k)
    }
}

/// Opens the four files (train images, train labels, test images, test labels) from memory
/// through counting readers, and checks them as `Mnist` does; returns the outcome and the
/// compressed bytes taken from all four.
fn from_counted(files: [&[u8]; 4], shape: Option<(usize, usize)>) -> (anyhow::Result<Mnist>, u64) {
    let taken = Rc::new(Cell::new(0));
    let open = |i: usize| {
        let reader = Box::new(Counted { bytes: files[i], taken: taken.clone() });
        IdxFile::from_reader(reader, files[i].len() as u64, Path::new(FILES[i]), [3, 1, 3, 1][i], "x")
    };
    let result = (|| Mnist::from_files([open(0)?, open(1)?, open(2)?, open(3)?], shape))();
    (result, taken.get())
}

#[test]
fn gzip_bombs_are_refused_from_their_headers() {
    // #17: each file a valid header claiming 2,000,000,000 x 1 x 1 images (or labels), then
    // 2 GiB of gzipped zeros: 2 MB each. Refused before any payload is read (the header alone
    // claims more than the 1 GiB a file may hold): the decoders together take at most their
    // first buffer of compressed bytes (8 KiB each).
    let images = gzip_bomb(&[2_000_000_000, 1, 1], 2048);
    let labels = gzip_bomb(&[2_000_000_000], 2048);
    assert!(images.len() < 4 << 20, "the bomb is {} bytes on disk", images.len());
    let (result, taken) = from_counted([&images, &labels, &images, &labels], Some((28, 28)));
    expect_err(result, &["train-images-idx3-ubyte", "2000000000x1x1", "limit", "corrupt"]);
    assert!(taken <= 4 * 8192, "read {taken} compressed bytes before refusing");

    // Under that limit, but more images than any MNIST-like set holds (940 MB of 28x28).
    let many = gzip_bomb(&[1_200_000, 28, 28], 2);
    let many_labels = gzip_bomb(&[1_200_000], 2);
    let (result, taken) = from_counted([&many, &many_labels, &many, &many_labels], Some((28, 28)));
    expect_err(result, &["train-images-idx3-ubyte", "1200000 images", "corrupt"]);
    assert!(taken <= 4 * 8192, "read {taken} compressed bytes before refusing");

    // Claims each file could hold alone, refused by what the others say: labels that do not
    // match the images, images that are not 28x28 (a billion bytes of 32x32 images).
    let mnist_images = gzip_bomb(&[60_000, 28, 28], 46);
    let lying_labels = gzip_bomb(&[900_000], 1);
    let (result, taken) = from_counted([&mnist_images, &lying_labels, &mnist_images, &lying_labels], None);
    expect_err(result, &["train-labels-idx1-ubyte", "900000 labels", "60000 images"]);
    assert!(taken <= 4 * 8192, "read {taken} compressed bytes before refusing");
    let big = gzip_bomb(&[1_000_000, 32, 32], 977);
    let big_labels = gzip_bomb(&[1_000_000], 1);
    let (result, taken) = from_counted([&big, &big_labels, &big, &big_labels], Some((28, 28)));
    expect_err(result, &["images are 32x32", "take 28x28"]);
    assert!(taken <= 4 * 8192, "read {taken} compressed bytes before refusing");
}

#[test]
fn gzip_bombs_on_disk_are_refused_by_ensure_mnist() {
    // The same four files as the issue's reproduction, through the path the program takes.
    let d = tmp();
    let images = gzip_bomb(&[2_000_000_000, 1, 1], 2048);
    let labels = gzip_bomb(&[2_000_000_000], 2048);
    for (name, bytes) in FILES.iter().zip([&images, &labels, &images, &labels]) {
        write(d.path(), &format!("{name}.gz"), bytes);
    }
    expect_err(autoencoders::data::ensure_mnist(Some(d.path())), &["2000000000x1x1", "limit", "re-download"]);
}

#[test]
fn a_payload_is_read_no_further_than_the_header_says() {
    // A valid header for 2 images of 28x28, then a GiB of zeros: the images are read, the
    // rest is refused as trailing after a bounded look (not decompressed to the end).
    let d = tmp();
    let bomb = gzip_bomb(&[2, 28, 28], 1024);
    expect_err(read_images(&write(d.path(), "b.gz", &bomb)), &["trailing bytes", "more than 16777216 more"]);
}

#[cfg(unix)]
#[test]
fn a_directory_fifo_or_broken_link_where_a_file_should_be_is_named_as_such() {
    use std::os::unix::fs::symlink;
    // Each case: its name, how to make it at a path, what the error must say.
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 4] = [
        ("directory", |p| std::fs::create_dir(p).unwrap(), "is a directory"),
        ("loop", |p| symlink(p, p).unwrap(), "cannot be looked at"),
        ("dangling", |p| symlink(p.with_extension("nowhere"), p).unwrap(), "symlink to nothing"),
        ("fifo", |p| mkfifo(p), "not a regular file"),
    ];
    for (what, make, words) in cases {
        let d = tmp();
        mini_mnist_sized(d.path(), 28, 28);
        let path = d.path().join("train-labels-idx1-ubyte.gz");
        std::fs::remove_file(&path).unwrap();
        make(&path);
        assert!(matches!(locate(d.path(), "train-labels-idx1-ubyte"), Entry::Unusable(_)), "{what}");
        let msg = expect_err(Mnist::load(d.path()), &["train-labels-idx1-ubyte.gz", words]);
        assert!(!msg.contains("not found"), "{what}: reported as missing: {msg}");
        // ensure_mnist reports the same, and downloads nothing: a download would have to
        // replace the entry (and no server is reachable from the tests, so its error would
        // name the mirrors instead).
        let msg = expect_err(autoencoders::data::ensure_mnist(Some(d.path())), &[words]);
        assert!(!msg.contains("download"), "{what}: {msg}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 4, "{what}: files were added");
        // The reader alone refuses it too, before opening (a FIFO would block).
        if what != "dangling" && what != "loop" {
            expect_err(read_labels(&path), &["not a regular file"]);
        }
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}
