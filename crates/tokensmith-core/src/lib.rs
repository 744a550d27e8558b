//! # tokensmith-core
//!
//! The core of [tokensmith]: one async [`TokenProvider`] trait for getting
//! OAuth 2.0 access tokens from many vendors, and everything the vendor
//! adapters share.
//!
//! | module | what it holds |
//! |---|---|
//! | [`provider`](TokenProvider) | the [`TokenProvider`] trait, [`SharedTokenProvider`] |
//! | [`token`](AccessToken) | [`AccessToken`], [`TokenType`], [`Scope`] |
//! | [`error`](TokenError) | [`TokenError`], [`ErrorDetail`], [`BodySnippet`] |
//! | [`clock`](Clock) | injected time: [`Clock`], [`SystemClock`], [`ManualClock`], [`Timestamp`] |
//! | [`cache`](CachedProvider) | [`CachedProvider`]: single-flight, refresh-ahead, backoff |
//! | [`config`] | the TOML model: [`CommonConfig`], [`ConfigSecret`] |
//! | [`registry`](Registry) | [`Registry`], [`AdapterFactory`], [`Providers`] |
//! | [`http`] | the one request helper: [`TokenEndpoint`], [`ClientAuth`] |
//! | [`parse`] | the one tolerant response parser |
//! | [`refresh_store`](RefreshTokenStore) | persisted refresh tokens |
//! | [`renewal`](Renewal) | single-use codes and rotated refresh tokens |
//!
//! Applications usually depend on the `tokensmith` facade, or on this crate
//! plus the adapter crates they use:
//!
//! ```
//! use std::sync::Arc;
//! use tokensmith_core::{AccessToken, Registry, SystemClock, Clock, TokenProvider};
//!
//! # async fn demo() -> Result<(), tokensmith_core::TokenError> {
//! // A fixed token is itself a provider; adapters register factories instead.
//! let provider: Arc<dyn TokenProvider> =
//!     Arc::new(AccessToken::builder("abc", SystemClock.now()).build());
//! let token = provider.token().await?;
//! assert_eq!(token.authorization_header().unwrap(), "Bearer abc");
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! [tokensmith]: https://crates.io/crates/tokensmith

#![forbid(unsafe_code)]

pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod parse;
pub mod provider;
pub mod refresh_store;
pub mod registry;
pub mod renewal;
pub mod secret;
pub mod token;

pub use cache::{CacheConfig, CacheStats, CachedProvider};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, Timestamp};
pub use config::CommonConfig;
pub use error::{BodySnippet, BoxError, ErrorDetail, TokenError, TransportErrorKind};
pub use http::{ClientAuth, HttpSettings, TokenEndpoint, TokenRequest};
pub use provider::{SharedTokenProvider, TokenProvider};
pub use refresh_store::{
    FileRefreshTokenStore, MemoryRefreshTokenStore, RefreshTokenStore, SharedRefreshTokenStore,
};
pub use registry::{AdapterFactory, ProviderContext, ProviderInfo, Providers, Registry};
pub use renewal::{Renewal, RenewalGrant};
pub use secret::{ConfigSecret, SecretSource};
pub use token::{AccessToken, AccessTokenBuilder, DEFAULT_LIFETIME, Scope, TokenType};

// Re-exported so adapters and applications name the same versions.
pub use async_trait::async_trait;
pub use secrecy;
pub use url::Url;
