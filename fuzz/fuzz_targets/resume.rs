//! `cargo fuzz run -s none resume fuzz/corpus/resume fuzz/seeds/resume -- -close_fd_mask=2`
//! (the mask hides the loader's note on stderr about inputs without a checksum); the harness
//! is in fuzz/harness.rs.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::resume(data));
