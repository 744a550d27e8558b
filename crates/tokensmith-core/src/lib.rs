//! # tokensmith-core
//!
//! The core of [tokensmith]: one async [`TokenProvider`] trait for getting
//! OAuth 2.0 access tokens from many vendors, and everything the vendor
//! adapters share.
//!
//! The public API is what this page lists, by area; the modules behind it
//! are private, so the paths below are the only ones (the checked-in listing
//! `docs/public-api/tokensmith-core.txt` shows every item and signature).
//!
//! | area | for | items |
//! |---|---|---|
//! | the trait | everyone | [`TokenProvider`], [`SharedTokenProvider`], [`async_trait`](macro@async_trait) |
//! | tokens | everyone | [`AccessToken`], [`AccessTokenBuilder`], [`TokenType`], [`Scope`], [`DEFAULT_LIFETIME`]; how a token is sent: [`Presentation`], [`InvalidPresentation`] |
//! | errors | everyone | [`TokenError`], [`ErrorDetail`], [`BodySnippet`], [`TransportErrorKind`], [`BoxError`], [`error_line`] |
//! | time | everyone | injected: [`Clock`], [`SharedClock`], [`SystemClock`], [`ManualClock`], [`Timestamp`] |
//! | registry | applications | [`Registry`], [`Providers`], [`ProviderInfo`] |
//! | config | applications | [`CommonConfig`], [`ConfigSecret`], [`SecretSource`], [`RefreshTokenStoreConfig`], [`parse_duration`] |
//! | cache | applications | [`CachedProvider`] (single-flight, refresh-ahead, backoff; [`current`](CachedProvider::current) for synchronous callers), [`CacheConfig`], [`CacheStats`], [`RefresherHandle`] |
//! | token stores | applications, store authors | [`TokenStore`], [`SharedTokenStore`], [`StoreLease`], [`FileTokenStore`], [`StoreConfig`], [`StoreFactory`], [`ProviderIdentity`], [`ProviderKey`], [`NamingKey`], [`StoreError`], [`encode_token`], [`decode_token`] |
//! | refresh tokens | applications | [`RefreshTokenStore`], [`SharedRefreshTokenStore`], [`MemoryRefreshTokenStore`], [`FileRefreshTokenStore`] |
//! | adapters | adapter authors | [`AdapterFactory`], [`ProviderContext`] |
//! | requests | adapter authors | the one request helper: [`TokenEndpoint`], [`TokenRequest`], [`ClientAuth`], [`RequestMethod`], [`HttpSettings`]; [`fetch_json`] and [`check_url`] for discovery documents; [`HOP_BY_HOP_HEADERS`], which no configured header may be |
//! | responses | adapter authors | the one tolerant parser: [`parse_response`], [`RawResponse`], [`MAX_EXPIRES_IN`]; [`ResponseShape`] and [`TimeFormat`] for a response described in config |
//! | renewal | adapter authors | [`Renewal`], [`RenewalGrant`]: single-use codes and rotated refresh tokens |
//! | re-exports | everyone | [`secrecy`], [`Url`], so adapters and applications name the same versions |
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

mod cache;
mod clock;
mod config;
mod error;
mod http;
mod parse;
mod provider;
mod redact;
mod refresh_store;
mod registry;
mod renewal;
mod secret;
mod store;
mod telemetry;
#[cfg(test)]
mod test_log;
mod token;

// The whole public API, by area (see the table above). Anything not listed
// here is private to this crate.
pub use cache::{CacheConfig, CacheStats, CachedProvider, RefresherHandle};
pub use clock::{Clock, ManualClock, SharedClock, Sleep, SystemClock, Timestamp};
pub use config::{CommonConfig, RefreshTokenStoreConfig, StoreConfig, parse_duration};
pub use error::{BodySnippet, BoxError, ErrorDetail, TokenError, TransportErrorKind, error_line};
pub use http::{
    ClientAuth, HOP_BY_HOP_HEADERS, HttpSettings, RequestMethod, TokenEndpoint, TokenRequest,
    check_url, fetch_json,
};
pub use parse::{MAX_EXPIRES_IN, RawResponse, ResponseShape, TimeFormat, parse_response};
pub use provider::{SharedTokenProvider, TokenProvider};
pub use refresh_store::{
    FileRefreshTokenStore, MemoryRefreshTokenStore, RefreshTokenStore, SharedRefreshTokenStore,
    StoreLock,
};
pub use registry::{
    AdapterConfig, AdapterFactory, KNOWN_KINDS, KNOWN_STORE_KINDS, LoadReport, ProviderContext,
    ProviderInfo, Providers, ProvidersBuilder, Registry, StoreFactory,
};
pub use renewal::{DEFAULT_REFRESH_STORE_LOCK_TIMEOUT, Renewal, RenewalGrant};
pub use secret::{ConfigSecret, SecretSource};
pub use store::{
    DEFAULT_TOKEN_STORE_LOCK_TIMEOUT, FileTokenStore, MAX_ENCODED_TOKEN_LEN, NamingKey,
    ProviderIdentity, ProviderKey, STORE_CALL_TIMEOUT, SharedTokenStore, StoreError,
    StoreErrorKind, StoreLease, TokenDecodeError, TokenStore, decode_token, encode_token,
};
pub use token::{
    AccessToken, AccessTokenBuilder, DEFAULT_LIFETIME, InvalidPresentation, Presentation, Scope,
    TokenType,
};

// Re-exported so adapters and applications name the same versions.
pub use async_trait::async_trait;
pub use secrecy;
pub use url::Url;
