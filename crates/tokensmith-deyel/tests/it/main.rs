//! Tests of the Deyel adapter: config validation, and requests to the Deyel
//! emulator over real HTTP on 127.0.0.1.

mod config;
mod conformance;
mod emulator;
