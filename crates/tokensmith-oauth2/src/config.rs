//! The oauth2-specific config fields (the grant, the client-auth method and
//! its encoding, scopes: the typed table [`OAuth2Fields`], built in code by
//! [`OAuth2Config`]) and their validation at load into [`Validated`], with
//! the client authentication resolved once into [`ClientAuthentication`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use tokensmith_core::secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    AdapterConfig, ClientAuth, CommonConfig, ConfigSecret, ProviderContext, TokenError, Url,
};

use crate::jwt_auth::{JwtFields, PrivateKeyJwt};

/// The `grant` field: which RFC 6749 grant the provider uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `client_credentials` (§4.4, the default): the client acts for itself.
    #[default]
    ClientCredentials,
    /// `authorization_code` (§4.1, RFC 7636): the code once, then refresh tokens.
    AuthorizationCode,
    /// `refresh_token` (§6): the configured refresh token, then rotated ones.
    RefreshToken,
}

impl GrantType {
    /// The `grant` value as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// The `auth_method` field: how the client authenticates (RFC 6749 §2.3,
/// names from OIDC's `token_endpoint_auth_method`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic (the default when a `client_secret` is set).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client, `client_id` in the form body (the default without a secret).
    None,
    /// A JWT signed with `private_key` (RFC 7523 §2.2, OIDC Core §9): the
    /// default when a `private_key` is set.
    PrivateKeyJwt,
}

/// The `basic_encoding` field: how `client_secret_basic` encodes the id and
/// secret before Base64.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasicEncoding {
    /// Form-urlencoded first, as RFC 6749 §2.3.1 says (the default).
    #[default]
    Form,
    /// As given, for servers that never decode.
    Raw,
}

/// How the client authenticates, resolved once at load from `auth_method`,
/// `basic_encoding`, `client_secret`, `private_key` and `issuer`. `Debug`
/// shows no secret and no key.
#[derive(Debug)]
pub(crate) enum ClientAuthentication {
    /// A client secret sent in this style (Basic form-encoded or raw, or in
    /// the body).
    Secret(ClientAuth, SecretString),
    /// A client secret with no method configured and an `issuer`: Basic,
    /// unless the discovery document lists `client_secret_post` and not Basic.
    SecretFromDiscovery(SecretString),
    /// `private_key_jwt`: a fresh signed assertion per request.
    PrivateKeyJwt(Box<PrivateKeyJwt>),
    /// A public client: `client_id` in the body, no secret.
    Public,
}

impl ClientAuthentication {
    /// The style of the request and the secret it carries, given whether the
    /// discovery document prefers `client_secret_post`.
    pub(crate) fn style(&self, prefers_post: bool) -> (ClientAuth, Option<&SecretString>) {
        match self {
            Self::Secret(style, secret) => (*style, Some(secret)),
            Self::SecretFromDiscovery(secret) if prefers_post => {
                (ClientAuth::RequestBody, Some(secret))
            }
            Self::SecretFromDiscovery(secret) => (ClientAuth::BasicFormEncoded, Some(secret)),
            Self::PrivateKeyJwt(_) | Self::Public => (ClientAuth::None, None),
        }
    }
}

/// `scope`: a space-delimited string or an array of strings.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub(crate) enum Scopes {
    One(String),
    Many(Vec<String>),
}

/// The oauth2-specific fields of a provider: what a table's `grant`,
/// `scope`, `auth_method`, … say, as the factory reads them. Built by
/// [`OAuth2Config`] or read from a table. `Debug` shows no secret and no
/// `extra_params` value.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Fields {
    #[serde(default)]
    pub(crate) grant: GrantType,
    pub(crate) scope: Option<Scopes>,
    pub(crate) auth_method: Option<AuthMethod>,
    pub(crate) basic_encoding: Option<BasicEncoding>,
    pub(crate) code: Option<ConfigSecret>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_verifier: Option<ConfigSecret>,
    pub(crate) refresh_token: Option<ConfigSecret>,
    #[serde(default, deserialize_with = "extra_params")]
    pub(crate) extra_params: BTreeMap<String, String>,
    /// Discovery instead of `token_url` (see `discovery`).
    pub(crate) issuer: Option<String>,
    /// `private_key_jwt` (see `jwt_auth`).
    pub(crate) private_key: Option<ConfigSecret>,
    pub(crate) private_key_id: Option<String>,
    pub(crate) assertion_audience: Option<String>,
}

impl OAuth2Fields {
    /// The fields of `grant` with every other field unset.
    fn of(grant: GrantType) -> Self {
        Self {
            grant,
            scope: None,
            auth_method: None,
            basic_encoding: None,
            code: None,
            redirect_uri: None,
            code_verifier: None,
            refresh_token: None,
            extra_params: BTreeMap::new(),
            issuer: None,
            private_key: None,
            private_key_id: None,
            assertion_audience: None,
        }
    }
}

impl fmt::Debug for OAuth2Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Fields")
            .field("grant", &self.grant)
            .field("scope", &self.scope)
            .field("auth_method", &self.auth_method)
            .field("basic_encoding", &self.basic_encoding)
            .field("code", &self.code)
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &self.code_verifier)
            .field("refresh_token", &self.refresh_token)
            .field("extra_params", &self.extra_params.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("private_key", &self.private_key)
            .field("private_key_id", &self.private_key_id)
            .field("assertion_audience", &self.assertion_audience)
            .finish()
    }
}

/// Where the token endpoint is: `token_url`, or discovered from `issuer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The token endpoint itself (`token_url`).
    TokenUrl(Url),
    /// The authorization server's issuer identifier (`issuer`), exactly as
    /// its metadata document names it: the token endpoint is discovered on
    /// first use (RFC 8414, OIDC Discovery 1.0).
    Issuer(String),
}

impl From<Url> for Endpoint {
    /// `token_url`.
    fn from(url: Url) -> Self {
        Self::TokenUrl(url)
    }
}

/// An oauth2 provider described in code: the table's fields, typed, one
/// constructor per grant. Build it with
/// [`Registry::build`](tokensmith_core::Registry::build) or
/// [`Providers::builder`](tokensmith_core::Providers::builder): the same
/// validation as a table (a field of another grant, a secret with
/// [`AuthMethod::None`], an unreadable key, … are errors then), cached once.
///
/// ```
/// use tokensmith_core::{Registry, Url, secrecy::SecretString};
/// use tokensmith_oauth2::{AuthMethod, Endpoint, OAuth2Config};
///
/// let token_url = Url::parse("https://auth.example.com/oauth2/token").unwrap();
/// let secret = SecretString::from("s3cr3t"); // e.g. fetched from a vault
/// let api = OAuth2Config::client_credentials(token_url, "my-client")
///     .with_client_secret(secret)
///     .with_auth_method(AuthMethod::ClientSecretPost)
///     .with_scope(["read", "write"])
///     .with_extra_param("audience", "https://api.example.com");
/// let api = Registry::new().build("api", api)?; // validated; no request yet
///
/// // The token endpoint found by discovery, a public client's code exchange.
/// let issuer = Endpoint::Issuer("https://login.example.com".to_owned());
/// let code = SecretString::from("SplxlOBeZQQYbYS6WxSbIA");
/// let user = OAuth2Config::authorization_code(issuer, "my-app", code, "https://app.example.com/callback")
///     .with_code_verifier(SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
/// let user = Registry::new().build("user", user)?;
/// # let _ = (api, user);
/// # Ok::<(), tokensmith_core::TokenError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2Config {
    common: CommonConfig,
    fields: OAuth2Fields,
}

impl OAuth2Config {
    /// `grant = "client_credentials"`: the client acts for itself. Without
    /// [`with_client_secret`](Self::with_client_secret) or
    /// [`with_private_key`](Self::with_private_key) it is a public client.
    pub fn client_credentials(endpoint: impl Into<Endpoint>, client_id: impl Into<String>) -> Self {
        Self::new(endpoint.into(), client_id.into(), OAuth2Fields::of(GrantType::ClientCredentials))
    }

    /// `grant = "authorization_code"`: the single-use `code` with the
    /// absolute `redirect_uri` of the authorize step (sent verbatim), then
    /// the refresh tokens the server returns (kept in the common
    /// `refresh_token_store`). Add
    /// [`with_code_verifier`](Self::with_code_verifier) when the authorize
    /// step used PKCE.
    pub fn authorization_code(
        endpoint: impl Into<Endpoint>,
        client_id: impl Into<String>,
        code: impl Into<ConfigSecret>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        let fields = OAuth2Fields {
            code: Some(code.into()),
            redirect_uri: Some(redirect_uri.into()),
            ..OAuth2Fields::of(GrantType::AuthorizationCode)
        };
        Self::new(endpoint.into(), client_id.into(), fields)
    }

    /// `grant = "refresh_token"`: this refresh token, then the rotated ones
    /// the server returns (kept in the common `refresh_token_store`).
    pub fn refresh_token(
        endpoint: impl Into<Endpoint>,
        client_id: impl Into<String>,
        refresh_token: impl Into<ConfigSecret>,
    ) -> Self {
        let fields = OAuth2Fields {
            refresh_token: Some(refresh_token.into()),
            ..OAuth2Fields::of(GrantType::RefreshToken)
        };
        Self::new(endpoint.into(), client_id.into(), fields)
    }

    fn new(endpoint: Endpoint, client_id: String, mut fields: OAuth2Fields) -> Self {
        let mut common = CommonConfig::new(crate::KIND, client_id);
        match endpoint {
            Endpoint::TokenUrl(url) => common = common.with_token_url(url),
            Endpoint::Issuer(issuer) => fields.issuer = Some(issuer),
        }
        Self { common, fields }
    }

    /// `client_secret`: a confidential client's secret (sent per
    /// [`with_auth_method`](Self::with_auth_method), Basic by default).
    #[must_use]
    pub fn with_client_secret(mut self, secret: impl Into<ConfigSecret>) -> Self {
        self.common = self.common.with_client_secret(secret);
        self
    }

    /// `scope`: the scopes asked for, sent space-delimited (each item may
    /// itself hold several, separated by spaces). Not sent with a code.
    #[must_use]
    pub fn with_scope<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.fields.scope = Some(Scopes::Many(scopes.into_iter().map(Into::into).collect()));
        self
    }

    /// `auth_method`: how the client authenticates (default: Basic with a
    /// secret, `private_key_jwt` with a key, else a public client).
    #[must_use]
    pub fn with_auth_method(mut self, method: AuthMethod) -> Self {
        self.fields.auth_method = Some(method);
        self
    }

    /// `basic_encoding`: how [`AuthMethod::ClientSecretBasic`] encodes the
    /// id and secret (default [`BasicEncoding::Form`]).
    #[must_use]
    pub fn with_basic_encoding(mut self, encoding: BasicEncoding) -> Self {
        self.fields.basic_encoding = Some(encoding);
        self
    }

    /// `code_verifier`: the PKCE verifier (RFC 7636 §4.5) sent with the code.
    #[must_use]
    pub fn with_code_verifier(mut self, verifier: impl Into<ConfigSecret>) -> Self {
        self.fields.code_verifier = Some(verifier.into());
        self
    }

    /// An `extra_params` entry: a form field added to every request (not
    /// one tokensmith sets itself, such as `grant_type` or `scope`).
    #[must_use]
    pub fn with_extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.extra_params.insert(name.into(), value.into());
        self
    }

    /// `private_key`: the PEM private key (RSA or EC P-256; PKCS#8, PKCS#1
    /// or SEC1) that signs a `private_key_jwt` assertion per request. Read
    /// from a file with [`ConfigSecret::from_file`].
    #[must_use]
    pub fn with_private_key(mut self, pem: impl Into<ConfigSecret>) -> Self {
        self.fields.private_key = Some(pem.into());
        self
    }

    /// `private_key_id`: the `kid` header of the assertions.
    #[must_use]
    pub fn with_private_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.fields.private_key_id = Some(key_id.into());
        self
    }

    /// `assertion_audience`: the assertions' `aud`, `"token_endpoint"` (the
    /// default), `"issuer"` (the [`Endpoint::Issuer`]) or a literal value.
    #[must_use]
    pub fn with_assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.fields.assertion_audience = Some(audience.into());
        self
    }

    /// Changes the common fields (`timeout`, `refresh_token_store`, …).
    #[must_use]
    pub fn with_common(mut self, change: impl FnOnce(CommonConfig) -> CommonConfig) -> Self {
        self.common = change(self.common);
        self
    }
}

impl AdapterConfig for OAuth2Config {
    type Factory = crate::OAuth2;
    type Fields = OAuth2Fields;

    fn into_parts(self) -> (CommonConfig, OAuth2Fields) {
        (self.common, self.fields)
    }
}

/// A provider's oauth2 fields, validated: everything a request is built from.
pub(crate) struct Validated {
    pub(crate) grant: GrantType,
    pub(crate) code: Option<SecretString>,
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_verifier: Option<SecretString>,
    /// Space-delimited, `None` when empty.
    pub(crate) scope: Option<String>,
    pub(crate) extra_params: BTreeMap<String, String>,
    pub(crate) auth: ClientAuthentication,
    pub(crate) issuer: Option<String>,
}

impl OAuth2Fields {
    /// Validates the fields (no network): the grant's fields, `extra_params`,
    /// what the server would refuse only after a code was spent, and the
    /// client authentication against the secret and key.
    pub(crate) fn validate(self, ctx: &ProviderContext) -> Result<Validated, TokenError> {
        let (code_grant, grant) = (self.grant == GrantType::AuthorizationCode, self.grant);
        let field = |name, value, in_use, grant: GrantType| {
            ctx.grant_field(name, value, in_use, grant.as_str())
        };
        let code = field("code", self.code, code_grant, GrantType::AuthorizationCode)?;
        let redirect_uri =
            ctx.grant_field("redirect_uri", self.redirect_uri, code_grant, "authorization_code")?;
        let refresh_grant = grant == GrantType::RefreshToken;
        let refresh_token =
            field("refresh_token", self.refresh_token, refresh_grant, GrantType::RefreshToken)?;
        // Optional with a code, meaningless without one.
        let with_verifier = code_grant && self.code_verifier.is_some();
        let code_verifier = field(
            "code_verifier",
            self.code_verifier,
            with_verifier,
            GrantType::AuthorizationCode,
        )?;
        // Case-insensitively: some servers (ASP.NET model binding) read
        // `Client_Secret` as `client_secret`.
        let reserved = |k: &String| RESERVED.split(' ').any(|r| r.eq_ignore_ascii_case(k));
        if let Some(name) = self.extra_params.keys().find(|k| reserved(k)) {
            let message = format!("`{name}` is set by tokensmith; use the provider's own fields");
            return Err(ctx.error(&format!("extra_params.{name}"), message));
        }
        if self.extra_params.keys().any(String::is_empty) {
            return Err(ctx.error("extra_params", "a form field name is empty"));
        }
        // A code is single-use: refuse now what would only be refused after
        // spending it.
        if redirect_uri.as_deref().is_some_and(|uri| Url::parse(uri).is_err()) {
            return Err(ctx.error(
                "redirect_uri",
                "must be the absolute URI sent to the authorization endpoint (RFC 6749 §3.1.2)",
            ));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        if let Some(verifier) = code_verifier.as_ref().map(|v| v.as_secret().expose_secret())
            && (!(43..=128).contains(&verifier.len()) || !verifier.bytes().all(allowed))
        {
            return Err(ctx.error(
                "code_verifier",
                "must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~' (RFC 7636 §4.1)",
            ));
        }
        let jwt_fields = JwtFields {
            private_key: self.private_key,
            private_key_id: self.private_key_id,
            assertion_audience: self.assertion_audience,
            issuer: self.issuer.clone(),
        };
        let auth = client_authentication(ctx, self.auth_method, self.basic_encoding, jwt_fields)?;
        let scope = match self.scope {
            Some(Scopes::One(s)) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Some(Scopes::Many(list)) => {
                list.iter().flat_map(|s| s.split_whitespace()).collect::<Vec<_>>().join(" ")
            }
            None => String::new(),
        };
        let secret = |s: Option<ConfigSecret>| s.map(|s| s.as_secret().clone());
        Ok(Validated {
            grant,
            code: secret(code),
            refresh_token: secret(refresh_token),
            redirect_uri,
            code_verifier: secret(code_verifier),
            scope: (!scope.is_empty()).then_some(scope),
            extra_params: self.extra_params,
            auth,
            issuer: self.issuer,
        })
    }
}

/// Resolves the client authentication: `auth_method` (defaulted from
/// whether a private key or a secret is set), `basic_encoding`, and for a
/// secret with no method and an `issuer`, discovery.
fn client_authentication(
    ctx: &ProviderContext,
    method: Option<AuthMethod>,
    encoding: Option<BasicEncoding>,
    jwt_fields: JwtFields,
) -> Result<ClientAuthentication, TokenError> {
    use AuthMethod::{
        ClientSecretBasic as Basic, ClientSecretPost as Post, None as Public, PrivateKeyJwt as Jwt,
    };
    let discovered = jwt_fields.issuer.is_some() && method.is_none() && encoding.is_none();
    let jwt = PrivateKeyJwt::from_config(ctx, method.map(|m| m == Jwt), jwt_fields)?;
    let method = if jwt.is_some() { Some(Jwt) } else { method };
    let secret = ctx.common().client_secret.as_ref().map(|s| s.as_secret().clone());
    let fail = |field: &str, message: &str| Err(ctx.error(field, message));
    let (style, secret) = match (method, encoding, secret) {
        (Some(Post | Public | Jwt), Some(_), _) => {
            return fail("basic_encoding", "only used with auth_method = \"client_secret_basic\"");
        }
        (Some(Public), None, Some(_)) => {
            return fail("client_secret", "a public client (auth_method = \"none\") sends none");
        }
        (Some(Jwt), None, _) => {
            return Ok(jwt
                .map(Box::new)
                .map_or(ClientAuthentication::Public, ClientAuthentication::PrivateKeyJwt));
        }
        (None | Some(Public), None, None) => return Ok(ClientAuthentication::Public),
        (_, _, None) => {
            return fail("client_secret", "required unless auth_method = \"none\" (public client)");
        }
        (_, _, Some(secret)) if discovered => {
            return Ok(ClientAuthentication::SecretFromDiscovery(secret));
        }
        (_, Some(BasicEncoding::Raw), Some(secret)) => (ClientAuth::BasicRaw, secret),
        (Some(Post), None, Some(secret)) => (ClientAuth::RequestBody, secret),
        (None | Some(Basic), _, Some(secret)) => (ClientAuth::BasicFormEncoded, secret),
    };
    ctx.check_client_auth(style)?;
    Ok(ClientAuthentication::Secret(style, secret))
}

/// Form fields tokensmith sets itself: `extra_params` may not override them.
pub(crate) const RESERVED: &str = "grant_type client_id client_secret scope code redirect_uri code_verifier refresh_token \
     client_assertion client_assertion_type";

/// `deserialize_with` for `extra_params`: a table of strings. Given anything
/// else, the error says what was given without quoting it (serde's own
/// message would, and a string here may well be a secret).
fn extra_params<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Visitor;

    impl<'de> de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of form fields, e.g. { audience = \"https://api.example.com\" }")
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom(
                "expected a table of form fields, e.g. { audience = \"https://api.example.com\" }, found a string",
            ))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, value)) = map.next_entry::<String, String>()? {
                out.insert(name, value);
            }
            Ok(out)
        }
    }

    d.deserialize_any(Visitor)
}
