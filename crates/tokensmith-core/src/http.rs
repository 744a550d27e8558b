//! The one request helper every adapter calls: POST a form to the token
//! endpoint, safely.
//!
//! - client authentication in one of four [`ClientAuth`] styles;
//! - a whole-request timeout (connect, send, and the whole response body);
//! - the response body capped ([`DEFAULT_MAX_BODY_BYTES`], 1 MiB) while
//!   streaming: a larger body, announced by `Content-Length` or not, is
//!   refused as [`TokenError::InvalidResponse`] without being read to the end;
//! - redirects never followed, so credentials are never replayed to another
//!   host: a 3xx is a [`TransportErrorKind::Redirect`] error naming the target
//!   origin;
//! - `https` required, except for loopback hosts (`127.0.0.0/8`, `::1`,
//!   `localhost`) or with `allow_insecure_http`; URLs carrying credentials
//!   (`https://user:pass@host`) are refused;
//! - `User-Agent: tokensmith/<version>`, `Accept: application/json`,
//!   `Content-Type: application/x-www-form-urlencoded`, an optional extra CA
//!   bundle (`ca_file`, PEM) for a private PKI;
//! - proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`, …) are honoured,
//!   except for loopback hosts, which are always reached directly;
//! - one `reqwest::Client` per provider ([`TokenEndpoint`]), reused for every
//!   request so connections are kept alive;
//! - transport failures classified ([`TransportErrorKind`]), each a one-line
//!   message naming the provider, never a secret nor the URL's path or query;
//! - `Retry-After` read in both forms: delay-seconds (`Retry-After: 120`) and
//!   an HTTP-date, measured from the provider's injected clock when the
//!   response arrived;
//! - every error built from a response is scrubbed of the secrets the
//!   request sent (client secret, Basic credentials, secret form fields),
//!   an oversized body's snippet included, before any cut;
//! - the response handed to the one tolerant parser ([`crate::parse`]).
//!
//! [`fetch_json`] GETs a JSON document (OIDC discovery) under the same rules.
//!
//! A vendor that is not OAuth 2.0 at all (`kind = "custom"`) shapes the
//! request further, under the same rules: [`RequestMethod::Get`], a JSON
//! body ([`TokenRequest::json_body`], secrets put in with
//! [`TokenRequest::json_secret`]) or none ([`TokenRequest::no_body`]), query
//! parameters and extra headers (plain or secret), Basic credentials from any
//! two values ([`TokenRequest::basic_auth`]), and a response read through a
//! [`ResponseShape`](crate::ResponseShape) ([`TokenRequest::send_shaped`]).
//! Every secret it sends, wherever it goes, is scrubbed from errors, and the
//! names it is sent under are redacted like `client_secret` is.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use secrecy::zeroize::Zeroize as _;
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use url::form_urlencoded;

use crate::config::DEFAULT_TIMEOUT;
use crate::error::{BodySnippet, error_line};
use crate::parse::{RawResponse, ResponseShape, parse_sent, parse_shaped};
use crate::redact::{Secrets, Shape, redact};
use crate::{AccessToken, Clock, SharedClock, TokenError, TransportErrorKind};

/// The hop-by-hop headers (RFC 9110 §7.6.1), lowercase: the HTTP client
/// manages the connection and the framing with them, so no configured
/// header (a custom vendor's request headers, a token's presentation) may
/// be one. The one list tokensmith checks them against.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The largest `ca_file` read: 1 MiB (a FIFO or device is refused).
pub(crate) const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// The largest response body read, by default: 1 MiB.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `User-Agent` sent with every request.
pub(crate) const USER_AGENT: &str = concat!("tokensmith/", env!("CARGO_PKG_VERSION"));

/// The `Content-Type` of a form token request (the default).
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The `Content-Type` of a JSON token request ([`TokenRequest::json_body`]).
const JSON_CONTENT_TYPE: &str = "application/json";

/// The HTTP method of a token request: `POST` unless a vendor described in
/// config says otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum RequestMethod {
    /// `POST` (every OAuth 2.0 token request).
    #[default]
    Post,
    /// `GET`: the credentials go in the query or headers, there is no body.
    Get,
}

impl RequestMethod {
    /// `"POST"` or `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }
}

/// HTTP settings of one provider.
///
/// ```
/// use std::time::Duration;
/// use tokensmith_core::HttpSettings;
///
/// let mut settings = HttpSettings::default();
/// settings.timeout = Duration::from_secs(5);
/// assert_eq!(settings.max_body_bytes, 1024 * 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpSettings {
    /// Whole-request timeout (connect, send, receive the whole body); must
    /// not be zero.
    pub timeout: Duration,
    /// Allow plain `http://` to hosts other than loopback.
    pub allow_insecure_http: bool,
    /// Extra trusted CA certificates (PEM bundle), added to the built-in
    /// roots.
    pub ca_file: Option<PathBuf>,
    /// The largest response body accepted.
    pub max_body_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            allow_insecure_http: false,
            ca_file: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// How the client authenticates to the token endpoint.
///
/// Both Basic encodings exist on purpose: RFC 6749 §2.3.1 says to
/// form-urlencode the id and secret before Basic-encoding them, many servers
/// never decode them. Clients that switched between the two broke real users,
/// so each provider picks one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the id and secret each form-urlencoded first
    /// (`application/x-www-form-urlencoded`: space as `+`, bytes other than
    /// ASCII alphanumerics and `*-._` percent-encoded as UTF-8), as RFC 6749
    /// §2.3.1 says (`client_secret_basic`).
    BasicFormEncoded,
    /// HTTP Basic with the id and secret as given, UTF-8 (SOTI, Deyel, and
    /// many servers that never decode).
    BasicRaw,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    RequestBody,
    /// A public client: `client_id` in the form body, no secret.
    None,
}

/// What bounds one request.
#[derive(Clone, Copy, Debug)]
struct Limits {
    timeout: Duration,
    max_body_bytes: usize,
}

impl From<&HttpSettings> for Limits {
    fn from(settings: &HttpSettings) -> Self {
        Self { timeout: settings.timeout, max_body_bytes: settings.max_body_bytes }
    }
}

/// A token endpoint of one provider, with its reused HTTP client.
///
/// The client is built on the first request, not with the endpoint: a
/// provider served from a cache or token store never builds one. Every
/// setting that can be wrong (the URL, the timeout, `ca_file`) is checked,
/// and `ca_file` read, when the endpoint is made.
///
/// Cloning is cheap and shares the client (and its connection pool).
#[derive(Clone)]
pub struct TokenEndpoint {
    provider: Arc<str>,
    url: Url,
    client: Arc<LazyClient>,
    clock: SharedClock,
    limits: Limits,
}

/// An endpoint's HTTP client, built from its checked [`ClientSpec`] on
/// first use.
struct LazyClient {
    spec: ClientSpec,
    client: OnceLock<reqwest::Client>,
}

impl LazyClient {
    /// The client, built now if this is the first request. A build that
    /// fails (the settings were checked at load, so only reqwest or rustls
    /// refusing remains) is a config error naming the provider, and the
    /// next request tries again.
    fn get(&self, provider: &str) -> Result<&reqwest::Client, TokenError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built = build_client(provider, &self.spec)?;
        // Two first requests at once may both build; one client is kept.
        Ok(self.client.get_or_init(|| built))
    }

    /// Whether the client has been built (for tests).
    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

/// What a client is built from, every part already checked: the timeout
/// (not zero), proxies off for a loopback target, and the certificates of
/// `ca_file`, read and parsed into trust anchors.
struct ClientSpec {
    timeout: Duration,
    direct: bool,
    extra_roots: rustls::RootCertStore,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("provider", &self.provider)
            .field("url", &redacted_url(&self.url))
            .field("timeout", &self.limits.timeout)
            .finish_non_exhaustive()
    }
}

/// The URL without its query and fragment (which may carry secrets), for
/// `Debug` output.
fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    // Userinfo is refused by `check_url`, but never print one anyway.
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    let mut out = String::from(shown);
    if had_query {
        out.push_str("?…");
    }
    out
}

/// Whether `url` may be used: `https`, or `http` to a loopback host, or `http`
/// anywhere when `allow_insecure_http`; never with credentials in the URL.
///
/// `field` names the config field the URL came from, for the error. No
/// network.
///
/// ```
/// use tokensmith_core::Url;
/// use tokensmith_core::check_url;
///
/// let ok = |u: &str| check_url("p", "token_url", &Url::parse(u).unwrap(), false).is_ok();
/// assert!(ok("https://login.example.com/token"));
/// assert!(ok("http://127.0.0.1:8080/token"));
/// assert!(!ok("http://login.example.com/token"));
/// ```
pub fn check_url(
    provider: &str,
    field: &str,
    url: &Url,
    allow_insecure_http: bool,
) -> Result<(), TokenError> {
    let refuse = |message: String| Err(TokenError::config(Some(provider), Some(field), message));
    if !url.username().is_empty() || url.password().is_some() {
        return refuse(
            "credentials in the URL are refused; use client_id and client_secret".to_owned(),
        );
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http || is_loopback(url) => Ok(()),
        "http" => refuse(format!(
            "plain http to non-loopback host {:?} is refused; use https (or set allow_insecure_http = true)",
            url.host_str().unwrap_or_default()
        )),
        other => refuse(format!("unsupported URL scheme {other:?}; use https")),
    }
}

/// Whether the URL's host is loopback: `localhost` (any case, a trailing dot
/// allowed), `127.0.0.0/8` or `::1`. IPv4-mapped addresses (`::ffff:127.0.0.1`)
/// and names that merely resolve to loopback do not count.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.strip_suffix('.').unwrap_or(d).eq_ignore_ascii_case("localhost")
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Builds the client; `direct` disables proxies (for loopback targets, which
/// a proxy cannot reach and must not see in plain text).
fn client_for(
    provider: &str,
    settings: &HttpSettings,
    direct: bool,
) -> Result<reqwest::Client, TokenError> {
    build_client(provider, &client_spec(provider, settings, direct)?)
}

/// Checks what a client is built from: the timeout, and `ca_file` (read,
/// PEM parsed, each certificate made a trust anchor). Cheap next to
/// [`build_client`]; every config error is found here.
fn client_spec(
    provider: &str,
    settings: &HttpSettings,
    direct: bool,
) -> Result<ClientSpec, TokenError> {
    if settings.timeout.is_zero() {
        return Err(TokenError::config(
            Some(provider),
            Some("timeout"),
            "the timeout must be longer than zero",
        ));
    }
    let extra_roots = extra_roots(provider, settings.ca_file.as_deref())?;
    Ok(ClientSpec { timeout: settings.timeout, direct, extra_roots })
}

/// Builds the client of a checked spec (rustls config, Mozilla's roots,
/// reqwest's connector): the expensive part, deferred to the first request.
fn build_client(provider: &str, spec: &ClientSpec) -> Result<reqwest::Client, TokenError> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let mut builder = reqwest::Client::builder()
        .timeout(spec.timeout)
        .connect_timeout(spec.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .default_headers(headers);
    if spec.direct {
        builder = builder.no_proxy();
    }
    let tls = tls_config(provider, &spec.extra_roots)?;
    let client = builder.tls_backend_preconfigured(tls).build().map_err(|e| {
        TokenError::config(
            Some(provider),
            None,
            format!("cannot build HTTP client: {}", error_line(&e)),
        )
    })?;
    tracing::debug!(provider, "HTTP client built");
    Ok(client)
}

/// The certificates of `ca_file` as trust anchors (none without one).
fn extra_roots(
    provider: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::RootCertStore, TokenError> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(path) = ca_file else { return Ok(roots) };
    let ca_error = |message: String| TokenError::config(Some(provider), Some("ca_file"), message);
    // A regular file of at most 1 MiB (a system bundle is about 200 KiB).
    let (pem, _) = crate::secret::read_small_file(path, MAX_CA_FILE_BYTES)
        .map_err(|e| ca_error(format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(format!("invalid PEM in {}: {}", path.display(), error_line(&e))))?;
    if certs.is_empty() {
        return Err(ca_error(format!("no PEM certificate found in {}", path.display())));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| {
            ca_error(format!(
                "cannot use the certificates in {}: {}",
                path.display(),
                error_line(&e)
            ))
        })?;
    }
    Ok(roots)
}

/// The rustls configuration of every client: the ring provider passed
/// explicitly (no process-wide default is read or installed), Mozilla's roots
/// (`webpki-roots`) plus the certificates of `ca_file` (`extra`), HTTP/1.1
/// only.
fn tls_config(
    provider: &str,
    extra: &rustls::RootCertStore,
) -> Result<rustls::ClientConfig, TokenError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    roots.roots.extend(extra.roots.iter().cloned());
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(ring)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            TokenError::config(
                Some(provider),
                None,
                format!("cannot build TLS config: {}", error_line(&e)),
            )
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // reqwest leaves a preconfigured config's ALPN alone; we speak HTTP/1.1.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

impl TokenEndpoint {
    /// Validates `url` (the https rule, see [`check_url`]) and the HTTP
    /// settings (the timeout; `ca_file` is read and its certificates
    /// parsed). No network. The HTTP client itself is built on the first
    /// request.
    pub fn new(
        provider: &str,
        url: Url,
        settings: &HttpSettings,
        clock: SharedClock,
    ) -> Result<Self, TokenError> {
        check_url(provider, "token_url", &url, settings.allow_insecure_http)?;
        let spec = client_spec(provider, settings, is_loopback(&url))?;
        let client = Arc::new(LazyClient { spec, client: OnceLock::new() });
        Ok(Self { provider: provider.into(), url, client, clock, limits: settings.into() })
    }

    /// The provider's HTTP client, built on the first call.
    fn client(&self) -> Result<&reqwest::Client, TokenError> {
        self.client.get(&self.provider)
    }

    /// The provider this endpoint belongs to.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The token endpoint URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The clock token receipt times are read from.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Starts a token request (a form POST unless shaped otherwise).
    pub fn request(&self) -> TokenRequest<'_> {
        TokenRequest {
            endpoint: self,
            auth: None,
            form: Form::default(),
            secret_fields: Vec::new(),
            method: RequestMethod::Post,
            body: BodyKind::Form,
            query: Vec::new(),
            headers: Vec::new(),
            basic: None,
            scrub: Vec::new(),
        }
    }
}

/// What a request's body is.
enum BodyKind {
    /// The form fields, form-urlencoded (the default).
    Form,
    /// A JSON document: the given value, the form fields added as top-level
    /// string members, the secrets put in at their JSON Pointers.
    Json { value: serde_json::Value, secrets: Vec<(String, SecretString)> },
    /// No body, no `Content-Type`.
    Empty,
}

enum Value {
    Plain(String),
    Secret(SecretString),
}

/// Form fields, form-urlencoded as they are added (`a=1&b=2`), wiped when
/// dropped: secret fields are in it.
#[derive(Default)]
struct Form(String);

impl Form {
    /// Appends `name=value`, form-urlencoded, after a `&` unless first.
    fn append(&mut self, name: &str, value: &str) {
        if self.0.capacity() == 0 {
            // One allocation for a typical grant's few short fields.
            self.0.reserve(64);
        }
        append_pair(&mut self.0, name, value);
    }
}

impl Drop for Form {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Appends `name=value` to `out`, both form-urlencoded, after a `&` unless
/// `out` is empty: what `form_urlencoded::Serializer::append_pair` writes.
fn append_pair(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    form_encode(out, name);
    out.push('=');
    form_encode(out, value);
}

/// The bytes form-urlencoding leaves as they are: ASCII alphanumerics and
/// `*-._`.
const FORM_UNCHANGED: [bool; 256] = {
    let unchanged = b"*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut table = [false; 256];
    let mut i = 0;
    while i < unchanged.len() {
        table[unchanged[i] as usize] = true;
        i += 1;
    }
    table
};

/// Appends `text` form-urlencoded (`application/x-www-form-urlencoded`):
/// ASCII alphanumerics and `*-._` as they are, space as `+`, every other
/// byte (of the UTF-8) as `%XX`, exactly as `form_urlencoded::byte_serialize`
/// (a test compares the two), runs of unchanged bytes copied whole.
fn form_encode(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|&b| !FORM_UNCHANGED[usize::from(b)])
            .map_or(bytes.len(), |run| start + run);
        // `start..end` is unchanged ASCII: both ends are char boundaries.
        if start < end {
            out.push_str(&text[start..end]);
        }
        let Some(&byte) = bytes.get(end) else { break };
        if byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        start = end + 1;
    }
}

impl Value {
    fn expose(&self) -> &str {
        match self {
            Self::Plain(v) => v,
            Self::Secret(v) => v.expose_secret(),
        }
    }
}

/// Puts the string `text` into `value` at the JSON Pointer `pointer`,
/// creating objects along the way (an array index must exist).
fn put_at(value: &mut serde_json::Value, pointer: &str, text: &str) {
    let mut at = value;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !at.is_object() && !at.is_array() {
            *at = serde_json::Value::Object(serde_json::Map::new());
        }
        at = match at {
            serde_json::Value::Array(items) => {
                match token.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            serde_json::Value::Object(members) => {
                members.entry(token).or_insert(serde_json::Value::Null)
            }
            _ => return,
        };
    }
    *at = serde_json::Value::String(text.to_owned());
}

/// A form POST to a [`TokenEndpoint`] being built.
///
/// Secret values are added with [`secret_param`](Self::secret_param) and
/// stay in `secrecy` types until the body is encoded. The client-auth fields
/// (`client_id`, `client_secret`) come first in the body, then the fields in
/// the order they were added.
#[must_use]
pub struct TokenRequest<'a> {
    endpoint: &'a TokenEndpoint,
    auth: Option<(ClientAuth, String, Option<SecretString>)>,
    /// The form fields in the order they were added, encoded as they come
    /// (the client-auth fields go before them when the body is built).
    form: Form,
    /// The names and values of the secret form fields (also in `form`), to
    /// scrub them from errors.
    secret_fields: Vec<(String, SecretString)>,
    method: RequestMethod,
    body: BodyKind,
    query: Vec<(String, Value)>,
    headers: Vec<(String, Value)>,
    /// Basic credentials given with [`TokenRequest::basic_auth`].
    basic: Option<SecretString>,
    /// Secrets sent inside other values ([`TokenRequest::scrub`]).
    scrub: Vec<SecretString>,
}

impl fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("endpoint", self.endpoint)
            .field("auth", &self.auth.as_ref().map(|a| a.0))
            .field(
                "fields",
                &form_urlencoded::parse(self.form.0.as_bytes()).map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("method", &self.method)
            .field("query", &self.query.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenRequest<'_> {
    /// Sets the client authentication style and credentials.
    ///
    /// With a Basic style and no secret, the secret is empty (`id:`).
    pub fn client_auth(
        mut self,
        auth: ClientAuth,
        client_id: &str,
        secret: Option<&SecretString>,
    ) -> Self {
        self.auth = Some((auth, client_id.to_owned(), secret.cloned()));
        self
    }

    /// Adds a plain form field.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.form.append(name, value);
        self
    }

    /// Adds a secret form field (password, code, refresh token, verifier).
    pub fn secret_param(mut self, name: &str, value: &SecretString) -> Self {
        self.form.append(name, value.expose_secret());
        self.secret_fields.push((name.to_owned(), value.clone()));
        self
    }

    /// Adds the form fields of a [`Renewal`](crate::Renewal)'s grant:
    /// `grant_type=authorization_code&code=…` or
    /// `grant_type=refresh_token&refresh_token=…`, the value sent as a secret.
    ///
    /// ```
    /// use secrecy::{ExposeSecret, SecretString};
    /// use tokensmith_core::{HttpSettings, RenewalGrant, SystemClock, TokenEndpoint, Url};
    ///
    /// let url = Url::parse("https://as.example.com/token").unwrap();
    /// let endpoint =
    ///     TokenEndpoint::new("p", url, &HttpSettings::default(), std::sync::Arc::new(SystemClock))
    ///         .unwrap();
    /// let grant = RenewalGrant::RefreshToken(SecretString::from("rt-1"));
    /// let (_, body) = endpoint.request().grant(&grant).encode();
    /// assert_eq!(body.expose_secret(), "grant_type=refresh_token&refresh_token=rt-1");
    /// ```
    pub fn grant(self, grant: &crate::RenewalGrant) -> Self {
        match grant {
            crate::RenewalGrant::AuthorizationCode(code) => {
                self.param("grant_type", "authorization_code").secret_param("code", code)
            }
            crate::RenewalGrant::RefreshToken(token) => {
                self.param("grant_type", "refresh_token").secret_param("refresh_token", token)
            }
        }
    }

    /// Sets the HTTP method (`POST` by default). A `GET` sends no body:
    /// form fields or a JSON body given with it make [`send`](Self::send)
    /// fail with a config error.
    pub fn method(mut self, method: RequestMethod) -> Self {
        self.method = method;
        self
    }

    /// Sends a JSON body instead of a form: `value` (usually an object), with
    /// the form fields ([`param`](Self::param), [`secret_param`](Self::secret_param),
    /// client authentication in the body) added as top-level string members
    /// and each [`json_secret`](Self::json_secret) put in at its pointer.
    /// `Content-Type: application/json`.
    ///
    /// ```
    /// use secrecy::{ExposeSecret, SecretString};
    /// use tokensmith_core::{HttpSettings, SystemClock, TokenEndpoint, Url};
    ///
    /// let url = Url::parse("https://api.example.com/login").unwrap();
    /// let endpoint =
    ///     TokenEndpoint::new("p", url, &HttpSettings::default(), std::sync::Arc::new(SystemClock))
    ///         .unwrap();
    /// let password = SecretString::from("hunter2");
    /// let (_, body) = endpoint
    ///     .request()
    ///     .json_body(serde_json::json!({ "user": { "name": "svc" }, "remember": false }))
    ///     .json_secret("/user/password", &password)
    ///     .encode();
    /// assert_eq!(
    ///     body.expose_secret(),
    ///     r#"{"remember":false,"user":{"name":"svc","password":"hunter2"}}"#
    /// );
    /// ```
    pub fn json_body(mut self, value: serde_json::Value) -> Self {
        self.body = BodyKind::Json { value, secrets: Vec::new() };
        self
    }

    /// Puts the secret string `value` into the JSON body at the JSON Pointer
    /// `pointer` (RFC 6901; objects along the way are created). Turns the
    /// body into JSON (an empty object) if it was not already. The last
    /// segment of the pointer is redacted from errors like `client_secret`.
    pub fn json_secret(mut self, pointer: &str, value: &SecretString) -> Self {
        if !matches!(self.body, BodyKind::Json { .. }) {
            self.body = BodyKind::Json {
                value: serde_json::Value::Object(serde_json::Map::new()),
                secrets: Vec::new(),
            };
        }
        if let BodyKind::Json { secrets, .. } = &mut self.body {
            secrets.push((pointer.to_owned(), value.clone()));
        }
        self
    }

    /// Sends no body at all (and no `Content-Type`), as a `GET` does.
    pub fn no_body(mut self) -> Self {
        self.body = BodyKind::Empty;
        self
    }

    /// Adds a plain query parameter to the token URL.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), Value::Plain(value.to_owned())));
        self
    }

    /// Adds a secret query parameter to the token URL (errors never show the
    /// URL's query, and the value is scrubbed from response bodies).
    pub fn secret_query(mut self, name: &str, value: &SecretString) -> Self {
        self.query.push((name.to_owned(), Value::Secret(value.clone())));
        self
    }

    /// Adds a plain request header. A name or value that is not a valid
    /// header makes [`send`](Self::send) fail with a config error.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), Value::Plain(value.to_owned())));
        self
    }

    /// Adds a secret request header (marked sensitive, scrubbed from errors,
    /// its name redacted from error bodies like `authorization`).
    pub fn secret_header(mut self, name: &str, value: &SecretString) -> Self {
        self.headers.push((name.to_owned(), Value::Secret(value.clone())));
        self
    }

    /// Sends `Authorization: Basic base64(user:password)`, both as given
    /// (UTF-8, no form-encoding): Basic credentials made of any two values
    /// (a username and password, a client id and an API key, …). Replaces the
    /// Basic header of [`client_auth`](Self::client_auth).
    pub fn basic_auth(mut self, user: &SecretString, password: &SecretString) -> Self {
        self.basic =
            Some(SecretString::from(basic(user.expose_secret(), password.expose_secret())));
        self.scrub.push(user.clone());
        self.scrub.push(password.clone());
        self
    }

    /// Scrubs `secret` from every error this request's response builds: for
    /// a secret sent inside a longer value (a header `Key {api_key}`), which
    /// is scrubbed whole as sent, and now on its own too.
    pub fn scrub(mut self, secret: &SecretString) -> Self {
        self.scrub.push(secret.clone());
        self
    }

    /// The `Authorization` header value and body this request will send
    /// (exposed for tests of the exact bytes): the form (or JSON, or empty)
    /// body.
    ///
    /// ```
    /// use secrecy::{ExposeSecret, SecretString};
    /// use tokensmith_core::{ClientAuth, HttpSettings, SystemClock, TokenEndpoint, Url};
    ///
    /// let url = Url::parse("https://mdm.example.com/Connect/api/token").unwrap();
    /// let endpoint =
    ///     TokenEndpoint::new("mdm", url, &HttpSettings::default(), std::sync::Arc::new(SystemClock))
    ///         .unwrap();
    /// let secret = SecretString::from("Application1Password");
    /// let (header, body) = endpoint
    ///     .request()
    ///     .client_auth(ClientAuth::BasicRaw, "Application1", Some(&secret))
    ///     .param("grant_type", "client_credentials")
    ///     .encode();
    /// assert_eq!(
    ///     header.unwrap().expose_secret(),
    ///     "Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk"
    /// );
    /// assert_eq!(body.expose_secret(), "grant_type=client_credentials");
    /// ```
    pub fn encode(&self) -> (Option<SecretString>, SecretString) {
        let body = self.body_from(Form(self.form.0.clone()));
        (self.authorization().map(SecretString::from), SecretString::from(body))
    }

    /// The `Authorization` value: the Basic credentials of
    /// [`basic_auth`](Self::basic_auth), or else of a Basic
    /// [`client_auth`](Self::client_auth). Holds secrets: never logged, sent
    /// marked sensitive.
    fn authorization(&self) -> Option<String> {
        if let Some(basic) = &self.basic {
            return Some(basic.expose_secret().to_owned());
        }
        let (auth, id, secret) = self.auth.as_ref()?;
        let secret = secret.as_ref().map_or("", |s| s.expose_secret());
        match auth {
            ClientAuth::BasicFormEncoded => {
                let mut id_encoded = String::new();
                form_encode(&mut id_encoded, id);
                let mut encoded = Form::default();
                form_encode(&mut encoded.0, secret);
                Some(basic(&id_encoded, &encoded.0))
            }
            ClientAuth::BasicRaw => Some(basic(id, secret)),
            ClientAuth::RequestBody | ClientAuth::None => None,
        }
    }

    /// The body this request sends, `fields` being its form fields
    /// (encoded): the form with the client-auth fields first (or the JSON
    /// document, or nothing). Holds secrets: never logged.
    fn body_from(&self, mut fields: Form) -> String {
        match &self.body {
            BodyKind::Form => self.with_auth_fields(std::mem::take(&mut fields.0)),
            BodyKind::Empty => String::new(),
            BodyKind::Json { value, secrets } => {
                let pairs = Form(self.with_auth_fields(std::mem::take(&mut fields.0)));
                let mut value = value.clone();
                if let serde_json::Value::Object(members) = &mut value {
                    for (name, field) in form_urlencoded::parse(pairs.0.as_bytes()) {
                        members.insert(name.into_owned(), serde_json::Value::String(field.into()));
                    }
                }
                for (pointer, secret) in secrets {
                    put_at(&mut value, pointer, secret.expose_secret());
                }
                value.to_string()
            }
        }
    }

    /// `fields` (form-encoded) after the client-auth fields that go in the
    /// body (`client_id`, and `client_secret` when there is one), if any.
    fn with_auth_fields(&self, fields: String) -> String {
        let mut out = match &self.auth {
            Some((ClientAuth::RequestBody | ClientAuth::None, ..)) => {
                String::with_capacity(64 + fields.len())
            }
            _ => return fields,
        };
        let fields = Form(fields);
        if let Some((auth, id, secret)) = &self.auth {
            append_pair(&mut out, "client_id", id);
            if let (ClientAuth::RequestBody, Some(secret)) = (auth, secret) {
                append_pair(&mut out, "client_secret", secret.expose_secret());
            }
        }
        if !fields.0.is_empty() {
            out.push('&');
            out.push_str(&fields.0);
        }
        out
    }

    /// Sends the request and parses the response into a token.
    pub async fn send(self) -> Result<AccessToken, TokenError> {
        self.send_parsed(None).await
    }

    /// Sends the request and reads the response through `shape` (a vendor
    /// described in config) instead of the standard token-response fields;
    /// see [`ResponseShape`] for the rules, which are otherwise the standard
    /// parser's: statuses, error classes, redaction, control characters and
    /// expired-on-arrival tokens refused.
    pub async fn send_shaped(self, shape: &ResponseShape) -> Result<AccessToken, TokenError> {
        self.send_parsed(Some(shape)).await
    }

    /// The request as reqwest builds it: method, URL with query, body,
    /// extra headers.
    fn build(
        &self,
        body: String,
        header: Option<HeaderValue>,
    ) -> Result<reqwest::RequestBuilder, TokenError> {
        let endpoint = self.endpoint;
        let provider = &*endpoint.provider;
        let config_error = |message: String| TokenError::config(Some(provider), None, message);
        let mut url = endpoint.url.clone();
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &self.query {
                pairs.append_pair(name, value.expose());
            }
        }
        let mut request = match self.method {
            RequestMethod::Post => endpoint.client()?.post(url),
            RequestMethod::Get => endpoint.client()?.get(url),
        };
        match (&self.body, self.method) {
            (BodyKind::Empty, _) => {}
            (BodyKind::Form, RequestMethod::Get) if body.is_empty() => {}
            (_, RequestMethod::Get) => {
                return Err(config_error("a GET token request carries no body".to_owned()));
            }
            (BodyKind::Form, RequestMethod::Post) => {
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static(FORM_CONTENT_TYPE))
                    .body(body);
            }
            (BodyKind::Json { .. }, RequestMethod::Post) => {
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE))
                    .body(body);
            }
        }
        for (name, value) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| config_error(format!("{name:?} is not a valid header name")))?;
            let mut header_value = HeaderValue::try_from(value.expose()).map_err(|_| {
                config_error(format!("the value of header {name} is not a valid header value"))
            })?;
            if let Value::Secret(_) = value {
                header_value.set_sensitive(true);
            }
            request = request.header(name, header_value);
        }
        if let Some(header) = header {
            request = request.header(AUTHORIZATION, header);
        }
        Ok(request)
    }

    async fn send_parsed(
        mut self,
        shape: Option<&ResponseShape>,
    ) -> Result<AccessToken, TokenError> {
        let endpoint = self.endpoint;
        let provider = &*endpoint.provider;
        // The body and header are built once, as plain strings handed to
        // reqwest by value (the encoded fields are moved, not copied); the
        // header goes out marked sensitive (never in reqwest's `Debug`). An
        // error builds what was sent again to scrub it from the response
        // ([`sent`](Self::sent)): the success path keeps no copy.
        let fields = std::mem::take(&mut self.form);
        let body = self.body_from(fields);
        let header = self
            .authorization()
            .map(|text| {
                // Base64 output is always a valid header value.
                HeaderValue::try_from(text).map(|mut value| {
                    value.set_sensitive(true);
                    value
                })
            })
            .transpose()
            .map_err(|_| {
                TokenError::config(
                    Some(provider),
                    Some("client_id"),
                    "credentials cannot be carried in a header",
                )
            })?;
        let request = self.build(body, header)?;
        // The receipt time is when the request goes out: the server counts
        // `expires_in` from about then, so a slow answer shortens the
        // token's life rather than lengthening it.
        let received_at = endpoint.clock.timestamp();
        let received = execute(provider, &endpoint.url, request, endpoint.limits).await?;
        if received.oversized {
            return Err(self.too_large(&received));
        }
        let content_type = received.content_type.as_ref().and_then(|v| v.to_str().ok());
        let mut raw = RawResponse::new(received.status, content_type, &received.body);
        raw.retry_after = received.retry_after(&*endpoint.clock);
        // A server may echo the request back (form, Authorization header):
        // the error never shows what was sent, in any spelling.
        let sent = || self.sent();
        match shape {
            None => parse_sent(provider, &raw, received_at, &sent),
            Some(shape) => parse_shaped(provider, &raw, received_at, shape, &sent),
        }
    }

    /// The error for a body over the limit, its snippet cut from what was
    /// read, scrubbed of what the request sent before the cut.
    fn too_large(&self, received: &Received) -> TokenError {
        let limit = self.endpoint.limits.max_body_bytes;
        too_large(&self.endpoint.provider, received.status, limit, &received.body, &self.sent())
    }

    /// Every secret value this request sends (client secret, secret form
    /// fields, the `Authorization` header), in each spelling a server may
    /// echo it in. Only called on the error path.
    fn sent(&self) -> Secrets {
        fn secret((name, v): &(String, Value)) -> Option<(&str, &str)> {
            match v {
                Value::Secret(s) => Some((name.as_str(), s.expose_secret())),
                Value::Plain(_) => None,
            }
        }
        let fields = self.secret_fields.iter().map(|(name, s)| (name.as_str(), s.expose_secret()));
        let named: Vec<(&str, &str)> =
            fields.chain(self.query.iter().chain(&self.headers).filter_map(secret)).collect();
        let json: Vec<(&str, &str)> = match &self.body {
            BodyKind::Json { secrets, .. } => secrets
                .iter()
                .map(|(pointer, s)| {
                    let key = pointer.rsplit('/').next().unwrap_or_default();
                    (key, s.expose_secret())
                })
                .collect(),
            _ => Vec::new(),
        };
        let auth_secret = self.auth.as_ref().and_then(|(_, _, secret)| secret.as_ref());
        let values = named
            .iter()
            .chain(&json)
            .map(|(_, v)| *v)
            .chain(auth_secret.map(ExposeSecret::expose_secret))
            .chain(self.scrub.iter().map(ExposeSecret::expose_secret));
        // Names a secret is sent under are secret keys too (an echo such as
        // `"clientKey": "…"` is redacted whatever its value became).
        let keys = named.iter().chain(&json).map(|(k, _)| *k).filter(|k| !k.is_empty());
        // The `Authorization` value sent, built again (base64 after `Basic `).
        let header = Form(self.authorization().unwrap_or_default());
        let header = Some(header.0.as_str()).filter(|h| !h.is_empty());
        Secrets::sent(values, header).with_keys(keys)
    }
}

/// GETs the JSON document at `url` (an OIDC discovery document,
/// for instance) under the same rules as token requests: the https rule
/// (a refusal names the field `url`; callers should also [`check_url`] at
/// config load, naming their own field), the whole-request timeout, the body
/// cap, no redirects, the `Accept` and `User-Agent` headers, `ca_file`.
///
/// A 2xx with a JSON body is the document; a 5xx is
/// [`TokenError::Server`]; any other status, or a body that is not JSON, is
/// [`TokenError::InvalidResponse`]. Each call builds its own client: meant
/// for a document fetched once, not for a hot path.
pub async fn fetch_json(
    provider: &str,
    url: &Url,
    settings: &HttpSettings,
    clock: &dyn Clock,
) -> Result<serde_json::Value, TokenError> {
    check_url(provider, "url", url, settings.allow_insecure_http)?;
    let client = client_for(provider, settings, is_loopback(url))?;
    let received = execute(provider, url, client.get(url.clone()), settings.into()).await?;
    let status = received.status;
    if received.oversized {
        let limit = settings.max_body_bytes;
        return Err(too_large(provider, status, limit, &received.body, &Secrets::NONE));
    }
    if status >= 500 {
        return Err(TokenError::Server {
            provider: provider.to_owned(),
            status,
            detail: None,
            body: BodySnippet::new(&received.body),
            retry_after: received.retry_after(clock),
        });
    }
    if !(200..300).contains(&status) {
        return Err(TokenError::invalid_response(
            provider,
            status,
            format!("HTTP {status} where a JSON document was expected"),
            &received.body,
        ));
    }
    serde_json::from_slice(&received.body).map_err(|e| {
        TokenError::invalid_response(
            provider,
            status,
            format!("not a JSON document: {e}"),
            &received.body,
        )
    })
}

/// A response read within the limits.
struct Received {
    status: u16,
    /// The `Content-Type` header (read as text where it is used).
    content_type: Option<HeaderValue>,
    /// The `Retry-After` header, read by [`Received::retry_after`].
    retry_after: Option<HeaderValue>,
    /// The body, or when `oversized` what was read of it before the limit
    /// (nothing when `Content-Length` announced too much).
    body: Vec<u8>,
    /// The body is larger than the limit: refuse it, with a snippet of
    /// `body` scrubbed of what the request sent.
    oversized: bool,
}

impl Received {
    /// The `Retry-After` delay; an HTTP-date counts from `clock`'s now, read
    /// only for a date.
    fn retry_after(&self, clock: &dyn Clock) -> Option<Duration> {
        self.retry_after.as_ref().and_then(|value| parse_retry_after(value, || clock.now()))
    }
}

/// Sends `request` to `url` and reads the response within `limits`: a
/// redirect is an error, the body is read up to `limits.max_body_bytes` (a
/// larger one is marked `oversized`, its rest never read: the caller builds
/// the error, so it can scrub what was read first).
async fn execute(
    provider: &str,
    url: &Url,
    request: reqwest::RequestBuilder,
    limits: Limits,
) -> Result<Received, TokenError> {
    let mut response = request.send().await.map_err(|e| transport_error(provider, limits, e))?;
    let status = response.status();
    if status.is_redirection() {
        let target = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map_or_else(|| "an unknown location".to_owned(), |o| o.ascii_serialization());
        return Err(TokenError::transport(
            provider,
            TransportErrorKind::Redirect,
            format!(
                "HTTP {} to {target} not followed (credentials are never replayed); \
                 configure the final URL",
                status.as_u16()
            ),
            None,
        ));
    }
    let status = status.as_u16();
    let headers = response.headers();
    let content_type = headers.get(CONTENT_TYPE).cloned();
    let retry_after = headers.get(RETRY_AFTER).cloned();
    let limit = limits.max_body_bytes;
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit as u64) {
        return Ok(Received {
            status,
            content_type,
            retry_after,
            body: Vec::new(),
            oversized: true,
        });
    }
    let capacity = announced.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) =
        response.chunk().await.map_err(|e| transport_error(provider, limits, e))?
    {
        if body.len() + chunk.len() > limit {
            // Dropping the response closes the connection: the rest is never read.
            return Ok(Received { status, content_type, retry_after, body, oversized: true });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Received { status, content_type, retry_after, body, oversized: false })
}

/// `Retry-After` (RFC 9110 §10.2.3) as delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, and the obsolete RFC 850 and asctime
/// forms), the date measured from `now` (read only for a date; a date in
/// the past is no delay). Anything else gives `None`.
fn parse_retry_after(value: &HeaderValue, now: impl FnOnce() -> SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail; a delay that long means "not soon".
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now()).unwrap_or(Duration::ZERO))
}

/// `Basic base64(id:secret)` (standard alphabet, padded), encoded straight
/// into one string: the credentials are never joined in plain text, and
/// nothing but the (at most three) bytes of the group being encoded is held
/// on the way (a test compares it with the `base64` crate's encoding of the
/// joined text).
fn basic(id: &str, secret: &str) -> String {
    let alphabet = base64::alphabet::STANDARD.as_str().as_bytes();
    let sextet = |group: u32, shift: u32| alphabet[(group >> shift & 0x3f) as usize];
    let len = id.len() + 1 + secret.len();
    let mut header = Vec::with_capacity(6 + len.div_ceil(3) * 4);
    header.extend_from_slice(b"Basic ");
    let (mut group, mut held) = (0_u32, 0);
    for part in [id.as_bytes(), b":", secret.as_bytes()] {
        for &byte in part {
            group = group << 8 | u32::from(byte);
            held += 1;
            if held == 3 {
                let quad =
                    [sextet(group, 18), sextet(group, 12), sextet(group, 6), sextet(group, 0)];
                header.extend_from_slice(&quad);
                (group, held) = (0, 0);
            }
        }
    }
    match held {
        1 => header.extend_from_slice(&[sextet(group, 2), sextet(group << 4, 0), b'=', b'=']),
        2 => header.extend_from_slice(&[
            sextet(group, 10),
            sextet(group, 4),
            sextet(group << 2, 0),
            b'=',
        ]),
        _ => {}
    }
    // Base64 is ASCII.
    String::from_utf8(header).unwrap_or_default()
}

/// The error for a body over `limit`, `start` being what was read of it;
/// its snippet is redacted of what the request `sent` before it is cut.
fn too_large(
    provider: &str,
    status: u16,
    limit: usize,
    start: &[u8],
    sent: &Secrets,
) -> TokenError {
    let size = if limit.is_multiple_of(1024 * 1024) {
        format!("{} MiB", limit / (1024 * 1024))
    } else if limit.is_multiple_of(1024) {
        format!("{} KiB", limit / 1024)
    } else {
        format!("{limit} bytes")
    };
    let redacted = redact(start, Shape::Cut, sent);
    redacted.seal(TokenError::InvalidResponse {
        provider: provider.to_owned(),
        status,
        reason: format!("response body larger than {size} refused"),
        body: redacted.snippet(),
    })
}

fn transport_error(provider: &str, limits: Limits, err: reqwest::Error) -> TokenError {
    let kind = if err.is_timeout() {
        TransportErrorKind::Timeout
    } else if err.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Io
    };
    // Never the URL: its query may carry a secret.
    let err = err.without_url();
    let message = match kind {
        TransportErrorKind::Timeout => {
            format!("no complete response within {}", humantime::format_duration(limits.timeout))
        }
        _ => innermost_cause(&err),
    };
    TokenError::transport(provider, kind, message, Some(Box::new(err)))
}

/// The innermost cause of `err`, on one line: what actually failed
/// (`Connection refused (os error 111)`), without the layers above it that
/// each restate it (`error sending request: client error (Connect): tcp
/// connect error: …`). The whole chain stays reachable through `source()`.
fn innermost_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = error_line(cause);
    if text.is_empty() { error_line(err) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_retry_after(header: &str, expected: Option<u64>) {
        // 2015-10-21T07:28:00Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_mins(24_090_208);
        let value = HeaderValue::from_str(header).unwrap();
        let got = parse_retry_after(&value, || now);
        assert_eq!(got, expected.map(Duration::from_secs), "{header:?}");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        check_retry_after("120", Some(120));
        check_retry_after(" 7 ", Some(7));
        check_retry_after("0", Some(0));
        check_retry_after("99999999999999999999999", Some(u64::MAX));
        check_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", Some(0));
        check_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", Some(120));
        check_retry_after("Wednesday, 21-Oct-15 08:28:00 GMT", Some(3600));
        check_retry_after("Wed Oct 21 07:28:09 2015", Some(9));
        check_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", Some(0));
        check_retry_after("Wed, 21 Oct 2015 07:30:00", None);
        check_retry_after("tomorrow", None);
        check_retry_after("+5", None);
        check_retry_after("-5", None);
        check_retry_after("1.5", None);
        check_retry_after("", None);
    }

    #[track_caller]
    fn check_redacted(url: &str, expected: &str) {
        assert_eq!(redacted_url(&Url::parse(url).unwrap()), expected);
    }

    #[test]
    fn debug_url_hides_query_fragment_and_userinfo() {
        check_redacted("https://a.example/t", "https://a.example/t");
        check_redacted("https://a.example/t?code=s3cr3t#x", "https://a.example/t?…");
        check_redacted("https://u:p@a.example:8443/t", "https://a.example:8443/t");
    }

    /// A cache or store hit sends nothing, so it must not pay for a client
    /// (rustls config, roots, connector): the endpoint builds it on the
    /// first request, once, shared by its clones.
    #[test]
    fn the_client_is_built_on_first_use_once_and_shared_by_clones() {
        let url = Url::parse("http://127.0.0.1:9/token").unwrap();
        let clock: SharedClock = Arc::new(crate::SystemClock);
        let endpoint = TokenEndpoint::new("p", url, &HttpSettings::default(), clock).unwrap();
        let clone = endpoint.clone();
        assert!(!endpoint.client.is_built(), "no client before a request");
        let first: *const reqwest::Client = endpoint.client().unwrap();
        assert!(clone.client.is_built(), "clones share the client");
        assert!(std::ptr::eq(first, clone.client().unwrap()), "built once");
    }

    /// Deferring the client defers no config error: a zero timeout and a
    /// `ca_file` that is missing or holds no certificate are refused when
    /// the endpoint is made.
    #[test]
    fn settings_are_checked_when_the_endpoint_is_made() {
        let url = Url::parse("https://login.example.com/token").unwrap();
        let make = |settings: &HttpSettings| {
            let clock: SharedClock = Arc::new(crate::SystemClock);
            TokenEndpoint::new("p", url.clone(), settings, clock).map(|_| ()).unwrap_err()
        };
        let field = |err: TokenError| match err {
            TokenError::Config { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        };
        let settings = HttpSettings { timeout: Duration::ZERO, ..HttpSettings::default() };
        assert_eq!(field(make(&settings)).as_deref(), Some("timeout"));
        let dir = tempfile::tempdir().unwrap();
        let mut settings = HttpSettings {
            ca_file: Some(dir.path().join("missing.pem")),
            ..HttpSettings::default()
        };
        assert_eq!(field(make(&settings)).as_deref(), Some("ca_file"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        settings.ca_file = Some(empty);
        assert_eq!(field(make(&settings)).as_deref(), Some("ca_file"));
    }

    #[test]
    fn too_large_names_the_limit() {
        let reason = |limit| match too_large("p", 200, limit, b"", &Secrets::NONE) {
            TokenError::InvalidResponse { reason, .. } => reason,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(reason(DEFAULT_MAX_BODY_BYTES), "response body larger than 1 MiB refused");
        assert_eq!(reason(2048), "response body larger than 2 KiB refused");
        assert_eq!(reason(100), "response body larger than 100 bytes refused");
    }

    /// The Basic value as the `base64` crate encodes the joined credentials.
    fn joined_basic(id: &str, secret: &str) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn basic_pads_every_length() {
        assert_eq!(basic("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic("", ""), "Basic Og==");
        for (id, secret) in [("a", ""), ("ab", ""), ("abc", "d"), ("é", "ü€"), ("id", "s:e:c")]
        {
            assert_eq!(basic(id, secret), joined_basic(id, secret), "{id:?} {secret:?}");
        }
    }

    #[test]
    fn form_encoding_of_every_byte_class() {
        let encode = |text: &str| {
            let mut out = String::new();
            form_encode(&mut out, text);
            out
        };
        assert_eq!(encode(""), "");
        assert_eq!(encode("read write"), "read+write");
        assert_eq!(encode("a*b-c.d_e~f"), "a*b-c.d_e%7Ef");
        assert_eq!(encode("é/€ +&="), "%C3%A9%2F%E2%82%AC+%2B%26%3D");
        let mut form = Form::default();
        form.append("grant_type", "client_credentials");
        form.append("scope", "read write");
        assert_eq!(form.0, "grant_type=client_credentials&scope=read+write");
    }

    proptest::proptest! {
        #[test]
        fn form_encoding_is_form_urlencoded(text in ".{0,40}", bytes in "[ -~]{0,40}") {
            for text in [text, bytes] {
                let mut ours = String::new();
                form_encode(&mut ours, &text);
                let theirs: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
                proptest::prop_assert_eq!(ours, theirs);
            }
        }

        #[test]
        fn basic_is_base64_of_the_joined_credentials(id in ".{0,20}", secret in ".{0,40}") {
            proptest::prop_assert_eq!(basic(&id, &secret), joined_basic(&id, &secret));
        }
    }
}
