//! tokensmith for hyper and tonic clients: [`AuthLayer`] (a `tower::Layer`)
//! presents the access token on every request and recovers from a refused
//! token once; [`AuthInterceptor`] does the presenting for tonic's
//! synchronous interceptors.
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(feature = "tonic")]
mod interceptor;
mod layer;
mod present;
mod replay;

#[cfg(feature = "tonic")]
pub use interceptor::AuthInterceptor;
pub use layer::{AuthError, AuthLayer, AuthService};
pub use replay::{DEFAULT_REPLAY_LIMIT, Recorder, Recording, Replay, ReplayBody};
