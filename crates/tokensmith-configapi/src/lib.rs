//! configapi adapter: the factory [`ConfigApi`] (kind [`KIND`]), the typed
//! config [`ConfigApiConfig`] for building a provider in code, and the
//! provider they build, [`ConfigApiProvider`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, AdapterConfig, AdapterFactory, ClientAuth, CommonConfig, ConfigSecret,
    ProviderContext, SharedTokenProvider, TokenEndpoint, TokenError, TokenProvider, Url,
    async_trait,
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

/// A configapi provider described in code: the table's fields, typed.
/// Build it with [`Registry::build`](tokensmith_core::Registry::build) or
/// [`Providers::builder`](tokensmith_core::Providers::builder): the same
/// validation as a table, cached once.
///
/// ```
/// use tokensmith_core::{Registry, Url, secrecy::SecretString};
/// use tokensmith_configapi::ConfigApiConfig;
///
/// let secret = SecretString::from("s3cr3t"); // e.g. fetched from a vault
/// let config = ConfigApiConfig::new(
///     Url::parse("https://api.example.com/configapi/v2/oauth/token").unwrap(),
///     "sheila.thomas",
///     secret,
///     "example.com",
/// );
/// let tenant = Registry::new().build("config", config)?; // validated; no request yet
/// # let _ = tenant;
/// # Ok::<(), tokensmith_core::TokenError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConfigApiConfig {
    common: CommonConfig,
    fields: ConfigApiFields,
}

impl ConfigApiConfig {
    /// A provider of the token endpoint `token_url` for the client
    /// `client_id` and its secret, asking for tokens for the tenant or host
    /// `scope` (`"example.com"`).
    pub fn new(
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: impl Into<ConfigSecret>,
        scope: impl Into<String>,
    ) -> Self {
        let common = CommonConfig::new(KIND, client_id)
            .with_token_url(token_url)
            .with_client_secret(client_secret);
        Self { common, fields: ConfigApiFields { scope: scope.into() } }
    }

    /// Changes the common fields (`timeout`, `expiry_margin`, `ca_file`, …).
    #[must_use]
    pub fn with_common(mut self, change: impl FnOnce(CommonConfig) -> CommonConfig) -> Self {
        self.common = change(self.common);
        self
    }
}

impl AdapterConfig for ConfigApiConfig {
    type Factory = ConfigApi;
    type Fields = ConfigApiFields;

    fn into_parts(self) -> (CommonConfig, ConfigApiFields) {
        (self.common, self.fields)
    }
}

/// The configapi-specific fields of a provider: what a table's `scope`
/// says. Built by [`ConfigApiConfig::new`] or read from a table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigApiFields {
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
        let ConfigApiFields { scope } = ctx.parse()?;
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
