//! Interoperability of `kind = "oauth2"` with a real, independent,
//! certified authorization server: oidc-provider (panva) from the npm
//! registry, started on loopback by each test (`tests/interop/server.mjs`).
//!
//! See `docs/interop.md` for the scenarios and how to run the harness by hand.

mod browser;
mod discovery;
mod harness;
mod private_key_jwt;
mod scenarios;
mod server;
