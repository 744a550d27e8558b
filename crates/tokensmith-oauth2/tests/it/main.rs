//! Tests of the oauth2 adapter: config validation, and requests to the
//! scoped OAuth 2.0 emulator over real HTTP on 127.0.0.1.

mod config;
mod conformance;
mod discovery;
mod emulator;
