//! Integration tests of tokensmith-core: one test binary, one module per concern.

mod cache;
mod http;
mod no_secret_leaks;
mod store;
mod tls;
