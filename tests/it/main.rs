//! Cross-crate integration tests: one binary, one module per concern.
mod cancel;
mod facade_single;
mod interop;
mod registry_e2e;
