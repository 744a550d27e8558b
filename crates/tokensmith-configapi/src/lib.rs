//! configapi adapter: the factory [`ConfigApi`] (kind [`KIND`]) and the
//! provider it builds, [`ConfigApiProvider`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, AdapterFactory, ClientAuth, ProviderContext, SharedTokenProvider, TokenEndpoint,
    TokenError, TokenProvider, async_trait,
};

/// The `kind` of configapi providers.
pub const KIND: &str = "configapi";

/// The factory for [`KIND`]: register it with
/// [`Registry::with`](tokensmith_core::Registry::with).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConfigApi;

impl AdapterFactory for ConfigApi {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        Ok(Arc::new(ConfigApiProvider::from_context(&ctx)?))
    }
}

/// The configapi-specific fields of a provider table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The tenant or host the token is for (`"example.com"`).
    scope: String,
}

/// A configapi token endpoint (`POST /configapi/v2/oauth/token`):
/// `client_credentials` with the client id, secret and tenant `scope` in the
/// form body and no `Authorization` header. Every call to
/// [`token`](TokenProvider::token) is one request: the registry adds the cache.
pub struct ConfigApiProvider {
    endpoint: TokenEndpoint,
    client_id: String,
    client_secret: SecretString,
    scope: String,
}

impl fmt::Debug for ConfigApiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigApiProvider")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ConfigApiProvider {
    /// Validates the provider's config (no network): a client secret and a
    /// non-empty `scope`.
    pub fn from_context(ctx: &ProviderContext) -> Result<Self, TokenError> {
        let client_secret = ctx.require_client_secret()?;
        let Config { scope } = ctx.parse()?;
        if scope.trim().is_empty() {
            return Err(ctx.error("scope", "must name the tenant or host, e.g. \"example.com\""));
        }
        Ok(Self {
            endpoint: ctx.endpoint()?,
            client_id: ctx.common().client_id.clone(),
            client_secret,
            scope,
        })
    }

    /// One token request:
    /// `grant_type=client_credentials&client_id=…&client_secret=…&scope=…`.
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        self.endpoint
            .request()
            .client_auth(ClientAuth::RequestBody, &self.client_id, Some(&self.client_secret))
            .param("grant_type", "client_credentials")
            .param("scope", &self.scope)
            .send()
            .await
    }
}

#[async_trait]
impl TokenProvider for ConfigApiProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
