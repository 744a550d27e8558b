//! [`AccessToken`] and its parts: [`TokenType`] and [`Scope`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::Timestamp;

/// Lifetime assumed for a token whose response carries no `expires_in` and
/// which is not a JWT with an `exp` claim: one hour.
///
/// RFC 6749 §5.1 leaves `expires_in` optional; an hour is the lifetime most
/// vendors document for client-credentials tokens, and the cache refreshes the
/// token (or a caller [invalidates](crate::TokenProvider::invalidate) it after
/// a 401) long before a wrong guess could matter much.
pub const DEFAULT_LIFETIME: Duration = Duration::from_hours(1);

/// The normalised `token_type` of a token response.
///
/// Any case of `bearer` (SOTI sends `bearer`, most vendors `Bearer`) and a
/// missing `token_type` become [`TokenType::Bearer`]; anything else is kept as
/// the server sent it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum TokenType {
    /// An RFC 6750 bearer token.
    Bearer,
    /// Any other token type, as the server spelled it.
    Other(String),
}

impl TokenType {
    /// Normalises a `token_type` value (`None` when the field was absent).
    pub fn parse(raw: Option<&str>) -> Self {
        match raw.map(str::trim) {
            None | Some("") => Self::Bearer,
            Some(s) if s.eq_ignore_ascii_case("bearer") => Self::Bearer,
            Some(s) => Self::Other(s.to_owned()),
        }
    }

    /// The scheme as used in an `Authorization` header (`Bearer` for bearer
    /// tokens).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bearer => "Bearer",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope granted with a token: the original string and its parsed set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Scope {
    raw: String,
    set: BTreeSet<String>,
}

impl Scope {
    /// Parses a space-delimited scope string (RFC 6749 §3.3).
    pub fn parse(raw: &str) -> Self {
        let set = raw.split_ascii_whitespace().map(str::to_owned).collect();
        Self { raw: raw.to_owned(), set }
    }

    /// The scope string exactly as the server sent it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The individual scope tokens, sorted and de-duplicated.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(String::as_str)
    }

    /// Whether `scope` was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.set.contains(scope)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// An access token with its metadata.
///
/// Cheap to clone: the data sits behind one [`Arc`], so a cached token is
/// handed out with a reference-count increment. Two clones of the same token
/// are [the same token](AccessToken::same_token); a token fetched later is not,
/// even if the server returned the same string.
///
/// The token, refresh token and id token are [`SecretString`]s. `Debug` shows
/// the metadata and never a secret; there is no `Display`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use secrecy::ExposeSecret;
/// use tokensmith_core::{AccessToken, TokenType};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let token = AccessToken::builder("s3cr3t-token", now)
///     .token_type(TokenType::parse(Some("bearer")))
///     .expires_in(Duration::from_secs(3600))
///     .build();
/// assert_eq!(token.secret().expose_secret(), "s3cr3t-token");
/// assert_eq!(token.expires_at(), Some(now + Duration::from_secs(3600)));
/// assert!(!format!("{token:?}").contains("s3cr3t"));
/// assert_eq!(token.authorization_header().unwrap().to_str().unwrap(), "Bearer s3cr3t-token");
/// ```
#[derive(Clone)]
pub struct AccessToken(Arc<Inner>);

struct Inner {
    secret: SecretString,
    token_type: TokenType,
    received_at: SystemTime,
    /// The monotonic time of receipt, when the builder was given one.
    received_monotonic: Option<Duration>,
    expires_at: Option<SystemTime>,
    /// The lifetime from receipt, when the expiry was given as one
    /// (`expires_in`) rather than as an instant.
    lifetime: Option<Duration>,
    scope: Option<Scope>,
    refresh_token: Option<SecretString>,
    id_token: Option<SecretString>,
}

impl AccessToken {
    /// Starts building a token whose value is `secret`, received at
    /// `received_at`, read from the provider's [`Clock`](crate::Clock): a
    /// [`Timestamp`] ([`Clock::timestamp`](crate::Clock::timestamp)), taken
    /// when the request was sent, or a bare wall time.
    ///
    /// With a `Timestamp` the cache measures a relative lifetime
    /// ([`expires_in`](AccessTokenBuilder::expires_in)) on the monotonic
    /// clock from the moment of receipt, so a wall clock stepped back or
    /// forward does not stretch or cut it. With a bare wall time it converts
    /// the expiry to monotonic time once, when it takes the token.
    pub fn builder(
        secret: impl Into<String>,
        received_at: impl Into<Timestamp>,
    ) -> AccessTokenBuilder {
        let received_at = received_at.into();
        AccessTokenBuilder {
            inner: Inner {
                secret: SecretString::from(secret.into()),
                token_type: TokenType::Bearer,
                received_at: received_at.wall(),
                received_monotonic: received_at.monotonic(),
                expires_at: None,
                lifetime: None,
                scope: None,
                refresh_token: None,
                id_token: None,
            },
        }
    }

    /// The token value. Exposing it is the caller's explicit choice.
    pub fn secret(&self) -> &SecretString {
        &self.0.secret
    }

    /// The normalised token type.
    pub fn token_type(&self) -> &TokenType {
        &self.0.token_type
    }

    /// When the token was received (the wall time of the provider's clock
    /// when the request was sent).
    pub fn received_at(&self) -> SystemTime {
        self.0.received_at
    }

    /// When the server says the token expires, if it said (`expires_in`, or
    /// the `exp` claim of a JWT token), in wall time: for display. The cache
    /// measures a relative lifetime on the monotonic clock instead (see
    /// [`AccessToken::builder`]).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// When the token was received and when it expires, on the monotonic
    /// clock of the [`Timestamp`] it was built with: receipt plus the
    /// relative lifetime (`expires_in`, or [`DEFAULT_LIFETIME`] when the
    /// server said nothing). `None` for an absolute expiry (a JWT `exp`) or a
    /// token built from a bare wall time.
    pub(crate) fn monotonic_expiry(&self) -> Option<(Duration, Duration)> {
        let received = self.0.received_monotonic?;
        let lifetime = match (self.0.lifetime, self.0.expires_at) {
            (Some(lifetime), _) => lifetime,
            (None, None) => DEFAULT_LIFETIME,
            (None, Some(_)) => return None,
        };
        Some((received, received.checked_add(lifetime)?))
    }

    /// [`expires_at`](Self::expires_at), or `received_at +`
    /// [`DEFAULT_LIFETIME`] when the server did not say.
    pub fn effective_expires_at(&self) -> SystemTime {
        self.0.expires_at.unwrap_or(self.0.received_at + DEFAULT_LIFETIME)
    }

    /// Time left at `now` before [`expires_at`](Self::expires_at) (zero once
    /// expired), or `None` when the server gave no expiry.
    pub fn expires_in(&self, now: SystemTime) -> Option<Duration> {
        self.0.expires_at.map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// The granted scope, when the server returned one.
    pub fn scope(&self) -> Option<&Scope> {
        self.0.scope.as_ref()
    }

    /// The refresh token, when the server returned one.
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.0.refresh_token.as_ref()
    }

    /// The `OpenID Connect` id token, when the server returned one.
    pub fn id_token(&self) -> Option<&SecretString> {
        self.0.id_token.as_ref()
    }

    /// The `Authorization` header value (`Bearer <token>`), marked sensitive
    /// so HTTP clients and loggers do not print it.
    ///
    /// Fails only when the token contains bytes a header cannot carry.
    pub fn authorization_header(&self) -> Result<HeaderValue, reqwest::header::InvalidHeaderValue> {
        let mut value = HeaderValue::try_from(format!(
            "{} {}",
            self.0.token_type.as_str(),
            self.0.secret.expose_secret()
        ))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Whether `self` and `other` are clones of one fetched token (identity,
    /// not string equality).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[REDACTED]")
            .field("token_type", &self.0.token_type)
            .field("received_at", &self.0.received_at)
            .field("expires_at", &self.0.expires_at)
            .field("scope", &self.0.scope.as_ref().map(Scope::as_str))
            .field("refresh_token", &self.0.refresh_token.as_ref().map(|_| "[REDACTED]"))
            .field("id_token", &self.0.id_token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Builds an [`AccessToken`]; see [`AccessToken::builder`].
#[must_use]
pub struct AccessTokenBuilder {
    inner: Inner,
}

impl AccessTokenBuilder {
    /// Sets the token type (default [`TokenType::Bearer`]).
    pub fn token_type(mut self, token_type: TokenType) -> Self {
        self.inner.token_type = token_type;
        self
    }

    /// Sets the expiry relative to the receipt time (a lifetime beyond what
    /// a [`SystemTime`] holds reads as no expiry).
    pub fn expires_in(mut self, expires_in: Duration) -> Self {
        self.inner.expires_at = self.inner.received_at.checked_add(expires_in);
        self.inner.lifetime = self.inner.expires_at.map(|_| expires_in);
        self
    }

    /// Sets an absolute expiry (or none), such as a JWT `exp`.
    pub fn expires_at(mut self, expires_at: Option<SystemTime>) -> Self {
        self.inner.expires_at = expires_at;
        self.inner.lifetime = None;
        self
    }

    /// Sets the granted scope.
    pub fn scope(mut self, scope: Option<Scope>) -> Self {
        self.inner.scope = scope;
        self
    }

    /// Sets the refresh token.
    pub fn refresh_token(mut self, refresh_token: Option<SecretString>) -> Self {
        self.inner.refresh_token = refresh_token;
        self
    }

    /// Sets the `OpenID Connect` id token.
    pub fn id_token(mut self, id_token: Option<SecretString>) -> Self {
        self.inner.id_token = id_token;
        self
    }

    /// Finishes the token.
    pub fn build(self) -> AccessToken {
        AccessToken(Arc::new(self.inner))
    }
}

impl fmt::Debug for AccessTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenBuilder").finish_non_exhaustive()
    }
}
