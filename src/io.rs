//! Atomic file writes, the temporaries a killed writer leaves, and log lines that a closed
//! stderr cannot stop.
//!
//! Every file this crate produces (PNGs, SVGs, checkpoints) goes through `write_atomic`, so a
//! reader never sees a half-written file: if training is killed while a checkpoint is being
//! saved, the previous checkpoint stays intact. The recipe is the standard one for POSIX:
//!
//! 1. write the bytes to a temporary file in the *same directory* (rename is only atomic
//!    within one file system, and the same directory guarantees that);
//! 2. `fsync` the temporary file, so its contents are on disk before its name is;
//! 3. `rename` it over the destination (atomic: readers see the old file or the new one);
//! 4. best-effort `fsync` of the directory, so the rename itself survives a power cut.
//!
//! On any error the temporary file is removed and the destination is left untouched. A
//! process killed between 1 and 3 leaves its temporary, `.NAME.tmp.PID.N`, which
//! `remove_stale_temporaries` deletes when that folder is resumed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writes from one process (threads saving
/// figures in parallel); the process id distinguishes processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (see the module comment).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a file path (no file name)", path.display()),
        )
    })?;
    // `Path::parent` of a bare "name.png" is Some(""), which means the current directory.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // A leading dot keeps the temporary out of `ls` and globs like `*.png`.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}.{}", std::process::id(), n));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        // create_new: never clobber a file we did not create.
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Best effort: some file systems refuse to open or sync a directory; the data itself is
    // already safe, so a failure here is not worth failing the write for.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The name `write_atomic` gives its temporaries: `.NAME.tmp.PID.N`; returns the PID.
fn temporary_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp.")?;
    let (pid, n) = tail.split_once('.')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this id is running (signal 0 checks without sending anything).
fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only asks whether the process exists; EPERM means it does.
    pid == std::process::id()
        || unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the temporaries of `write_atomic` in `dir` whose process is no longer running: a
/// kill during a checkpoint write leaves one (tens of MB for the large models), never under
/// the final name. A temporary of a running process is a write still under way and is kept.
/// Returns the names removed.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(pid) = path.file_name().and_then(|n| n.to_str()).and_then(temporary_pid) else { continue };
        if !alive(pid) && path.is_file() {
            fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// `text` with each control character replaced by its Rust escape (`\n`, `\r`, `\u{1b}`), so
/// that it prints as one line whatever it quotes: parsers' errors quote the file's own strings
/// (a tensor's name, an experiment's), which may hold line breaks and terminal control codes.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// One line on stderr (progress, notes). A closed stderr (`2>&1 | head -n 1`, a terminal
/// gone) must not stop a run: `eprintln!` would panic there; this drops the line.
pub fn note(args: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// `eprintln!` that a closed stderr cannot stop (see `io::note`).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::io::note(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("write_atomic_{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")]);
        // A missing directory is an error, and nothing is left behind.
        assert!(write_atomic(&dir.join("missing/b.bin"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_are_recognised_by_name() {
        assert_eq!(temporary_pid(".h900.checkpoint.safetensors.tmp.4242.7"), Some(4242));
        assert_eq!(temporary_pid(".a.tmp.b.tmp.12.0"), Some(12));
        for name in ["h900.checkpoint.safetensors", ".a.tmp.12", ".a.tmp.x.1", "a.tmp.12.1", ".a.tmp.12.x"] {
            assert_eq!(temporary_pid(name), None, "{name}");
        }
    }
}
