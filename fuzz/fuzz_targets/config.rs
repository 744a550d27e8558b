//! Fuzz target `config`: see [`tokensmith_fuzz::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::config(data));
