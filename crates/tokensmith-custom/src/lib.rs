//! Vendors described in config: the factory [`Custom`] (kind [`KIND`]), the
//! typed config [`CustomConfig`] for building a provider in code, and the
//! provider they build, [`CustomProvider`], with its [`Presentation`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod description;
mod template;

use std::fmt;
use std::sync::Arc;

use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, AdapterConfig, AdapterFactory, CommonConfig, ConfigSecret, ProviderContext,
    SharedTokenProvider, TokenEndpoint, TokenError, TokenProvider, TokenRequest, Url, async_trait,
};

pub use description::{CustomFields, Presentation};
use description::{Plan, PlanBody, Sent};

/// The `kind` of providers described in config.
pub const KIND: &str = "custom";

/// The factory for [`KIND`]: register it with
/// [`Registry::with`](tokensmith_core::Registry::with).
#[derive(Clone, Copy, Debug, Default)]
pub struct Custom;

impl AdapterFactory for Custom {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        Ok(Arc::new(CustomProvider::from_context(&ctx)?))
    }

    fn details(&self, ctx: &ProviderContext) -> Vec<(&'static str, String)> {
        description::plan(ctx).map(|plan| vec![("request", plan.summary)]).unwrap_or_default()
    }
}

/// A vendor described in code: the description as TOML text (the
/// `request`, `response` and `present` tables of a `[providers.NAME]`
/// table, which hold no secret), the credentials typed. Build it with
/// [`Registry::build`](tokensmith_core::Registry::build) or
/// [`Providers::builder`](tokensmith_core::Providers::builder): the same
/// validation as a table (pointers, templates, names, no secret in a
/// literal), cached once.
///
/// ```
/// use tokensmith_core::{ConfigSecret, Registry, Url, secrecy::SecretString};
/// use tokensmith_custom::CustomConfig;
///
/// let description = r#"
///     request = { body = "json", fields = { user = "{username}", pass = "{password}" } }
///     response = { token = "/data/token", expires_in = "/data/ttl" }
///     present = { header = "X-Auth-Token", value = "{token}" }
/// "#;
/// let password = SecretString::from("s3cr3t"); // e.g. fetched from a vault
/// let config = CustomConfig::new(
///     Url::parse("https://api.acme.example/v2/login").unwrap(),
///     "reporting-app",
///     description,
/// )?
/// .with_username("reporting")
/// .with_password(password);
/// let acme = Registry::new().build("acme", config)?; // validated; no request yet
/// # let _ = acme;
/// # Ok::<(), tokensmith_core::TokenError>(())
/// ```
#[derive(Clone)]
pub struct CustomConfig {
    common: CommonConfig,
    fields: CustomFields,
}

impl fmt::Debug for CustomConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomConfig")
            .field("common", &self.common)
            .field("fields", &self.fields)
            .finish()
    }
}

/// The table keys a description given as text may hold: the credentials
/// (`username`, `password`, `secrets`) come typed through [`CustomConfig`]'s
/// methods, the common fields through [`CustomConfig::with_common`].
const DESCRIPTION_KEYS: [&str; 3] = ["request", "response", "present"];

impl CustomConfig {
    /// A provider of the endpoint `token_url` for `client_id`, described by
    /// `description`: TOML with the `request`, `response` and `present`
    /// tables (as in a `[providers.NAME]` table). A description that is not
    /// TOML, holds another key, or does not have those tables' shape is a
    /// config error naming the field; the rest (pointers, templates, names)
    /// is checked when the provider is built, as for a table.
    pub fn new(
        token_url: Url,
        client_id: impl Into<String>,
        description: &str,
    ) -> Result<Self, TokenError> {
        let invalid = |field: Option<&str>, message: String| {
            TokenError::config(None, field, format!("in the description: {message}"))
        };
        let table: toml::Table =
            toml::from_str(description).map_err(|e| invalid(None, e.message().to_owned()))?;
        if let Some(key) = table.keys().find(|k| !DESCRIPTION_KEYS.contains(&k.as_str())) {
            let hint = match key.as_str() {
                "username" => "; give it with `with_username`",
                "password" => "; give it with `with_password`",
                "secrets" => "; give each with `with_secret`",
                _ => "; a description holds only `request`, `response` and `present`",
            };
            return Err(invalid(Some(key), format!("`{key}` is not allowed here{hint}")));
        }
        let fields: CustomFields =
            table.try_into().map_err(|e: toml::de::Error| invalid(None, e.message().to_owned()))?;
        let common = CommonConfig::new(KIND, client_id).with_token_url(token_url);
        Ok(Self { common, fields })
    }

    /// The client secret, for `{client_secret}` (and `auth = "basic"` or
    /// `"body"`).
    #[must_use]
    pub fn with_client_secret(mut self, secret: impl Into<ConfigSecret>) -> Self {
        self.common = self.common.with_client_secret(secret);
        self
    }

    /// The user name, for `{username}`.
    #[must_use]
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.fields.username = Some(username.into());
        self
    }

    /// The password, for `{password}`.
    #[must_use]
    pub fn with_password(mut self, password: impl Into<ConfigSecret>) -> Self {
        self.fields.password = Some(password.into());
        self
    }

    /// A named extra secret, for `{name}` (as under `secrets` in a table).
    #[must_use]
    pub fn with_secret(mut self, name: impl Into<String>, secret: impl Into<ConfigSecret>) -> Self {
        self.fields.secrets.insert(name.into(), secret.into());
        self
    }

    /// Changes the common fields (`timeout`, `expiry_margin`, `ca_file`, …).
    #[must_use]
    pub fn with_common(mut self, change: impl FnOnce(CommonConfig) -> CommonConfig) -> Self {
        self.common = change(self.common);
        self
    }
}

impl AdapterConfig for CustomConfig {
    type Factory = Custom;
    type Fields = CustomFields;

    fn into_parts(self) -> (CommonConfig, CustomFields) {
        (self.common, self.fields)
    }
}

impl fmt::Debug for RenderedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names only: the query and every value may hold a secret.
        let mut url = self.url.clone();
        url.set_query(None);
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RenderedRequest")
            .field("method", &self.method)
            .field("url", &url.as_str())
            .field("content_type", &self.content_type)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// A token endpoint described in config. Every call to
/// [`token`](TokenProvider::token) is one request: the registry adds the
/// cache.
pub struct CustomProvider {
    endpoint: TokenEndpoint,
    plan: Plan,
}

impl fmt::Debug for CustomProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomProvider")
            .field("endpoint", &self.endpoint)
            .field("request", &self.plan.summary)
            .field("shape", &self.plan.shape)
            .field("present", &self.plan.present)
            .finish_non_exhaustive()
    }
}

impl CustomProvider {
    /// Validates the description (no network): every field known, every
    /// pointer and template well formed, every name known, no secret written
    /// out in a literal, one lifetime; each error names the field.
    pub fn from_context(ctx: &ProviderContext) -> Result<Self, TokenError> {
        let plan = description::plan(ctx)?;
        Ok(Self { endpoint: ctx.endpoint()?, plan })
    }

    /// How this provider's tokens are presented to resource servers.
    ///
    /// Every token [`fetch`](Self::fetch) returns carries it too
    /// ([`AccessToken::header`]).
    pub fn presentation(&self) -> &Presentation {
        &self.plan.present
    }

    /// The header name and value presenting `token` (contract §7).
    pub fn present(&self, token: &AccessToken) -> (String, SecretString) {
        self.plan.present.present(token)
    }

    /// One token request, as described.
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let token = self.request().send_shaped(&self.plan.shape).await?;
        Ok(token.with_presentation(self.plan.present.to_core()))
    }

    /// The token request [`fetch`](Self::fetch) sends, built from the plan.
    fn request(&self) -> TokenRequest<'_> {
        let plan = &self.plan;
        let mut request = self.endpoint.request().method(plan.method);
        request = match &plan.body {
            PlanBody::Form(fields) => fields.iter().fold(request, |r, (name, value)| match value {
                Sent::Plain(v) => r.param(name, v),
                Sent::Secret(v) => r.secret_param(name, v),
            }),
            PlanBody::Json { value, secrets } => secrets
                .iter()
                .fold(request.json_body(value.clone()), |r, (p, v)| r.json_secret(p, v)),
            PlanBody::Empty => request.no_body(),
        };
        for (name, value) in &plan.query {
            request = match value {
                Sent::Plain(v) => request.query(name, v),
                Sent::Secret(v) => request.secret_query(name, v),
            };
        }
        for (name, value) in &plan.headers {
            request = match value {
                Sent::Plain(v) => request.header(name, v),
                Sent::Secret(v) => request.secret_header(name, v),
            };
        }
        if let Some((user, password)) = &plan.basic {
            request = request.basic_auth(user, password);
        }
        for secret in &plan.secrets {
            request = request.scrub(secret);
        }
        request
    }

    /// The request [`fetch`](Self::fetch) would send, rendered without
    /// sending it: for the fuzz target `custom_request` and tests of the
    /// exact values. The body and the `Authorization` header are core's
    /// encoding of the very request `fetch` sends
    /// ([`TokenRequest::encode`]); the query is added to the URL and the
    /// headers listed as core adds them. Not part of the stable API.
    #[doc(hidden)]
    pub fn render(&self) -> RenderedRequest {
        let plan = &self.plan;
        let (authorization, body) = self.request().encode();
        let mut url = self.endpoint.url().clone();
        if !plan.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &plan.query {
                pairs.append_pair(name, value.expose());
            }
        }
        let content_type = match plan.body {
            PlanBody::Form(_) => Some("application/x-www-form-urlencoded"),
            PlanBody::Json { .. } => Some("application/json"),
            PlanBody::Empty => None,
        };
        let mut headers: Vec<(String, SecretString)> = plan
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), SecretString::from(value.expose())))
            .collect();
        headers.extend(authorization.map(|value| ("Authorization".to_owned(), value)));
        RenderedRequest { method: plan.method.as_str(), url, content_type, headers, body }
    }
}

/// A request rendered by [`CustomProvider::render`], not sent. Every value
/// may hold a secret. Not part of the stable API.
#[doc(hidden)]
pub struct RenderedRequest {
    /// `POST` or `GET`.
    pub method: &'static str,
    /// The token URL with the query added.
    pub url: Url,
    /// The `Content-Type` of the body (none without a body).
    pub content_type: Option<&'static str>,
    /// The headers the description adds, in order, then `Authorization`
    /// when Basic credentials are sent.
    pub headers: Vec<(String, SecretString)>,
    /// The body as sent (empty without one).
    pub body: SecretString,
}

#[async_trait]
impl TokenProvider for CustomProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
