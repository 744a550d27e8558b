//! Tests of the configapi adapter: config validation, and requests to the
//! configapi emulator over real HTTP on 127.0.0.1.

mod config;
mod conformance;
mod emulator;
