#![no_main]
//! The multipart upload parser: first line the boundary, the rest the body.
libfuzzer_sys::fuzz_target!(|data: &[u8]| echoforge_fuzz::multipart(data));
