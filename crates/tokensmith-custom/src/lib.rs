//! Vendors described in config: the factory [`Custom`] (kind [`KIND`]) and
//! the provider it builds, [`CustomProvider`], with its [`Presentation`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod description;
mod template;

use std::fmt;
use std::sync::Arc;

use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, AdapterFactory, ProviderContext, SharedTokenProvider, TokenEndpoint, TokenError,
    TokenProvider, async_trait,
};

pub use description::Presentation;
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
        let token = request.send_shaped(&plan.shape).await?;
        Ok(token.with_presentation(plan.present.to_core()))
    }
}

#[async_trait]
impl TokenProvider for CustomProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
