//! [`AccessToken`] and its parts: [`TokenType`], [`Scope`], and how it is
//! presented to an API ([`Presentation`]).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, InvalidHeaderValue};
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

/// The scope granted with a token: the original string, split into its
/// tokens when asked (a token's scope is rarely read, and building a set for
/// every token received cost more than the rest of reading it).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Scope {
    raw: String,
}

impl Scope {
    /// Parses a space-delimited scope string (RFC 6749 §3.3).
    pub fn parse(raw: &str) -> Self {
        Self { raw: raw.to_owned() }
    }

    /// The scope string exactly as the server sent it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The individual scope tokens, sorted and de-duplicated.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut tokens: Vec<&str> = self.raw.split_ascii_whitespace().collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens.into_iter()
    }

    /// Whether `scope` was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.raw.split_ascii_whitespace().any(|token| token == scope)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// How a token is presented to an API: the header it goes in and the
/// value's template (contract §7).
///
/// Most APIs take `Authorization: Bearer <token>`, the
/// [default](Presentation::default): the header `Authorization`, the template
/// `{token_type} {token}`. A vendor that wants another header or scheme
/// (`X-Auth-Token: <token>`, `Authorization: CwsAuth Bearer=<token>`) gets a
/// presentation of its own from its adapter
/// ([`AccessTokenBuilder::presentation`], [`AccessToken::with_presentation`]);
/// every token the adapter hands out then carries it, and the CLI's
/// `tokensmith header`, the `tokensmith-reqwest` middleware and the agent
/// all send what [`AccessToken::header`] returns.
///
/// A template holds `{token}` exactly once, and `{token_type}` (the
/// normalised [`TokenType`], `Bearer` for bearer tokens) at most once; the
/// rest is literal text: printable, no control characters, no leading or
/// trailing whitespace, no other `{…}`.
///
/// ```
/// use std::time::SystemTime;
/// use tokensmith_core::{AccessToken, Presentation};
///
/// let cws = Presentation::new("Authorization", "CwsAuth Bearer={token}").unwrap();
/// let token = AccessToken::builder("abc", SystemTime::UNIX_EPOCH).presentation(cws).build();
/// assert_eq!(token.header_name(), "Authorization");
/// assert_eq!(token.header_value().unwrap(), "CwsAuth Bearer=abc");
///
/// let plain = Presentation::header("X-Auth-Token").unwrap();
/// assert_eq!(plain.template(), "{token}");
/// assert!(Presentation::new("X-Auth-Token", "no placeholder").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Presentation(Arc<PresentationInner>);

#[derive(PartialEq, Eq)]
struct PresentationInner {
    /// The header name as written (`X-Auth-Token`), for display.
    name: Box<str>,
    /// The same, as sent (lowercase).
    header: HeaderName,
    /// The template as written.
    template: Box<str>,
    parts: Box<[Part]>,
}

#[derive(PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Token,
    TokenType,
}

/// Whether the header `lowercase` frames an HTTP request, so that a
/// [`Presentation`] may not name it: `Host`, `Content-Length` and the
/// [hop-by-hop headers](crate::HOP_BY_HOP_HEADERS).
fn frames_requests(lowercase: &str) -> bool {
    matches!(lowercase, "host" | "content-length") || crate::HOP_BY_HOP_HEADERS.contains(&lowercase)
}

/// Why a [`Presentation`] cannot be made: the header name or the template is
/// not one a header can carry. Its message names the problem, never a token.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPresentation(String);

impl Presentation {
    /// The placeholder for the token value in a template.
    pub const TOKEN: &str = "{token}";
    /// The placeholder for the normalised token type (`Bearer`).
    pub const TOKEN_TYPE: &str = "{token_type}";

    /// A presentation in header `name` with the value made from `template`
    /// (see the type's docs for what a template may hold). `name` may not be
    /// a header that frames the request (`Host`, `Content-Length`, or a
    /// hop-by-hop header such as `Transfer-Encoding`): a token there would
    /// break every request it goes on.
    pub fn new(name: &str, template: &str) -> Result<Self, InvalidPresentation> {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            InvalidPresentation(format!(
                "{name:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            ))
        })?;
        // `HeaderName` is lowercase.
        if frames_requests(header.as_str()) {
            return Err(InvalidPresentation(format!(
                "{name:?} frames the HTTP request (the client sets it): a token cannot travel in it"
            )));
        }
        let parts = parse_template(template).map_err(InvalidPresentation)?;
        Ok(Self(Arc::new(PresentationInner {
            name: name.into(),
            header,
            template: template.into(),
            parts,
        })))
    }

    /// The bare token in header `name` (`X-Auth-Token: <token>`): the
    /// template `{token}`.
    pub fn header(name: &str) -> Result<Self, InvalidPresentation> {
        Self::new(name, Self::TOKEN)
    }

    /// The header name as given (`Authorization`, `X-Auth-Token`).
    pub fn header_name(&self) -> &str {
        &self.0.name
    }

    /// The value's template as given (`{token_type} {token}`).
    pub fn template(&self) -> &str {
        &self.0.template
    }

    /// Whether this is the default, `Authorization: {token_type} {token}`.
    pub fn is_default(&self) -> bool {
        self.0.header == AUTHORIZATION && *self.0.template == *DEFAULT_TEMPLATE
    }

    /// The value for `token` of `token_type`, unchecked (a `String`: the
    /// caller wraps it at once).
    fn render(&self, token: &str, token_type: &TokenType) -> String {
        let mut out = String::with_capacity(self.0.template.len() + token.len());
        for part in &self.0.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Token => out.push_str(token),
                Part::TokenType => out.push_str(token_type.as_str()),
            }
        }
        out
    }
}

/// The default template.
const DEFAULT_TEMPLATE: &str = "{token_type} {token}";

impl Default for Presentation {
    /// `Authorization: {token_type} {token}` (`Authorization: Bearer <token>`
    /// for bearer tokens). One shared instance: cloning it is a
    /// reference-count increment.
    fn default() -> Self {
        static DEFAULT: std::sync::LazyLock<Presentation> = std::sync::LazyLock::new(|| {
            Presentation::new("Authorization", DEFAULT_TEMPLATE)
                .expect("the default presentation is valid")
        });
        DEFAULT.clone()
    }
}

impl fmt::Debug for Presentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presentation")
            .field("header", &self.0.name)
            .field("template", &self.0.template)
            .finish()
    }
}

/// Splits a template into literal text and placeholders, or says what is
/// wrong with it.
fn parse_template(template: &str) -> Result<Box<[Part]>, String> {
    if template.trim() != template {
        return Err(format!("the template {template:?} starts or ends with whitespace"));
    }
    if template.chars().any(char::is_control) {
        return Err("the template holds control characters".to_owned());
    }
    let mut parts = Vec::new();
    let (mut tokens, mut types) = (0, 0);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if rest[..open].contains('}') {
            return Err(format!("the template {template:?} has a '}}' without its '{{'"));
        }
        if open > 0 {
            parts.push(Part::Literal(rest[..open].into()));
        }
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix(Presentation::TOKEN) {
            parts.push(Part::Token);
            tokens += 1;
            rest = after;
        } else if let Some(after) = rest.strip_prefix(Presentation::TOKEN_TYPE) {
            parts.push(Part::TokenType);
            types += 1;
            rest = after;
        } else {
            let shown: String = rest.chars().take(20).collect();
            return Err(format!(
                "the template has {shown:?}: only {{token}} and {{token_type}} may stand in braces"
            ));
        }
    }
    if rest.contains('}') {
        return Err(format!("the template {template:?} has a '}}' without its '{{'"));
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.into()));
    }
    match (tokens, types) {
        (1, 0 | 1) => Ok(parts.into_boxed_slice()),
        (0, _) => Err(format!("the template {template:?} has no {{token}}")),
        (_, 0 | 1) => Err(format!("the template {template:?} has {{token}} more than once")),
        _ => Err(format!("the template {template:?} has {{token_type}} more than once")),
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
    presentation: Presentation,
    /// The header value, made on first use: a token sent on every request
    /// (the `tokensmith-reqwest` middleware) is formatted once, and each
    /// request gets a reference-counted clone instead of a new copy of the
    /// secret. `None` when the value cannot be a header.
    header: OnceLock<Option<HeaderValue>>,
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
                presentation: Presentation::default(),
                header: OnceLock::new(),
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

    /// The `Authorization` header value (`Bearer <token>`, or the token
    /// type's scheme), marked sensitive so HTTP clients and loggers do not
    /// print it.
    ///
    /// This is the default presentation whatever the token's
    /// [`presentation`](Self::presentation); [`header`](Self::header) sends
    /// what the vendor asked for.
    ///
    /// Fails only when the token contains bytes a header cannot carry.
    pub fn authorization_header(&self) -> Result<HeaderValue, InvalidHeaderValue> {
        sensitive(Presentation::default().render(self.0.secret.expose_secret(), &self.0.token_type))
    }

    /// How this token is presented: its header name and value template
    /// ([`Presentation::default`] unless the adapter set another).
    pub fn presentation(&self) -> &Presentation {
        &self.0.presentation
    }

    /// The name of the header this token goes in, as the adapter wrote it
    /// (`Authorization`, `X-Auth-Token`).
    pub fn header_name(&self) -> &str {
        self.0.presentation.header_name()
    }

    /// The header value (`Bearer <token>`, `CwsAuth Bearer=<token>`, …),
    /// marked sensitive so HTTP clients and loggers do not print it.
    ///
    /// Fails only when the token contains bytes a header cannot carry (the
    /// parser already refuses control characters).
    pub fn header_value(&self) -> Result<HeaderValue, InvalidHeaderValue> {
        let render =
            || self.0.presentation.render(self.0.secret.expose_secret(), &self.0.token_type);
        match self.0.header.get_or_init(|| sensitive(render()).ok()) {
            Some(value) => Ok(value.clone()),
            // Rare (the parser refuses control characters): made again for
            // its error.
            None => sensitive(render()),
        }
    }

    /// The header to send the token in: its name (lowercase, as HTTP/2
    /// requires) and [its value](Self::header_value), marked sensitive.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tokensmith_core::{AccessToken, Presentation};
    ///
    /// let token = AccessToken::builder("abc", SystemTime::UNIX_EPOCH).build();
    /// let (name, value) = token.header().unwrap();
    /// assert_eq!((name.as_str(), value.to_str().unwrap()), ("authorization", "Bearer abc"));
    /// assert!(value.is_sensitive());
    ///
    /// let token = token.with_presentation(Presentation::header("X-Auth-Token").unwrap());
    /// let (name, value) = token.header().unwrap();
    /// assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-auth-token", "abc"));
    /// ```
    pub fn header(&self) -> Result<(HeaderName, HeaderValue), InvalidHeaderValue> {
        Ok((self.0.presentation.0.header.clone(), self.header_value()?))
    }

    /// This token with another presentation: for an adapter that got the
    /// token from [`parse_response`](crate::parse_response) and presents
    /// it its own way. Call it before handing the token out: the result is
    /// not [the same token](Self::same_token) as another clone of `self`.
    #[must_use]
    pub fn with_presentation(mut self, presentation: Presentation) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.presentation = presentation;
            inner.header = OnceLock::new();
            return self;
        }
        let shared = &self.0;
        Self(Arc::new(Inner {
            secret: shared.secret.clone(),
            token_type: shared.token_type.clone(),
            received_at: shared.received_at,
            received_monotonic: shared.received_monotonic,
            expires_at: shared.expires_at,
            lifetime: shared.lifetime,
            scope: shared.scope.clone(),
            refresh_token: shared.refresh_token.clone(),
            id_token: shared.id_token.clone(),
            presentation,
            header: OnceLock::new(),
        }))
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
            .field("presentation", &self.0.presentation)
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

    /// Sets how the token is presented (default: [`Presentation::default`],
    /// `Authorization: {token_type} {token}`).
    pub fn presentation(mut self, presentation: Presentation) -> Self {
        self.inner.presentation = presentation;
        self.inner.header = OnceLock::new();
        self
    }

    /// Finishes the token.
    pub fn build(self) -> AccessToken {
        AccessToken(Arc::new(self.inner))
    }
}

/// A header value marked sensitive.
fn sensitive(value: String) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut value = HeaderValue::try_from(value)?;
    value.set_sensitive(true);
    Ok(value)
}

impl fmt::Debug for AccessTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenBuilder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn token(secret: &str, token_type: Option<&str>) -> AccessToken {
        AccessToken::builder(secret, SystemTime::UNIX_EPOCH)
            .token_type(TokenType::parse(token_type))
            .build()
    }

    #[test]
    fn the_default_is_authorization_with_the_token_type() {
        let bearer = token("abc", Some("bearer"));
        assert!(bearer.presentation().is_default());
        assert_eq!(bearer.header_name(), "Authorization");
        let (name, value) = bearer.header().unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert_eq!(value, "Bearer abc");
        assert!(value.is_sensitive());
        assert_eq!(bearer.authorization_header().unwrap(), value);

        let mac = token("abc", Some("MAC"));
        assert_eq!(mac.header_value().unwrap(), "MAC abc");
        assert_eq!(mac.authorization_header().unwrap(), "MAC abc");
    }

    #[test]
    fn an_adapter_sets_another_header_or_scheme() {
        let x_auth =
            token("abc", None).with_presentation(Presentation::header("X-Auth-Token").unwrap());
        assert_eq!(x_auth.header_name(), "X-Auth-Token");
        let (name, value) = x_auth.header().unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-auth-token", "abc"));
        assert!(value.is_sensitive());
        assert!(!x_auth.presentation().is_default());
        // `authorization_header` keeps meaning the default.
        assert_eq!(x_auth.authorization_header().unwrap(), "Bearer abc");

        let cws = Presentation::new("Authorization", "CwsAuth Bearer={token}").unwrap();
        let built =
            AccessToken::builder("abc", SystemTime::UNIX_EPOCH).presentation(cws.clone()).build();
        assert_eq!(built.header_value().unwrap(), "CwsAuth Bearer=abc");
        assert_eq!(built.presentation(), &cws);
        assert_eq!(cws.template(), "CwsAuth Bearer={token}");

        let both = Presentation::new("X-Token", "{token_type}:{token};v=1").unwrap();
        let t = token("abc", Some("pop")).with_presentation(both);
        assert_eq!(t.header_value().unwrap(), "pop:abc;v=1");
    }

    #[test]
    fn the_header_value_is_made_once_and_follows_a_new_presentation() {
        let t = token("abc", None);
        let first = t.header_value().unwrap();
        assert_eq!(t.header_value().unwrap(), first);
        assert!(t.header_value().unwrap().is_sensitive());
        // Unique handle: changed in place, the cached value made again.
        let t = t.with_presentation(Presentation::new("X-Auth-Token", "T {token}").unwrap());
        assert_eq!(t.header_value().unwrap(), "T abc");
        assert_eq!(t.header().unwrap().0.as_str(), "x-auth-token");
    }

    #[test]
    fn with_presentation_on_a_shared_token_leaves_the_other_clone_alone() {
        let original = token("abc", None);
        let clone = original.clone();
        let changed = original.with_presentation(Presentation::header("X-Auth-Token").unwrap());
        assert_eq!(clone.header_name(), "Authorization");
        assert_eq!(changed.header_name(), "X-Auth-Token");
        assert!(!changed.same_token(&clone));
        assert_eq!(changed.secret().expose_secret(), "abc");
    }

    #[test]
    fn invalid_names_and_templates_are_refused_with_a_reason() {
        for (name, template, reason) in [
            ("X Auth", "{token}", "not an HTTP header name"),
            ("", "{token}", "not an HTTP header name"),
            ("X-Auth:", "{token}", "not an HTTP header name"),
            ("X-Auth", "Bearer", "has no {token}"),
            ("X-Auth", "{token}{token}", "{token} more than once"),
            ("X-Auth", "{token_type}{token_type}{token}", "{token_type} more than once"),
            ("X-Auth", "{tok} {token}", "only {token} and {token_type}"),
            ("X-Auth", "a}b{token}", "without its"),
            ("X-Auth", "{token}}", "without its"),
            ("X-Auth", " {token}", "whitespace"),
            ("X-Auth", "{token}\r\nX-Evil: 1", "control characters"),
            ("X-Auth", "a\tb {token}", "control characters"),
        ] {
            let err = Presentation::new(name, template).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?} {template:?}: {err}");
        }
    }

    #[test]
    fn a_token_a_header_cannot_carry_is_an_error_not_a_panic() {
        let t = token("a\nb", None);
        assert!(t.header().is_err());
        assert!(t.header_value().is_err());
    }

    #[test]
    fn a_header_that_frames_the_request_cannot_carry_the_token() {
        for name in ["Host", "content-length", "Transfer-Encoding", "Connection", "TE", "Upgrade"] {
            let err = Presentation::header(name).unwrap_err();
            assert!(err.to_string().contains("frames the HTTP request"), "{name}: {err}");
        }
        for name in ["Authorization", "X-Auth-Token", "Proxy-Authorization", "X-Host"] {
            Presentation::header(name).unwrap();
        }
    }

    #[test]
    fn debug_shows_the_presentation_and_no_secret() {
        let t =
            token("s3cr3t", None).with_presentation(Presentation::header("X-Auth-Token").unwrap());
        let debug = format!("{t:?}");
        assert!(debug.contains("X-Auth-Token") && debug.contains("{token}"), "{debug}");
        assert!(!debug.contains("s3cr3t"));
    }
}
