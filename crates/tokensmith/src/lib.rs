//! # tokensmith
//!
//! OAuth 2.0 access tokens from enterprise vendors through one async
//! [`TokenProvider`] trait, with a cache that is correct under concurrency.
//! This facade re-exports the public API of [`tokensmith_core`] (item by
//! item, no glob) and, behind one cargo feature each, the vendor adapters.
//!
//! ```
//! use tokensmith::{Registry, RegistryExt};
//!
//! # #[cfg(not(feature = "oauth2"))] fn main() {}
//! # #[cfg(feature = "oauth2")] fn main() -> Result<(), tokensmith::TokenError> {
//! let providers = Registry::with_enabled_adapters().load_str(r#"
//!     [providers.api]
//!     kind = "oauth2"
//!     token_url = "https://auth.example.com/oauth2/token"
//!     client_id = "my-client"
//!     client_secret = "s3cr3t"
//!     scope = "read write"
//! "#)?;
//! let api = providers.get("api")?; // validated and cached; no request yet
//! // let header = api.token().await?.authorization_header()?;
//! # let _ = api;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! Every adapter is on by default; turn the defaults off and pick the ones
//! you need (`default-features = false, features = ["soti"]`). Asking the
//! registry for a kind whose adapter is not enabled is a config error that
//! names the crate and the feature to add.
//!
//! | feature | module | kind | vendor |
//! |---|---|---|---|
//! | `soti` | [`soti`] (`tokensmith-soti`) | `soti-connect` | SOTI Connect: Basic client auth, password or authorization-code grant |
//! | `configapi` | [`configapi`] (`tokensmith-configapi`) | `configapi` | configapi: client credentials in the form body, tenant `scope` |
//! | `oauth2` | [`oauth2`] (`tokensmith-oauth2`) | `oauth2` | any RFC 6749 server: three grants, PKCE, three client-auth methods |
//! | `deyel` | [`deyel`] (`tokensmith-deyel`) | `deyel` | Deyel: Basic client credentials |
//! | `custom` | [`custom`] (`tokensmith-custom`) | `custom` | any vendor described in config: method, body, headers, JSON Pointers into the response |
//!
//! Two more features are off by default: `metrics` (the cache's counters and
//! histograms through the `metrics` facade) and `redis` (the Redis token
//! store, `tokensmith-redis`, re-exported as `tokensmith::redis` and
//! registered for `[store] kind = "redis"` by `with_enabled_adapters()`).

#![forbid(unsafe_code)]

// The core's public API, item by item (the same list as `tokensmith-core`'s
// root; `docs/public-api/` keeps both in review).
pub use tokensmith_core::{
    AccessToken, AccessTokenBuilder, AdapterConfig, AdapterFactory, BodySnippet, BoxError,
    CacheConfig, CacheStats, CachedProvider, ClientAuth, Clock, CommonConfig, ConfigSecret,
    DEFAULT_LIFETIME, DEFAULT_REFRESH_STORE_LOCK_TIMEOUT, DEFAULT_TOKEN_STORE_LOCK_TIMEOUT,
    ErrorDetail, FileRefreshTokenStore, FileTokenStore, HOP_BY_HOP_HEADERS, HttpSettings,
    InvalidPresentation, KNOWN_KINDS, KNOWN_STORE_KINDS, LoadReport, MAX_ENCODED_TOKEN_LEN,
    MAX_EXPIRES_IN, ManualClock, MemoryRefreshTokenStore, NamingKey, Presentation, ProviderContext,
    ProviderIdentity, ProviderInfo, ProviderKey, Providers, ProvidersBuilder, RawResponse,
    RefreshTokenStore, RefreshTokenStoreConfig, RefresherHandle, Registry, Renewal, RenewalGrant,
    RequestMethod, ResponseShape, STORE_CALL_TIMEOUT, Scope, SecretSource, SharedClock,
    SharedRefreshTokenStore, SharedTokenProvider, SharedTokenStore, Sleep, StoreConfig, StoreError,
    StoreErrorKind, StoreFactory, StoreLease, StoreLock, SystemClock, TimeFormat, Timestamp,
    TokenDecodeError, TokenEndpoint, TokenError, TokenProvider, TokenRequest, TokenStore,
    TokenType, TransportErrorKind, Url, async_trait, check_url, decode_token, encode_token,
    error_line, fetch_json, parse_duration, parse_response, secrecy,
};

#[cfg(feature = "configapi")]
pub use tokensmith_configapi as configapi;
#[cfg(feature = "custom")]
pub use tokensmith_custom as custom;
#[cfg(feature = "deyel")]
pub use tokensmith_deyel as deyel;
#[cfg(feature = "oauth2")]
pub use tokensmith_oauth2 as oauth2;
#[cfg(feature = "redis")]
pub use tokensmith_redis as redis;
#[cfg(feature = "soti")]
pub use tokensmith_soti as soti;

/// Adds [`with_enabled_adapters`](RegistryExt::with_enabled_adapters) to
/// [`Registry`].
pub trait RegistryExt: Sized {
    /// A registry of every adapter enabled by this crate's features (and,
    /// with the `redis` feature, the Redis token store's factory).
    fn with_enabled_adapters() -> Self;

    /// Registers every adapter enabled by this crate's features (and, with
    /// the `redis` feature, the Redis token store's factory).
    #[must_use]
    fn add_enabled_adapters(self) -> Self;
}

impl RegistryExt for Registry {
    fn with_enabled_adapters() -> Self {
        Self::new().add_enabled_adapters()
    }

    fn add_enabled_adapters(self) -> Self {
        let registry = self;
        #[cfg(feature = "soti")]
        let registry = registry.with(soti::SotiConnect);
        #[cfg(feature = "configapi")]
        let registry = registry.with(configapi::ConfigApi);
        #[cfg(feature = "oauth2")]
        let registry = registry.with(oauth2::OAuth2);
        #[cfg(feature = "deyel")]
        let registry = registry.with(deyel::Deyel);
        #[cfg(feature = "custom")]
        let registry = registry.with(custom::Custom);
        #[cfg(feature = "redis")]
        let registry = registry.with_store_factory(redis::RedisStoreFactory);
        registry
    }
}

/// A registry of every enabled adapter: `Registry::with_enabled_adapters()`.
pub fn registry() -> Registry {
    Registry::with_enabled_adapters()
}
