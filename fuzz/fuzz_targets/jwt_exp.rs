//! Fuzz target `jwt_exp`: see [`tokensmith_fuzz::jwt_exp`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::jwt_exp(data));
