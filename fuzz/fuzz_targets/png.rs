//! `cargo fuzz run -s none png fuzz/corpus/png fuzz/seeds/png`; the harness is in fuzz/harness.rs.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::png(data));
