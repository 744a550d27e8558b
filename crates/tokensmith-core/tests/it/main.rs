//! Integration tests of tokensmith-core: one test binary, one module per concern.

mod cache;
mod current;
mod http;
#[cfg(feature = "metrics")]
mod metrics;
mod no_secret_leaks;
mod store;
mod tls;
