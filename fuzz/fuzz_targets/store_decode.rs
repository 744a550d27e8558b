//! Fuzz target `store_decode`: see [`tokensmith_fuzz::store_decode`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::store_decode(data));
