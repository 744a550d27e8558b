//! Deyel adapter: the factory [`Deyel`] (kind [`KIND`]) and the provider it
//! builds, [`DeyelProvider`].
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

/// Deyel has no fields beyond the common ones; this rejects any other.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

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
        // Basic credentials split at the first ':' (RFC 7617 §2).
        if ctx.common().client_id.contains(':') {
            return Err(ctx.error("client_id", "must not contain ':' (sent as Basic credentials)"));
        }
        let Config {} = ctx.parse()?;
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
