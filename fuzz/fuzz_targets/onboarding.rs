#![no_main]
//! The onboarding-schema engine on `{"schema": …, "answers": …}` documents.
libfuzzer_sys::fuzz_target!(|data: &[u8]| echoforge_fuzz::onboarding(data));
