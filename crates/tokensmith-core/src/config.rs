//! The config model: the TOML file's `[providers.NAME]` tables and the fields
//! common to every kind ([`CommonConfig`]).
//!
//! Core parses and validates the common fields; whatever is left of a
//! provider's table is handed to its adapter, which deserializes its own typed
//! config with [`ProviderContext::parse`](crate::ProviderContext::parse)
//! (unknown fields rejected, errors naming the provider and the field).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use url::Url;

use crate::{ConfigSecret, TokenError};

/// Default whole-request timeout (`timeout`): 30 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The fields every provider table may have, whatever its `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommonConfig {
    /// The adapter kind (`soti-connect`, `configapi`, `oauth2`, `deyel`), lowercased.
    pub kind: String,
    /// The token endpoint. Required by every built-in kind except `oauth2`
    /// with `issuer` (discovery).
    #[serde(default)]
    pub token_url: Option<Url>,
    /// The client identifier.
    pub client_id: String,
    /// The client secret (required or forbidden per kind).
    #[serde(default)]
    pub client_secret: Option<ConfigSecret>,
    /// Whole-request timeout (default [`DEFAULT_TIMEOUT`]).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Treat a token as expired this long before it expires (default: the
    /// cache's, see [`CacheConfig`](crate::CacheConfig)).
    #[serde(default, deserialize_with = "opt_duration")]
    pub expiry_margin: Option<Duration>,
    /// Start a background refresh this long before expiry (default: the
    /// cache's, see [`CacheConfig`](crate::CacheConfig)).
    #[serde(default, deserialize_with = "opt_duration")]
    pub refresh_ahead: Option<Duration>,
    /// Where rotated refresh tokens persist.
    #[serde(default)]
    pub refresh_token_store: Option<RefreshTokenStoreConfig>,
    /// Allow plain `http://` to a non-loopback host (default `false`).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Extra trusted CA certificates (PEM) for a private PKI.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The `refresh_token_store` field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefreshTokenStoreConfig {
    /// `{ file = "PATH" }`: a file, mode 0600, replaced atomically.
    File(PathBuf),
    /// `"memory"`: kept in memory only (lost on restart; the default).
    Memory,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// Parses a humane duration string (`"30s"`, `"2m 30s"`, `"500ms"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. \"30s\", \"5m\", \"500ms\""))
}

/// `deserialize_with` for a humane duration string.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(de::Error::custom)
}

/// `deserialize_with` for an optional humane duration string.
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Deserializes `table` into `T`, turning errors into a [`TokenError::Config`]
/// that names the provider and the dotted field path.
pub(crate) fn from_table<T: DeserializeOwned>(
    provider: &str,
    table: toml::Table,
) -> Result<T, TokenError> {
    let value = toml::Value::Table(table);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.message().to_owned();
        let field = if path == "." { None } else { Some(path.as_str()) };
        let field = field.or_else(|| field_from_message(&message));
        TokenError::config(Some(provider), field, message.clone())
    })
}

/// serde's "unknown field `x`" / "missing field `x`" messages name the field in backticks.
fn field_from_message(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}
