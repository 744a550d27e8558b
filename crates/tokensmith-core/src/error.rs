//! [`TokenError`]: everything that can go wrong getting a token, as data.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::redact::{self, Secrets, Shape, one_line};

/// A boxed error source (transport failures keep the underlying error).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The vendor's error, parsed from any known error body shape.
///
/// Filled from RFC 6749 §5.2 bodies (`error`, `error_description`,
/// `error_uri`; the code normalised to lowercase, so Deyel's
/// `Invalid_request` reads `invalid_request`) and from the scoped `OAuth2`
/// vendor's `{"meta":…,"errors":[{"httpcode":…,"message":"…"}]}` (no code,
/// the messages as description). Every part is one line (control characters
/// and runs of whitespace become one space) and bounded in length, so a
/// server cannot break the one-line `Display` of [`TokenError`].
///
/// ```
/// use tokensmith_core::ErrorDetail;
///
/// let detail = ErrorDetail::new(Some("Invalid_request"), Some("Invalid client_id"));
/// assert_eq!(detail.code.as_deref(), Some("invalid_request"));
/// assert_eq!(detail.to_string(), "invalid_request: Invalid client_id");
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// The OAuth error code, lowercased (`invalid_client`), when there is one.
    pub code: Option<String>,
    /// The human-readable description or message.
    pub description: Option<String>,
    /// The `error_uri`, when given.
    pub uri: Option<String>,
}

impl ErrorDetail {
    /// The longest code kept, in characters (longer ones are cut, marked `…`).
    pub const MAX_CODE_CHARS: usize = 100;
    /// The longest description or URI kept, in characters.
    pub const MAX_DESCRIPTION_CHARS: usize = 500;

    /// A detail with the given code (normalised to lowercase) and description.
    /// Both are made one line and bounded; empty values become `None`.
    pub fn new(code: Option<&str>, description: Option<&str>) -> Self {
        Self {
            code: code
                .map(|c| one_line(c, Self::MAX_CODE_CHARS).to_lowercase())
                .filter(|c| !c.is_empty()),
            description: description
                .map(|d| one_line(d, Self::MAX_DESCRIPTION_CHARS))
                .filter(|d| !d.is_empty()),
            uri: None,
        }
    }

    /// The same detail with an `error_uri` (made one line, bounded; empty is `None`).
    #[must_use]
    pub fn with_uri(mut self, uri: Option<&str>) -> Self {
        self.uri = uri.map(|u| one_line(u, Self::MAX_DESCRIPTION_CHARS)).filter(|u| !u.is_empty());
        self
    }

    /// Whether there is neither a code nor a description.
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.description.is_none()
    }
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.description) {
            (Some(c), Some(d)) => write!(f, "{c}: {d}"),
            (Some(c), None) => f.write_str(c),
            (None, Some(d)) => f.write_str(d),
            (None, None) => f.write_str("no error detail"),
        }
    }
}

/// A short, sanitised excerpt of a response body, kept for troubleshooting.
///
/// At most [`BodySnippet::MAX_CHARS`] characters, on one line (control
/// characters replaced, whitespace collapsed), and the values of
/// secret-bearing fields ([`BodySnippet::SECRET_FIELDS`], any case) replaced
/// by `[REDACTED]` wherever they look like a JSON member (`"field" : "value"`,
/// also inside a JSON string as `\"field\":\"value\"`), a form pair
/// (`field=value`) or `field: value` text, so it is safe to log. String,
/// array, object and bare values are all redacted whole; a bare
/// `authorization` value with a scheme (`Authorization: Basic QWxh…`, as a
/// server echoing the request shows it) is redacted with its credentials.
///
/// ```
/// use tokensmith_core::BodySnippet;
///
/// let snippet = BodySnippet::new(br#"{"Access_Token" : "s3cr3t", "error": "x"}"#);
/// assert_eq!(snippet.as_str(), r#"{"Access_Token" : "[REDACTED]", "error": "x"}"#);
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BodySnippet(pub(crate) String);

impl BodySnippet {
    /// The longest snippet kept, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Fields whose values never appear in a snippet (matched in any case).
    pub const SECRET_FIELDS: &'static [&'static str] = redact::SECRET_KEYS;

    /// Builds a sanitised snippet from raw body bytes.
    pub fn new(body: &[u8]) -> Self {
        redact::redact(body, Shape::Text, &Secrets::NONE).snippet()
    }

    /// Whether `field` (any case) is one of [`SECRET_FIELDS`](Self::SECRET_FIELDS).
    pub fn is_secret_field(field: &str) -> bool {
        redact::is_secret_key(field)
    }

    /// The snippet text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the body was empty (or only whitespace).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for BodySnippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BodySnippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("(empty body)") } else { f.write_str(&self.0) }
    }
}

/// What kind of transport failure happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, DNS, TLS handshake).
    Connect,
    /// The whole request took longer than the configured timeout.
    Timeout,
    /// The endpoint answered with a redirect, which is never followed.
    Redirect,
    /// The connection broke while sending or receiving.
    Io,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "request timed out",
            Self::Redirect => "redirect refused",
            Self::Io => "connection failed",
        })
    }
}

/// Everything that can go wrong getting a token.
///
/// Variants keep configuration, refusal by the server, server failure,
/// transport failure and unparseable responses apart. Each keeps what is
/// needed to troubleshoot (the provider name, HTTP status, the vendor's error
/// and a sanitised [`BodySnippet`]) and **never a secret**. `Display` is one
/// line a person understands, naming the provider.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenError {
    /// The configuration is wrong or incomplete (found at load, without network).
    #[non_exhaustive]
    Config {
        /// The provider, when the problem belongs to one.
        provider: Option<String>,
        /// The offending field (a dotted path), when there is one.
        field: Option<String>,
        /// What is wrong, for a person.
        message: String,
    },
    /// The token endpoint refused the request: a 4xx the vendor explains
    /// (an OAuth or vendor error body; any 401, 408 or 429), or a 2xx whose
    /// body carries an OAuth `error`.
    #[non_exhaustive]
    Rejected {
        /// The provider.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error, as parsed.
        detail: ErrorDetail,
        /// A sanitised excerpt of the body.
        body: BodySnippet,
        /// The `Retry-After` delay, when the server sent one (429, 503).
        retry_after: Option<Duration>,
    },
    /// The token endpoint failed: a 5xx.
    #[non_exhaustive]
    Server {
        /// The provider.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error, when the body had one.
        detail: Option<ErrorDetail>,
        /// A sanitised excerpt of the body.
        body: BodySnippet,
        /// The `Retry-After` delay, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The token endpoint answered a 4xx that no OAuth or vendor error
    /// explains (`404 Not Found`, `405 Method Not Allowed`, an HTML page):
    /// most likely `token_url` is not the token endpoint. Not a refusal of
    /// the credentials, so not [`Rejected`](Self::Rejected) (CLI exit code 4,
    /// not 3); not retryable.
    #[non_exhaustive]
    Endpoint {
        /// The provider.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// A sanitised excerpt of the body.
        body: BodySnippet,
    },
    /// The request did not complete: connect, timeout, redirect, broken connection.
    #[non_exhaustive]
    Transport {
        /// The provider.
        provider: String,
        /// What failed.
        kind: TransportErrorKind,
        /// More detail for a person (the redirect status and target host, the timeout).
        message: String,
        /// The underlying error, when there is one.
        #[allow(
            clippy::struct_field_names,
            reason = "`source` is what std::error::Error calls it"
        )]
        source: Option<BoxError>,
    },
    /// A response arrived but is not a usable token response: malformed JSON,
    /// no `access_token`, an HTML page with a 2xx, a body over the size limit.
    #[non_exhaustive]
    InvalidResponse {
        /// The provider.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
        /// A sanitised excerpt of the body.
        body: BodySnippet,
    },
    /// The provider cannot renew on its own and needs new user input (for
    /// example a used, single-use authorization code and no refresh token).
    #[non_exhaustive]
    ReauthorizationRequired {
        /// The provider.
        provider: String,
        /// What the user has to do.
        message: String,
    },
}

impl TokenError {
    /// This error with `f` applied to every text it took from what the
    /// server sent (the body snippet, the vendor's error, the reason, a
    /// transport message); the redaction module seals errors with it.
    pub(crate) fn map_response_text(self, f: impl Fn(&str) -> String) -> Self {
        let text = |s: String| f(&s);
        let detail = |d: ErrorDetail| ErrorDetail {
            code: d.code.map(text),
            description: d.description.map(text),
            uri: d.uri.map(text),
        };
        let body = |b: BodySnippet| BodySnippet(f(&b.0));
        match self {
            Self::Rejected { provider, status, detail: d, body: b, retry_after } => {
                Self::Rejected { provider, status, detail: detail(d), body: body(b), retry_after }
            }
            Self::Server { provider, status, detail: d, body: b, retry_after } => {
                Self::Server { provider, status, detail: d.map(detail), body: body(b), retry_after }
            }
            Self::InvalidResponse { provider, status, reason, body: b } => {
                Self::InvalidResponse { provider, status, reason: text(reason), body: body(b) }
            }
            Self::Endpoint { provider, status, body: b } => {
                Self::Endpoint { provider, status, body: body(b) }
            }
            Self::Transport { provider, kind, message, source } => {
                Self::Transport { provider, kind, message: text(message), source }
            }
            other => other,
        }
    }

    /// A configuration error.
    pub fn config(provider: Option<&str>, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::Config {
            provider: provider.map(str::to_owned),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// A refusal by the token endpoint (any 4xx the vendor explains, a 401,
    /// 408 or 429): for providers written outside tokensmith that read their
    /// own responses. `detail` is the vendor's error as parsed (see
    /// [`ErrorDetail::new`]); `body` the raw response body, kept only as a
    /// sanitised, redacted [`BodySnippet`].
    ///
    /// ```
    /// use tokensmith_core::{ErrorDetail, TokenError};
    ///
    /// let detail = ErrorDetail::new(Some("invalid_client"), Some("unknown client"));
    /// let err = TokenError::rejected("mine", 401, detail, br#"{"error":"invalid_client"}"#);
    /// assert!(err.is_rejected() && !err.is_retryable());
    /// assert_eq!(err.oauth_error_code(), Some("invalid_client"));
    /// ```
    pub fn rejected(provider: &str, status: u16, detail: ErrorDetail, body: &[u8]) -> Self {
        Self::Rejected {
            provider: provider.to_owned(),
            status,
            detail,
            body: BodySnippet::new(body),
            retry_after: None,
        }
    }

    /// A failure of the token endpoint (a 5xx), with the vendor's error when
    /// its body had one; `body` is kept only as a sanitised, redacted
    /// [`BodySnippet`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokensmith_core::TokenError;
    ///
    /// let err = TokenError::server("mine", 503, None, b"down for maintenance")
    ///     .with_retry_after(Some(Duration::from_secs(30)));
    /// assert!(err.is_retryable());
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    /// ```
    pub fn server(provider: &str, status: u16, detail: Option<ErrorDetail>, body: &[u8]) -> Self {
        Self::Server {
            provider: provider.to_owned(),
            status,
            detail,
            body: BodySnippet::new(body),
            retry_after: None,
        }
    }

    /// An answer of the token endpoint that no OAuth or vendor error
    /// explains (`404`, `405`, an HTML page): most likely the wrong URL.
    pub fn endpoint(provider: &str, status: u16, body: &[u8]) -> Self {
        Self::Endpoint { provider: provider.to_owned(), status, body: BodySnippet::new(body) }
    }

    /// This error with the server's `Retry-After` delay (kept by a refusal
    /// or a server failure; other errors are returned unchanged).
    #[must_use]
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        if let Self::Rejected { retry_after, .. } | Self::Server { retry_after, .. } = &mut self {
            *retry_after = delay;
        }
        self
    }

    /// A transport error.
    pub fn transport(
        provider: &str,
        kind: TransportErrorKind,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Self::Transport { provider: provider.to_owned(), kind, message: message.into(), source }
    }

    /// An invalid-response error.
    pub fn invalid_response(
        provider: &str,
        status: u16,
        reason: impl Into<String>,
        body: &[u8],
    ) -> Self {
        Self::InvalidResponse {
            provider: provider.to_owned(),
            status,
            reason: reason.into(),
            body: BodySnippet::new(body),
        }
    }

    /// A reauthorization-required error.
    pub fn reauthorization_required(provider: &str, message: impl Into<String>) -> Self {
        Self::ReauthorizationRequired { provider: provider.to_owned(), message: message.into() }
    }

    /// The provider the error belongs to, when known.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Self::Config { provider, .. } => provider.as_deref(),
            Self::Rejected { provider, .. }
            | Self::Server { provider, .. }
            | Self::Endpoint { provider, .. }
            | Self::Transport { provider, .. }
            | Self::InvalidResponse { provider, .. }
            | Self::ReauthorizationRequired { provider, .. } => Some(provider),
        }
    }

    /// The HTTP status of the response, when one arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. }
            | Self::Server { status, .. }
            | Self::Endpoint { status, .. }
            | Self::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The vendor's error detail, when the response carried one.
    pub fn detail(&self) -> Option<&ErrorDetail> {
        match self {
            Self::Rejected { detail, .. } => Some(detail),
            Self::Server { detail, .. } => detail.as_ref(),
            _ => None,
        }
    }

    /// The vendor's OAuth error code (`invalid_client`), when there is one.
    pub fn oauth_error_code(&self) -> Option<&str> {
        self.detail().and_then(|d| d.code.as_deref())
    }

    /// The sanitised body excerpt, when a response arrived.
    pub fn body(&self) -> Option<&BodySnippet> {
        match self {
            Self::Rejected { body, .. }
            | Self::Server { body, .. }
            | Self::Endpoint { body, .. }
            | Self::InvalidResponse { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected { retry_after, .. } | Self::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether trying again later can help: transport failures, 5xx, 408 and
    /// 429. A refusal (`invalid_client`), a config error, a wrong endpoint or
    /// a response we cannot parse will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { kind, .. } => !matches!(kind, TransportErrorKind::Redirect),
            Self::Server { .. } => true,
            Self::Rejected { status, .. } => matches!(status, 408 | 429),
            Self::Config { .. }
            | Self::Endpoint { .. }
            | Self::InvalidResponse { .. }
            | Self::ReauthorizationRequired { .. } => false,
        }
    }

    /// Whether this is a configuration error (CLI exit code 2).
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config { .. })
    }

    /// Whether the token endpoint refused the request (CLI exit code 3): a
    /// refusal the vendor explains, or a reauthorization to do. A 4xx nobody
    /// explains is [`Endpoint`](Self::Endpoint) instead.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. } | Self::ReauthorizationRequired { .. })
    }
}

impl fmt::Display for TokenError {
    /// One line naming the provider, whatever a message holds (control
    /// characters and runs of whitespace become one space). The sources are
    /// not shown: [`error_line`] adds them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { provider, field, message } => {
                f.write_str("config error")?;
                if let Some(p) = provider {
                    write!(f, ": provider {p:?}")?;
                }
                if let Some(k) = field {
                    write!(f, ", field {k:?}")?;
                }
                write!(f, ": {}", one_line(message, usize::MAX))
            }
            Self::Rejected { provider, status, detail, body, .. } => {
                write!(
                    f,
                    "provider {provider:?}: token endpoint refused the request (HTTP {status})"
                )?;
                if detail.code.is_some() || detail.description.is_some() {
                    write!(f, ": {detail}")
                } else {
                    write!(f, "; body: {body}")
                }
            }
            Self::Server { provider, status, detail, body, .. } => {
                write!(f, "provider {provider:?}: token endpoint failed (HTTP {status})")?;
                match detail {
                    Some(d) => write!(f, ": {d}"),
                    None => write!(f, "; body: {body}"),
                }
            }
            Self::Endpoint { provider, status, body } => write!(
                f,
                "provider {provider:?}: the token endpoint answered HTTP {status} with no OAuth or \
                 vendor error: check token_url; body: {body}"
            ),
            Self::Transport { provider, kind, message, .. } => {
                write!(f, "provider {provider:?}: {kind}")?;
                let message = one_line(message, usize::MAX);
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Self::InvalidResponse { provider, status, reason, body } => write!(
                f,
                "provider {provider:?}: invalid token response (HTTP {status}): {}; body: {body}",
                one_line(reason, usize::MAX)
            ),
            Self::ReauthorizationRequired { provider, message } => write!(
                f,
                "provider {provider:?}: reauthorization required: {}",
                one_line(message, usize::MAX)
            ),
        }
    }
}

/// `err` and its sources on one line, as a log line or a terminal shows an
/// error: each `Display` in turn, joined by `: `, a source whose text the
/// line already holds said once (layers that restate their cause), and
/// control characters and runs of whitespace made one space. Every
/// one-line error text in tokensmith is made here (or, for a body, by the
/// same rule bounded in length).
///
/// ```
/// use tokensmith_core::error_line;
///
/// let err = std::io::Error::other("disk\nfull");
/// assert_eq!(error_line(&err), "disk full");
/// ```
pub fn error_line(err: &dyn StdError) -> String {
    let mut out = one_line(&err.to_string(), usize::MAX);
    let mut source = err.source();
    while let Some(s) = source {
        let text = one_line(&s.to_string(), usize::MAX);
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl StdError for TokenError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Transport { source: Some(s), .. } => Some(s.as_ref()),
            _ => None,
        }
    }
}

impl Clone for TokenError {
    /// Clones the error; a transport error's `source` is kept as its message
    /// (single-flight hands one failure to every waiting caller).
    fn clone(&self) -> Self {
        match self {
            Self::Config { provider, field, message } => Self::Config {
                provider: provider.clone(),
                field: field.clone(),
                message: message.clone(),
            },
            Self::Rejected { provider, status, detail, body, retry_after } => Self::Rejected {
                provider: provider.clone(),
                status: *status,
                detail: detail.clone(),
                body: body.clone(),
                retry_after: *retry_after,
            },
            Self::Server { provider, status, detail, body, retry_after } => Self::Server {
                provider: provider.clone(),
                status: *status,
                detail: detail.clone(),
                body: body.clone(),
                retry_after: *retry_after,
            },
            Self::Endpoint { provider, status, body } => {
                Self::Endpoint { provider: provider.clone(), status: *status, body: body.clone() }
            }
            Self::Transport { provider, kind, message, source } => Self::Transport {
                provider: provider.clone(),
                kind: *kind,
                message: message.clone(),
                source: source.as_ref().map(|s| -> BoxError { s.to_string().into() }),
            },
            Self::InvalidResponse { provider, status, reason, body } => Self::InvalidResponse {
                provider: provider.clone(),
                status: *status,
                reason: reason.clone(),
                body: body.clone(),
            },
            Self::ReauthorizationRequired { provider, message } => Self::ReauthorizationRequired {
                provider: provider.clone(),
                message: message.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_whatever_the_message() {
        let text = "first\nsecond\r\n\tthird\u{1b}[31m";
        let errors = [
            TokenError::config(Some("p"), Some("f"), text),
            TokenError::transport("p", TransportErrorKind::Io, text, None),
            TokenError::invalid_response("p", 200, text, b"{}"),
            TokenError::reauthorization_required("p", text),
        ];
        for err in errors {
            let shown = err.to_string();
            assert!(!shown.contains(char::is_control), "{shown:?}");
            assert!(shown.contains("first second third [31m"), "{shown:?}");
        }
    }

    #[test]
    fn an_error_line_says_each_text_once_on_one_line() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl fmt::Display for Layer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl StdError for Layer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.1.as_deref().map(|l| l as &(dyn StdError + 'static))
            }
        }
        let refused = Layer("Connection refused (os error 111)", None);
        let tcp =
            Layer("tcp connect error: Connection refused (os error 111)", Some(refused.into()));
        let client = Layer("client error (Connect)", Some(tcp.into()));
        let outer = Layer("error sending\nrequest", Some(client.into()));
        assert_eq!(
            error_line(&outer),
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(error_line(&Layer("  ", None)), "");
        let restated = Layer("cannot write: disk full", Some(Layer("disk\n full", None).into()));
        assert_eq!(error_line(&restated), "cannot write: disk full");
        let empty_outer = Layer("", Some(Layer("the cause", None).into()));
        assert_eq!(error_line(&empty_outer), "the cause");
    }

    #[track_caller]
    fn check_detail(code: Option<&str>, description: Option<&str>, expected: &str) {
        assert_eq!(ErrorDetail::new(code, description).to_string(), expected);
    }

    #[test]
    fn details_are_one_bounded_line() {
        check_detail(
            Some("Invalid_request"),
            Some("Invalid client_id"),
            "invalid_request: Invalid client_id",
        );
        check_detail(Some(" X "), Some(" a\r\n\tb\u{0}c "), "x: a b c");
        check_detail(Some(""), Some("  "), "no error detail");
        check_detail(None, Some("d"), "d");
        check_detail(Some("c"), None, "c");
        let long = ErrorDetail::new(None, Some(&"y".repeat(10_000)));
        assert_eq!(
            long.description.unwrap().chars().count(),
            ErrorDetail::MAX_DESCRIPTION_CHARS + 1
        );
        assert_eq!(ErrorDetail::default().with_uri(Some(" u\n ")).uri.as_deref(), Some("u"));
        assert!(ErrorDetail::default().with_uri(Some("")).uri.is_none());
    }
}
