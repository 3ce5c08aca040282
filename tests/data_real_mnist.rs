//! The real MNIST files, found where the command line looks (`common::mnist_dir`). Skipped,
//! with a message, where they are absent (they are not part of the repository), and a
//! failure then under REQUIRE_MNIST=1, as `.ci/run` sets.

mod common;

use autoencoders::data::{ensure_mnist, Mnist};

/// Count of each digit, as published for MNIST.
fn histogram(labels: &[u8]) -> [usize; 10] {
    let mut h = [0; 10];
    for &l in labels {
        h[l as usize] += 1;
    }
    h
}

#[test]
fn real_mnist_has_the_published_shape() {
    let Some(dir) = common::mnist_dir() else { return };
    let m = Mnist::load(&dir).unwrap();
    assert_eq!((m.train.n, m.train.rows, m.train.cols), (60000, 28, 28));
    assert_eq!((m.test.n, m.test.rows, m.test.cols), (10000, 28, 28));
    assert_eq!(m.train.pixels.len(), 60000 * 784);
    assert_eq!((m.train_labels.len(), m.test_labels.len()), (60000, 10000));
    assert!(m.train_labels.labels.iter().chain(&m.test_labels.labels).all(|&l| l <= 9));
    assert_eq!(m.test_labels.labels[0], 7, "the first test image is a 7");
    assert_eq!(m.train_labels.labels[0], 5, "the first training image is a 5");
    assert_eq!(histogram(&m.train_labels.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(histogram(&m.test_labels.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    // Images have ink and background: a first sanity check that pixels are not shifted.
    let first = m.test.image(0);
    assert_eq!((first[0], first.iter().max().copied()), (0, Some(255)));

    // ensure_mnist on a complete directory just loads it (no network here).
    let again = ensure_mnist(Some(&dir)).unwrap();
    assert_eq!(again.test.pixels, m.test.pixels);
}
