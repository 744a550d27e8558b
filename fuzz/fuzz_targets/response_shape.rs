//! Fuzz target `response_shape`: see [`tokensmith_fuzz::response_shape`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::response_shape(data));
