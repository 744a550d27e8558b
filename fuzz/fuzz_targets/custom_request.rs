//! Fuzz target `custom_request`: see [`tokensmith_fuzz::custom_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::custom_request(data));
