//! The token cache: [`CachedProvider`] wraps any provider.
//!
//! (Being written: see issue 4. Until then it forwards every call.)

use std::time::Duration;

use async_trait::async_trait;

use crate::config::CommonConfig;
use crate::{AccessToken, SharedClock, SharedTokenProvider, TokenError, TokenProvider};

/// The cache's timing settings for one provider.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Treat a token as expired this long before it expires (`None`: default).
    pub expiry_margin: Option<Duration>,
    /// Start a background refresh this long before expiry (`None`: default).
    pub refresh_ahead: Option<Duration>,
}

impl CacheConfig {
    /// The cache settings a provider's config asks for.
    pub fn from_common(common: &CommonConfig) -> Self {
        Self { expiry_margin: common.expiry_margin, refresh_ahead: common.refresh_ahead }
    }
}

/// Wraps a provider with caching.
#[derive(Debug)]
pub struct CachedProvider {
    name: String,
    inner: SharedTokenProvider,
    #[allow(dead_code, reason = "used by the cache being written")]
    config: CacheConfig,
    #[allow(dead_code, reason = "used by the cache being written")]
    clock: SharedClock,
}

impl CachedProvider {
    /// Wraps `inner` (named `name` in logs and errors).
    pub fn new(
        name: &str,
        inner: SharedTokenProvider,
        config: CacheConfig,
        clock: SharedClock,
    ) -> Self {
        Self { name: name.to_owned(), inner, config, clock }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl TokenProvider for CachedProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.inner.token().await
    }

    fn invalidate(&self, token: &AccessToken) {
        self.inner.invalidate(token);
    }
}
