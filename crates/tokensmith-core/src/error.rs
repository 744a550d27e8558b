//! [`TokenError`]: everything that can go wrong getting a token, as data.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A boxed error source (transport failures keep the underlying error).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The vendor's error, parsed from any known error body shape.
///
/// Filled from RFC 6749 §5.2 bodies (`error`, `error_description`,
/// `error_uri`; the code normalised to lowercase, so Deyel's
/// `Invalid_request` reads `invalid_request`) and from the scoped `OAuth2`
/// vendor's `{"meta":…,"errors":[{"httpcode":…,"message":"…"}]}` (no code,
/// the message as description).
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
    /// A detail with the given code (normalised to lowercase) and description.
    pub fn new(code: Option<&str>, description: Option<&str>) -> Self {
        Self {
            code: code.map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()),
            description: description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()),
            uri: None,
        }
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
/// At most [`BodySnippet::MAX_CHARS`] characters, control characters replaced,
/// whitespace collapsed, and the values of secret-bearing fields
/// (`access_token`, `refresh_token`, `id_token`, `client_secret`, `password`,
/// `code`, `assertion`) replaced by `[REDACTED]`, so it is safe to log.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BodySnippet(String);

impl BodySnippet {
    /// The longest snippet kept, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Fields whose values never appear in a snippet.
    pub const SECRET_FIELDS: &'static [&'static str] = &[
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "code",
        "code_verifier",
        "assertion",
        "client_assertion",
    ];

    /// Builds a sanitised snippet from raw body bytes.
    pub fn new(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let redacted = redact(&text);
        let mut out = String::new();
        let mut last_space = true;
        for ch in redacted.chars() {
            let ch = if ch.is_control() || ch.is_whitespace() { ' ' } else { ch };
            if ch == ' ' {
                if last_space {
                    continue;
                }
                last_space = true;
            } else {
                last_space = false;
            }
            if out.chars().count() >= Self::MAX_CHARS {
                out.push('…');
                break;
            }
            out.push(ch);
        }
        Self(out.trim_end().to_owned())
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

/// Replaces the values of [`BodySnippet::SECRET_FIELDS`] in JSON
/// (`"field": "value"`) and form (`field=value`) text.
fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    for field in BodySnippet::SECRET_FIELDS {
        out = redact_field(&out, field);
    }
    out
}

fn redact_field(text: &str, field: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_key(rest, field) {
        let (before, after_key) = rest.split_at(pos + field.len());
        out.push_str(before);
        // JSON: optional closing quote, spaces, ':' then a value; form: '='.
        let mut chars = after_key.char_indices().peekable();
        let mut value_start = None;
        while let Some(&(i, c)) = chars.peek() {
            match c {
                '"' | ' ' | '\t' if value_start.is_none() => {
                    chars.next();
                }
                ':' | '=' => {
                    value_start = Some(i + 1);
                    break;
                }
                _ => break,
            }
        }
        let Some(start) = value_start else {
            rest = after_key;
            continue;
        };
        let value_part = &after_key[start..];
        let trimmed = value_part.trim_start();
        let skipped = value_part.len() - trimmed.len();
        let end = if let Some(stripped) = trimmed.strip_prefix('"') {
            // JSON string: up to the next unescaped quote.
            let mut escaped = false;
            let mut end = stripped.len();
            for (i, c) in stripped.char_indices() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = i + 1;
                    break;
                }
            }
            1 + end
        } else {
            trimmed.find(['&', ',', '}', ' ', '\n', '\r', '<']).unwrap_or(trimmed.len())
        };
        out.push_str(&after_key[..start + skipped]);
        out.push_str(if trimmed.starts_with('"') { "\"[REDACTED]\"" } else { "[REDACTED]" });
        rest = &trimmed[end.min(trimmed.len())..];
    }
    out.push_str(rest);
    out
}

/// Finds `field` as a whole key (not a suffix of a longer name).
fn find_key(text: &str, field: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(field) {
        let at = from + i;
        let prev_ok =
            text[..at].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let next_ok = text[at + field.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if prev_ok && next_ok {
            return Some(at);
        }
        from = at + field.len();
    }
    None
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
    /// The token endpoint refused the request: a 4xx, or a 2xx whose body
    /// carries an OAuth `error`.
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
    /// A configuration error.
    pub fn config(provider: Option<&str>, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::Config {
            provider: provider.map(str::to_owned),
            field: field.map(str::to_owned),
            message: message.into(),
        }
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
    /// 429. A refusal (`invalid_client`), a config error or a response we
    /// cannot parse will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { kind, .. } => !matches!(kind, TransportErrorKind::Redirect),
            Self::Server { .. } => true,
            Self::Rejected { status, .. } => matches!(status, 408 | 429),
            Self::Config { .. }
            | Self::InvalidResponse { .. }
            | Self::ReauthorizationRequired { .. } => false,
        }
    }

    /// Whether this is a configuration error (CLI exit code 2).
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config { .. })
    }

    /// Whether the token endpoint refused the request (CLI exit code 3).
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. } | Self::ReauthorizationRequired { .. })
    }
}

impl fmt::Display for TokenError {
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
                write!(f, ": {message}")
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
            Self::Transport { provider, kind, message, .. } => {
                write!(f, "provider {provider:?}: {kind}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Self::InvalidResponse { provider, status, reason, body } => write!(
                f,
                "provider {provider:?}: invalid token response (HTTP {status}): {reason}; body: {body}"
            ),
            Self::ReauthorizationRequired { provider, message } => {
                write!(f, "provider {provider:?}: reauthorization required: {message}")
            }
        }
    }
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

    #[track_caller]
    fn check_snippet(body: &str, expected: &str) {
        assert_eq!(BodySnippet::new(body.as_bytes()).as_str(), expected);
    }

    #[test]
    fn snippets_are_redacted_and_collapsed() {
        check_snippet(r#"{"access_token":"abc","x":1}"#, r#"{"access_token":"[REDACTED]","x":1}"#);
        check_snippet(
            r#"{"access_token" : "a\"bc", "x":1}"#,
            r#"{"access_token" : "[REDACTED]", "x":1}"#,
        );
        check_snippet(
            "access_token=abc&token_type=bearer",
            "access_token=[REDACTED]&token_type=bearer",
        );
        check_snippet("<html>\n\n  <b>oops</b>\n</html>", "<html> <b>oops</b> </html>");
        check_snippet(
            r#"{"error_code":"x","code":"c0de"}"#,
            r#"{"error_code":"x","code":"[REDACTED]"}"#,
        );
        check_snippet("", "");
        let long = "x".repeat(1000);
        assert_eq!(
            BodySnippet::new(long.as_bytes()).as_str().chars().count(),
            BodySnippet::MAX_CHARS + 1
        );
    }
}
