#![no_main]
//! The Json extractor on arbitrary bytes: never a panic in our code, never past the guards' limits.
libfuzzer_sys::fuzz_target!(|data: &[u8]| echoforge_fuzz::extract_as(data, extract::Format::Json));
