//! `cargo fuzz run -s none idx fuzz/corpus/idx fuzz/seeds/idx`; the harness is in fuzz/harness.rs.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::idx(data));
