//! The oauth2-specific config fields (the grant, the client-auth method and
//! its encoding, scopes: the typed table [`Config`]) and their validation at
//! load into [`Validated`], with the client authentication resolved once
//! into [`ClientAuthentication`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use tokensmith_core::secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{ClientAuth, ConfigSecret, ProviderContext, TokenError};

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
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub(crate) enum Scopes {
    One(String),
    Many(Vec<String>),
}

/// The oauth2-specific fields of a provider table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
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

impl Config {
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
        if redirect_uri.as_deref().is_some_and(|uri| tokensmith_core::Url::parse(uri).is_err()) {
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
