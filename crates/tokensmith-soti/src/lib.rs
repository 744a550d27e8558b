//! SOTI Connect adapter: the factory [`SotiConnect`] (kind [`KIND`]) and the
//! provider it builds, [`SotiProvider`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tokensmith_core::secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    AccessToken, AdapterFactory, ClientAuth, ConfigSecret, ProviderContext, Renewal, RenewalGrant,
    SharedTokenProvider, TokenEndpoint, TokenError, TokenProvider, async_trait,
};

/// The `kind` of SOTI Connect providers.
pub const KIND: &str = "soti-connect";

/// The factory for [`KIND`]: register it with
/// [`Registry::with`](tokensmith_core::Registry::with).
#[derive(Clone, Copy, Debug, Default)]
pub struct SotiConnect;

impl AdapterFactory for SotiConnect {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        Ok(Arc::new(SotiProvider::from_context(&ctx)?))
    }
}

/// The SOTI-specific fields of a provider table: the grant and its fields.
/// (A flat struct rather than a tagged enum, so every error names its field.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    grant: GrantName,
    username: Option<String>,
    password: Option<ConfigSecret>,
    code: Option<ConfigSecret>,
}

/// The `grant` field.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum GrantName {
    /// Resource owner: a SOTI Connect administrator's credentials.
    Password,
    /// An authorization code (single-use).
    AuthorizationCode,
}

/// What a provider sends in the form body.
enum Grant {
    Password {
        username: String,
        password: SecretString,
    },
    /// The unused code, then the refresh tokens SOTI returns.
    AuthorizationCode(Arc<Renewal>),
}

/// A SOTI Connect token endpoint: `POST /Connect/api/token` with
/// `Authorization: Basic base64(client_id:client_secret)` and a password or
/// authorization-code form. Every call to [`token`](TokenProvider::token) is
/// one request: the registry adds the cache.
pub struct SotiProvider {
    endpoint: TokenEndpoint,
    client_id: String,
    client_secret: SecretString,
    grant: Grant,
}

impl fmt::Debug for SotiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grant = match &self.grant {
            Grant::Password { username, .. } => format!("password (username {username:?})"),
            Grant::AuthorizationCode(renewal) => format!("authorization_code ({renewal:?})"),
        };
        f.debug_struct("SotiProvider")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("grant", &grant)
            .finish_non_exhaustive()
    }
}

impl SotiProvider {
    /// Validates the provider's config (no network): a client secret, no `:`
    /// in the client id or secret, and the grant's fields.
    pub fn from_context(ctx: &ProviderContext) -> Result<Self, TokenError> {
        let client_id = ctx.common().client_id.clone();
        let client_secret = ctx.require_client_secret()?;
        // SOTI joins id and secret with one colon and forbids any other.
        for (field, value) in
            [("client_id", client_id.as_str()), ("client_secret", client_secret.expose_secret())]
        {
            if value.contains(':') {
                return Err(ctx.error(field, "must not contain ':' (SOTI Connect forbids it)"));
            }
        }
        let config: Config = ctx.parse()?;
        let password_grant = config.grant == GrantName::Password;
        let username = ctx.grant_field("username", config.username, password_grant, "password")?;
        let password = ctx.grant_field("password", config.password, password_grant, "password")?;
        let code = ctx.grant_field("code", config.code, !password_grant, "authorization_code")?;
        let grant = match (username, password, code) {
            (Some(username), _, _) if username.trim().is_empty() => {
                return Err(ctx.error("username", "is empty"));
            }
            (Some(username), Some(password), None) => {
                Grant::Password { username, password: password.as_secret().clone() }
            }
            (_, _, code) => {
                Grant::AuthorizationCode(ctx.renewal(code.map(|c| c.as_secret().clone()), None))
            }
        };
        Ok(Self { endpoint: ctx.endpoint()?, client_id, client_secret, grant })
    }

    /// One token request. A code or refresh-token exchange runs to the end
    /// even if the caller stops waiting ([`Renewal::exchange`]).
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        match &self.grant {
            Grant::Password { username, password } => {
                self.endpoint
                    .request()
                    .client_auth(ClientAuth::BasicRaw, &self.client_id, Some(&self.client_secret))
                    .param("grant_type", "password")
                    .param("username", username)
                    .secret_param("password", password)
                    .send()
                    .await
            }
            Grant::AuthorizationCode(renewal) => {
                let endpoint = self.endpoint.clone();
                let (client_id, client_secret) =
                    (self.client_id.clone(), self.client_secret.clone());
                renewal
                    .exchange(move |grant| async move {
                        let request = endpoint.request().client_auth(
                            ClientAuth::BasicRaw,
                            &client_id,
                            Some(&client_secret),
                        );
                        let request = match &grant {
                            RenewalGrant::AuthorizationCode(code) => request
                                .param("grant_type", "authorization_code")
                                .secret_param("code", code),
                            RenewalGrant::RefreshToken(token) => request
                                .param("grant_type", "refresh_token")
                                .secret_param("refresh_token", token),
                        };
                        request.send().await
                    })
                    .await
            }
        }
    }
}

#[async_trait]
impl TokenProvider for SotiProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
