//! SOTI Connect adapter: the factory [`SotiConnect`] (kind [`KIND`]), the
//! typed config [`SotiConfig`] for building a provider in code, and the
//! provider they build, [`SotiProvider`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tokensmith_core::secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    AccessToken, AdapterConfig, AdapterFactory, ClientAuth, CommonConfig, ConfigSecret,
    ProviderContext, Renewal, SharedTokenProvider, TokenEndpoint, TokenError, TokenProvider, Url,
    async_trait,
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

/// A SOTI Connect provider described in code: the table's fields, typed.
/// Build it with [`Registry::build`](tokensmith_core::Registry::build) or
/// [`Providers::builder`](tokensmith_core::Providers::builder): the same
/// validation as a table, cached once.
///
/// ```
/// use tokensmith_core::{RefreshTokenStoreConfig, Registry, Url, secrecy::SecretString};
/// use tokensmith_soti::SotiConfig;
///
/// let url = Url::parse("https://mdm.example.com/Connect/api/token").unwrap();
/// // Secrets fetched at run time, from a vault say.
/// let (client_secret, password) =
///     (SecretString::from("Application1Password"), SecretString::from("1"));
/// let mdm = SotiConfig::password(url.clone(), "Application1", client_secret.clone(), "Administrator", password);
/// let mdm = Registry::new().build("mdm", mdm)?; // validated; no request yet
///
/// let code = SecretString::from("one-time-code");
/// let store = RefreshTokenStoreConfig::File("/var/lib/app/soti-refresh-token".into());
/// let by_code = SotiConfig::authorization_code(url, "Application1", client_secret, code)
///     .with_common(|common| common.with_refresh_token_store(store));
/// let by_code = Registry::new().build("mdm-code", by_code)?;
/// # let _ = (mdm, by_code);
/// # Ok::<(), tokensmith_core::TokenError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SotiConfig {
    common: CommonConfig,
    fields: SotiFields,
}

impl SotiConfig {
    /// `grant = "password"`: a SOTI Connect administrator's `username` and
    /// `password`, with the API client `client_id` and its secret.
    pub fn password(
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: impl Into<ConfigSecret>,
        username: impl Into<String>,
        password: impl Into<ConfigSecret>,
    ) -> Self {
        let fields = SotiFields {
            grant: GrantName::Password,
            username: Some(username.into()),
            password: Some(password.into()),
            code: None,
        };
        Self { common: common(token_url, client_id, client_secret), fields }
    }

    /// `grant = "authorization_code"`: the single-use `code`, then the
    /// refresh tokens SOTI returns (kept in the common
    /// `refresh_token_store`).
    pub fn authorization_code(
        token_url: Url,
        client_id: impl Into<String>,
        client_secret: impl Into<ConfigSecret>,
        code: impl Into<ConfigSecret>,
    ) -> Self {
        let fields = SotiFields {
            grant: GrantName::AuthorizationCode,
            username: None,
            password: None,
            code: Some(code.into()),
        };
        Self { common: common(token_url, client_id, client_secret), fields }
    }

    /// Changes the common fields (`timeout`, `refresh_token_store`, …).
    #[must_use]
    pub fn with_common(mut self, change: impl FnOnce(CommonConfig) -> CommonConfig) -> Self {
        self.common = change(self.common);
        self
    }
}

fn common(
    token_url: Url,
    client_id: impl Into<String>,
    client_secret: impl Into<ConfigSecret>,
) -> CommonConfig {
    CommonConfig::new(KIND, client_id).with_token_url(token_url).with_client_secret(client_secret)
}

impl AdapterConfig for SotiConfig {
    type Factory = SotiConnect;
    type Fields = SotiFields;

    fn into_parts(self) -> (CommonConfig, SotiFields) {
        (self.common, self.fields)
    }
}

/// The SOTI-specific fields of a provider: the grant and its fields, as a
/// table's `grant`, `username`, `password` and `code` say. Built by
/// [`SotiConfig`]'s constructors or read from a table. (A flat struct
/// rather than a tagged enum, so every error names its field.)
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SotiFields {
    grant: GrantName,
    username: Option<String>,
    password: Option<ConfigSecret>,
    code: Option<ConfigSecret>,
}

/// The `grant` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
        ctx.check_client_auth(ClientAuth::BasicRaw)?;
        // SOTI joins id and secret with one colon and forbids any other.
        if client_secret.expose_secret().contains(':') {
            return Err(
                ctx.error("client_secret", "must not contain ':' (SOTI Connect forbids it)")
            );
        }
        let config: SotiFields = ctx.parse()?;
        // A table's empty secret is refused as it is read; one built in
        // code, here.
        for (field, secret) in [("password", &config.password), ("code", &config.code)] {
            if secret.as_ref().is_some_and(ConfigSecret::is_empty) {
                return Err(ctx.error(field, "the secret is empty"));
            }
        }
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
                        endpoint
                            .request()
                            .client_auth(ClientAuth::BasicRaw, &client_id, Some(&client_secret))
                            .grant(&grant)
                            .send()
                            .await
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
