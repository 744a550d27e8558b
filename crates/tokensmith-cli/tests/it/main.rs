//! End-to-end tests of the `tokensmith` binary: each test runs the built
//! binary against `tokensmith-testkit` emulators started in-process on
//! 127.0.0.1, with its own temporary config file and cache directory.

#[cfg(unix)]
mod agent_client;
mod cache_safety;
mod commands;
mod config_errors;
mod demo;
mod exit_codes;
#[cfg(unix)]
mod fault_server;
#[cfg(unix)]
mod faults;
#[cfg(unix)]
mod leak_audit;
mod output;
mod redis;
#[cfg(unix)]
mod redis_faults;
#[cfg(unix)]
mod serve;
mod single_use;
mod support;
mod token;
