//! The one request helper every adapter calls: POST a form to the token
//! endpoint, safely.
//!
//! - client authentication in one of four [`ClientAuth`] styles;
//! - a whole-request timeout; the response body capped (1 MiB by default)
//!   while streaming; redirects never followed (so credentials are never
//!   replayed to another host);
//! - `https` required, except for loopback hosts or with `allow_insecure_http`;
//! - `User-Agent: tokensmith/<version>`, `Accept: application/json`, an
//!   optional extra CA bundle;
//! - one `reqwest::Client` per provider, reused for every request;
//! - the response handed to the one tolerant parser ([`crate::parse`]).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use url::form_urlencoded;

use crate::config::DEFAULT_TIMEOUT;
use crate::parse::{RawResponse, parse_response};
use crate::{AccessToken, SharedClock, TokenError, TransportErrorKind};

/// The largest response body read, by default: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("tokensmith/", env!("CARGO_PKG_VERSION"));

/// HTTP settings of one provider.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpSettings {
    /// Whole-request timeout (connect, send, receive the whole body).
    pub timeout: Duration,
    /// Allow plain `http://` to hosts other than loopback.
    pub allow_insecure_http: bool,
    /// Extra trusted CA certificates (PEM bundle).
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
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the id and secret each form-urlencoded first, as RFC
    /// 6749 §2.3.1 says (`client_secret_basic`).
    BasicFormEncoded,
    /// HTTP Basic with the id and secret as given (SOTI, Deyel, and many
    /// servers that never decode).
    BasicRaw,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    RequestBody,
    /// A public client: `client_id` in the form body, no secret.
    None,
}

/// A token endpoint of one provider, with its reused HTTP client.
#[derive(Clone)]
pub struct TokenEndpoint {
    provider: Arc<str>,
    url: Url,
    client: reqwest::Client,
    clock: SharedClock,
    max_body_bytes: usize,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("provider", &self.provider)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Whether `url` may be used: `https`, or `http` to a loopback host, or `http`
/// anywhere when `allow_insecure_http`.
pub fn check_url(
    provider: &str,
    field: &str,
    url: &Url,
    allow_insecure_http: bool,
) -> Result<(), TokenError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http || is_loopback(url) => Ok(()),
        "http" => Err(TokenError::config(
            Some(provider),
            Some(field),
            format!(
                "plain http to non-loopback host {:?} is refused; use https (or set allow_insecure_http = true)",
                url.host_str().unwrap_or_default()
            ),
        )),
        other => Err(TokenError::config(
            Some(provider),
            Some(field),
            format!("unsupported URL scheme {other:?}; use https"),
        )),
    }
}

/// Whether the URL's host is loopback: `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Builds the HTTP client for one provider: timeout, no redirects, TLS
/// settings, default headers.
pub fn build_client(
    provider: &str,
    settings: &HttpSettings,
) -> Result<reqwest::Client, TokenError> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .default_headers(headers);
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            TokenError::config(
                Some(provider),
                Some("ca_file"),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            TokenError::config(
                Some(provider),
                Some("ca_file"),
                format!("invalid PEM in {}: {e}", path.display()),
            )
        })?;
        if certs.is_empty() {
            return Err(TokenError::config(
                Some(provider),
                Some("ca_file"),
                format!("no certificate found in {}", path.display()),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| {
        TokenError::config(Some(provider), None, format!("cannot build HTTP client: {e}"))
    })
}

impl TokenEndpoint {
    /// Validates `url` (the https rule) and builds the provider's client.
    /// No network.
    pub fn new(
        provider: &str,
        url: Url,
        settings: &HttpSettings,
        clock: SharedClock,
    ) -> Result<Self, TokenError> {
        check_url(provider, "token_url", &url, settings.allow_insecure_http)?;
        let client = build_client(provider, settings)?;
        Ok(Self {
            provider: provider.into(),
            url,
            client,
            clock,
            max_body_bytes: settings.max_body_bytes,
        })
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

    /// Starts a token request (a form POST).
    pub fn request(&self) -> TokenRequest<'_> {
        TokenRequest { endpoint: self, auth: None, form: Vec::new() }
    }
}

enum Value {
    Plain(String),
    Secret(SecretString),
}

/// A form POST to a [`TokenEndpoint`] being built.
///
/// Secret values are added with [`secret_param`](Self::secret_param) and
/// stay in `secrecy` types until the body is encoded.
#[must_use]
pub struct TokenRequest<'a> {
    endpoint: &'a TokenEndpoint,
    auth: Option<(ClientAuth, String, Option<SecretString>)>,
    form: Vec<(String, Value)>,
}

impl fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("endpoint", self.endpoint)
            .field("auth", &self.auth.as_ref().map(|a| a.0))
            .field("fields", &self.form.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenRequest<'_> {
    /// Sets the client authentication style and credentials.
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
        self.form.push((name.to_owned(), Value::Plain(value.to_owned())));
        self
    }

    /// Adds a secret form field (password, code, refresh token, verifier).
    pub fn secret_param(mut self, name: &str, value: &SecretString) -> Self {
        self.form.push((name.to_owned(), Value::Secret(value.clone())));
        self
    }

    /// The `Authorization` header value and form body this request will send
    /// (exposed for tests of the exact bytes).
    pub fn encode(&self) -> (Option<SecretString>, SecretString) {
        let mut body = form_urlencoded::Serializer::new(String::new());
        let mut header = None;
        if let Some((auth, id, secret)) = &self.auth {
            let secret_str = secret.as_ref().map_or("", |s| s.expose_secret());
            match auth {
                ClientAuth::BasicFormEncoded => {
                    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
                    let sec: String =
                        form_urlencoded::byte_serialize(secret_str.as_bytes()).collect();
                    header = Some(basic(&id, &sec));
                }
                ClientAuth::BasicRaw => header = Some(basic(id, secret_str)),
                ClientAuth::RequestBody => {
                    body.append_pair("client_id", id);
                    if secret.is_some() {
                        body.append_pair("client_secret", secret_str);
                    }
                }
                ClientAuth::None => {
                    body.append_pair("client_id", id);
                }
            }
        }
        for (name, value) in &self.form {
            match value {
                Value::Plain(v) => body.append_pair(name, v),
                Value::Secret(v) => body.append_pair(name, v.expose_secret()),
            };
        }
        (header, SecretString::from(body.finish()))
    }

    /// Sends the request and parses the response into a token.
    pub async fn send(self) -> Result<AccessToken, TokenError> {
        let endpoint = self.endpoint;
        let provider = &*endpoint.provider;
        let (header, body) = self.encode();
        let mut req = endpoint
            .client
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.expose_secret().to_owned());
        if let Some(h) = header {
            let mut value = HeaderValue::try_from(h.expose_secret()).map_err(|_| {
                TokenError::config(
                    Some(provider),
                    Some("client_id"),
                    "credentials contain bytes a header cannot carry",
                )
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let mut resp = req.send().await.map_err(|e| transport_error(provider, e))?;
        let status = resp.status();
        if status.is_redirection() {
            let target = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| endpoint.url.join(l).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "an unknown location".to_owned());
            return Err(TokenError::transport(
                provider,
                TransportErrorKind::Redirect,
                format!(
                    "HTTP {} to {target} not followed (credentials are never replayed)",
                    status.as_u16()
                ),
                None,
            ));
        }
        let content_type =
            resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let limit = endpoint.max_body_bytes;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large(provider, status.as_u16(), limit));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(provider, e))? {
            if bytes.len() + chunk.len() > limit {
                return Err(too_large(provider, status.as_u16(), limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        let received_at = endpoint.clock.now();
        parse_response(
            provider,
            &RawResponse {
                status: status.as_u16(),
                content_type: content_type.as_deref(),
                retry_after,
                body: &bytes,
            },
            received_at,
        )
    }
}

fn basic(id: &str, secret: &str) -> SecretString {
    SecretString::from(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
}

fn too_large(provider: &str, status: u16, limit: usize) -> TokenError {
    TokenError::invalid_response(
        provider,
        status,
        format!("response body larger than {} KiB refused", limit / 1024),
        b"",
    )
}

fn transport_error(provider: &str, err: reqwest::Error) -> TokenError {
    let kind = if err.is_timeout() {
        TransportErrorKind::Timeout
    } else if err.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Io
    };
    let err = err.without_url();
    let message = match kind {
        TransportErrorKind::Timeout => "no complete response within the timeout".to_owned(),
        _ => error_chain(&err),
    };
    TokenError::transport(provider, kind, message, Some(Box::new(err)))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
