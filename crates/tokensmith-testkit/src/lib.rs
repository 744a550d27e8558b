//! Emulators of the SOTI Connect, configapi, scoped OAuth 2.0 and Deyel token endpoints, and a resource server, for tests and demos.
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod conformance;
mod custom;
mod discovery;
mod emulator;
mod fault;
pub mod fixtures;
pub mod leak;
mod recorded;
pub mod redis;
mod resource;
mod server;
mod snippet;
#[cfg(feature = "tls")]
pub mod tls;
mod vendor;
mod vendors;

pub use custom::{CustomEmulator, TimeStyle};
pub use discovery::Discovery;
pub use emulator::{CodeRequest, Emulator, pkce_challenge_s256};
pub use fault::Fault;
pub use recorded::RecordedRequest;
pub use resource::{INVALID_TOKEN_CHALLENGE, ResourceRequest, ResourceServer};
pub use server::BasicEncoding;
pub use vendor::{Credentials, UnknownVendor, Vendor};
