//! Fuzz target `error_body`: see [`tokensmith_fuzz::error_body`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::error_body(data));
