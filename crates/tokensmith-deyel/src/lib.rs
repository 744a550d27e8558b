//! Deyel adapter: the factory [`Deyel`] (kind [`KIND`]), the typed config
//! [`DeyelConfig`] for building a provider in code, and the provider they
//! build, [`DeyelProvider`].
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

/// The `kind` of Deyel providers.
pub const KIND: &str = "deyel";

/// The factory for [`KIND`]: register it with
/// [`Registry::with`](tokensmith_core::Registry::with).
#[derive(Clone, Copy, Debug, Default)]
pub struct Deyel;

impl AdapterFactory for Deyel {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        Ok(Arc::new(DeyelProvider::from_context(&ctx)?))
    }
}

/// A Deyel provider described in code: the table's fields, typed. Build it
/// with [`Registry::build`](tokensmith_core::Registry::build) or
/// [`Providers::builder`](tokensmith_core::Providers::builder): the same
/// validation as a table, cached once.
///
/// ```
/// use std::time::Duration;
/// use tokensmith_core::{Registry, Url, secrecy::SecretString};
/// use tokensmith_deyel::DeyelConfig;
///
/// let secret = SecretString::from("s3cr3t"); // e.g. fetched from a vault
/// let config = DeyelConfig::new(
///     Url::parse("https://deyel.example.com/oauth/token").unwrap(),
///     "rest-api-user",
///     secret,
/// )
/// .with_common(|common| common.with_timeout(Duration::from_secs(10)));
/// let bpm = Registry::new().build("bpm", config)?; // validated; no request yet
/// # let _ = bpm;
/// # Ok::<(), tokensmith_core::TokenError>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeyelConfig {
    common: CommonConfig,
}

impl DeyelConfig {
    /// A provider of the token endpoint `token_url` for the API user
    /// `client_id` and its secret key.
    pub fn new(
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: impl Into<ConfigSecret>,
    ) -> Self {
        let common = CommonConfig::new(KIND, client_id)
            .with_token_url(token_url)
            .with_client_secret(client_secret);
        Self { common }
    }

    /// Changes the common fields (`timeout`, `expiry_margin`, `ca_file`, …).
    #[must_use]
    pub fn with_common(mut self, change: impl FnOnce(CommonConfig) -> CommonConfig) -> Self {
        self.common = change(self.common);
        self
    }
}

impl AdapterConfig for DeyelConfig {
    type Factory = Deyel;
    type Fields = DeyelFields;

    fn into_parts(self) -> (CommonConfig, DeyelFields) {
        (self.common, DeyelFields {})
    }
}

/// Deyel's own fields: none beyond the common ones (this rejects any other
/// in a table).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeyelFields {}

/// A Deyel token endpoint: `client_credentials` with
/// `Authorization: Basic base64(client_id:client_secret)`. Every call to
/// [`token`](TokenProvider::token) is one request: the registry adds the cache.
pub struct DeyelProvider {
    endpoint: TokenEndpoint,
    client_id: String,
    client_secret: SecretString,
}

impl fmt::Debug for DeyelProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeyelProvider")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl DeyelProvider {
    /// Validates the provider's config (no network): a client secret, no `:`
    /// in the client id, and no other fields.
    pub fn from_context(ctx: &ProviderContext) -> Result<Self, TokenError> {
        let client_secret = ctx.require_client_secret()?;
        ctx.check_client_auth(ClientAuth::BasicRaw)?;
        let DeyelFields {} = ctx.parse()?;
        Ok(Self {
            endpoint: ctx.endpoint()?,
            client_id: ctx.common().client_id.clone(),
            client_secret,
        })
    }

    /// One token request: `grant_type=client_credentials` with Basic client
    /// authentication.
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        self.endpoint
            .request()
            .client_auth(ClientAuth::BasicRaw, &self.client_id, Some(&self.client_secret))
            .param("grant_type", "client_credentials")
            .send()
            .await
    }
}

#[async_trait]
impl TokenProvider for DeyelProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
