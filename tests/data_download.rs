//! The downloader against a local HTTP server that each test starts on 127.0.0.1.
//!
//! The server is a thread with a `TcpListener` that answers each request from a table of
//! canned replies (anything else is a 404), logs the paths asked for, and stops when the test
//! calls `finish` or after 10 seconds, whichever comes first. Two "mirrors" are two path
//! prefixes on one server, `/a/` and `/b/`.

mod mnist_files;

use autoencoders::data::{download_sources, Source};
use mnist_files::*;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Reply {
    /// 200 with a correct Content-Length.
    Ok(Vec<u8>),
    /// 200 claiming `claimed` bytes, then sending `body` (shorter) and closing.
    Truncated { body: Vec<u8>, claimed: usize },
    /// 200 with no Content-Length: the body ends when the connection closes.
    NoLength(Vec<u8>),
    /// A bare status, such as 404.
    Status(u16, &'static str),
}

struct Server {
    base: String,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<String>>,
}

impl Server {
    fn start(routes: Vec<(String, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut log = Vec::new();
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(path) = answer(stream, &routes) {
                            log.push(path);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            log
        });
        Server { base, stop, thread }
    }

    fn mirror(&self, prefix: &str) -> String {
        format!("{}/{prefix}/", self.base)
    }

    /// Stop the server; the request paths it saw, in order.
    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Read one request, write the canned reply, close. Returns the path asked for.
fn answer(mut s: TcpStream, routes: &[(String, Reply)]) -> Option<String> {
    s.set_nonblocking(false).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let k = s.read(&mut buf).ok()?;
        if k == 0 || req.len() > 64 << 10 {
            return None;
        }
        req.extend_from_slice(&buf[..k]);
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1)?.to_string();
    let reply =
        routes.iter().find(|(p, _)| *p == path).map(|(_, r)| r.clone()).unwrap_or(Reply::Status(404, "Not Found"));
    let head = |len: Option<usize>| {
        let len = len.map(|n| format!("Content-Length: {n}\r\n")).unwrap_or_default();
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n{len}Connection: close\r\n\r\n")
    };
    let _ = match reply {
        Reply::Ok(body) => s.write_all(head(Some(body.len())).as_bytes()).and_then(|_| s.write_all(&body)),
        Reply::Truncated { body, claimed } => {
            s.write_all(head(Some(claimed)).as_bytes()).and_then(|_| s.write_all(&body))
        }
        Reply::NoLength(body) => s.write_all(head(None).as_bytes()).and_then(|_| s.write_all(&body)),
        Reply::Status(code, why) => s.write_all(
            format!("HTTP/1.1 {code} {why}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n").as_bytes(),
        ),
    };
    let _ = s.flush();
    Some(path)
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Two small files standing in for MNIST's, with their sizes and hashes.
struct Files {
    images: Vec<u8>,
    labels: Vec<u8>,
    images_sha: String,
    labels_sha: String,
}

impl Files {
    fn new() -> Files {
        let images = gzip(&images_file(4, 5, 5));
        let labels = gzip(&labels_file(&[1, 2, 3, 4]));
        let (images_sha, labels_sha) = (sha256_hex(&images), sha256_hex(&labels));
        Files { images, labels, images_sha, labels_sha }
    }

    fn sources(&self) -> Vec<Source<'_>> {
        vec![
            Source { name: "t10k-images-idx3-ubyte.gz", bytes: self.images.len() as u64, sha256: &self.images_sha },
            Source { name: "t10k-labels-idx1-ubyte.gz", bytes: self.labels.len() as u64, sha256: &self.labels_sha },
        ]
    }

    /// Both files served under `/{prefix}/`.
    fn routes(&self, prefix: &str) -> Vec<(String, Reply)> {
        vec![
            (format!("/{prefix}/t10k-images-idx3-ubyte.gz"), Reply::Ok(self.images.clone())),
            (format!("/{prefix}/t10k-labels-idx1-ubyte.gz"), Reply::Ok(self.labels.clone())),
        ]
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn good_files_land_with_the_right_bytes() {
    let f = Files::new();
    let server = Server::start(f.routes("a"));
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("new/mnist"); // created by the downloader
    download_sources(&dir, &[&server.mirror("a")], &f.sources()).unwrap();
    let log = server.finish();
    assert_eq!(log, ["/a/t10k-images-idx3-ubyte.gz", "/a/t10k-labels-idx1-ubyte.gz"]);
    assert_eq!(std::fs::read(dir.join("t10k-images-idx3-ubyte.gz")).unwrap(), f.images);
    assert_eq!(std::fs::read(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap(), f.labels);
    assert_eq!(entries(&dir), ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]);
    // And they read as IDX files.
    assert_eq!(autoencoders::data::read_images(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap().n, 4);
}

#[test]
fn truncated_response_is_rejected_and_leaves_nothing() {
    let f = Files::new();
    let mut routes = f.routes("a");
    let half = f.images[..f.images.len() / 2].to_vec();
    routes[0].1 = Reply::Truncated { body: half, claimed: f.images.len() };
    let server = Server::start(routes);
    let d = tempfile::tempdir().unwrap();
    let msg =
        expect_err(download_sources(d.path(), &[&server.mirror("a")], &f.sources()), &["t10k-images-idx3-ubyte.gz"]);
    server.finish();
    assert!(!msg.contains("t10k-labels"), "labels downloaded fine, yet listed: {msg}");
    // The good file landed; the truncated one left neither a file nor a temporary.
    assert_eq!(entries(d.path()), ["t10k-labels-idx1-ubyte.gz"]);
}

#[test]
fn corrupted_bytes_fail_the_hash_and_the_next_mirror_is_tried() {
    let f = Files::new();
    let mut bad = f.images.clone();
    bad[10] ^= 0xFF; // same length, different bytes
    let mut routes = f.routes("b");
    routes.push(("/a/t10k-images-idx3-ubyte.gz".into(), Reply::Ok(bad)));
    routes.push(("/a/t10k-labels-idx1-ubyte.gz".into(), Reply::Ok(f.labels.clone())));
    let server = Server::start(routes);
    let d = tempfile::tempdir().unwrap();
    download_sources(d.path(), &[&server.mirror("a"), &server.mirror("b")], &f.sources()).unwrap();
    let log = server.finish();
    assert_eq!(log, ["/a/t10k-images-idx3-ubyte.gz", "/b/t10k-images-idx3-ubyte.gz", "/a/t10k-labels-idx1-ubyte.gz"]);
    assert_eq!(std::fs::read(d.path().join("t10k-images-idx3-ubyte.gz")).unwrap(), f.images);
    assert_eq!(entries(d.path()), ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]);
}

#[test]
fn all_mirrors_bad_lists_the_missing_files_and_what_to_do() {
    let f = Files::new();
    let mut bad = f.images.clone();
    bad[10] ^= 0xFF;
    // Mirror a has nothing (404 for everything); mirror b serves a corrupt images file and
    // no labels file.
    let server = Server::start(vec![("/b/t10k-images-idx3-ubyte.gz".into(), Reply::Ok(bad))]);
    let d = tempfile::tempdir().unwrap();
    let msg = expect_err(
        download_sources(d.path(), &[&server.mirror("a"), &server.mirror("b")], &f.sources()),
        &[
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "404",
            "SHA-256 mismatch",
            "--data DIR",
            "MNIST_DIR",
        ],
    );
    // Three 404s, said once; the hashes themselves only in the verbose report.
    assert_eq!(msg.matches("404").count(), 1, "{msg}");
    assert!(!msg.contains(&sha256_hex(&f.images)), "{msg}");
    assert!(msg.contains(&d.path().display().to_string()), "directory not named: {msg}");
    assert_eq!(server.finish().len(), 4);
    assert!(entries(d.path()).is_empty());
}

#[test]
fn not_found_then_found() {
    let f = Files::new();
    let server = Server::start(f.routes("b"));
    let d = tempfile::tempdir().unwrap();
    download_sources(d.path(), &[&server.mirror("a"), &server.mirror("b")], &f.sources()).unwrap();
    assert_eq!(server.finish().len(), 4);
    assert_eq!(entries(d.path()), ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]);
}

#[test]
fn unreachable_mirror_is_skipped() {
    let f = Files::new();
    // A port that was just free: nothing listens there, so connecting is refused at once.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x/", l.local_addr().unwrap())
    };
    let server = Server::start(f.routes("a"));
    let d = tempfile::tempdir().unwrap();
    download_sources(d.path(), &[&dead, &server.mirror("a")], &f.sources()).unwrap();
    server.finish();
    assert_eq!(entries(d.path()), ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]);
}

#[test]
fn size_limits() {
    let f = Files::new();
    let mut long = f.images.clone();
    long.extend_from_slice(&[0; 1000]);
    let short = f.labels[..f.labels.len() - 1].to_vec();
    let server = Server::start(vec![
        // Wrong Content-Length: refused before reading the body.
        ("/a/t10k-images-idx3-ubyte.gz".into(), Reply::Ok(long.clone())),
        // No Content-Length, too long: reading stops just past the expected size.
        ("/b/t10k-images-idx3-ubyte.gz".into(), Reply::NoLength(long)),
        // No Content-Length, one byte short.
        ("/a/t10k-labels-idx1-ubyte.gz".into(), Reply::NoLength(short)),
    ]);
    let d = tempfile::tempdir().unwrap();
    // Wrong Content-Length and too long a body are one cause, said once.
    let msg = expect_err(
        download_sources(d.path(), &[&server.mirror("a"), &server.mirror("b")], &f.sources()),
        &["wrong size", "truncated"],
    );
    assert_eq!(msg.matches("wrong size").count(), 1, "{msg}");
    server.finish();
    assert!(entries(d.path()).is_empty());
}

#[test]
fn files_already_present_are_neither_fetched_nor_hashed() {
    // A local copy need not match the original's hash (the shared training images do not):
    // it is used as it is. Here one is gzipped and one raw, both with the "wrong" bytes.
    let f = Files::new();
    let server = Server::start(vec![]);
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "t10k-images-idx3-ubyte.gz", b"a different copy");
    write(d.path(), "t10k-labels-idx1-ubyte", b"decompressed copy");
    download_sources(d.path(), &[&server.mirror("a")], &f.sources()).unwrap();
    assert!(server.finish().is_empty());
}

#[test]
fn no_mirrors_is_an_error_not_a_panic() {
    let f = Files::new();
    let d = tempfile::tempdir().unwrap();
    expect_err(download_sources(d.path(), &[], &f.sources()), &["no mirrors", "t10k-images-idx3-ubyte.gz"]);
}

#[test]
fn offline_is_one_short_line_with_the_cause_once() {
    // #17: with no network, every mirror of every file fails alike. Two dead mirrors (ports
    // nothing listens on: connecting is refused at once) and the four real files to fetch:
    // the cause is said once, with the folder, the fix and the variable for the details.
    let dead: Vec<String> = (0..2)
        .map(|_| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/x/", l.local_addr().unwrap())
        })
        .collect();
    let d = tempfile::tempdir().unwrap();
    let mirrors: Vec<&str> = dead.iter().map(String::as_str).collect();
    let msg = expect_err(
        download_sources(d.path(), &mirrors, &autoencoders::data::ORIGINALS),
        &["connection refused", "all 4 files", "--data DIR", "MNIST_DIR", autoencoders::data::VERBOSE_VAR],
    );
    assert!(msg.contains(&d.path().display().to_string()), "directory not named: {msg}");
    assert_eq!(msg.matches("connection refused").count(), 1, "{msg}");
    assert!(msg.len() <= 300, "{} characters: {msg}", msg.len());
    assert!(entries(d.path()).is_empty());
}

#[test]
fn an_unresolvable_mirror_is_a_lookup_failure_said_once() {
    // What being offline looks like to the downloader: no name resolves. `.invalid` never
    // does (RFC 6761), online or not.
    let d = tempfile::tempdir().unwrap();
    let mirrors = ["http://mnist-a.invalid/", "http://mnist-b.invalid/"];
    let msg = expect_err(
        download_sources(d.path(), &mirrors, &autoencoders::data::ORIGINALS),
        &["host name lookup failed", "all 4 files"],
    );
    assert_eq!(msg.matches("lookup").count(), 1, "{msg}");
    assert!(msg.len() <= 300, "{} characters: {msg}", msg.len());
}
