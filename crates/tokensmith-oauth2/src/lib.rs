//! Standards-based OAuth 2.0 adapter (RFC 6749, RFC 7636): the factory
//! [`OAuth2`] (kind [`KIND`]), the typed config [`OAuth2Config`] for
//! building a provider in code, and the provider they build,
//! [`OAuth2Provider`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
mod discovery;
mod jwt_auth;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, AdapterFactory, ClientAuth, ProviderContext, Renewal, RenewalGrant,
    SharedTokenProvider, TokenError, TokenProvider, async_trait,
};

use crate::config::ClientAuthentication;
pub use crate::config::{
    AuthMethod, BasicEncoding, Endpoint, GrantType, OAuth2Config, OAuth2Fields,
};
use crate::discovery::EndpointSource;

/// The `kind` of standards-based OAuth 2.0 providers.
pub const KIND: &str = "oauth2";

/// The factory for [`KIND`]: register it with
/// [`Registry::with`](tokensmith_core::Registry::with).
#[derive(Clone, Copy, Debug, Default)]
pub struct OAuth2;

impl AdapterFactory for OAuth2 {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        Ok(Arc::new(OAuth2Provider::from_context(&ctx)?))
    }

    /// The `issuer`, when the token endpoint is found by discovery. Reads
    /// that field only: a table's other fields, and the secret files or
    /// variables they name, are read once, by [`build`](Self::build).
    fn details(&self, ctx: &ProviderContext) -> Vec<(&'static str, String)> {
        let issuer = match ctx.parse::<IssuerOnly>() {
            Ok(IssuerOnly { issuer }) => issuer.and_then(|issuer| issuer.0),
            // Built in code: the typed fields, a copy of values already read.
            Err(_) => ctx.parse::<OAuth2Fields>().ok().and_then(|fields| fields.issuer),
        };
        issuer.map(|issuer| vec![("issuer", issuer)]).unwrap_or_default()
    }
}

/// A table's `issuer` and nothing else (the other fields are skipped
/// unread); a table always parses, so an error means typed fields.
#[derive(Deserialize)]
struct IssuerOnly {
    #[serde(default)]
    issuer: Option<AnyString>,
}

/// A string, or `None` for any other value (whose error `build` reports).
struct AnyString(Option<String>);

impl<'de> Deserialize<'de> for AnyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = AnyString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<AnyString, E> {
                Ok(AnyString(Some(s.to_owned())))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<AnyString, E> {
                Ok(AnyString(None))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<AnyString, E> {
                Ok(AnyString(None))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<AnyString, E> {
                Ok(AnyString(None))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AnyString, E> {
                Ok(AnyString(None))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<AnyString, A::Error> {
                de::IgnoredAny.visit_seq(seq).map(|_| AnyString(None))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<AnyString, A::Error> {
                de::IgnoredAny.visit_map(map).map(|_| AnyString(None))
            }
        }

        d.deserialize_any(Visitor)
    }
}

/// An RFC 6749 token endpoint. Every call to [`token`](TokenProvider::token)
/// is one request: the registry adds the cache.
pub struct OAuth2Provider {
    /// The code once, then refresh tokens (`None` for `client_credentials`).
    renewal: Option<Arc<Renewal>>,
    /// Shared with a renewal that outlives its caller ([`Renewal::exchange`]).
    exchange: Arc<Exchange>,
}

/// What one request is built from.
struct Exchange {
    endpoint: EndpointSource,
    client_id: String,
    auth: ClientAuthentication,
    scope: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<SecretString>,
    extra_params: BTreeMap<String, String>,
}

impl fmt::Debug for OAuth2Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exchange = &self.exchange;
        f.debug_struct("OAuth2Provider")
            .field("endpoint", &exchange.endpoint)
            .field("client_id", &exchange.client_id)
            .field("auth", &exchange.auth)
            .field("scope", &exchange.scope)
            .field("renewal", &self.renewal)
            .field("extra_params", &exchange.extra_params.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl OAuth2Provider {
    /// Validates the provider's config (no network): the grant's fields, the
    /// auth method against the secret, and `extra_params`.
    pub fn from_context(ctx: &ProviderContext) -> Result<Self, TokenError> {
        let config = ctx.parse::<OAuth2Fields>()?.validate(ctx)?;
        // The code once, then refresh tokens; or the refresh token, then rotated ones.
        let renewal = (config.grant != GrantType::ClientCredentials)
            .then(|| ctx.renewal(config.code, config.refresh_token));
        let exchange = Exchange {
            endpoint: EndpointSource::from_context(ctx, config.issuer.as_deref())?,
            client_id: ctx.common().client_id.clone(),
            auth: config.auth,
            scope: config.scope,
            redirect_uri: config.redirect_uri,
            code_verifier: config.code_verifier,
            extra_params: config.extra_params,
        };
        Ok(Self { renewal, exchange: Arc::new(exchange) })
    }

    /// One token request with the configured grant. A code or refresh-token
    /// exchange runs to the end even if the caller stops waiting
    /// ([`Renewal::exchange`]).
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let Some(renewal) = &self.renewal else { return self.exchange.send(None).await };
        let exchange = Arc::clone(&self.exchange);
        renewal.exchange(move |grant| async move { exchange.send(Some(&grant)).await }).await
    }
}

impl Exchange {
    /// Sends the client authentication, the grant's fields (with a code, also
    /// `client_id` in the body), `scope` (not with a code: its scope was
    /// fixed at the authorize step) and `extra_params`.
    async fn send(&self, grant: Option<&RenewalGrant>) -> Result<AccessToken, TokenError> {
        let (endpoint, prefers_post) = self.endpoint.resolve().await?;
        let (auth, secret) = self.auth.style(prefers_post);
        let mut request = endpoint.request().client_auth(auth, &self.client_id, secret);
        if let ClientAuthentication::PrivateKeyJwt(jwt) = &self.auth {
            request = jwt.authenticate(request, endpoint, &self.client_id)?;
        }
        let mut scope = self.scope.as_deref();
        request = match grant {
            None => request.param("grant_type", "client_credentials"),
            Some(RenewalGrant::RefreshToken(token)) => {
                request.param("grant_type", "refresh_token").secret_param("refresh_token", token)
            }
            Some(RenewalGrant::AuthorizationCode(code)) => {
                scope = None;
                let mut request =
                    request.param("grant_type", "authorization_code").secret_param("code", code);
                if let Some(uri) = &self.redirect_uri {
                    request = request.param("redirect_uri", uri);
                }
                // RFC 6749 §4.1.3 allows it, and the scoped vendor's page
                // requires it whatever the client authentication; the other
                // styles already put it in the body.
                if matches!(auth, ClientAuth::BasicFormEncoded | ClientAuth::BasicRaw) {
                    request = request.param("client_id", &self.client_id);
                }
                if let Some(verifier) = &self.code_verifier {
                    request = request.secret_param("code_verifier", verifier);
                }
                request
            }
        };
        if let Some(scope) = scope {
            request = request.param("scope", scope);
        }
        for (name, value) in &self.extra_params {
            request = request.param(name, value);
        }
        request.send().await
    }
}

#[async_trait]
impl TokenProvider for OAuth2Provider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
