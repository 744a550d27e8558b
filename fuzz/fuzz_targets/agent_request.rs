//! Fuzz target `agent_request`: see [`tokensmith_fuzz::agent_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokensmith_fuzz::agent_request(data));
