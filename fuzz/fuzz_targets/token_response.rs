//! Fuzz target `token_response`: see [`tokensmith_fuzz::token_response`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::token_response(data));
