//! The one tolerant token-response parser every adapter uses.
//!
//! [`parse_response`] turns whatever a token endpoint answered into an
//! [`AccessToken`] or a [`TokenError`]. It never panics and does work linear
//! in the body, which the request helper has already capped at 1 MiB.
//!
//! # Statuses
//!
//! | status | result |
//! |---|---|
//! | any 2xx with a token | the [`AccessToken`] |
//! | any 2xx whose body carries `error` (or a non-empty `errors` list) | [`TokenError::Rejected`]: some servers refuse with a 200 |
//! | any 2xx without a usable `access_token` (missing, empty, not a string; an HTML page; an empty or unreadable body) | [`TokenError::InvalidResponse`] with the reason |
//! | 4xx explained by an OAuth or vendor error, and any 401, 408, 429 | [`TokenError::Rejected`], with the vendor's error |
//! | 4xx nobody explains (`404 Not Found`, a 405, an HTML page, an empty body) | [`TokenError::Endpoint`]: most likely `token_url` is wrong; 404, 405 and 410 count as explained only with an OAuth `error` code |
//! | 5xx | [`TokenError::Server`], with the vendor's error when the body has one |
//! | anything else | [`TokenError::InvalidResponse`] |
//!
//! `Retry-After` is kept on rejections and server failures.
//!
//! # Bodies
//!
//! - **JSON**, whatever the `Content-Type` says (`application/json`,
//!   `text/plain`, none): a body that starts with `{` is JSON. A UTF-8 BOM and
//!   surrounding whitespace are ignored. Trailing commas (the configapi vendor
//!   documents `"expires_in":"3599",}`) and a missing `:` between a key and its
//!   value (Deyel's documented `"access_token""eyJ…"`) are repaired; anything
//!   after the first complete value is ignored.
//! - **Form** (`application/x-www-form-urlencoded`, or a body of `key=value`
//!   pairs served as anything but HTML): `access_token=…&token_type=bearer&expires_in=3600`.
//!   The first of repeated keys wins.
//!
//! # Fields
//!
//! - `access_token`: required, a non-empty string without control characters
//!   (a newline or escape would reach a script's `$(tokensmith token x)`, a
//!   header or a terminal), kept as a secret.
//! - `token_type`: normalised by [`TokenType::parse`]: missing or any case of
//!   `bearer` is [`TokenType::Bearer`]; a control character in it, or in a
//!   `refresh_token`, is an invalid response too.
//! - `expires_in`: an integer, a string (`"3599"`) or a float. `0` counts as
//!   absent, as golang/oauth2 reads it (servers send it for "not said", and
//!   the scoped vendor's documented example shows it): taken literally it would
//!   make every call fetch. Values above 2³¹−1 seconds (about 68 years) are
//!   clamped to it, as golang/oauth2 does. When it is absent, negative or not
//!   a number, and the access token is a JWT (three dot-separated segments)
//!   whose payload has an `exp` claim, that claim is used (the payload is
//!   base64url-decoded, with or without padding, **without verifying** the
//!   signature: it only decides when to fetch a new token). Otherwise
//!   [`AccessToken::expires_at`] stays `None` and the cache assumes
//!   [`DEFAULT_LIFETIME`](crate::DEFAULT_LIFETIME) (one hour) through
//!   [`AccessToken::effective_expires_at`].
//! - **Expired on arrival**: an `expires_in` under [`MIN_LIFETIME`] (one
//!   second; `0` reads as absent, above), or, without `expires_in`, a JWT
//!   `exp` less than that after the receipt time (the local clock ahead of
//!   the server's, or an old token), makes the response a
//!   [`TokenError::InvalidResponse`]: a token that breaks the cache's margin
//!   promise is never handed out, and the cache backs off before asking
//!   again instead of fetching on every call. The receipt time is taken when
//!   the request is sent, so a slow answer shortens the lifetime, never
//!   lengthens it.
//! - `scope`: a space-delimited string (or a list of strings), parsed by
//!   [`Scope::parse`].
//! - `refresh_token`, `id_token`: kept as secrets when non-empty strings.
//!
//! # Error shapes
//!
//! [`ErrorDetail`] is filled from:
//!
//! - RFC 6749 §5.2: `error`, `error_description`, `error_uri`, the code
//!   lowercased (Deyel's `Invalid_request` reads `invalid_request`); also
//!   `error` as an object with `code` and `message`;
//! - the scoped `OAuth2` vendor's `{"meta":{…},"errors":[{"httpcode":400,"message":"…"}]}`:
//!   no code, the messages joined with `"; "`;
//! - for 4xx and 5xx only, a lone `error_description`, `message`, `detail`
//!   (RFC 9457) or `title`.
//!
//! Other bodies (HTML, text, empty) are kept only as a [`BodySnippet`](crate::BodySnippet).
//!
//! # Secrets
//!
//! No error carries a secret; the crate's one redaction module builds every
//! error's text from the body, and only for errors. A snippet of a JSON body
//! is the body re-serialised with the values of
//! [`SECRET_FIELDS`](crate::BodySnippet::SECRET_FIELDS) (at any depth, any
//! key spelling serde decodes) replaced; a form body with such a field is
//! re-encoded the same way; other text goes through
//! [`BodySnippet::new`](crate::BodySnippet::new)'s redaction. On top of that,
//! every token found in the body is scrubbed from the snippet and from the
//! vendor's error text. A body with more than 16 token values (no token
//! response has that many) keeps neither snippet nor vendor text, which
//! keeps the scrubbing linear.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tokensmith_core::{RawResponse, parse_response};
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let body = b"{\n\"access_token\":\"abc\",\n\"token_type\":\"Bearer\",\n\"expires_in\":\"3599\",\n}";
//! let token = parse_response("api", &RawResponse::new(200, Some("text/plain"), body), now).unwrap();
//! assert_eq!(token.expires_at(), Some(now + Duration::from_secs(3599)));
//!
//! let body = br#"{"error_description": "Invalid client_id","error": "Invalid_request"}"#;
//! let err = parse_response("deyel", &RawResponse::new(400, None, body), now).unwrap_err();
//! assert_eq!(err.oauth_error_code(), Some("invalid_request"));
//! ```

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::SecretString;
use serde_json::{Map, Value};
use url::form_urlencoded;

use crate::redact::{Redacted, Secrets, Shape, redact};
use crate::{AccessToken, ErrorDetail, Scope, Timestamp, TokenError, TokenType};

/// A token endpoint's response, as read by the request helper.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RawResponse<'a> {
    /// HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Retry-After` header as a delay, if any.
    pub retry_after: Option<Duration>,
    /// The whole body (already capped).
    pub body: &'a [u8],
}

impl<'a> RawResponse<'a> {
    /// A response with `status`, `content_type` and `body`.
    pub fn new(status: u16, content_type: Option<&'a str>, body: &'a [u8]) -> Self {
        Self { status, content_type, retry_after: None, body }
    }

    /// The same response with a `Retry-After` delay.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// The longest lifetime believed: 2³¹−1 seconds, as golang/oauth2 clamps.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs((1 << 31) - 1);

/// The shortest lifetime accepted: 1 s. A token response whose `expires_in`
/// is shorter (but not `0`, which reads as absent), or whose JWT `exp` is
/// less than this after the receipt time, is a
/// [`TokenError::InvalidResponse`]: the token would be expired on arrival.
pub(crate) const MIN_LIFETIME: Duration = Duration::from_secs(1);

/// Parses a token response into an [`AccessToken`] or a [`TokenError`]
/// (the rules: `docs/ARCHITECTURE.md` and this crate's `parse.rs`).
pub fn parse_response(
    provider: &str,
    response: &RawResponse<'_>,
    received_at: impl Into<Timestamp>,
) -> Result<AccessToken, TokenError> {
    parse_sent(provider, response, received_at, &|| Secrets::NONE)
}

/// [`parse_response`] for a request that sent secrets: `sent` lists them,
/// called only when an error is built, which never shows them.
pub(crate) fn parse_sent(
    provider: &str,
    response: &RawResponse<'_>,
    received_at: impl Into<Timestamp>,
    sent: &dyn Fn() -> Secrets,
) -> Result<AccessToken, TokenError> {
    let received_at = received_at.into();
    if let Some(token) = fast_token(response, received_at) {
        return Ok(token);
    }
    tolerant(provider, response, received_at, sent)
}

/// The tolerant parser, every rule of this module: what [`parse_sent`]
/// falls back to whenever [`fast_token`] does not answer.
fn tolerant(
    provider: &str,
    response: &RawResponse<'_>,
    received_at: Timestamp,
    sent: &dyn Fn() -> Secrets,
) -> Result<AccessToken, TokenError> {
    let status = response.status;
    let body = Body::decode(response.content_type, response.body);
    let failure = match (status, body.fields()) {
        (200..=299, None) => Failure::Invalid(body.why_not_token(response.content_type)),
        (200..=299, Some(fields)) if carried_error(&fields).is_some() => Failure::Carried,
        (200..=299, Some(fields)) => match token_from(&fields, received_at) {
            Ok(token) => return Ok(token),
            Err(reason) => Failure::Invalid(reason),
        },
        (400..=599, _) => Failure::Status,
        _ => Failure::Invalid(format!("unexpected HTTP status {status}")),
    };
    // Only an error pays for redaction.
    let sent = sent();
    let shape = Shape::Response { content_type: response.content_type, decoded: &body };
    let redacted = redact(response.body, shape, &sent);
    Err(redacted.seal(failure.error(provider, response, &redacted)))
}

/// [`parse_response`] for a vendor described in config: the token, its
/// lifetime and the vendor's error are read where `shape` says.
pub(crate) fn parse_shaped(
    provider: &str,
    response: &RawResponse<'_>,
    received_at: impl Into<Timestamp>,
    shape: &ResponseShape,
    sent: &dyn Fn() -> Secrets,
) -> Result<AccessToken, TokenError> {
    let received_at = received_at.into();
    let status = response.status;
    let body = Body::decode(response.content_type, response.body);
    let document = body.document();
    let failure = match (status, document.as_deref()) {
        (200..=299, None) => Failure::Invalid(body.why_not_token(response.content_type)),
        (200..=299, Some(doc)) if shape.carried_error(doc).is_some() => Failure::Carried,
        (200..=299, Some(doc)) => match shape.token_from(doc, received_at) {
            Ok(token) => return Ok(token),
            Err(reason) => Failure::Invalid(reason),
        },
        (400..=599, _) => Failure::Status,
        _ => Failure::Invalid(format!("unexpected HTTP status {status}")),
    };
    // What the described token fields hold is scrubbed like a token value,
    // and their names redacted like `access_token`.
    let found: Vec<&str> = document
        .as_deref()
        .map(|doc| {
            shape.secret_pointers().filter_map(|p| doc.pointer(p).and_then(Value::as_str)).collect()
        })
        .unwrap_or_default();
    let keys = shape.secret_keys();
    let sent = sent().with_values(found).with_keys(keys.iter().map(String::as_str));
    let shape_of = Shape::Response { content_type: response.content_type, decoded: &body };
    let redacted = redact(response.body, shape_of, &sent);
    Err(redacted.seal(failure.error_shaped(provider, response, &redacted, Some(shape))))
}

/// What is wrong with a response, before its error is built from the
/// redacted body.
enum Failure {
    /// A 2xx that is no token response, or any other status not 4xx or 5xx.
    Invalid(String),
    /// A 2xx whose body carries an error.
    Carried,
    /// A 4xx or 5xx.
    Status,
}

impl Failure {
    fn error(self, provider: &str, response: &RawResponse<'_>, body: &Redacted<'_>) -> TokenError {
        self.error_shaped(provider, response, body, None)
    }

    fn error_shaped(
        self,
        provider: &str,
        response: &RawResponse<'_>,
        body: &Redacted<'_>,
        shape: Option<&ResponseShape>,
    ) -> TokenError {
        let provider = provider.to_owned();
        let status = response.status;
        let retry_after = response.retry_after;
        // The vendor's error is read from the fields with every secret scrubbed.
        let fields = body.fields();
        match self {
            Self::Invalid(reason) => {
                TokenError::InvalidResponse { provider, status, reason, body: body.snippet() }
            }
            Self::Carried => TokenError::Rejected {
                provider,
                status,
                detail: match shape {
                    Some(shape) => fields.and_then(|f| shape.carried_error(&object(f))),
                    None => fields.and_then(carried_error),
                }
                .unwrap_or_default(),
                body: body.snippet(),
                retry_after,
            },
            Self::Status => {
                let described = shape.zip(fields).and_then(|(s, f)| s.error_detail(&object(f)));
                let detail = described.or_else(|| fields.and_then(error_detail));
                if status >= 500 {
                    TokenError::Server {
                        provider,
                        status,
                        detail,
                        body: body.snippet(),
                        retry_after,
                    }
                } else if explained(status, detail.as_ref()) {
                    TokenError::Rejected {
                        provider,
                        status,
                        detail: detail.unwrap_or_default(),
                        body: body.snippet(),
                        retry_after,
                    }
                } else {
                    TokenError::Endpoint { provider, status, body: body.snippet() }
                }
            }
        }
    }
}

/// Whether a 4xx refusal is explained, so it is a refusal
/// ([`TokenError::Rejected`]) and not a sign of a wrong endpoint
/// ([`TokenError::Endpoint`]): 401 (the credentials), 408 and 429 (try
/// later) explain themselves; 404, 405 and 410 (no such resource or method)
/// only with an OAuth error code; any other 4xx with an OAuth code or a
/// vendor's message. A "code" with spaces (`"error":"Not Found"`, the HTTP
/// reason phrase in a framework's default error page) is no OAuth code.
fn explained(status: u16, detail: Option<&ErrorDetail>) -> bool {
    let oauth_code =
        detail.and_then(|d| d.code.as_deref()).is_some_and(|c| !c.contains(char::is_whitespace));
    match status {
        401 | 408 | 429 => true,
        404 | 405 | 410 => oauth_code,
        _ => oauth_code || detail.is_some_and(|d| d.description.is_some()),
    }
}

/// The vendor's error from an error body (4xx, 5xx) of any known shape, as
/// [`parse_response`] reads it for every status. Not public API (adapters
/// call [`parse_response`]); kept for the unit tests of the body shapes.
#[cfg(test)]
pub(crate) fn error_detail_from_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Option<ErrorDetail> {
    let decoded = Body::decode(content_type, body);
    let shape = Shape::Response { content_type, decoded: &decoded };
    redact(body, shape, &Secrets::NONE).fields().and_then(error_detail)
}

/// A decoded response body.
pub(crate) enum Body {
    /// Nothing but whitespace.
    Empty,
    /// A JSON value (an object for a token response).
    Json(Value),
    /// Looked like JSON but did not parse, even repaired: the parser's message.
    BadJson(String),
    /// `key=value` pairs, decoded.
    Form(Vec<(String, String)>),
    /// An HTML page.
    Html,
    /// Anything else.
    Other,
}

impl Body {
    pub(crate) fn decode(content_type: Option<&str>, raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).trim();
        if text.is_empty() {
            return Self::Empty;
        }
        let media = media_type(content_type);
        // A JSON string (`"dG9rZW4="`, a described whole-body token) is no
        // form, `=` or not.
        let looks_like_form = !text.starts_with(['{', '[', '<', '"'])
            && text.contains('=')
            && !text.contains(char::is_whitespace);
        if text.starts_with(['{', '[']) || (media.ends_with("json") && !looks_like_form) {
            return match parse_json(text) {
                Ok(value) => Self::Json(value),
                Err(message) => Self::BadJson(message),
            };
        }
        if media.contains("html") || text.starts_with('<') {
            return Self::Html;
        }
        if media == "application/x-www-form-urlencoded" || looks_like_form {
            return Self::Form(
                form_urlencoded::parse(text.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            );
        }
        Self::Other
    }

    /// The fields of a JSON object or form body.
    pub(crate) fn fields(&self) -> Option<Cow<'_, Map<String, Value>>> {
        match self {
            Self::Json(Value::Object(map)) => Some(Cow::Borrowed(map)),
            Self::Form(pairs) => {
                let mut map = Map::new();
                for (key, value) in pairs {
                    map.entry(key.as_str()).or_insert_with(|| Value::String(value.clone()));
                }
                Some(Cow::Owned(map))
            }
            _ => None,
        }
    }

    /// The body as one JSON document for JSON Pointers: a JSON value as
    /// is, a form's fields as an object of strings.
    fn document(&self) -> Option<Cow<'_, Value>> {
        match self {
            Self::Json(value) => Some(Cow::Borrowed(value)),
            Self::Form(_) => self.fields().map(|f| Cow::Owned(object(&f))),
            _ => None,
        }
    }

    /// Why a 2xx body without fields is no token response.
    fn why_not_token(&self, content_type: Option<&str>) -> String {
        match self {
            Self::Empty => "empty body, expected a token response".to_owned(),
            Self::Html => "an HTML page, not a token response".to_owned(),
            Self::BadJson(message) => format!("malformed JSON: {message}"),
            Self::Json(value) => {
                format!("the JSON body is {}, not an object", json_type(value))
            }
            Self::Form(_) | Self::Other => {
                let media = media_type(content_type);
                let media = if media.is_empty() { "none".into() } else { media };
                let media = crate::redact::one_line(&media, 60);
                format!("unrecognised body (content type {media}), expected JSON or a form")
            }
        }
    }
}

/// The lowercase media type of a `Content-Type` header (`text/plain`), or "".
fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses the first JSON value of `text`, repairing trailing commas and
/// missing colons when the strict parse fails. The error is the strict
/// parser's message (positions refer to the body as received).
fn parse_json(text: &str) -> Result<Value, String> {
    let first = |text: &str| {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .next()
            .unwrap_or_else(|| Err(serde::de::Error::custom("no JSON value")))
    };
    first(text).or_else(|strict| first(&repair_json(text)).map_err(|_| strict.to_string()))
}

/// `text` with trailing commas (`,}` and `,]`) dropped and a missing `:`
/// inserted between an object key and its value. Strings are copied as they
/// are; everything else is left for the JSON parser to judge.
fn repair_json(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 16);
    let mut in_object: Vec<bool> = Vec::new();
    let mut key_position = false; // next string is an object key
    let mut colon_due = false; // a key just ended
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            out.push(c);
            i += 1;
            continue;
        }
        let starts_value =
            matches!(c, b'"' | b'{' | b'[' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n');
        if colon_due && starts_value {
            out.push(b':');
        }
        colon_due = false;
        match c {
            b'"' => {
                let end = json_string_end(b, i);
                out.extend_from_slice(&b[i..end]);
                colon_due = key_position;
                key_position = false;
                i = end;
                continue;
            }
            b',' => {
                let next = b[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
                if matches!(next, Some(b'}' | b']')) {
                    i += 1;
                    continue;
                }
                key_position = in_object.last() == Some(&true);
            }
            b'{' => {
                in_object.push(true);
                key_position = true;
            }
            b'[' => {
                in_object.push(false);
                key_position = false;
            }
            b'}' | b']' => {
                in_object.pop();
                key_position = false;
            }
            _ => key_position = false,
        }
        out.push(c);
        i += 1;
    }
    // Only ASCII was inserted or dropped, and strings were copied whole.
    String::from_utf8(out).unwrap_or_default()
}

/// The index just past the JSON string starting with the quote at `open`.
fn json_string_end(b: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// A string member without its padding ([`unpadded`]); `None` when blank.
fn str_field<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    map.get(key).and_then(Value::as_str).map(unpadded).filter(|s| !s.trim().is_empty())
}

/// `s` without surrounding spaces (any white space that is not a control
/// character): a token is never padded, and HTTP would drop the padding of
/// a header value anyway. A surrounding CR, LF or tab stays, so the
/// control-character rule refuses the value.
fn unpadded(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() && !c.is_control())
}

/// The error a body carries as such (`error`, `errors`): what turns a 2xx
/// into a rejection.
fn carried_error(map: &Map<String, Value>) -> Option<ErrorDetail> {
    match map.get("error") {
        Some(Value::String(code)) if !code.trim().is_empty() => {
            return Some(
                ErrorDetail::new(Some(code), str_field(map, "error_description"))
                    .with_uri(str_field(map, "error_uri")),
            );
        }
        Some(Value::Object(inner)) if !inner.is_empty() => {
            let code = str_field(inner, "code").or_else(|| str_field(inner, "error"));
            let description = ["message", "error_description", "description"]
                .iter()
                .find_map(|k| str_field(inner, k))
                .or_else(|| str_field(map, "error_description"));
            return Some(ErrorDetail::new(code, description));
        }
        _ => {}
    }
    let Some(Value::Array(errors)) = map.get("errors") else {
        return None;
    };
    if errors.is_empty() {
        return None;
    }
    let messages: Vec<&str> = errors
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => ["message", "error_description", "detail", "error"]
                .iter()
                .find_map(|k| str_field(o, k)),
            _ => None,
        })
        .filter(|m| !m.trim().is_empty())
        .take(20)
        .collect();
    Some(ErrorDetail::new(None, (!messages.is_empty()).then(|| messages.join("; ")).as_deref()))
}

/// The vendor's error in an error body: [`carried_error`], else a lone
/// description-like field.
fn error_detail(map: &Map<String, Value>) -> Option<ErrorDetail> {
    carried_error(map).filter(|d| !d.is_empty()).or_else(|| {
        ["error_description", "message", "detail", "title"]
            .iter()
            .find_map(|k| str_field(map, k))
            .map(|d| ErrorDetail::new(None, Some(d)))
    })
}

/// Builds the token from the fields of a 2xx body, or says what is missing.
fn token_from(map: &Map<String, Value>, received_at: Timestamp) -> Result<AccessToken, String> {
    let token = match map.get("access_token") {
        Some(Value::String(s)) if !s.trim().is_empty() => unpadded(s),
        Some(Value::String(_)) => return Err("the access_token is empty".to_owned()),
        None | Some(Value::Null) => return Err("no access_token in the response".to_owned()),
        Some(other) => {
            return Err(format!("the access_token is {}, not a string", json_type(other)));
        }
    };
    let scope = match map.get("scope") {
        Some(Value::String(s)) => scope_text(s),
        Some(Value::Array(items)) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (!parts.is_empty()).then(|| Scope::parse(&parts.join(" ")))
        }
        _ => None,
    };
    let fields = TokenFields {
        access_token: token,
        expires_in: map.get("expires_in"),
        scope,
        token_type: map.get("token_type").and_then(Value::as_str),
        refresh_token: str_field(map, "refresh_token"),
        id_token: str_field(map, "id_token"),
    };
    build_token(fields, received_at)
}

/// A `scope` string as a [`Scope`], `None` when blank.
fn scope_text(text: &str) -> Option<Scope> {
    (!text.trim().is_empty()).then(|| Scope::parse(text))
}

/// The fields of a 2xx token response a token is built from, as read by
/// [`token_from`] (the tolerant path) or [`fast_token`]: both build the token
/// here, so the rules are written once.
struct TokenFields<'m> {
    /// Not blank.
    access_token: &'m str,
    expires_in: Option<&'m Value>,
    scope: Option<Scope>,
    /// A string `token_type` (anything else reads as absent).
    token_type: Option<&'m str>,
    /// A non-blank string `refresh_token`.
    refresh_token: Option<&'m str>,
    /// A non-blank string `id_token`.
    id_token: Option<&'m str>,
}

/// The token of `fields`, or why there is none (expired on arrival, control
/// characters).
fn build_token(fields: TokenFields<'_>, received_at: Timestamp) -> Result<AccessToken, String> {
    let token = fields.access_token;
    let builder = AccessToken::builder(token, received_at);
    let builder = match fields.expires_in.and_then(seconds).filter(|s| !s.is_zero()) {
        Some(lifetime) if lifetime < MIN_LIFETIME => {
            return Err(format!(
                "expires_in is {lifetime:?}, under {MIN_LIFETIME:?}: the token would expire on arrival"
            ));
        }
        Some(lifetime) => builder.expires_in(lifetime.min(MAX_EXPIRES_IN)),
        None => match jwt_expiry(token) {
            Some(exp) => builder.expires_at(jwt_expires_at(exp, received_at.wall())?),
            None => builder,
        },
    };
    // Printed alone on a line (`tokensmith token`), sent in a header or
    // stored in a file: a control character would inject lines, headers or
    // terminal escapes. The value itself never reaches the error.
    for (name, value) in [
        ("access_token", Some(token)),
        ("refresh_token", fields.refresh_token),
        ("token_type", fields.token_type),
    ] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(format!("the {name} contains control characters"));
        }
    }
    let secret = |value: Option<&str>| value.map(|s| SecretString::from(s.to_owned()));
    Ok(builder
        .token_type(TokenType::parse(fields.token_type))
        .scope(fields.scope)
        .refresh_token(secret(fields.refresh_token))
        .id_token(secret(fields.id_token))
        .build())
}

/// The token of a plain, well-formed 2xx JSON token response, read straight
/// into typed fields (no `serde_json::Value` map); `None` for anything
/// else, which the tolerant path then reads: any other status, a body that
/// is not exactly one JSON object (a BOM, trailing commas, a missing `:`,
/// text after it, a form), a field of an unusual type (a `scope` list, a
/// numeric `token_type`), a repeated field, an `error` or `errors` member,
/// a blank `access_token`, and every refusal ([`build_token`]'s errors).
/// Where it answers, its token is the tolerant path's (a test compares the
/// two on many bodies): every value it reads is what the `Value` map would
/// hold, and members it skips are still parsed as fully as the map parses
/// them (numbers out of range, bad escapes and nesting depth refused alike).
fn fast_token(response: &RawResponse<'_>, received_at: Timestamp) -> Option<AccessToken> {
    if !(200..=299).contains(&response.status) {
        return None;
    }
    // JSON whatever the content type, as `Body::decode` reads a body
    // starting with `{`.
    let first = response.body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return None;
    }
    let fast = match FastToken::scan(response.body) {
        Some(fast) => fast,
        None => serde_json::from_slice(response.body).ok()?,
    };
    if fast.has_error {
        return None;
    }
    let access_token = non_blank(fast.access_token.as_deref())?;
    let fields = TokenFields {
        access_token,
        expires_in: fast.expires_in.as_ref(),
        scope: fast.scope.as_deref().and_then(scope_text),
        token_type: fast.token_type.as_deref(),
        refresh_token: non_blank(fast.refresh_token.as_deref()),
        id_token: non_blank(fast.id_token.as_deref()),
    };
    build_token(fields, received_at).ok()
}

/// `value` without its padding ([`unpadded`]), unless blank.
fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(unpadded).filter(|s| !s.trim().is_empty())
}

/// A JSON string, borrowed from the body unless it has escapes.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// Any JSON value, parsed as fully as `serde_json::Value` parses it (every
/// number, string, escape and nesting level checked) but not kept.
struct Skipped;

impl<'de> serde::Deserialize<'de> for Skipped {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Skipped;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_str<E>(self, _: &str) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_unit<E>(self) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_none<E>(self) -> Result<Skipped, E> {
                Ok(Skipped)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Skipped, D::Error> {
                <Skipped as serde::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Skipped, A::Error> {
                while seq.next_element::<Skipped>()?.is_some() {}
                Ok(Skipped)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Skipped, A::Error> {
                while map.next_entry::<Skipped, Skipped>()?.is_some() {}
                Ok(Skipped)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The members of a token response [`fast_token`] reads.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct FastToken<'a> {
    access_token: Option<Text<'a>>,
    token_type: Option<Text<'a>>,
    expires_in: Option<Value>,
    scope: Option<Text<'a>>,
    refresh_token: Option<Text<'a>>,
    id_token: Option<Text<'a>>,
    /// An `error` or `errors` member, whatever its value.
    has_error: bool,
}

impl<'de> serde::Deserialize<'de> for FastToken<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FastToken<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a token response object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FastToken<'de>, A::Error> {
                fn once<'de, A: serde::de::MapAccess<'de>, T: serde::Deserialize<'de>>(
                    map: &mut A,
                    slot: &mut Option<T>,
                    seen: &mut bool,
                ) -> Result<(), A::Error> {
                    // A repeated member: the tolerant path decides (its map
                    // keeps the last).
                    if std::mem::replace(seen, true) {
                        return Err(serde::de::Error::custom("repeated member"));
                    }
                    *slot = map.next_value()?;
                    Ok(())
                }
                let mut out = FastToken::default();
                let mut seen = [false; 6];
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match &*key {
                        "access_token" => once(&mut map, &mut out.access_token, &mut seen[0])?,
                        "token_type" => once(&mut map, &mut out.token_type, &mut seen[1])?,
                        "expires_in" => once(&mut map, &mut out.expires_in, &mut seen[2])?,
                        "scope" => once(&mut map, &mut out.scope, &mut seen[3])?,
                        "refresh_token" => once(&mut map, &mut out.refresh_token, &mut seen[4])?,
                        "id_token" => once(&mut map, &mut out.id_token, &mut seen[5])?,
                        other => {
                            out.has_error |= matches!(other, "error" | "errors");
                            map.next_value::<Skipped>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl<'a> FastToken<'a> {
    /// The members of the simplest token responses, read without serde
    /// (serde's machinery cost more than the rest of reading a token): one
    /// flat JSON object, each member a string without escapes, an integer
    /// of at most 18 digits, `true`, `false` or `null`; a member read here
    /// a string (`expires_in` a string or an integer), none repeated, no
    /// `error` or `errors`. `None` for anything else, which serde then
    /// reads: wherever this answers, serde reads the same (a test compares
    /// the two on every body the fast path is tested with).
    fn scan(body: &'a [u8]) -> Option<Self> {
        let mut scan = Scan { text: std::str::from_utf8(body).ok()?, at: 0 };
        let mut out = FastToken::default();
        let mut seen = [false; 6];
        scan.eat(b'{')?;
        loop {
            let name = scan.string()?;
            scan.eat(b':')?;
            let value = scan.scalar()?;
            let slot = match name {
                "access_token" => 0,
                "token_type" => 1,
                "expires_in" => 2,
                "scope" => 3,
                "refresh_token" => 4,
                "id_token" => 5,
                "error" | "errors" => return None,
                _ => 6,
            };
            if slot < 6 && std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            match (slot, value) {
                (6, _) => {}
                (2, Scalar::Text(text)) => out.expires_in = Some(Value::from(text)),
                (2, Scalar::Integer(n)) => out.expires_in = Some(Value::from(n)),
                (_, Scalar::Text(text)) => {
                    let text = Some(Text(Cow::Borrowed(text)));
                    match slot {
                        0 => out.access_token = text,
                        1 => out.token_type = text,
                        3 => out.scope = text,
                        4 => out.refresh_token = text,
                        _ => out.id_token = text,
                    }
                }
                _ => return None,
            }
            match scan.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        scan.skip_whitespace();
        (scan.at == body.len()).then_some(out)
    }
}

/// A JSON value [`FastToken::scan`] reads.
enum Scalar<'a> {
    /// A string without escapes.
    Text(&'a str),
    /// An integer of at most 18 digits, no sign, no fraction, no exponent.
    Integer(u64),
    /// `true`, `false` or `null`.
    Literal,
}

/// A position in a JSON text, for [`FastToken::scan`].
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn skip_whitespace(&mut self) {
        let bytes = &self.text.as_bytes()[self.at..];
        self.at += bytes.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')).count();
    }

    /// The next byte after any white space.
    fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let byte = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// `byte`, after any white space.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A string without escapes or control characters, after any white
    /// space.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = &self.text.as_bytes()[start..];
        let len = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are at a `"`: char boundaries.
        self.text.get(start..start + len)
    }

    /// A string, a short integer or a literal, after any white space.
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        self.skip_whitespace();
        let rest = &self.text.as_bytes()[self.at..];
        match rest.first()? {
            b'"' => self.string().map(Scalar::Text),
            b'0'..=b'9' => {
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                // A leading zero (`01`, not JSON) or a number that may not
                // fit: serde decides.
                if digits > 18 || (digits > 1 && rest[0] == b'0') {
                    return None;
                }
                self.at += digits;
                let value = rest[..digits].iter().fold(0_u64, |n, d| n * 10 + u64::from(d - b'0'));
                Some(Scalar::Integer(value))
            }
            _ => {
                let literal = ["true", "false", "null"]
                    .into_iter()
                    .find(|literal| rest.starts_with(literal.as_bytes()))?;
                self.at += literal.len();
                Some(Scalar::Literal)
            }
        }
    }
}

/// A non-negative number of seconds from a JSON number or numeric string;
/// `None` for negative, non-finite or non-numeric values. Huge values
/// saturate (the caller clamps).
fn seconds(value: &Value) -> Option<Duration> {
    const CEILING: f64 = 4_294_967_296.0; // above MAX_EXPIRES_IN, exact in f64
    let from_f64 = |f: f64| Duration::try_from_secs_f64(f.min(CEILING)).ok();
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Some(Duration::from_secs(u)),
            (None, Some(_)) => None, // negative
            (None, None) => n.as_f64().and_then(from_f64),
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<i128>() {
                Ok(i) if i < 0 => None,
                Ok(i) => Some(Duration::from_secs(u64::try_from(i).unwrap_or(u64::MAX))),
                Err(_) => s.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(from_f64),
            }
        }
        _ => None,
    }
}

/// The expiry of a JWT access token with `exp` claim `exp` received at
/// `received_at`, or why it is expired on arrival (an `exp` less than
/// [`MIN_LIFETIME`] after the local receipt time: the server's clock or ours
/// is wrong, or the server sent an old token).
fn jwt_expires_at(exp: Duration, received_at: SystemTime) -> Result<Option<SystemTime>, String> {
    let latest = received_at.checked_add(MAX_EXPIRES_IN);
    let Some(exp) = SystemTime::UNIX_EPOCH.checked_add(exp) else {
        // Beyond what a `SystemTime` holds: the longest lifetime believed.
        return Ok(latest);
    };
    match exp.duration_since(received_at) {
        Ok(left) if left >= MIN_LIFETIME => Ok(Some(latest.map_or(exp, |latest| exp.min(latest)))),
        _ => Err(format!(
            "the token's JWT exp ({}) is less than {MIN_LIFETIME:?} after the local clock ({}): it would expire on arrival (a clock is wrong, or the token is old)",
            rfc3339(exp),
            rfc3339(received_at),
        )),
    }
}

/// `at` in RFC 3339 (whole seconds), or as a debug value outside the years
/// 1970 to 9999 that RFC 3339 formatting covers.
fn rfc3339(at: SystemTime) -> String {
    // 10000-01-01T00:00:00Z.
    const YEAR_10000: Duration = Duration::from_hours(70_389_528);
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => humantime::format_rfc3339_seconds(at).to_string(),
        _ => format!("{at:?}"),
    }
}

/// The `exp` claim of a JWT access token (time since the epoch), decoded
/// without verification.
fn jwt_expiry(token: &str) -> Option<Duration> {
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);

    let mut parts = token.trim().split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE.decode(payload).or_else(|_| STANDARD.decode(payload)).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    seconds(claims.get("exp")?)
}

/// A JSON object of `map`'s members (for JSON Pointers into fields).
fn object(map: &Map<String, Value>) -> Value {
    Value::Object(map.clone())
}

/// How an absolute expiry time is written in a response
/// ([`ResponseShape::expires_at`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum TimeFormat {
    /// A string is RFC 3339 (or a number in a string); a number is Unix
    /// seconds, or Unix milliseconds when above 10¹¹ (the year 5138 in
    /// seconds, 1973 in milliseconds).
    #[default]
    Auto,
    /// RFC 3339 (`2026-12-01T10:00:00Z`, `2026-12-01T10:00:00.123+01:00`).
    Rfc3339,
    /// Seconds since the Unix epoch (a number, or a number in a string).
    UnixSeconds,
    /// Milliseconds since the Unix epoch (a number, or a number in a string).
    UnixMillis,
}

/// Where the lifetime of a token sits in a described response.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Lifetime {
    /// Relative seconds (a number or a numeric string) at this pointer.
    ExpiresIn(String),
    /// An absolute time at this pointer, in this format.
    ExpiresAt(String, TimeFormat),
}

/// Where a token response that is not OAuth 2.0 keeps the token, its
/// lifetime and the vendor's error: RFC 6901 JSON Pointers (`/data/token`,
/// `""` for the whole document), used by `kind = "custom"`.
///
/// Read by [`TokenRequest::send_shaped`](crate::TokenRequest::send_shaped)
/// under the standard parser's rules (statuses and error classes, JSON or
/// form bodies repaired the same way, control characters refused, a token
/// expired on arrival refused, redaction), with these differences:
///
/// - the token is the string at [`new`](Self::new)'s pointer; the refresh
///   token, scope (a space-delimited string or a list) and token type at
///   theirs, when given;
/// - the lifetime is the relative seconds at [`expires_in`](Self::expires_in)
///   (a number or numeric string; `0` reads as absent) or the absolute time
///   at [`expires_at`](Self::expires_at); a described value that is present
///   but unreadable (negative, not a number or time) makes the response
///   invalid; when absent, a JWT token's `exp`, then
///   [`default_lifetime`](Self::default_lifetime), then the cache's default;
/// - the vendor's error code and message are read at
///   [`error_code`](Self::error_code) and [`error_message`](Self::error_message)
///   (a string or number), falling back to the standard error shapes; a 2xx
///   whose body has a non-empty error code there is a rejection;
/// - the values at the token and refresh-token pointers are scrubbed from
///   every error, and their keys (`jwt` for `/data/jwt`) redacted like
///   `access_token`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokensmith_core::{ResponseShape, TimeFormat};
///
/// let shape = ResponseShape::new("/data/jwt")?
///     .expires_at("/data/validUntil", TimeFormat::Rfc3339)?
///     .error_code("/fault/code")?
///     .error_message("/fault/text")?;
/// assert_eq!(shape.token_pointer(), "/data/jwt");
/// assert!(ResponseShape::new("data/jwt").is_err()); // a pointer starts with `/`
/// assert!(shape.expires_in("/ttl").is_err()); // relative and absolute: which one?
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ResponseShape {
    token: String,
    refresh_token: Option<String>,
    scope: Option<String>,
    token_type: Option<String>,
    lifetime: Option<Lifetime>,
    default_lifetime: Option<Duration>,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl ResponseShape {
    /// A shape whose token is the string at the JSON Pointer `token`, or the
    /// reason `token` is no JSON Pointer.
    pub fn new(token: &str) -> Result<Self, String> {
        Ok(Self {
            token: checked_pointer(token)?,
            refresh_token: None,
            scope: None,
            token_type: None,
            lifetime: None,
            default_lifetime: None,
            error_code: None,
            error_message: None,
        })
    }

    /// Whether `pointer` is an RFC 6901 JSON Pointer: empty, or `/` and
    /// segments in which `~` is only followed by `0` or `1`. `Err` says why
    /// not.
    ///
    /// ```
    /// use tokensmith_core::ResponseShape;
    /// assert!(ResponseShape::check_pointer("/a~1b/0").is_ok());
    /// assert!(ResponseShape::check_pointer("/a~2").is_err());
    /// ```
    pub fn check_pointer(pointer: &str) -> Result<(), String> {
        checked_pointer(pointer).map(drop)
    }

    /// The refresh token is the string at `pointer`.
    pub fn refresh_token(mut self, pointer: &str) -> Result<Self, String> {
        self.refresh_token = Some(checked_pointer(pointer)?);
        Ok(self)
    }

    /// The granted scope is at `pointer`.
    pub fn scope(mut self, pointer: &str) -> Result<Self, String> {
        self.scope = Some(checked_pointer(pointer)?);
        Ok(self)
    }

    /// The token type is at `pointer` (absent: `Bearer`).
    pub fn token_type(mut self, pointer: &str) -> Result<Self, String> {
        self.token_type = Some(checked_pointer(pointer)?);
        Ok(self)
    }

    /// The lifetime is the relative seconds at `pointer`. An error if an
    /// absolute expiry was already given.
    pub fn expires_in(mut self, pointer: &str) -> Result<Self, String> {
        if matches!(self.lifetime, Some(Lifetime::ExpiresAt(..))) {
            return Err("the lifetime is given both as relative seconds and as an absolute time; \
                        give one"
                .to_owned());
        }
        self.lifetime = Some(Lifetime::ExpiresIn(checked_pointer(pointer)?));
        Ok(self)
    }

    /// The token expires at the absolute time at `pointer`, written in
    /// `format`. An error if relative seconds were already given.
    pub fn expires_at(mut self, pointer: &str, format: TimeFormat) -> Result<Self, String> {
        if matches!(self.lifetime, Some(Lifetime::ExpiresIn(_))) {
            return Err("the lifetime is given both as relative seconds and as an absolute time; \
                        give one"
                .to_owned());
        }
        self.lifetime = Some(Lifetime::ExpiresAt(checked_pointer(pointer)?, format));
        Ok(self)
    }

    /// The lifetime assumed when the response says nothing (nor does a JWT
    /// token's `exp`). Zero or above [`MAX_EXPIRES_IN`] is clamped to
    /// 1 s and [`MAX_EXPIRES_IN`].
    #[must_use]
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = Some(lifetime.clamp(MIN_LIFETIME, MAX_EXPIRES_IN));
        self
    }

    /// The vendor's error code in an error body is at `pointer`.
    pub fn error_code(mut self, pointer: &str) -> Result<Self, String> {
        self.error_code = Some(checked_pointer(pointer)?);
        Ok(self)
    }

    /// The vendor's error message in an error body is at `pointer`.
    pub fn error_message(mut self, pointer: &str) -> Result<Self, String> {
        self.error_message = Some(checked_pointer(pointer)?);
        Ok(self)
    }

    /// The token's pointer.
    pub fn token_pointer(&self) -> &str {
        &self.token
    }

    /// Reads `response` by this shape, as
    /// [`TokenRequest::send_shaped`](crate::TokenRequest::send_shaped) does
    /// once it has the response: [`parse_response`] for a described vendor,
    /// for an adapter with its own transport (and for fuzzing).
    pub fn parse(
        &self,
        provider: &str,
        response: &RawResponse<'_>,
        received_at: impl Into<Timestamp>,
    ) -> Result<AccessToken, TokenError> {
        parse_shaped(provider, response, received_at, self, &|| Secrets::NONE)
    }

    /// The pointers whose values are secrets.
    fn secret_pointers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.token.as_str()).chain(self.refresh_token.as_deref())
    }

    /// The keys of the secret pointers (their last segments, unescaped),
    /// but neither empty nor array indexes.
    fn secret_keys(&self) -> Vec<String> {
        self.secret_pointers()
            .filter_map(|p| p.rsplit('/').next())
            .filter(|k| !k.is_empty() && !k.bytes().all(|b| b.is_ascii_digit()))
            .map(|k| k.replace("~1", "/").replace("~0", "~"))
            .collect()
    }

    /// The vendor's error at the described pointers, if they hold one.
    fn error_detail(&self, doc: &Value) -> Option<ErrorDetail> {
        let text = |pointer: &Option<String>| {
            pointer.as_deref().and_then(|p| doc.pointer(p)).and_then(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let code = text(&self.error_code);
        let message = text(&self.error_message);
        if code.is_none() && message.is_none() {
            return None;
        }
        Some(ErrorDetail::new(code.as_deref(), message.as_deref()))
    }

    /// The error a 2xx body carries: a non-empty code at the described
    /// pointer; without one described, the standard shapes.
    fn carried_error(&self, doc: &Value) -> Option<ErrorDetail> {
        if self.error_code.is_some() {
            return self.error_detail(doc).filter(|d| d.code.is_some());
        }
        match doc {
            Value::Object(map) => carried_error(map),
            _ => None,
        }
    }

    /// The token from a 2xx document, or why there is none.
    fn token_from(&self, doc: &Value, received_at: Timestamp) -> Result<AccessToken, String> {
        let at = |pointer: &str| doc.pointer(pointer).filter(|v| !v.is_null());
        let string = |what: &str, pointer: &str| -> Result<Option<&str>, String> {
            match at(pointer) {
                None => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                // As the standard fields: without padding.
                Some(Value::String(s)) => Ok(Some(unpadded(s))),
                Some(other) => {
                    Err(format!("the {what} at {pointer:?} is {}, not a string", json_type(other)))
                }
            }
        };
        let token = string("token", &self.token)?.ok_or_else(|| match at(&self.token) {
            Some(_) => format!("the token at {:?} is empty", self.token),
            None => format!("no token at {:?} in the response", self.token),
        })?;
        let refresh_token = match &self.refresh_token {
            Some(p) => string("refresh token", p)?,
            None => None,
        };
        let token_type = match &self.token_type {
            Some(p) => string("token type", p)?,
            None => None,
        };
        for (name, value) in
            [("token", Some(token)), ("refresh token", refresh_token), ("token type", token_type)]
        {
            if value.is_some_and(|v| v.chars().any(char::is_control)) {
                return Err(format!("the {name} contains control characters"));
            }
        }
        let expires_at = match &self.lifetime {
            Some(Lifetime::ExpiresIn(pointer)) => match at(pointer) {
                None => None,
                Some(value) => match seconds(value) {
                    Some(lifetime) if lifetime.is_zero() => None,
                    Some(lifetime) if lifetime < MIN_LIFETIME => {
                        return Err(format!(
                            "the lifetime at {pointer:?} is {lifetime:?}, under {MIN_LIFETIME:?}: \
                             the token would expire on arrival"
                        ));
                    }
                    Some(lifetime) => Some(Expiry::In(lifetime.min(MAX_EXPIRES_IN))),
                    None => {
                        return Err(format!(
                            "the lifetime at {pointer:?} is not a number of seconds"
                        ));
                    }
                },
            },
            Some(Lifetime::ExpiresAt(pointer, format)) => match at(pointer) {
                None => None,
                Some(value) => {
                    let time = absolute_time(value, *format).ok_or_else(|| {
                        format!("the expiry at {pointer:?} is not a time in the described format")
                    })?;
                    Some(Expiry::At(time))
                }
            },
            None => None,
        };
        let builder = AccessToken::builder(token, received_at);
        let builder = match expires_at {
            Some(Expiry::In(lifetime)) => builder.expires_in(lifetime),
            Some(Expiry::At(exp)) => {
                builder.expires_at(absolute_expires_at(exp, received_at.wall(), "expiry")?)
            }
            None => match (jwt_expiry(token), self.default_lifetime) {
                (Some(exp), _) => builder.expires_at(jwt_expires_at(exp, received_at.wall())?),
                (None, Some(lifetime)) => builder.expires_in(lifetime),
                (None, None) => builder,
            },
        };
        let scope = self.scope.as_deref().and_then(at).and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(Scope::parse(s)),
            Value::Array(items) => {
                let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                (!parts.is_empty()).then(|| Scope::parse(&parts.join(" ")))
            }
            _ => None,
        });
        Ok(builder
            .token_type(TokenType::parse(token_type))
            .scope(scope)
            .refresh_token(refresh_token.map(|s| SecretString::from(s.to_owned())))
            .build())
    }
}

/// A described lifetime, read.
enum Expiry {
    In(Duration),
    At(SystemTime),
}

/// `pointer` if it is an RFC 6901 JSON Pointer, else why not.
fn checked_pointer(pointer: &str) -> Result<String, String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "{pointer:?} is not a JSON Pointer (RFC 6901): it must start with `/`, e.g. \"/{pointer}\""
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "{pointer:?} is not a JSON Pointer (RFC 6901): `~` must be followed by 0 or 1 \
                 (`~0` is `~`, `~1` is `/`)"
            ));
        }
    }
    Ok(pointer.to_owned())
}

/// An absolute expiry, checked: at least [`MIN_LIFETIME`] after the
/// receipt time, clamped to [`MAX_EXPIRES_IN`] after it.
fn absolute_expires_at(
    exp: SystemTime,
    received_at: SystemTime,
    what: &str,
) -> Result<Option<SystemTime>, String> {
    let latest = received_at.checked_add(MAX_EXPIRES_IN);
    match exp.duration_since(received_at) {
        Ok(left) if left >= MIN_LIFETIME => Ok(Some(latest.map_or(exp, |latest| exp.min(latest)))),
        _ => Err(format!(
            "the token's {what} ({}) is less than {MIN_LIFETIME:?} after the local clock ({}): \
             it would expire on arrival (a clock is wrong, or the token is old)",
            rfc3339(exp),
            rfc3339(received_at),
        )),
    }
}

/// An absolute time from a JSON value in `format`.
fn absolute_time(value: &Value, format: TimeFormat) -> Option<SystemTime> {
    /// Above this a number read as [`TimeFormat::Auto`] is milliseconds.
    const MILLIS_ABOVE: f64 = 1e11;
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite() && *f >= 0.0);
    let since_epoch = |secs: f64| {
        Duration::try_from_secs_f64(secs).ok().and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
    };
    match (format, value) {
        (TimeFormat::Rfc3339 | TimeFormat::Auto, Value::String(s))
            if format == TimeFormat::Rfc3339 || number.is_none() =>
        {
            parse_rfc3339(s.trim())
        }
        (TimeFormat::Rfc3339, _) => None,
        (TimeFormat::UnixSeconds, _) => number.and_then(since_epoch),
        (TimeFormat::UnixMillis, _) => number.and_then(|ms| since_epoch(ms / 1000.0)),
        (TimeFormat::Auto, _) => {
            number.and_then(|n| since_epoch(if n > MILLIS_ABOVE { n / 1000.0 } else { n }))
        }
    }
}

/// RFC 3339 (`2026-12-01T10:00:00Z`, a fraction of any length, `Z` or an
/// offset `±HH:MM`; `t`, `z` and a space for `T` accepted), the years 1970
/// to 9999.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let mut scale = 100_000_000u32;
        for &d in &b[start..i.min(start + 9)] {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 3600 + m * 60;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > month_days[usize::try_from(month - 1).ok()?]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days since the epoch (Howard Hinnant's days_from_civil).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = i64::try_from(era * 146_097 + doe).ok()? - 719_468;
    let local = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second.min(59)).ok()?
        - offset_secs;
    let secs = u64::try_from(local).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::BodySnippet;
    use crate::redact::WITHHELD;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn parse(
        status: u16,
        content_type: Option<&str>,
        body: &str,
    ) -> Result<AccessToken, TokenError> {
        parse_response("p", &RawResponse::new(status, content_type, body.as_bytes()), now())
    }

    fn ok(status: u16, content_type: Option<&str>, body: &str) -> AccessToken {
        match parse(status, content_type, body) {
            Ok(token) => token,
            Err(e) => panic!("expected a token from {body:?}, got {e}"),
        }
    }

    fn err(status: u16, content_type: Option<&str>, body: &str) -> TokenError {
        match parse(status, content_type, body) {
            Ok(token) => panic!("expected an error from {body:?}, got {token:?}"),
            Err(e) => e,
        }
    }

    // ---- seed bodies, verbatim from ../shared/seeds/ ----

    pub(super) const SOTI: &str = r#"{"access_token":"AAEAAK0OiDDPciqCR5sZ6Nu6c8wIvURVwCTxslETUGp xDfmf6uzkXAg9MKzfJqm4k9ADBYIaOsT20wllKWQgQvH5sYkaIWxtOZ9OntAkxwPn wBRO7rNqCGj9yfg-COpYCdr2GEMl5SzaAPx2_WBQ3SwhKuGWuuDxVMzRWdAW1r36J Y6N9Fp-rYK3CtoNs4ibqswOs7qSPzuwo_K9l9_c5oCz7d6qJxJdhKoh3MC8vqFXxJ SXIEAwXnL7KWtrhanIcj_m0abZWfvR7e5npIHDcHH-bfVmc6wp-SsKJ-FyG7_zg2F d8HjvoqivTqRO5i1RSpaPpOa318g2FMIw-Lh6I5K0FAOUAQAAAAEAABW2-Dr_0-vr bZGMubz8ZGqpo6Z67n3JqBIFPgMOPotNHVJSUc_2HbozYt7smfuCIeIvE0gd84ti3 LBJXSkiOBPJmxp-WhdC1IbB7y2W5G8D4l5MD3VbDTz6ov_VnZGpRc-h7Q9Knn1Vyk QTHo4NknDUdVkqDe3VHQsjtn12QINEzb04Ch-RpudIHnKG-P-jhIIszo2M0_Po8_U aHVwrpPtwhUCzqOU_Gus1nS694dP-8rXqjtbLxh_5GB1iQQBitMd-VgD8XzQrLqqH a6HcK1C41ZyA1Ot2_47vOKNrf_Mg6Ig8quYMpUypOdwFl9_Nb815TN-eSuDwQsSKn SnHDvTH8bSz9O0vHoiPexh2Weuf2N0KGZUlpC0OLy3oRb0d_aBOUdpnoIJ59Gc95H 7yTAnNPRuBnX0wDnvTFNkuN7ezKzfP2rNmfKPeoj0Xyf2FhGiSHgBJUuNpWwGJkz5 0tVX5nPl42Ow2ua9pLZqPg-GJQnmXwukVgV6w4dDoRsFVYbrRSdp-quU4pyNfj987 GWM","token_type":"bearer","expires_in":3600}"#;

    pub(super) const CONFIGAPI: &str = "{\n\"access_token\":\"eyJhbGciOiJSUzI1NiI5q9Jgt...6HznsvPWy7UP3MINA\",\n\"token_type\":\"Bearer\",\n\"expires_in\":\"3599\",\n}";

    const CONFIGAPI_TOKEN: &str = "eyJhbGciOiJSUzI1NiI5q9Jgt...6HznsvPWy7UP3MINA";

    pub(super) const SCOPED_SUCCESS: &str = "{\n  \"access_token\": \"string\",\n  \"expires_in\": 0,\n  \"scope\": \"string\",\n  \"token_type\": \"bearer\"\n}";

    /// The scoped vendor documents the same example body for 400 and 403.
    pub(super) const SCOPED_ERROR: &str = "{\n  \"meta\": {\n    \"pagination\": {\n      \"limit\": 0,\n      \"offset\": 0,\n      \"total_count\": 0\n    }\n  },\n  \"errors\": [\n    {\n      \"httpcode\": 0,\n      \"message\": \"string\"\n    }\n  ]\n}";

    const DEYEL_JWT: &str = "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJpc3MiOiJEZXllbCIsImV4cCI6MTY1NDI2MTQ5MCwiY2RPcmdVbml0IjoiMDAwMDAwMDAwMSIsImdyYW50X3R5cGUiOiJjbGllbnRfY3JlZGVudGlhbHMiLCJwZXJtaXNzaW9ucyI6IntcImR0VmFsaWRpdHlcIjpcIkp1biAyLCAyMDIyLCAxMDowNDo1MCBBTVwiLFwibHNQZXJtaXNzaW9uc1wiOlt7XCJpZEFwcGxpY2F0aW9uXCI6XCJERVlFTFwiLFwiY2RQZXJtaXNzaW9uXCI6XCJVU1VBUklPRklOQUxcIn1dfSIsImNvbXBhbnkiOiJDU1QiLCJudVNlY0hpZGRlbiI6IjIwMjIwNjAyMTAwNDUwLjg2NjAuODA1Mjc1NzQ3NDc1NzUxOSIsImlkRGF0YUJhc2VTZXNzaW9uIjoiREVZRUxCT1QqMjAyMjA2MDIxMDA0NTAuODY2MC44MDUyNzU3NDc0NzU3NTE5IiwianRpIjoieDN1UnhXM09xbVZvMlBWdmsxWGZmdyIsImlhdCI6MTY1NDE3NTA5MCwic3ViIjoiREVZRUxCT1QifQ.M8EHKFhMwJQsdJbg4VQkPcvlJxoRyG-XO6h4eVWyMtkyvcCxN658hCqg8luu2yM5rEVMpUqOhNWKAoJdcvOvCMpAi21oYttkVlQxSdENUVNu4fmhDavQshstzvqGrY3qu9gaxdCfcLjwf62bEf9227TpvDGbZyFP8jYLbA81gwo1y6Q2NOaIE_yrChMB4LRm-bhEx5epdL1lMsE3JuwjMQ0tN2j-EehA1dDPB3AY8461wTGOPULF66B81iGmnOvexvoeS0vZQU3cMXwpxy-yQ8ulJRIdj-BprxmkFWkc3_MyD7SgkyqQwVSjiXDgfbJoFkCTPYHprZVDE362yBYW";

    /// The `exp` claim of [`DEYEL_JWT`].
    const DEYEL_EXP: u64 = 1_654_261_490;

    /// Deyel's success body exactly as documented: the `:` after
    /// `"access_token"` is missing on the page.
    pub(super) fn deyel_success_verbatim() -> String {
        format!(
            "{{\n\n                                                                                         \"access_token\"\"{DEYEL_JWT}\",\n\n    \"token_type\": \"Bearer\",\n\n    \"expires_in\": 86400\n\n}}"
        )
    }

    /// Deyel's success body as the server sends it (with the `:`).
    pub(super) fn deyel_success() -> String {
        deyel_success_verbatim().replacen("\"access_token\"\"", "\"access_token\": \"", 1)
    }

    pub(super) const DEYEL_ERROR: &str = "{\n\n    \"error_description\": \"Invalid client_id\",\n\n    \"error\": \"Invalid_request\"\n\n}";

    // ---- success: one line per case ----

    /// What a parsed token should look like.
    struct Want<'a> {
        token: &'a str,
        token_type: TokenType,
        expires_in: Option<u64>,
        scope: Option<&'a str>,
    }

    fn want(token: &str, expires_in: Option<u64>) -> Want<'_> {
        Want { token, token_type: TokenType::Bearer, expires_in, scope: None }
    }

    #[track_caller]
    fn check_ok(status: u16, content_type: Option<&str>, body: &str, want: &Want<'_>) {
        let token = ok(status, content_type, body);
        assert_eq!(token.secret().expose_secret(), want.token, "token of {body:?}");
        assert_eq!(token.token_type(), &want.token_type, "token_type of {body:?}");
        assert_eq!(
            token.expires_at(),
            want.expires_in.map(|s| now() + Duration::from_secs(s)),
            "expires_at of {body:?}"
        );
        assert_eq!(token.scope().map(Scope::as_str), want.scope, "scope of {body:?}");
        assert_eq!(token.received_at(), now());
    }

    #[test]
    fn seed_success_bodies() {
        let soti_token = &SOTI[17..SOTI.find("\",\"token_type").unwrap()];
        assert!(soti_token.starts_with("AAEAAK0") && soti_token.contains(' '));
        check_ok(200, Some("application/json"), SOTI, &want(soti_token, Some(3600)));
        check_ok(200, Some("application/json"), CONFIGAPI, &want(CONFIGAPI_TOKEN, Some(3599)));
        check_ok(
            200,
            Some("application/json"),
            SCOPED_SUCCESS,
            // `"expires_in": 0` reads as "not said" (golang/oauth2 does the same).
            &Want { scope: Some("string"), ..want("string", None) },
        );
        check_ok(200, Some("application/json"), &deyel_success(), &want(DEYEL_JWT, Some(86400)));
        check_ok(200, None, &deyel_success_verbatim(), &want(DEYEL_JWT, Some(86400)));
    }

    #[test]
    fn content_types_and_encodings() {
        let body = r#"{"access_token":"abc","expires_in":60}"#;
        let abc = want("abc", Some(60));
        check_ok(200, Some("application/json"), body, &abc);
        check_ok(200, Some("application/json; charset=utf-8"), body, &abc);
        check_ok(200, Some("text/plain"), body, &abc);
        check_ok(200, Some("text/html"), body, &abc);
        check_ok(200, None, body, &abc);
        check_ok(200, Some("application/octet-stream"), body, &abc);
        check_ok(200, Some("text/plain"), CONFIGAPI, &want(CONFIGAPI_TOKEN, Some(3599)));
        check_ok(200, None, &format!("\u{feff}  \r\n{body}\n\n"), &abc);
        check_ok(200, Some("application/json"), &format!("{body} trailing garbage"), &abc);
        check_ok(
            200,
            None,
            r#"{"access_token":"abc","expires_in":60,,}"#.replace(",,", ",").as_str(),
            &abc,
        );
        check_ok(200, None, "{\"access_token\":\"abc\",\"x\":[1,2,],\"expires_in\":60 , }", &abc);
        let form = "access_token=abc&token_type=bearer&expires_in=60";
        check_ok(200, Some("application/x-www-form-urlencoded"), form, &abc);
        check_ok(200, Some("application/x-www-form-urlencoded; charset=utf-8"), form, &abc);
        check_ok(200, Some("text/plain"), form, &abc);
        check_ok(200, Some("application/json"), form, &abc);
        check_ok(200, None, form, &abc);
        check_ok(
            200,
            None,
            "access_token=a%2Bb+c&expires_in=60&access_token=second",
            &want("a+b c", Some(60)),
        );
        check_ok(
            200,
            Some("application/x-www-form-urlencoded"),
            "access_token=abc&scope=read+write&token_type=mac",
            &Want {
                token_type: TokenType::Other("mac".into()),
                scope: Some("read write"),
                ..want("abc", None)
            },
        );
    }

    #[test]
    fn any_2xx_is_success() {
        for status in [200, 201, 202, 203, 204, 299] {
            check_ok(status, None, r#"{"access_token":"abc"}"#, &want("abc", None));
        }
    }

    #[test]
    fn token_types() {
        #[track_caller]
        fn check(field: &str, expected: &TokenType) {
            let body = format!(r#"{{"access_token":"abc"{field}}}"#);
            assert_eq!(ok(200, None, &body).token_type(), expected, "{body}");
        }
        check("", &TokenType::Bearer);
        check(r#","token_type":null"#, &TokenType::Bearer);
        check(r#","token_type":"""#, &TokenType::Bearer);
        check(r#","token_type":"bearer""#, &TokenType::Bearer);
        check(r#","token_type":"BEARER""#, &TokenType::Bearer);
        check(r#","token_type":"BeArEr""#, &TokenType::Bearer);
        check(r#","token_type":"Bearer""#, &TokenType::Bearer);
        check(r#","token_type":"N_A""#, &TokenType::Other("N_A".into()));
        check(r#","token_type":42"#, &TokenType::Bearer);
    }

    #[test]
    fn expires_in_shapes() {
        /// `expires_in` as written in JSON, and the expected lifetime in seconds.
        #[track_caller]
        fn check(token: &str, expires_in: &str, expected: Option<SystemTime>) {
            let field = if expires_in.is_empty() {
                String::new()
            } else {
                format!(r#","expires_in":{expires_in}"#)
            };
            let body = format!(r#"{{"access_token":"{token}"{field}}}"#);
            assert_eq!(ok(200, None, &body).expires_at(), expected, "{body}");
        }
        let after = |s: u64| Some(now() + Duration::from_secs(s));
        let max = Some(now() + MAX_EXPIRES_IN);
        check("abc", "3600", after(3600));
        check("abc", r#""3599""#, after(3599));
        check("abc", r#"" 3599 ""#, after(3599));
        check("abc", "3599.0", after(3599));
        check("abc", r#""3599.0""#, after(3599));
        check("abc", "3599.75", Some(now() + Duration::from_millis(3_599_750)));
        check("abc", "0", None);
        check("abc", r#""0""#, None);
        check("abc", "1e3", after(1000));
        check("abc", "2147483647", max);
        check("abc", "2147483648", max);
        check("abc", "18446744073709551615", max);
        check("abc", "1e300", max);
        check("abc", r#""99999999999999999999999999999999999999999999""#, max);
        check("abc", r#""1e999""#, None);
        check("abc", "-1", None);
        check("abc", r#""-3600""#, None);
        check("abc", "-0.5", None);
        check("abc", "null", None);
        check("abc", "true", None);
        check("abc", r#""soon""#, None);
        check("abc", r#""""#, None);
        check("abc", "[3600]", None);
        check("abc", "", None);
        check("abc", "1", after(1));
        check(DEYEL_JWT, "86400", after(86400));
    }

    /// The Deyel token received at `received` with an `expires_in` field
    /// as written in JSON (empty: none).
    fn deyel_at(received: SystemTime, expires_in: &str) -> Result<AccessToken, TokenError> {
        let field = if expires_in.is_empty() {
            String::new()
        } else {
            format!(r#","expires_in":{expires_in}"#)
        };
        let body = format!(r#"{{"access_token":"{DEYEL_JWT}"{field}}}"#);
        parse_response("p", &RawResponse::new(200, None, body.as_bytes()), received)
    }

    #[test]
    fn jwt_exp_is_used_without_expires_in() {
        // Received an hour after the token was issued, a day before its `exp`.
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(DEYEL_EXP - 82_800);
        let jwt_exp = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(DEYEL_EXP));
        // Absent, zero, negative or unusable: the JWT's `exp`.
        for expires_in in ["", "0", "-1", r#""n/a""#] {
            let token = deyel_at(received, expires_in).unwrap();
            assert_eq!(token.expires_at(), jwt_exp, "expires_in {expires_in:?}");
        }
    }

    #[test]
    fn a_token_expired_on_arrival_is_an_invalid_response() {
        #[track_caller]
        fn expired(result: Result<AccessToken, TokenError>, reason_has: &str) {
            match result {
                Err(TokenError::InvalidResponse { status: 200, reason, .. }) => {
                    assert!(reason.contains(reason_has), "{reason}");
                    assert!(reason.contains("expire on arrival"), "{reason}");
                }
                other => panic!("expected an expired-on-arrival error, got {other:?}"),
            }
        }
        // A JWT `exp` behind the local clock, or less than a second ahead.
        let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(DEYEL_EXP);
        expired(
            deyel_at(now(), ""),
            "JWT exp (2022-06-03T13:04:50Z) is less than 1s after the local clock (2023-11-14T22:13:20Z)",
        );
        expired(deyel_at(exp, ""), "JWT exp");
        expired(deyel_at(exp - Duration::from_millis(999), "-1"), "JWT exp");
        assert!(deyel_at(exp - Duration::from_secs(1), "").is_ok());
        // An `expires_in` under one second (0 reads as absent).
        for expires_in in ["0.5", r#""0.999""#, "0.001"] {
            let body = format!(r#"{{"access_token":"abc","expires_in":{expires_in}}}"#);
            expired(parse(200, None, &body), "under 1s");
        }
        // The error never shows the token.
        let err = deyel_at(now(), "").unwrap_err();
        assert!(!format!("{err} {err:?}").contains(&DEYEL_JWT[40..80]), "{err:?}");
    }

    #[test]
    fn jwt_exp_claims() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        #[track_caller]
        fn check(token: &str, expected: Option<u64>) {
            assert_eq!(jwt_expiry(token), expected.map(Duration::from_secs), "{token}");
        }
        let jwt = |payload: &str, engine: &GeneralPurpose| {
            format!("eyJhbGciOiJub25lIn0.{}.sig", engine.encode(payload))
        };
        check(DEYEL_JWT, Some(DEYEL_EXP));
        // `{"exp":1700003600}` has a payload needing padding.
        let payload = r#"{"exp":1700003600,"s":"??>"}"#;
        check(&jwt(payload, &URL_SAFE_NO_PAD), Some(1_700_003_600));
        check(&jwt(payload, &URL_SAFE), Some(1_700_003_600));
        check(&jwt(payload, &STANDARD), Some(1_700_003_600));
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1700003600.5}"#, &URL_SAFE_NO_PAD)),
            Some(Duration::from_millis(1_700_003_600_500))
        );
        check(&jwt(r#"{"exp":-5}"#, &URL_SAFE_NO_PAD), None);
        check(&jwt(r#"{"exp":"soon"}"#, &URL_SAFE_NO_PAD), None);
        check(&jwt(r#"{"iat":1}"#, &URL_SAFE_NO_PAD), None);
        check(&jwt("[1]", &URL_SAFE_NO_PAD), None);
        check("abc", None);
        check("a.b", None);
        check("a.!!!.c", None);
        check("a.b.c.d.e", None);
        check("", None);
        // A far-future `exp` is clamped like `expires_in`, even one beyond
        // what a `SystemTime` holds (a larger `exp` never means a shorter
        // lifetime).
        for exp in ["99999999999", "9223372036854775808", "18446744073709551615", r#""1e30""#] {
            let far = jwt(&format!(r#"{{"exp":{exp}}}"#), &URL_SAFE_NO_PAD);
            let body = format!(r#"{{"access_token":"{far}"}}"#);
            assert_eq!(ok(200, None, &body).expires_at(), Some(now() + MAX_EXPIRES_IN), "{exp}");
        }
    }

    #[test]
    fn scopes_and_secondary_tokens() {
        let body =
            r#"{"access_token":"a","refresh_token":"r","id_token":"i","scope":"read  write read"}"#;
        let token = ok(200, None, body);
        assert_eq!(token.refresh_token().map(ExposeSecret::expose_secret), Some("r"));
        assert_eq!(token.id_token().map(ExposeSecret::expose_secret), Some("i"));
        let scope = token.scope().unwrap();
        assert_eq!(scope.as_str(), "read  write read");
        assert_eq!(scope.iter().collect::<Vec<_>>(), ["read", "write"]);

        let token = ok(
            200,
            None,
            r#"{"access_token":"a","refresh_token":"","id_token":7,"scope":["a","b"]}"#,
        );
        assert!(token.refresh_token().is_none() && token.id_token().is_none());
        assert_eq!(token.scope().map(Scope::as_str), Some("a b"));
        assert!(ok(200, None, r#"{"access_token":"a","scope":""}"#).scope().is_none());
        assert!(ok(200, None, r#"{"access_token":"a","scope":null}"#).scope().is_none());
    }

    // ---- errors: one line per case ----

    /// The expected error: its kind, status, code, description and a part of
    /// its body snippet.
    const JSON: Option<&str> = Some("application/json");
    const HTML: Option<&str> = Some("text/html; charset=utf-8");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Rejected,
        Server,
        Invalid,
        Endpoint,
    }
    use Kind::{Endpoint, Invalid, Rejected, Server};

    #[track_caller]
    fn check_err(
        status: u16,
        content_type: Option<&str>,
        body: &str,
        kind: Kind,
        code: Option<&str>,
        description: Option<&str>,
    ) -> TokenError {
        let e = err(status, content_type, body);
        let actual = match &e {
            TokenError::Rejected { .. } => Rejected,
            TokenError::Server { .. } => Server,
            TokenError::InvalidResponse { .. } => Invalid,
            TokenError::Endpoint { .. } => Endpoint,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(actual, kind, "{body:?}: {e}");
        assert_eq!(e.status(), Some(status), "{body:?}");
        assert_eq!(e.provider(), Some("p"));
        assert_eq!(e.detail().and_then(|d| d.code.as_deref()), code, "code of {body:?}");
        assert_eq!(
            e.detail().and_then(|d| d.description.as_deref()),
            description,
            "description of {body:?}"
        );
        let shown = e.to_string();
        assert!(!shown.contains('\n') && shown.starts_with("provider \"p\": "), "{shown}");
        e
    }

    #[test]
    fn seed_error_bodies() {
        check_err(
            400,
            JSON,
            DEYEL_ERROR,
            Rejected,
            Some("invalid_request"),
            Some("Invalid client_id"),
        );
        check_err(
            401,
            JSON,
            DEYEL_ERROR,
            Rejected,
            Some("invalid_request"),
            Some("Invalid client_id"),
        );
        check_err(400, JSON, SCOPED_ERROR, Rejected, None, Some("string"));
        check_err(403, JSON, SCOPED_ERROR, Rejected, None, Some("string"));
        let e = check_err(
            200,
            JSON,
            DEYEL_ERROR,
            Rejected,
            Some("invalid_request"),
            Some("Invalid client_id"),
        );
        assert_eq!(
            e.to_string(),
            "provider \"p\": token endpoint refused the request (HTTP 200): invalid_request: Invalid client_id"
        );
        let e = check_err(403, JSON, SCOPED_ERROR, Rejected, None, Some("string"));
        assert_eq!(
            e.to_string(),
            "provider \"p\": token endpoint refused the request (HTTP 403): string"
        );
        assert!(
            e.body().unwrap().as_str().contains(r#""errors":[{"httpcode":0,"message":"string"}]"#)
        );
    }

    #[test]
    fn error_shapes() {
        // RFC 6749 §5.2
        check_err(400, JSON, r#"{"error":"invalid_grant"}"#, Rejected, Some("invalid_grant"), None);
        check_err(
            400,
            JSON,
            r#"{"error":"INVALID_CLIENT","error_description":"bad\nsecret"}"#,
            Rejected,
            Some("invalid_client"),
            Some("bad secret"),
        );
        check_err(
            401,
            Some("text/plain"),
            r#"{"error":"invalid_client",}"#,
            Rejected,
            Some("invalid_client"),
            None,
        );
        check_err(
            400,
            FORM,
            "error=invalid_scope&error_description=no+such+scope",
            Rejected,
            Some("invalid_scope"),
            Some("no such scope"),
        );
        check_err(400, None, "error=invalid_scope", Rejected, Some("invalid_scope"), None);
        let e = check_err(
            400,
            JSON,
            r#"{"error":"invalid_grant","error_uri":"https://x/e"}"#,
            Rejected,
            Some("invalid_grant"),
            None,
        );
        assert_eq!(e.detail().unwrap().uri.as_deref(), Some("https://x/e"));
    }

    #[test]
    fn other_error_body_shapes() {
        // `error` as an object, and description-only bodies
        check_err(
            401,
            JSON,
            r#"{"error":{"code":"InvalidAuth","message":"no"}}"#,
            Rejected,
            Some("invalidauth"),
            Some("no"),
        );
        check_err(401, JSON, r#"{"message":"Unauthorized"}"#, Rejected, None, Some("Unauthorized"));
        check_err(
            400,
            JSON,
            r#"{"type":"about:blank","title":"Bad","detail":"Missing grant"}"#,
            Rejected,
            None,
            Some("Missing grant"),
        );
        check_err(
            400,
            JSON,
            r#"{"errors":[{"httpcode":400,"message":"a"},{"message":"b"},"c"]}"#,
            Rejected,
            None,
            Some("a; b; c"),
        );
        check_err(400, JSON, r#"{"errors":[]}"#, Endpoint, None, None);
    }

    #[test]
    fn error_bodies_without_detail() {
        // no detail: the snippet tells
        let e = check_err(
            401,
            HTML,
            "<html>\n<body><h1>401 Unauthorized</h1></body>\n</html>",
            Rejected,
            None,
            None,
        );
        assert_eq!(
            e.body().unwrap().as_str(),
            "<html> <body><h1>401 Unauthorized</h1></body> </html>"
        );
        assert!(
            e.to_string()
                .ends_with("; body: <html> <body><h1>401 Unauthorized</h1></body> </html>")
        );
        let e = check_err(404, None, "", Endpoint, None, None);
        assert!(e.to_string().ends_with("; body: (empty body)"), "{e}");
        check_err(429, Some("text/plain"), "slow down", Rejected, None, None);
        check_err(400, JSON, r#"{"error":null}"#, Endpoint, None, None);
        check_err(400, JSON, "[1,2]", Endpoint, None, None);
        check_err(400, JSON, "{not json", Endpoint, None, None);
    }

    /// A 4xx the vendor does not explain says the URL (or method) is wrong,
    /// not the credentials: its own error, naming `token_url` (CLI exit 4).
    /// 401 (the credentials), 408 and 429 (try later) explain themselves;
    /// 404, 405 and 410 count as explained only with an OAuth error code.
    #[test]
    fn unexplained_4xx_point_at_the_endpoint() {
        let text = Some("text/plain; charset=utf-8");
        let e = check_err(404, text, "Not Found\n", Endpoint, None, None);
        assert_eq!(
            e.to_string(),
            "provider \"p\": the token endpoint answered HTTP 404 with no OAuth or vendor error: \
             check token_url; body: Not Found"
        );
        assert!(!e.is_retryable() && !e.is_rejected(), "{e}");
        check_err(405, None, "", Endpoint, None, None);
        check_err(410, HTML, "<html><body>Gone</body></html>", Endpoint, None, None);
        check_err(400, HTML, "<html><body>Bad Request</body></html>", Endpoint, None, None);
        check_err(403, HTML, "<html><body>Forbidden</body></html>", Endpoint, None, None);
        check_err(415, text, "Unsupported Media Type", Endpoint, None, None);
        // Spring Boot's and ASP.NET's default 404 bodies are no OAuth errors.
        let spring = r#"{"timestamp":"2026-01-01T00:00:00Z","status":404,"error":"Not Found","path":"/oauth/tokn"}"#;
        check_err(404, JSON, spring, Endpoint, None, None);
        let problem = r#"{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.5","title":"Not Found","status":404}"#;
        check_err(404, JSON, problem, Endpoint, None, None);
        check_err(405, JSON, SCOPED_ERROR, Endpoint, None, None);
        // Explained: an OAuth error code (any status), a vendor error (not
        // with 404/405/410), or a status that explains itself.
        check_err(
            404,
            JSON,
            r#"{"error":"invalid_client"}"#,
            Rejected,
            Some("invalid_client"),
            None,
        );
        check_err(400, JSON, SCOPED_ERROR, Rejected, None, Some("string"));
        check_err(
            403,
            JSON,
            r#"{"message":"Client disabled"}"#,
            Rejected,
            None,
            Some("Client disabled"),
        );
        check_err(401, None, "", Rejected, None, None);
        check_err(401, HTML, "<html>401</html>", Rejected, None, None);
        let slow = check_err(429, None, "", Rejected, None, None);
        assert!(slow.is_retryable(), "{slow}");
        let timeout = check_err(408, HTML, "<html>Request Timeout</html>", Rejected, None, None);
        assert!(timeout.is_retryable(), "{timeout}");
    }

    #[test]
    fn server_errors() {
        // 5xx
        check_err(500, HTML, "<html><body>Internal Server Error</body></html>", Server, None, None);
        check_err(502, None, "", Server, None, None);
        check_err(
            503,
            JSON,
            r#"{"error":"temporarily_unavailable","error_description":"later"}"#,
            Server,
            Some("temporarily_unavailable"),
            Some("later"),
        );
        check_err(500, JSON, SCOPED_ERROR, Server, None, Some("string"));
    }

    #[test]
    fn a_2xx_carrying_an_error_is_a_rejection() {
        // 2xx carrying an error
        check_err(
            200,
            JSON,
            r#"{"error":"invalid_client","error_description":"nope"}"#,
            Rejected,
            Some("invalid_client"),
            Some("nope"),
        );
        check_err(
            200,
            JSON,
            r#"{"access_token":"abc","error":"Access_Denied"}"#,
            Rejected,
            Some("access_denied"),
            None,
        );
        check_err(
            200,
            FORM,
            "error=unauthorized_client",
            Rejected,
            Some("unauthorized_client"),
            None,
        );
        check_err(
            200,
            JSON,
            r#"{"errors":[{"httpcode":403,"message":"forbidden"}]}"#,
            Rejected,
            None,
            Some("forbidden"),
        );
        check_ok(
            200,
            JSON,
            r#"{"access_token":"abc","error":null,"errors":[]}"#,
            &want("abc", None),
        );
        check_ok(200, JSON, r#"{"access_token":"abc","error":""}"#, &want("abc", None));
    }

    #[test]
    fn a_2xx_without_a_token_is_invalid() {
        // 2xx that is no token response
        check_err(200, HTML, "<!DOCTYPE html><html><body>Login</body></html>", Invalid, None, None);
        check_err(200, None, "<html>Login</html>", Invalid, None, None);
        check_err(200, JSON, "", Invalid, None, None);
        check_err(200, None, " \r\n ", Invalid, None, None);
        check_err(200, JSON, "{}", Invalid, None, None);
        check_err(200, JSON, r#"{"token":"abc"}"#, Invalid, None, None);
        check_err(200, JSON, r#"{"access_token":""}"#, Invalid, None, None);
        check_err(200, JSON, r#"{"access_token":"  "}"#, Invalid, None, None);
        check_err(200, JSON, r#"{"access_token":null}"#, Invalid, None, None);
        check_err(200, JSON, r#"{"access_token":42}"#, Invalid, None, None);
        check_err(200, JSON, r#"{"access_token":{"v":"x"}}"#, Invalid, None, None);
        check_err(200, JSON, r#""abc""#, Invalid, None, None);
        check_err(200, JSON, "[]", Invalid, None, None);
        check_err(200, JSON, "null", Invalid, None, None);
        check_err(200, JSON, r#"{"access_token":"abc""#, Invalid, None, None);
        check_err(200, Some("text/plain"), "just text", Invalid, None, None);
        check_err(200, FORM, "", Invalid, None, None);
        check_err(200, FORM, "token_type=bearer", Invalid, None, None);
    }

    #[test]
    fn other_statuses_are_invalid() {
        // other statuses
        check_err(100, None, "", Invalid, None, None);
        check_err(304, None, "", Invalid, None, None);
        check_err(399, JSON, r#"{"access_token":"abc"}"#, Invalid, None, None);
        check_err(600, None, "", Invalid, None, None);
        check_err(0, None, "", Invalid, None, None);
    }

    #[test]
    fn invalid_response_reasons() {
        #[track_caller]
        fn check(status: u16, content_type: Option<&str>, body: &str, reason: &str) {
            match err(status, content_type, body) {
                TokenError::InvalidResponse { reason: actual, .. } => {
                    assert_eq!(actual, reason, "{body:?}");
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        let json = Some("application/json");
        check(200, json, "", "empty body, expected a token response");
        check(200, Some("text/html"), "<p>hi</p>", "an HTML page, not a token response");
        check(200, json, "{}", "no access_token in the response");
        check(200, json, r#"{"access_token":""}"#, "the access_token is empty");
        check(200, json, r#"{"access_token":[1]}"#, "the access_token is an array, not a string");
        check(200, json, "[]", "the JSON body is an array, not an object");
        check(200, json, "{\"a\":", "malformed JSON: EOF while parsing a value at line 1 column 5");
        check(
            200,
            Some("text/plain"),
            "hello",
            "unrecognised body (content type text/plain), expected JSON or a form",
        );
        check(200, None, "hello", "unrecognised body (content type none), expected JSON or a form");
        check(302, None, "", "unexpected HTTP status 302");
    }

    /// A token, refresh token or token type with a control character would
    /// add lines or terminal escapes to `$(tokensmith token x)`, a header or
    /// a stored file: an invalid response, which never shows the value.
    #[test]
    fn padded_tokens_lose_their_padding_on_every_path() {
        // The typed fast path, the tolerant path (a repeated member forces
        // it), a form, and a described shape: the same unpadded token.
        for body in [
            r#"{"access_token":"  abc ","refresh_token":" r1\u00a0"}"#,
            r#"{"access_token":"  abc ","refresh_token":" r1\u00a0","x":1,"x":2}"#,
        ] {
            let token = ok(200, JSON, body);
            assert_eq!(token.secret().expose_secret(), "abc", "{body}");
            assert_eq!(token.refresh_token().unwrap().expose_secret(), "r1", "{body}");
        }
        let form = ok(200, Some("application/x-www-form-urlencoded"), "access_token=+abc+");
        assert_eq!(form.secret().expose_secret(), "abc");
        let shape = ResponseShape::new("").unwrap();
        let raw = RawResponse::new(200, JSON, br#""$ ""#);
        let shaped = shape.parse("p", &raw, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(shaped.secret().expose_secret(), "$", "found by fuzzing (response_shape)");
        // Padding that is a control character is not padding: refused.
        assert!(err(200, JSON, r#"{"access_token":"abc\r"}"#).to_string().contains("control"));
    }

    #[test]
    fn control_characters_in_tokens_are_invalid() {
        #[track_caller]
        fn check(body: &str, reason: &str) {
            match err(200, JSON, body) {
                TokenError::InvalidResponse { reason: actual, body: snippet, .. } => {
                    assert_eq!(actual, reason, "{body:?}");
                    assert!(!snippet.as_str().contains("SECRET"), "{snippet:?}");
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        let access = "the access_token contains control characters";
        check(r#"{"access_token":"SECRET\nb"}"#, access);
        check(r#"{"access_token":"SECRET\u001b[2J"}"#, access);
        check(r#"{"access_token":"SECRET\r"}"#, access);
        check(r#"{"access_token":"SECRET\t1"}"#, access);
        check(r#"{"access_token":"SECRET\u0000"}"#, access);
        check(r#"{"access_token":"SECRET\u007f"}"#, access);
        check(r#"{"access_token":"SECRET\u009b31m"}"#, access);
        check("access_token=SECRET%0Ab&token_type=bearer", access);
        check(
            r#"{"access_token":"a","refresh_token":"SECRET\nb"}"#,
            "the refresh_token contains control characters",
        );
        check(
            r#"{"access_token":"a","token_type":"Bearer\r\nX-Evil: 1"}"#,
            "the token_type contains control characters",
        );
        // Spaces and non-ASCII stay tolerated (the SOTI seed token has spaces).
        ok(200, JSON, r#"{"access_token":"a b","token_type":"MAC"}"#);
        ok(200, JSON, r#"{"access_token":"é","refresh_token":"r r"}"#);
    }

    #[test]
    fn retry_after_is_kept() {
        #[track_caller]
        fn check(status: u16, expected: Option<Duration>) {
            let raw = RawResponse::new(status, None, b"{\"error\":\"slow_down\"}")
                .with_retry_after(Some(Duration::from_secs(7)));
            let e = parse_response("p", &raw, now()).unwrap_err();
            assert_eq!(e.retry_after(), expected, "{status}");
        }
        check(429, Some(Duration::from_secs(7)));
        check(503, Some(Duration::from_secs(7)));
        check(200, Some(Duration::from_secs(7)));
        check(302, None);
    }

    #[test]
    fn repairs() {
        #[track_caller]
        fn check(input: &str, expected: &str) {
            assert_eq!(repair_json(input), expected);
        }
        check(r#"{"a":1,}"#, r#"{"a":1}"#);
        check("{\"a\":[1,2,\n],\n}", "{\"a\":[1,2\n]\n}");
        check(r#"{"a""b"}"#, r#"{"a":"b"}"#);
        check(r#"{"a" 1,"b" {"c" [true]}}"#, r#"{"a" :1,"b" :{"c" :[true]}}"#);
        check(r#"{"a":"x,}\",]"}"#, r#"{"a":"x,}\",]"}"#);
        check(r#"["a" "b"]"#, r#"["a" "b"]"#);
        check(r#"{"ü":"é",}"#, r#"{"ü":"é"}"#);
        check(r#"{"a"#, r#"{"a"#);
    }

    #[test]
    fn error_snippets_never_hold_tokens() {
        #[track_caller]
        fn check(status: u16, content_type: Option<&str>, body: &str, snippet: &str) {
            let e = err(status, content_type, body);
            assert_eq!(e.body().map(BodySnippet::as_str), Some(snippet), "{body:?}");
            for shown in [format!("{e}"), format!("{e:?}"), format!("{e:#?}")] {
                assert!(!shown.contains("SECRET"), "{shown}");
            }
        }
        let json = Some("application/json");
        check(
            200,
            json,
            r#"{"access_token":"SECRET","error":"x"}"#,
            r#"{"access_token":"[REDACTED]","error":"x"}"#,
        );
        check(
            200,
            json,
            r#"{ "access_token" : "SE\"CRET" , "error" : "x" }"#,
            r#"{"access_token":"[REDACTED]","error":"x"}"#,
        );
        check(
            200,
            json,
            r#"{"access\u005ftoken":"SECRET","error":"x"}"#,
            r#"{"access_token":"[REDACTED]","error":"x"}"#,
        );
        check(
            200,
            json,
            r#"{"Access_Token":"SECRET","error":"x"}"#,
            r#"{"Access_Token":"[REDACTED]","error":"x"}"#,
        );
        check(
            200,
            json,
            r#"{"access_token":["SECRET","SECRET2"]}"#,
            r#"{"access_token":"[REDACTED]"}"#,
        );
        check(
            200,
            json,
            r#"{"refresh_token":"SECRET","id_token":"SECRET2"}"#,
            r#"{"id_token":"[REDACTED]","refresh_token":"[REDACTED]"}"#,
        );
        check(
            200,
            json,
            r#"{"access_token":"SECRET","error":"x","error_description":"token SECRET is bad"}"#,
            r#"{"access_token":"[REDACTED]","error":"x","error_description":"token [REDACTED] is bad"}"#,
        );
        check(
            200,
            json,
            r#"{"data":{"access_token":"SECRET"},"note":"SECRET"}"#,
            r#"{"data":{"access_token":"[REDACTED]"},"note":"[REDACTED]"}"#,
        );
        check(
            200,
            json,
            r#"{"access_token":"SECRET","error":"x",,"#,
            r#"{"access_token":"[REDACTED]","error":"x",,"#,
        );
        check(
            200,
            Some("application/x-www-form-urlencoded"),
            "access_token=SECRET&error=x",
            "access_token=[REDACTED]&error=x",
        );
        check(200, None, "access%5Ftoken=SECRET&error=x", "access_token=[REDACTED]&error=x");
        check(200, None, "ACCESS_TOKEN=SECRET&error=x", "ACCESS_TOKEN=[REDACTED]&error=x");
        check(
            400,
            Some("text/plain"),
            "bad access_token: SECRET given",
            "bad access_token: [REDACTED] given",
        );
        check(
            400,
            json,
            r#"{"error":"x","echo":"{\"access_token\":\"SE\\\"CRET\"}"}"#,
            r#"{"echo":"{\"access_token\":\"[REDACTED]\"}","error":"x"}"#,
        );
        check(
            500,
            Some("text/plain"),
            r#"{"echo":"{\"access_token\":\"SE\\\"CRET\"}", broken"#,
            r#"{"echo":"{\"access_token\":\"[REDACTED]\"}", broken"#,
        );
        check(
            500,
            Some("text/html"),
            "<pre>access_token => \"SECRET\"</pre>",
            "<pre>access_token => \"[REDACTED]\"</pre>",
        );
    }

    #[test]
    fn echoed_tokens_are_scrubbed_before_text_is_made_one_line() {
        let body =
            r#"{"access_token":"Zq9  =a=0","error":"a","error_description":"got Zq9  =a=0!"}"#;
        assert_eq!(
            err(200, None, body).to_string(),
            "provider \"p\": token endpoint refused the request (HTTP 200): a: got [REDACTED]!"
        );
    }

    /// Scrubbing every token value from every string costs values × body:
    /// a body with thousands of token values (no token response has more
    /// than a few) is withheld from the error instead, and nothing leaks.
    #[test]
    fn a_body_with_too_many_token_values_is_withheld() {
        let values: Vec<String> = (0..2000).map(|i| format!("{MARK}-{i:04}")).collect();
        let note = format!("{} {}", values[7], "y".repeat(50_000));
        let mut map = Map::new();
        map.insert("access_token".into(), Value::from(values.clone()));
        map.insert("note".into(), Value::String(note.clone()));
        let json = Value::Object(map.clone()).to_string();
        map.insert("error".into(), Value::String(format!("bad {}", values[3])));
        let json_error = Value::Object(map).to_string();
        for (status, body) in [(400, &json), (500, &json), (200, &json), (200, &json_error)] {
            let e = err(status, Some("application/json"), body);
            assert_eq!(e.body().map(BodySnippet::as_str), Some(WITHHELD), "{status}");
            for shown in [format!("{e}"), format!("{e:?}")] {
                assert!(!shown.contains(MARK), "{shown}");
            }
        }
        assert!(matches!(err(200, None, &json_error), TokenError::Rejected { .. }));
        assert_eq!(error_detail_from_body(None, json_error.as_bytes()), None);
        // A few token values are still scrubbed, not withheld.
        let few = format!(
            r#"{{"access_token":["{MARK}1","{MARK}2"],"error":"x","error_description":"{MARK}2"}}"#
        );
        assert_eq!(
            err(400, None, &few).to_string(),
            r#"provider "p": token endpoint refused the request (HTTP 400): x: [REDACTED]"#
        );
    }

    #[test]
    fn long_error_text_is_bounded() {
        let description = "x".repeat(5000);
        let body =
            format!(r#"{{"error":"{}","error_description":"{description}"}}"#, "E".repeat(500));
        let e = err(400, None, &body);
        let detail = e.detail().unwrap();
        assert_eq!(detail.code.as_ref().unwrap().chars().count(), ErrorDetail::MAX_CODE_CHARS + 1);
        assert_eq!(
            detail.description.as_ref().unwrap().chars().count(),
            ErrorDetail::MAX_DESCRIPTION_CHARS + 1
        );
        assert!(e.body().unwrap().as_str().chars().count() <= BodySnippet::MAX_CHARS + 1);
    }

    #[test]
    fn public_error_detail_helper() {
        #[track_caller]
        fn check(
            content_type: Option<&str>,
            body: &str,
            expected: Option<(Option<&str>, Option<&str>)>,
        ) {
            let detail = error_detail_from_body(content_type, body.as_bytes());
            assert_eq!(
                detail.as_ref().map(|d| (d.code.as_deref(), d.description.as_deref())),
                expected,
                "{body:?}"
            );
        }
        check(None, DEYEL_ERROR, Some((Some("invalid_request"), Some("Invalid client_id"))));
        check(None, SCOPED_ERROR, Some((None, Some("string"))));
        check(Some("text/html"), "<html></html>", None);
        check(None, "", None);
        check(None, "{}", None);
    }

    /// A prefix no generated filler produces, so a hit is a real leak.
    const MARK: &str = "Zq9";

    proptest! {
        #[test]
        fn never_panics(
            status in any::<u16>(),
            content_type in proptest::option::of(prop_oneof![
                Just("application/json".to_owned()),
                Just("text/plain".to_owned()),
                Just("text/html".to_owned()),
                Just("application/x-www-form-urlencoded".to_owned()),
                ".{0,40}",
            ]),
            body in proptest::collection::vec(any::<u8>(), 0..512),
            retry in proptest::option::of(0u64..100_000),
        ) {
            let raw = RawResponse::new(status, content_type.as_deref(), &body)
                .with_retry_after(retry.map(Duration::from_secs));
            let result = parse_response("p", &raw, now());
            if let Err(e) = result {
                let shown = e.to_string();
                prop_assert!(!shown.contains('\n'));
            }
        }

        #[test]
        fn never_panics_on_json_like_text(
            status in prop_oneof![Just(200u16), Just(400u16), Just(500u16), any::<u16>()],
            body in r#"[{}\[\]",:= a-z0-9_.\\\-]{0,200}"#,
        ) {
            let _ = parse_response("p", &RawResponse::new(status, None, body.as_bytes()), now());
            let _ = BodySnippet::new(body.as_bytes());
        }

        /// Any number (huge, negative, fractional, an exponent, quoted or
        /// not) as `expires_in` or as a JWT's `exp`: no panic, and an expiry
        /// never beyond the clamp nor, from `expires_in`, before receipt.
        #[test]
        fn expiry_is_bounded(
            number in prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
                "-?[0-9]{1,40}(\\.[0-9]{1,5})?([eE][-+]?[0-9]{1,3})?",
            ],
            quoted in any::<bool>(),
            as_jwt in any::<bool>(),
        ) {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let value = if quoted { format!("\"{number}\"") } else { number.clone() };
            let usable = serde_json::from_str::<Value>(&value).is_ok()
                && number.parse::<f64>().is_ok_and(|f| {
                    // Zero (or a lifetime that rounds to it) reads as "not said".
                    f.is_finite() && if as_jwt { f >= 0.0 } else { f >= 1e-9 }
                });
            let body = if as_jwt {
                let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{value}}}"#));
                format!(r#"{{"access_token":"h.{payload}.s"}}"#)
            } else {
                format!(r#"{{"access_token":"abc","expires_in":{value}}}"#)
            };
            if let Ok(token) = parse(200, None, &body) {
                // A larger value never means a shorter lifetime (or none).
                prop_assert!(!usable || token.expires_at().is_some(), "{body}");
                if let Some(at) = token.expires_at() {
                    prop_assert!(at <= now() + MAX_EXPIRES_IN, "{body}: {at:?}");
                    prop_assert!(as_jwt || at >= now(), "{body}: {at:?}");
                }
            }
        }

        #[test]
        fn tokens_never_leak_into_errors(
            status in prop_oneof![200u16..300, 400u16..500, 500u16..600, 0u16..200],
            field in prop_oneof![Just("access_token"), Just("refresh_token"), Just("id_token"), Just("ACCESS_TOKEN")],
            secret in "[A-Za-z0-9+/=._~\\- ]{6,40}",
            echo in any::<bool>(),
            as_form in any::<bool>(),
            error in proptest::option::of("[a-z_]{1,20}"),
        ) {
            let secret = format!("{MARK}{secret}");
            let description = if echo { format!("got {secret}") } else { "bad".to_owned() };
            let body = if as_form {
                let mut s = form_urlencoded::Serializer::new(String::new());
                s.append_pair(field, &secret);
                if let Some(code) = &error {
                    s.append_pair("error", code);
                }
                s.append_pair("error_description", &description);
                s.finish()
            } else {
                let mut map = Map::new();
                map.insert(field.to_owned(), Value::String(secret.clone()));
                if let Some(code) = &error {
                    map.insert("error".into(), Value::String(code.clone()));
                }
                map.insert("error_description".into(), Value::String(description));
                Value::Object(map).to_string()
            };
            if let Err(e) = parse_response("p", &RawResponse::new(status, None, body.as_bytes()), now()) {
                for shown in [format!("{e}"), format!("{e:?}"), format!("{e:#?}")] {
                    prop_assert!(!shown.contains(MARK), "{shown}");
                }
            }
        }
    }
}

#[cfg(test)]
mod shaped_tests {
    use std::time::{Duration, SystemTime};

    use secrecy::ExposeSecret;

    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn shaped(shape: &ResponseShape, status: u16, body: &str) -> Result<AccessToken, TokenError> {
        let raw = RawResponse::new(status, Some("application/json"), body.as_bytes());
        parse_shaped("p", &raw, now(), shape, &|| Secrets::NONE)
    }

    #[test]
    fn a_json_string_body_with_an_equals_sign_is_json_not_a_form() {
        // Found by the `response_shape` fuzz target
        // (fuzz/artifacts/response_shape/): a whole-body token with base64
        // padding was read as a form, refused, and echoed in the error.
        let shape = ResponseShape::new("").unwrap();
        let token = shaped(&shape, 200, "\"dG9rZW4=\"").unwrap();
        assert_eq!(token.secret().expose_secret(), "dG9rZW4=");
    }

    #[track_caller]
    fn check_rfc3339(text: &str, expected: Option<(u64, u32)>) {
        let want = expected.map(|(s, n)| SystemTime::UNIX_EPOCH + Duration::new(s, n));
        assert_eq!(parse_rfc3339(text), want, "{text:?}");
    }

    #[test]
    fn rfc3339_with_and_without_fraction_and_offsets() {
        check_rfc3339("2023-11-14T22:13:20Z", Some((1_700_000_000, 0)));
        check_rfc3339("2023-11-14t22:13:20z", Some((1_700_000_000, 0)));
        check_rfc3339("2023-11-14 22:13:20Z", Some((1_700_000_000, 0)));
        check_rfc3339("2023-11-14T22:13:20.25Z", Some((1_700_000_000, 250_000_000)));
        check_rfc3339("2023-11-14T22:13:20.123456789123Z", Some((1_700_000_000, 123_456_789)));
        check_rfc3339("2023-11-15T00:13:20+02:00", Some((1_700_000_000, 0)));
        check_rfc3339("2023-11-14T21:13:20-01:00", Some((1_700_000_000, 0)));
        check_rfc3339("1970-01-01T00:00:00Z", Some((0, 0)));
        check_rfc3339("2024-02-29T00:00:00Z", Some((1_709_164_800, 0)));
        check_rfc3339("2023-02-29T00:00:00Z", None);
        check_rfc3339("2023-11-14T22:13:20", None);
        check_rfc3339("2023-11-14T22:13:20.Z", None);
        check_rfc3339("2023-11-14T25:13:20Z", None);
        check_rfc3339("2023-13-14T22:13:20Z", None);
        check_rfc3339("1969-12-31T23:59:59Z", None);
        check_rfc3339("2023-11-14T22:13:20+2:00", None);
        check_rfc3339("tomorrow", None);
    }

    #[test]
    fn absolute_times_in_each_format() {
        let check = |value: Value, format, secs: Option<u64>| {
            let want = secs.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
            assert_eq!(absolute_time(&value, format), want, "{value} {format:?}");
        };
        check(json!(1_700_000_000), TimeFormat::Auto, Some(1_700_000_000));
        check(json!(1_700_000_000_000_u64), TimeFormat::Auto, Some(1_700_000_000));
        check(json!("1700000000"), TimeFormat::Auto, Some(1_700_000_000));
        check(json!("2023-11-14T22:13:20Z"), TimeFormat::Auto, Some(1_700_000_000));
        check(json!(1_700_000_000), TimeFormat::UnixSeconds, Some(1_700_000_000));
        check(json!("1700000000000"), TimeFormat::UnixMillis, Some(1_700_000_000));
        check(json!(1_700_000_000), TimeFormat::Rfc3339, None);
        check(json!(-5), TimeFormat::Auto, None);
        check(json!(true), TimeFormat::Auto, None);
    }

    use serde_json::json;

    #[test]
    fn a_described_token_lifetime_and_parts() {
        let shape = ResponseShape::new("/data/jwt")
            .unwrap()
            .refresh_token("/data/renew")
            .unwrap()
            .scope("/data/scopes")
            .unwrap()
            .token_type("/data/kind")
            .unwrap()
            .expires_in("/data/ttl")
            .unwrap();
        let body =
            r#"{"data":{"jwt":"abc","renew":"r1","scopes":["a","b"],"kind":"bearer","ttl":"60"}}"#;
        let token = shaped(&shape, 200, body).unwrap();
        assert_eq!(token.secret().expose_secret(), "abc");
        assert_eq!(token.refresh_token().unwrap().expose_secret(), "r1");
        assert_eq!(token.scope().unwrap().as_str(), "a b");
        assert_eq!(token.expires_at(), Some(now() + Duration::from_mins(1)));
        let err = shaped(&shape, 200, r#"{"data":{"jwt":"abc","ttl":"soon"}}"#).unwrap_err();
        assert!(err.to_string().contains("not a number of seconds"), "{err}");
        let err = shaped(&shape, 200, r#"{"data":{"jwt":"a\nb"}}"#).unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
        let err = shaped(&shape, 200, r#"{"data":{}}"#).unwrap_err();
        assert!(err.to_string().contains("no token at \"/data/jwt\""), "{err}");
    }

    #[test]
    fn a_described_token_never_shows_in_an_error() {
        let shape = ResponseShape::new("/data/jwt").unwrap().expires_in("/data/ttl").unwrap();
        // Expired on arrival: the error keeps a snippet of the body.
        let body = r#"{"data":{"jwt":"SECRET-JWT-1","ttl":0.5},"echo":"was SECRET-JWT-1"}"#;
        let err = shaped(&shape, 200, body).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("expire on arrival"), "{shown}");
        assert!(!shown.contains("SECRET-JWT-1"), "{shown}");
        // An error body echoing a token under the described key.
        let err = shaped(&shape, 400, r#"{"message":"bad","jwt":"OTHER-JWT-2"}"#).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("OTHER-JWT-2"), "{shown}");
    }

    #[test]
    fn described_errors_in_error_bodies_and_in_a_2xx() {
        let shape = ResponseShape::new("/t")
            .unwrap()
            .error_code("/fault/code")
            .unwrap()
            .error_message("/fault/text")
            .unwrap();
        let err =
            shaped(&shape, 403, r#"{"fault":{"code":"E_AUTH","text":"locked"}}"#).unwrap_err();
        assert!(err.is_rejected(), "{err}");
        assert_eq!(err.oauth_error_code(), Some("e_auth"));
        assert_eq!(err.detail().unwrap().description.as_deref(), Some("locked"));
        let err = shaped(&shape, 200, r#"{"fault":{"code":42,"text":"no"}}"#).unwrap_err();
        assert!(err.is_rejected(), "{err}");
        assert_eq!(err.oauth_error_code(), Some("42"));
        let err = shaped(&shape, 503, r#"{"fault":{"text":"maintenance"}}"#).unwrap_err();
        assert!(matches!(err, TokenError::Server { .. }), "{err}");
        // The standard shapes still read when the described ones are absent.
        let err = shaped(&shape, 400, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(err.oauth_error_code(), Some("invalid_client"));
        let err = shaped(&shape, 404, "Not Found").unwrap_err();
        assert!(matches!(err, TokenError::Endpoint { .. }), "{err}");
    }

    #[test]
    fn an_absolute_expiry_expired_on_arrival_or_garbled_is_refused() {
        let shape = ResponseShape::new("/t").unwrap().expires_at("/exp", TimeFormat::Auto).unwrap();
        let err =
            shaped(&shape, 200, r#"{"t":"tok-123","exp":"2023-11-14T22:13:20Z"}"#).unwrap_err();
        assert!(err.to_string().contains("expire on arrival"), "{err}");
        let err = shaped(&shape, 200, r#"{"t":"tok-123","exp":"later"}"#).unwrap_err();
        assert!(err.to_string().contains("not a time"), "{err}");
        let token = shaped(&shape, 200, r#"{"t":"tok-123","exp":1700003600000}"#).unwrap();
        assert_eq!(token.expires_at(), Some(now() + Duration::from_hours(1)));
        let shape = ResponseShape::new("/t").unwrap().default_lifetime(Duration::from_secs(90));
        let token = shaped(&shape, 200, r#"{"t":"tok-123"}"#).unwrap();
        assert_eq!(token.expires_at(), Some(now() + Duration::from_secs(90)));
    }
}

#[cfg(test)]
mod fast_path_tests {
    //! The typed fast path against the tolerant parser: wherever the fast
    //! path answers, its token is the tolerant one; everywhere,
    //! `parse_response` answers what the tolerant parser alone answers.
    use std::time::{Duration, SystemTime};

    use base64::Engine as _;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    /// Everything a token shows, secrets included.
    fn describe(token: &AccessToken) -> String {
        let secret = |s: Option<&SecretString>| s.map(|s| s.expose_secret().to_owned());
        format!(
            "{token:?} {:?} {:?} {:?} {:?}",
            token.secret().expose_secret(),
            secret(token.refresh_token()),
            secret(token.id_token()),
            token.expires_in(now()),
        )
    }

    fn outcome(result: &Result<AccessToken, TokenError>) -> String {
        match result {
            Ok(token) => format!("ok {}", describe(token)),
            Err(e) => format!("err {e} {e:?}"),
        }
    }

    /// Whether the fast path answered; panics when it differs from the
    /// tolerant parser or `parse_response` does.
    fn same(status: u16, content_type: Option<&str>, body: &[u8]) -> bool {
        let raw = RawResponse::new(status, content_type, body);
        let at = Timestamp::from(now());
        let tolerant = tolerant("p", &raw, at, &|| Secrets::NONE);
        // Where the scan answers, serde reads the same members.
        if let Some(scanned) = FastToken::scan(body) {
            let read: FastToken<'_> = serde_json::from_slice(body).expect("serde reads it too");
            assert_eq!(scanned, read, "{:?}", String::from_utf8_lossy(body));
        }
        let fast = fast_token(&raw, at);
        if let Some(token) = &fast {
            assert_eq!(
                format!("ok {}", describe(token)),
                outcome(&tolerant),
                "fast path differs on {:?}",
                String::from_utf8_lossy(body)
            );
        }
        let whole = parse_response("p", &raw, now());
        assert_eq!(outcome(&whole), outcome(&tolerant), "{:?}", String::from_utf8_lossy(body));
        fast.is_some()
    }

    fn jwt(exp: u64) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"RS256"}"#),
            b64.encode(format!(r#"{{"sub":"s","exp":{exp}}}"#))
        )
    }

    #[track_caller]
    fn check(status: u16, content_type: Option<&str>, body: &str, fast: bool) {
        assert_eq!(same(status, content_type, body.as_bytes()), fast, "fast path on {body:?}");
    }

    #[test]
    fn the_fast_path_answers_as_the_tolerant_parser() {
        let json = Some("application/json");
        let t = |rest: &str| format!(r#"{{"access_token":"abc"{rest}}}"#);
        // Well-formed token responses: the fast path answers.
        check(
            200,
            json,
            r#"{"access_token":"bench-access-token","token_type":"Bearer","expires_in":3600,"scope":"read write"}"#,
            true,
        );
        check(200, json, &t(""), true);
        check(201, None, &t(""), true);
        check(200, Some("text/html"), &t(""), true);
        check(200, Some("text/plain"), &format!(" \r\n\t{}\n ", t("")), true);
        check(200, json, &t(r#","expires_in":"3599""#), true);
        check(200, json, &t(r#","expires_in":" 60 ""#), true);
        check(200, json, &t(r#","expires_in":0"#), true);
        check(200, json, &t(r#","expires_in":"0""#), true);
        check(200, json, &t(r#","expires_in":-5"#), true);
        check(200, json, &t(r#","expires_in":"-5""#), true);
        check(200, json, &t(r#","expires_in":null"#), true);
        check(200, json, &t(r#","expires_in":true"#), true);
        check(200, json, &t(r#","expires_in":{"a":1}"#), true);
        check(200, json, &t(r#","expires_in":"soon""#), true);
        check(200, json, &t(r#","expires_in":3600.7"#), true);
        check(200, json, &t(r#","expires_in":99999999999999"#), true);
        check(200, json, &t(r#","expires_in":1e300"#), true);
        check(200, json, &t(r#","expires_in":"1e300""#), true);
        check(200, json, &t(r#","expires_in":18446744073709551616"#), true);
        check(200, json, &t(r#","token_type":"mac""#), true);
        check(200, json, &t(r#","token_type":"BEARER""#), true);
        check(200, json, &t(r#","token_type":null"#), true);
        check(200, json, &t(r#","scope":"  ""#), true);
        check(200, json, &t(r#","scope":" a  b ""#), true);
        check(200, json, &t(r#","refresh_token":"","id_token":" ""#), true);
        check(200, json, &t(r#","refresh_token":"rt","id_token":"it""#), true);
        check(200, json, &t(r#","other":[1,{"x":[null,true,-1.5e3]}],"n":null"#), true);
        check(200, json, r#"{"access_token":"a\/b\u00e9\"c"}"#, true);
        check(200, json, r#"{"\u0061ccess_token":"abc","expires_\u0069n":60}"#, true);
        check(200, json, &format!(r#"{{"access_token":"{}"}}"#, jwt(1_700_003_600)), true);
        check(200, json, &format!(r#"{{"access_token":"{}","expires_in":60}}"#, jwt(1)), true);
        check(200, json, &format!(r#"{{"access_token":"{}"}}"#, jwt(u64::MAX)), true);
        // Anything else: the tolerant parser decides (and answers the same).
        check(200, json, &format!(r#"{{"access_token":"{}"}}"#, jwt(1_700_000_000)), false);
        check(200, json, &format!(r#"{{"access_token":"{}"}}"#, jwt(1)), false);
        check(200, json, &t(r#","expires_in":0.5"#), false);
        check(200, json, &t(r#","expires_in":"0.5""#), false);
        check(200, json, &t(r#","expires_in":1e400"#), false);
        check(200, json, &t(r#","other":1e400"#), false);
        check(200, json, &t(r#","other":"\ud800""#), false);
        check(200, json, &t(&format!(r#","deep":{}{}"#, "[".repeat(200), "]".repeat(200))), false);
        check(200, json, &t(&format!(r#","deep":{}{}"#, "[".repeat(100), "]".repeat(100))), true);
        check(200, json, &t(r#","access_token":"def""#), false);
        check(200, json, &t(r#","scope":"a","scope":"b""#), false);
        check(200, json, &t(r#","unknown":1,"unknown":2"#), true);
        check(200, json, &t(","), false);
        check(200, json, r#"{"access_token""abc"}"#, false);
        check(200, json, &format!("\u{feff}{}", t("")), false);
        check(200, json, &format!("{} trailing", t("")), false);
        check(200, json, &format!("{}{}", t(""), t("")), false);
        check(200, json, &format!("\u{a0}{}", t("")), false);
        check(200, json, &format!("\u{c}{}", t("")), false);
        check(200, json, r#"[{"access_token":"abc"}]"#, false);
        check(200, json, r#"["abc"]"#, false);
        check(200, json, r#"{"access_token":"   "}"#, false);
        check(200, json, r#"{"access_token":""}"#, false);
        check(200, json, r#"{"access_token":null}"#, false);
        check(200, json, r#"{"access_token":5}"#, false);
        check(200, json, r#"{"access_token":["abc"]}"#, false);
        check(200, json, r#"{"token_type":"Bearer"}"#, false);
        check(200, json, "{}", false);
        check(200, json, r#"{"access_token":"a\u0007b"}"#, false);
        check(200, json, r#"{"access_token":"a\nb"}"#, false);
        check(200, json, &t(r#","refresh_token":"r\u001b""#), false);
        check(200, json, &t(r#","token_type":"Bearer\r""#), false);
        check(200, json, &t(r#","token_type":5"#), false);
        check(200, json, &t(r#","scope":["a","b"]"#), false);
        check(200, json, &t(r#","scope":7"#), false);
        check(200, json, &t(r#","refresh_token":7"#), false);
        check(200, json, &t(r#","id_token":{}"#), false);
        check(200, json, &t(r#","error":"invalid_grant""#), false);
        check(200, json, &t(r#","error":"""#), false);
        check(200, json, &t(r#","error":null"#), false);
        check(200, json, &t(r#","errors":[]"#), false);
        check(200, json, &t(r#","errors":["no"]"#), false);
        check(
            200,
            Some("application/x-www-form-urlencoded"),
            "access_token=abc&expires_in=60",
            false,
        );
        check(200, None, "", false);
        check(200, None, "<html>{}</html>", false);
        for status in [100, 199, 300, 304, 400, 401, 404, 500, 503] {
            check(status, json, &t(""), false);
        }
        // Bytes that are not UTF-8, outside and inside a member the fast
        // path reads.
        assert!(!same(200, json, b"{\"access_token\":\"abc\",\"x\":\"\xff\"}"));
        assert!(!same(200, json, b"{\"access_token\":\"a\xffc\"}"));
        assert!(!same(200, json, b"{\"access_token\":\"abc\",\"\xff\":1}"));
    }

    #[test]
    fn the_seed_bodies_read_alike() {
        let json = Some("application/json");
        for (body, fast) in [
            (tests::SOTI.to_owned(), true),
            (tests::CONFIGAPI.to_owned(), false),
            (tests::SCOPED_SUCCESS.to_owned(), true),
            (tests::deyel_success(), true),
            (tests::deyel_success_verbatim(), false),
        ] {
            check(200, json, &body, fast);
        }
        for body in [tests::SCOPED_ERROR, tests::DEYEL_ERROR] {
            for status in [200, 400, 403] {
                check(status, json, body, false);
            }
        }
    }

    /// A member of a generated token response.
    fn member() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("access_token"),
            Just("token_type"),
            Just("expires_in"),
            Just("scope"),
            Just("refresh_token"),
            Just("id_token"),
            Just("error"),
            Just("errors"),
            Just("other"),
            Just("acce\\u0073s_token"),
        ];
        let value = prop_oneof![
            Just("\"abc\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"  \"".to_owned()),
            Just("\"Bearer\"".to_owned()),
            Just("\"a\\/b\\u00e9\"".to_owned()),
            Just("\"a\\u0000b\"".to_owned()),
            Just("\"a\\tb\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("[]".to_owned()),
            Just("[\"a\",\"b\"]".to_owned()),
            Just("{}".to_owned()),
            Just("{\"code\":\"x\"}".to_owned()),
            Just("1e400".to_owned()),
            Just(format!("\"{}\"", jwt(1_700_003_600))),
            Just(format!("\"{}\"", jwt(1_699_999_999))),
            any::<i64>().prop_map(|n| n.to_string()),
            (0u64..10_000).prop_map(|n| n.to_string()),
            (0u64..10_000).prop_map(|n| format!("\"{n}\"")),
            (-10.0f64..10_000.0).prop_map(|f| f.to_string()),
            "\"[ -~]{0,12}\"",
        ];
        (key, value, prop_oneof![Just(""), Just(" "), Just("\n")])
            .prop_map(|(k, v, ws)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
    }

    proptest! {
        #[test]
        fn generated_token_responses_read_alike(
            status in prop_oneof![Just(200u16), Just(201u16), Just(400u16), Just(500u16)],
            members in proptest::collection::vec(member(), 0..5),
            with_token in any::<bool>(),
            trailing_comma in proptest::bool::weighted(0.2),
            lead in prop_oneof![4 => Just(""), 2 => Just(" \n"), 1 => Just("\u{feff}")],
            tail in prop_oneof![4 => Just(""), 2 => Just("\n"), 1 => Just(" x"), 1 => Just("}")],
        ) {
            let comma = if trailing_comma { "," } else { "" };
            let mut members = members;
            if with_token {
                members.insert(0, "\"access_token\":\"abc\"".to_owned());
            }
            let body = format!("{lead}{{{}{comma}}}{tail}", members.join(","));
            same(status, Some("application/json"), body.as_bytes());
        }

        #[test]
        fn any_json_like_text_reads_alike(
            status in prop_oneof![Just(200u16), Just(400u16), any::<u16>()],
            body in r#"\{[{}\[\]",:= a-z0-9_.\\\-]{0,120}"#,
        ) {
            same(status, None, body.as_bytes());
        }
    }
}
