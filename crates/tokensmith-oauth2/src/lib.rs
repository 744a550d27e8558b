//! Standards-based OAuth 2.0 adapter (RFC 6749, RFC 7636): the factory
//! [`OAuth2`] (kind [`KIND`]) and the provider it builds, [`OAuth2Provider`].
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
mod discovery;
mod jwt_auth;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tokensmith_core::secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    AccessToken, AdapterFactory, ClientAuth, ConfigSecret, ProviderContext, Renewal, RenewalGrant,
    SharedTokenProvider, TokenError, TokenProvider, async_trait,
};

pub use crate::config::{AuthMethod, BasicEncoding, GrantType};
use crate::config::{Config, RESERVED, Scopes};
use crate::discovery::EndpointSource;
use crate::jwt_auth::{JwtFields, PrivateKeyJwt};

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

    /// The `issuer`, when the token endpoint is found by discovery.
    fn details(&self, ctx: &ProviderContext) -> Vec<(&'static str, String)> {
        let issuer = ctx.parse::<Config>().ok().and_then(|config| config.issuer);
        issuer.map(|issuer| vec![("issuer", issuer)]).unwrap_or_default()
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
    private_key_jwt: Option<PrivateKeyJwt>,
    client_id: String,
    client_secret: Option<SecretString>,
    auth: ClientAuth,
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
            .field("private_key_jwt", &exchange.private_key_jwt)
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
        let config: Config = ctx.parse()?;
        let grant = config.grant;
        let code_grant = grant == GrantType::AuthorizationCode;
        let refresh_grant = grant == GrantType::RefreshToken;
        let code = ctx.grant_field("code", config.code, code_grant, "authorization_code")?;
        let redirect_uri =
            ctx.grant_field("redirect_uri", config.redirect_uri, code_grant, "authorization_code")?;
        let refresh_token =
            ctx.grant_field("refresh_token", config.refresh_token, refresh_grant, "refresh_token")?;
        // Optional with a code, meaningless without one.
        let verifier_given = config.code_verifier.is_some();
        let code_verifier = ctx.grant_field(
            "code_verifier",
            config.code_verifier,
            code_grant && verifier_given,
            "authorization_code",
        )?;
        // Case-insensitively: some servers (ASP.NET model binding) read
        // `Client_Secret` as `client_secret`.
        if let Some(name) = config
            .extra_params
            .keys()
            .find(|k| RESERVED.split(' ').any(|r| r.eq_ignore_ascii_case(k)))
        {
            let message = format!("`{name}` is set by tokensmith; use the provider's own fields");
            return Err(ctx.error(&format!("extra_params.{name}"), message));
        }
        if config.extra_params.keys().any(String::is_empty) {
            return Err(ctx.error("extra_params", "a form field name is empty"));
        }
        // A code is single-use: refuse now what would only be refused after
        // spending it.
        if let Some(uri) = &redirect_uri
            && tokensmith_core::Url::parse(uri).is_err()
        {
            return Err(ctx.error(
                "redirect_uri",
                "must be the absolute URI sent to the authorization endpoint (RFC 6749 §3.1.2)",
            ));
        }
        if let Some(verifier) = &code_verifier {
            let verifier = verifier.expose_secret();
            let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(allowed) {
                return Err(ctx.error(
                    "code_verifier",
                    "must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~' (RFC 7636 §4.1)",
                ));
            }
        }
        let secret = |s: Option<ConfigSecret>| s.map(|s| s.as_secret().clone());
        // The code once, then refresh tokens; or the refresh token, then rotated ones.
        let renewal = (grant != GrantType::ClientCredentials).then(|| {
            let (code, token) = (secret(code), secret(refresh_token));
            ctx.renewal(code, token)
        });
        let scope = match config.scope {
            Some(Scopes::One(s)) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Some(Scopes::Many(list)) => {
                list.iter().flat_map(|s| s.split_whitespace()).collect::<Vec<_>>().join(" ")
            }
            None => String::new(),
        };
        let private_key_jwt = PrivateKeyJwt::from_config(
            ctx,
            config.auth_method.map(|m| m == AuthMethod::PrivateKeyJwt),
            JwtFields {
                private_key: config.private_key,
                private_key_id: config.private_key_id,
                assertion_audience: config.assertion_audience,
                issuer: config.issuer.clone(),
            },
        )?;
        let method = private_key_jwt
            .as_ref()
            .map_or(config.auth_method, |_| Some(AuthMethod::PrivateKeyJwt));
        let (auth, client_secret) = client_auth(ctx, method, config.basic_encoding)?;
        if auth == ClientAuth::BasicRaw && ctx.common().client_id.contains(':') {
            return Err(ctx.error(
                "client_id",
                "must not contain ':' with basic_encoding = \"raw\" (Basic credentials split at the first ':')",
            ));
        }
        let auth_configured = method.is_some() || config.basic_encoding.is_some();
        let exchange = Exchange {
            endpoint: EndpointSource::from_context(ctx, config.issuer.as_deref(), auth_configured)?,
            private_key_jwt,
            client_id: ctx.common().client_id.clone(),
            client_secret,
            auth,
            scope: (!scope.is_empty()).then_some(scope),
            redirect_uri,
            code_verifier: secret(code_verifier),
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
        let secret = self.client_secret.as_ref();
        let (endpoint, auth) = self.endpoint.resolve(self.auth).await?;
        let mut request = endpoint.request().client_auth(auth, &self.client_id, secret);
        if let Some(jwt) = &self.private_key_jwt {
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

/// The client-auth style and secret for `auth_method` (defaulted from
/// whether a secret is set) and `basic_encoding`.
fn client_auth(
    ctx: &ProviderContext,
    method: Option<AuthMethod>,
    encoding: Option<BasicEncoding>,
) -> Result<(ClientAuth, Option<SecretString>), TokenError> {
    use AuthMethod::{
        ClientSecretBasic as Basic, ClientSecretPost as Post, None as Public, PrivateKeyJwt as Jwt,
    };
    let secret = ctx.common().client_secret.as_ref().map(|s| s.as_secret().clone());
    let fail = |field: &str, message: &str| Err(ctx.error(field, message));
    let auth = match (method, encoding, secret.is_some()) {
        (Some(Post | Public | Jwt), Some(_), _) => {
            return fail("basic_encoding", "only used with auth_method = \"client_secret_basic\"");
        }
        (Some(Public), None, true) => {
            return fail("client_secret", "a public client (auth_method = \"none\") sends none");
        }
        (None | Some(Public), None, false) | (Some(Jwt), None, _) => ClientAuth::None,
        (_, _, false) => {
            return fail("client_secret", "required unless auth_method = \"none\" (public client)");
        }
        (_, Some(BasicEncoding::Raw), true) => ClientAuth::BasicRaw,
        (Some(Post), None, true) => ClientAuth::RequestBody,
        (None | Some(Basic), _, true) => ClientAuth::BasicFormEncoded,
    };
    Ok((auth, secret))
}

#[async_trait]
impl TokenProvider for OAuth2Provider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}
