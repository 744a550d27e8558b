//! Token stores: where cached tokens live beyond one process.
//!
//! The in-process cache ([`CachedProvider`](crate::CachedProvider)) stays in
//! front of a store: its hit path never touches one. A [`TokenStore`] is
//! consulted only when the in-process cache has no usable token (a cold
//! start, a token gone stale, an invalidation) or opens its refresh window,
//! inside the cache's single flight (on the flight's own task):
//!
//! 1. [`load`](TokenStore::load): a token another process (or an earlier
//!    run) stored, still valid by the cache's own staleness rule, is used
//!    without an upstream request;
//! 2. otherwise [`try_lock`](TokenStore::try_lock): the lease holder looks
//!    again, then fetches upstream, [`store`](TokenStore::store)s the token
//!    with `ttl = lifetime - margin` and [releases](StoreLease::release) the
//!    lease; a process that finds the lease held polls `load` (on the
//!    injected clock, bounded by the store's `lock_timeout`) and fetches for
//!    itself if nothing came;
//! 3. [`invalidate`](crate::TokenProvider::invalidate) calls
//!    [`remove_if_same`](TokenStore::remove_if_same).
//!
//! A store that fails, is slow or returns garbage never fails a caller: the
//! cache fetches for itself and logs once per outage (never a secret).
//!
//! Keys: [`ProviderKey`], an HMAC-SHA-256 of a provider's
//! [`ProviderIdentity`] (its kind and every non-secret field that changes
//! which token comes back, with the secrets bound in through the keyed hash)
//! under a [`NamingKey`] the store supplies. No secret, and no unkeyed hash
//! of one, appears in a key.
//!
//! Values: [`encode_token`] and [`decode_token`], one compact JSON document
//! per token (the access token, its type, receipt and expiry as wall-clock
//! Unix milliseconds, its scope; never a refresh or id token). The decoder
//! is bounded and strict: a hostile entry is an error, never a panic nor a
//! token with a forged header.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ring::hmac;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

mod file;

pub use file::FileTokenStore;

use crate::{
    AccessToken, BoxError, DEFAULT_LIFETIME, MAX_EXPIRES_IN, Presentation, Scope, TokenType,
};

/// A shared token store.
pub type SharedTokenStore = Arc<dyn TokenStore>;

/// Where cached tokens live beyond one process: a directory
/// ([`FileTokenStore`](crate::FileTokenStore)), Redis (the
/// `tokensmith-redis` crate), or your own.
///
/// Async ([`async_trait`](macro@async_trait)) and object safe: the cache
/// holds a [`SharedTokenStore`]. Every method may fail with a
/// [`StoreError`]; the cache then goes on without the store (a store can
/// never fail a caller), so an implementation reports problems rather than
/// hiding them, and never blocks for long (bound every call: the cache also
/// gives up on a call after [`STORE_CALL_TIMEOUT`]).
///
/// Implementations must:
///
/// - keep values opaque and private: what [`store`](Self::store) is given
///   is a live access token (encrypt it, or keep it where only this user
///   can read it); [`encode_token`] / [`decode_token`] give the serialised
///   form;
/// - treat what they read as hostile: a value that does not decode (or
///   decrypt) is `Ok(None)` or a [`StoreError`] of kind
///   [`Corrupt`](StoreErrorKind::Corrupt), never a panic;
/// - never put a secret in an error message or a log line, and never name
///   a key by anything but [`ProviderKey::as_str`].
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// The store's kind, for logs: `"file"`, `"redis"`, …
    fn kind(&self) -> &'static str;

    /// The key under which this store names providers' entries (a random
    /// per-user key for the file store; one derived from the encryption key
    /// for Redis). Asked once per provider, on its first miss; an error is
    /// asked again on the next.
    async fn naming_key(&self) -> Result<NamingKey, StoreError>;

    /// The token stored under `key`, if any. The cache checks it is still
    /// valid by its own staleness rule; a store may drop expired entries
    /// itself (`ttl`) but need not.
    async fn load(&self, key: &ProviderKey) -> Result<Option<AccessToken>, StoreError>;

    /// Stores `token` under `key` for `ttl` (the token's lifetime minus the
    /// cache's margin, never zero), replacing any previous value. The write
    /// must be atomic: a reader sees the old value or the new one.
    async fn store(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Removes the value under `key` if it still holds `token` (the same
    /// access token string), so an invalidation never deletes the newer
    /// token another process stored meanwhile. `true` when it removed one.
    async fn remove_if_same(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
    ) -> Result<bool, StoreError>;

    /// Removes the value under `key` whatever it holds (`tokensmith cache
    /// clear`). `true` when there was one.
    async fn remove(&self, key: &ProviderKey) -> Result<bool, StoreError>;

    /// Tries to take the fetch lease for `key`, without waiting: `Some` when
    /// this caller holds it (until it [releases](StoreLease::release) it, or
    /// `ttl` passes, or, for a lease tied to a process, that process ends),
    /// `None` while another holder has it. At most one holder at a time per
    /// key across every process sharing the store.
    async fn try_lock(
        &self,
        key: &ProviderKey,
        ttl: Duration,
    ) -> Result<Option<Box<dyn StoreLease>>, StoreError>;
}

/// A held fetch lease ([`TokenStore::try_lock`]).
///
/// Dropped without [`release`](Self::release), it is freed when it expires
/// (or its process ends); `release` frees it at once.
#[async_trait]
pub trait StoreLease: Send + Sync + fmt::Debug {
    /// Releases the lease if this holder still owns it (an expired lease
    /// another process has since taken is left alone).
    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

/// The longest the cache waits for one store call before going on without
/// the store: 2 s.
pub const STORE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The default `lock_timeout` of a token store: 10 s. It is both the
/// longest a process waits for another process's fetch and the life of the
/// fetch lease (a lease whose holder died frees itself after it), so no
/// caller waits longer than it plus one fetch. (Not the lock of a
/// [`RefreshTokenStore`](crate::RefreshTokenStore), which is
/// [`DEFAULT_REFRESH_STORE_LOCK_TIMEOUT`](crate::DEFAULT_REFRESH_STORE_LOCK_TIMEOUT).)
pub const DEFAULT_TOKEN_STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a store call failed. Never holds a secret: say what went wrong with
/// the store, not what was in it.
#[derive(Debug, thiserror::Error)]
#[error("token store: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

/// What kind of failure a [`StoreError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or used (I/O, connection refused).
    Unavailable,
    /// A call took too long.
    Timeout,
    /// A value that does not decode, decrypt or authenticate.
    Corrupt,
    /// The store is not trusted (a directory of another user, a symbolic
    /// link where a file belongs).
    Untrusted,
}

impl StoreError {
    /// A failure of `kind`, described by `message` (no secret).
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying error (which must hold no secret either).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// An I/O failure.
    pub fn io(message: impl Into<String>, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::TimedOut => StoreErrorKind::Timeout,
            std::io::ErrorKind::PermissionDenied => StoreErrorKind::Untrusted,
            _ => StoreErrorKind::Unavailable,
        };
        let message = format!("{}: {err}", message.into());
        Self { kind, message, source: Some(Box::new(err)) }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl From<TokenDecodeError> for StoreError {
    fn from(err: TokenDecodeError) -> Self {
        Self::new(StoreErrorKind::Corrupt, format!("stored token unusable: {err}"))
    }
}

/// The key a store names providers by (see [`TokenStore::naming_key`]):
/// an HMAC-SHA-256 key. Never shown (`Debug` prints no bytes).
#[derive(Clone)]
pub struct NamingKey(hmac::Key);

impl NamingKey {
    /// A naming key of these bytes (at least 16 random bytes; the file store
    /// keeps 32 in a 0600 file).
    pub fn new(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A naming key derived from another secret, such as an encryption
    /// key, for one `purpose` (`b"tokensmith-redis key names"`): the
    /// HMAC-SHA-256 of `purpose` under `master`, so the naming key says
    /// nothing about the master key and two purposes get unrelated keys.
    pub fn derive(master: &[u8], purpose: &[u8]) -> Self {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, master), purpose);
        Self::new(tag.as_ref())
    }
}

impl fmt::Debug for NamingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamingKey([REDACTED])")
    }
}

/// What identifies one provider's token: its kind and every field that
/// changes which token comes back (token URL, client id, grant, scope,
/// username, audience, …), with its secrets bound in only through a keyed
/// hash. The registry builds one from each provider's validated config (the
/// non-secret fields as written, minus those that only steer caching or
/// timing; the fields typed [`ConfigSecret`](crate::ConfigSecret) as their
/// resolved values); build one yourself for a [`CachedProvider`](crate::CachedProvider)
/// made in code.
///
/// `Debug` shows the field names, never a value.
///
/// ```
/// use tokensmith_core::{NamingKey, ProviderIdentity};
///
/// let identity = |secret: &str| {
///     ProviderIdentity::new("deyel")
///         .field("token_url", "https://deyel.example.com/token")
///         .field("client_id", "app")
///         .secret("client_secret", secret)
/// };
/// let naming = NamingKey::new(&[7; 32]);
/// let key = identity("s3cret").key(&naming);
/// assert_eq!(key.as_str().len(), 64);
/// assert!(!key.as_str().contains("s3cret"));
/// assert_ne!(key, identity("rotated").key(&naming));
/// assert_ne!(key, identity("s3cret").key(&NamingKey::new(&[8; 32])));
/// ```
#[derive(Clone)]
pub struct ProviderIdentity {
    kind: String,
    /// Sorted by name: canonical.
    fields: std::collections::BTreeMap<String, String>,
    secrets: std::collections::BTreeMap<String, SecretString>,
}

impl ProviderIdentity {
    /// The identity of a provider of `kind` (lowercased), no fields yet.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_ascii_lowercase(),
            fields: std::collections::BTreeMap::new(),
            secrets: std::collections::BTreeMap::new(),
        }
    }

    /// Adds a non-secret field (replacing one of the same name): its value
    /// enters the key as written. Use a canonical text (e.g. JSON) for a
    /// structured value.
    #[must_use]
    pub fn field(mut self, name: &str, value: impl Into<String>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a secret (replacing one of the same name): it enters the key
    /// only through the keyed hash.
    #[must_use]
    pub fn secret(mut self, name: &str, value: impl Into<SecretString>) -> Self {
        self.secrets.insert(name.to_owned(), value.into());
        self
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The key of this identity under `naming`: the lowercase hex
    /// HMAC-SHA-256, under `naming`, of a canonical, length-prefixed
    /// encoding of the kind, the fields and the secrets.
    pub fn key(&self, naming: &NamingKey) -> ProviderKey {
        let mut mac = hmac::Context::with_key(&naming.0);
        let mut put = |part: &[u8]| {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        };
        put(b"tokensmith provider key v1");
        put(self.kind.as_bytes());
        for (name, value) in &self.fields {
            put(b"field");
            put(name.as_bytes());
            put(value.as_bytes());
        }
        for (name, value) in &self.secrets {
            put(b"secret");
            put(name.as_bytes());
            put(value.expose_secret().as_bytes());
        }
        ProviderKey(hex(mac.sign().as_ref()))
    }
}

impl fmt::Debug for ProviderIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderIdentity")
            .field("kind", &self.kind)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The name of one provider's entry in a store: 64 lowercase hex digits
/// (an HMAC-SHA-256, see [`ProviderIdentity::key`]), safe in a file name or
/// a Redis key. Holds no secret nor an unkeyed hash of one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ProviderKey(String);

impl ProviderKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The largest encoded token [`decode_token`] reads: 64 KiB (a large JWT is
/// a few KiB).
pub const MAX_ENCODED_TOKEN_LEN: usize = 64 * 1024;

/// The version of the encoded form; another version does not decode.
const ENCODING_VERSION: u32 = 1;

/// The serialised form of a token in a store. No `Debug`: it holds the
/// access token.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Encoded {
    v: u32,
    access_token: String,
    token_type: String,
    /// Unix milliseconds.
    received_at_ms: u64,
    /// Unix milliseconds.
    #[serde(default)]
    expires_at_ms: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    /// The presentation's header name and template, when not the default
    /// (`Authorization: {token_type} {token}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<String>,
}

/// Serialises `token` for a store: one compact JSON document holding the
/// access token, its type, its receipt and expiry times (wall clock, Unix
/// milliseconds) and its scope. Never the refresh token nor the id token.
/// The result is a live credential: encrypt it or keep it private.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use secrecy::ExposeSecret;
/// use tokensmith_core::{AccessToken, decode_token, encode_token};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let token = AccessToken::builder("abc", now).expires_in(Duration::from_hours(1)).build();
/// let bytes = encode_token(&token);
/// let back = decode_token(bytes.expose_secret().as_bytes()).unwrap();
/// assert_eq!(back.secret().expose_secret(), "abc");
/// assert_eq!(back.expires_at(), token.expires_at());
/// assert!(decode_token(b"{\"v\":1}").is_err());
/// ```
pub fn encode_token(token: &AccessToken) -> SecretString {
    let encoded = Encoded {
        v: ENCODING_VERSION,
        access_token: token.secret().expose_secret().to_owned(),
        token_type: token.token_type().as_str().to_owned(),
        received_at_ms: unix_ms(token.received_at()),
        expires_at_ms: token.expires_at().map(unix_ms),
        scope: token.scope().map(|s| s.as_str().to_owned()),
        header: (!token.presentation().is_default())
            .then(|| token.presentation().header_name().to_owned()),
        template: (!token.presentation().is_default())
            .then(|| token.presentation().template().to_owned()),
    };
    // Plain strings and integers: serialising cannot fail.
    SecretString::from(serde_json::to_string(&encoded).unwrap_or_default())
}

/// Reads a token [`encode_token`] wrote, treating `bytes` as hostile: at
/// most [`MAX_ENCODED_TOKEN_LEN`] bytes, this version's fields only, no
/// control character in any text (a second output line, a forged header),
/// no empty token, no time a [`SystemTime`] cannot hold, no lifetime longer
/// than the response parser accepts ([`MAX_EXPIRES_IN`]).
///
/// The token comes back built from wall times, so the cache converts its
/// expiry to monotonic time when it takes it.
pub fn decode_token(bytes: &[u8]) -> Result<AccessToken, TokenDecodeError> {
    if bytes.len() > MAX_ENCODED_TOKEN_LEN {
        return Err(TokenDecodeError::TooLarge);
    }
    // The error says where, never what: the input holds the token.
    let encoded: Encoded = serde_json::from_slice(bytes)
        .map_err(|e| TokenDecodeError::Malformed { line: e.line(), column: e.column() })?;
    if encoded.v != ENCODING_VERSION {
        return Err(TokenDecodeError::Version(encoded.v));
    }
    if encoded.access_token.is_empty() {
        return Err(TokenDecodeError::Empty);
    }
    let printable = |s: &str| !s.chars().any(char::is_control);
    for (field, text) in [
        ("access_token", Some(encoded.access_token.as_str())),
        ("token_type", Some(encoded.token_type.as_str())),
        ("scope", encoded.scope.as_deref()),
    ] {
        if text.is_some_and(|t| !printable(t)) {
            return Err(TokenDecodeError::ControlCharacter(field));
        }
    }
    let at = |field: &'static str, ms: u64| {
        UNIX_EPOCH.checked_add(Duration::from_millis(ms)).ok_or(TokenDecodeError::OutOfRange(field))
    };
    let received_at = at("received_at_ms", encoded.received_at_ms)?;
    // `effective_expires_at` adds the default lifetime.
    received_at
        .checked_add(DEFAULT_LIFETIME)
        .ok_or(TokenDecodeError::OutOfRange("received_at_ms"))?;
    let expires_at = match encoded.expires_at_ms {
        Some(ms) if ms < encoded.received_at_ms => {
            return Err(TokenDecodeError::OutOfRange("received_at_ms"));
        }
        Some(ms) => {
            let lifetime = Duration::from_millis(ms.saturating_sub(encoded.received_at_ms));
            // Milliseconds: a lifetime may read a little longer.
            if lifetime > MAX_EXPIRES_IN + Duration::from_secs(1) {
                return Err(TokenDecodeError::OutOfRange("expires_at_ms"));
            }
            Some(at("expires_at_ms", ms)?)
        }
        None => None,
    };
    let builder = AccessToken::builder(encoded.access_token, received_at)
        .token_type(TokenType::parse(Some(&encoded.token_type)))
        .expires_at(expires_at)
        .scope(encoded.scope.as_deref().map(Scope::parse));
    let builder = match (encoded.header, encoded.template) {
        (None, None) => builder,
        (Some(name), Some(template)) => builder.presentation(
            Presentation::new(&name, &template).map_err(|_| TokenDecodeError::Presentation)?,
        ),
        _ => return Err(TokenDecodeError::Presentation),
    };
    Ok(builder.build())
}

/// Why [`decode_token`] refused its input. Never quotes the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenDecodeError {
    /// Longer than [`MAX_ENCODED_TOKEN_LEN`].
    #[error("longer than {MAX_ENCODED_TOKEN_LEN} bytes")]
    TooLarge,
    /// Not the JSON document of this version (a missing or unknown field,
    /// a wrong type, not JSON at all).
    #[error("malformed at line {line}, column {column}")]
    Malformed {
        /// The line of the problem (1-based).
        line: usize,
        /// The column of the problem (1-based).
        column: usize,
    },
    /// Written in another version of the format.
    #[error("format version {0} (this build reads version 1)")]
    Version(u32),
    /// An empty access token.
    #[error("empty access token")]
    Empty,
    /// A control character in this field.
    #[error("a control character in `{0}`")]
    ControlCharacter(&'static str),
    /// A time past what a `SystemTime` holds, or a lifetime longer than any
    /// server may give, in this field.
    #[error("`{0}` out of range")]
    OutOfRange(&'static str),
    /// A presentation (header name and template) that is not valid, or only
    /// half of one.
    #[error("an invalid presentation")]
    Presentation,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> serde_json::Value {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = AccessToken::builder("tok-123", now)
            .token_type(TokenType::parse(Some("bearer")))
            .scope(Some(Scope::parse("a b")))
            .refresh_token(Some("rt-SECRET".into()))
            .id_token(Some("id-SECRET".into()))
            .expires_in(Duration::from_hours(1))
            .build();
        let text = encode_token(&token);
        assert!(!text.expose_secret().contains("SECRET"), "no refresh or id token");
        serde_json::from_str(text.expose_secret()).unwrap()
    }

    #[test]
    fn a_token_round_trips_without_its_refresh_and_id_tokens() {
        let bytes = serde_json::to_vec(&good()).unwrap();
        let token = decode_token(&bytes).unwrap();
        assert_eq!(token.secret().expose_secret(), "tok-123");
        assert_eq!(token.token_type(), &TokenType::Bearer);
        assert_eq!(token.scope().unwrap().as_str(), "a b");
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            (token.received_at(), token.expires_at()),
            (at, Some(at + Duration::from_hours(1)))
        );
        assert!(token.refresh_token().is_none() && token.id_token().is_none());
    }

    #[test]
    fn a_presentation_round_trips_and_a_broken_one_is_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let presentation = Presentation::new("X-Auth-Token", "{token}").unwrap();
        let token = AccessToken::builder("tok-123", now).presentation(presentation).build();
        let text = encode_token(&token);
        let back = decode_token(text.expose_secret().as_bytes()).unwrap();
        assert_eq!(back.header_name(), "X-Auth-Token");
        assert_eq!(back.header_value().unwrap().to_str().unwrap(), "tok-123");
        // The default presentation writes nothing (entries stay as before).
        assert!(
            !encode_token(&AccessToken::builder("t", now).build())
                .expose_secret()
                .contains("template")
        );
        for (header, template) in [(Some("Bad Name"), Some("{token}")), (Some("X-A"), None)] {
            let mut value = good();
            value["header"] = header.into();
            if let Some(t) = template {
                value["template"] = t.into();
            }
            let bytes = serde_json::to_vec(&value).unwrap();
            assert_eq!(decode_token(&bytes).unwrap_err(), TokenDecodeError::Presentation);
        }
    }

    #[test]
    fn hostile_input_is_a_typed_error_that_never_quotes_it() {
        let max = u64::MAX;
        let cases: [(&str, serde_json::Value, TokenDecodeError); 8] = [
            ("received_at_ms", max.into(), TokenDecodeError::OutOfRange("received_at_ms")),
            ("expires_at_ms", max.into(), TokenDecodeError::OutOfRange("expires_at_ms")),
            (
                "expires_at_ms",
                (1_700_000_000_000_u64 + 100 * 365 * 86_400_000).into(),
                TokenDecodeError::OutOfRange("expires_at_ms"),
            ),
            ("access_token", "".into(), TokenDecodeError::Empty),
            (
                "access_token",
                "tok\nsecond line".into(),
                TokenDecodeError::ControlCharacter("access_token"),
            ),
            (
                "token_type",
                "Bearer\r\nX-Injected: 1".into(),
                TokenDecodeError::ControlCharacter("token_type"),
            ),
            ("scope", "a\u{7f}".into(), TokenDecodeError::ControlCharacter("scope")),
            ("v", 2.into(), TokenDecodeError::Version(2)),
        ];
        for (field, value, expected) in cases {
            let mut entry = good();
            entry[field] = value.clone();
            let err = decode_token(&serde_json::to_vec(&entry).unwrap()).unwrap_err();
            assert_eq!(err, expected, "{field} = {value}");
            assert!(
                !err.to_string().contains("tok-") && !err.to_string().contains("Injected"),
                "{err}"
            );
        }
        let mut extra = good();
        extra["refresh_token"] = "rt".into();
        assert!(matches!(
            decode_token(&serde_json::to_vec(&extra).unwrap()),
            Err(TokenDecodeError::Malformed { .. })
        ));
        for garbage in [&b""[..], b"{", b"null", b"[1]", "\"tok-123\"".as_bytes()] {
            let err = decode_token(garbage).unwrap_err();
            assert!(!err.to_string().contains("tok-123"), "{err}");
        }
        assert!(matches!(
            decode_token(&vec![b' '; MAX_ENCODED_TOKEN_LEN + 1]),
            Err(TokenDecodeError::TooLarge)
        ));
    }

    #[test]
    fn naming_keys_never_show_and_derived_keys_differ_by_purpose() {
        let key = NamingKey::new(&[1; 32]);
        assert_eq!(format!("{key:?}"), "NamingKey([REDACTED])");
        let identity = ProviderIdentity::new("x").secret("client_secret", "hunter2");
        assert!(!format!("{identity:?}").contains("hunter2"));
        let a = identity.key(&NamingKey::derive(&[1; 32], b"a"));
        let b = identity.key(&NamingKey::derive(&[1; 32], b"b"));
        assert_ne!(a, b);
        assert_ne!(a, identity.key(&key));
    }
}
