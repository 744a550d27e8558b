//! Cross-crate integration tests: one binary, one module per concern.
mod built_in_code;
mod cancel;
mod facade_single;
mod faults;
mod fuzz_corpus;
mod interop;
mod leak_audit;
mod lists;
mod registry_e2e;
