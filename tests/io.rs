//! write_atomic: the file appears whole, replaces an old one, and leaves no temporary behind.

use autoencoders::io::write_atomic;
use std::fs;

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn writes_and_replaces_without_leftovers() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("out.bin");
    write_atomic(&p, b"first").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"first");
    write_atomic(&p, b"second, longer").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"second, longer");
    assert_eq!(entries(d.path()), ["out.bin"]);
}

#[test]
fn failure_leaves_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    // The target is a non-empty directory: the rename fails after the temp was written.
    let target = d.path().join("taken");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("x"), b"x").unwrap();
    assert!(write_atomic(&target, b"data").is_err());
    assert_eq!(entries(d.path()), ["taken"]);
    // A missing directory is an error, not a panic.
    assert!(write_atomic(&d.path().join("no/such/dir/f"), b"data").is_err());
}
