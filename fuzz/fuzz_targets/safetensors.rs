//! `cargo fuzz run -s none safetensors fuzz/corpus/safetensors fuzz/seeds/safetensors`; the harness is in fuzz/harness.rs.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::safetensors(data));
