#![no_main]
//! Prompt-template checking and rendering in the minijinja sandbox.
libfuzzer_sys::fuzz_target!(|data: &[u8]| echoforge_fuzz::prompt(data));
