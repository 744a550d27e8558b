//! Tests of the SOTI Connect adapter: config validation, and requests to the
//! SOTI emulator over real HTTP on 127.0.0.1.

mod config;
mod conformance;
mod emulator;
