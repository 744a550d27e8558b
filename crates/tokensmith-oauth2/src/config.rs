//! The oauth2-specific config fields: the grant, the client-auth method and
//! its encoding, scopes, and the typed table [`Config`] read by
//! [`OAuth2Provider::from_context`](crate::OAuth2Provider::from_context).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use tokensmith_core::ConfigSecret;

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

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
