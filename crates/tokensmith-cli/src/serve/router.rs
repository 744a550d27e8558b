//! One request to the agent, answered (contract §10): the header rule, the
//! endpoints, and the JSON error object.
//!
//! A request is answered in hyper's `call`, before any `await`, whenever it
//! can be: every request but a token the cache must fetch (or wait for) and
//! an invalidation (which reads a body). The request is dropped there, so
//! hyper's read buffer, which the request's path and headers share, is its
//! own again when it reads the next request (held across an `await`, each
//! read would allocate a new buffer); and a warm token costs no boxed future.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Buf, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use tokensmith_core::{AccessToken, Clock as _, SystemClock, TokenError};

use super::agent::Agent;
use super::request::{Endpoint, refusal, route};
use crate::exit::{self, ErrorReport};
use crate::output;

/// The largest request body read (`POST /v1/invalidate/NAME` carries one
/// token).
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// How long a client may take to send the body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the router answers with.
pub(crate) type Body = Full<Chunk>;

/// A response body's bytes: a buffer, or a token's header value, shared with
/// the token (core makes it once per token): the secret is not copied per
/// request.
pub(crate) enum Chunk {
    /// Any other body.
    Bytes(Bytes),
    /// The header value, and how much of it hyper has taken.
    Header(HeaderValue, usize),
}

impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Self {
        Chunk::Bytes(bytes)
    }
}

impl From<&'static str> for Chunk {
    fn from(text: &'static str) -> Self {
        Chunk::Bytes(Bytes::from_static(text.as_bytes()))
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Chunk::Bytes(bytes) => bytes.remaining(),
            Chunk::Header(value, taken) => value.len() - taken,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Chunk::Bytes(bytes) => bytes.chunk(),
            Chunk::Header(value, taken) => value.as_bytes().get(*taken..).unwrap_or_default(),
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Bytes(bytes) => bytes.advance(n),
            Chunk::Header(value, taken) => {
                assert!(n <= value.len() - *taken, "advanced past the end of the body");
                *taken += n;
            }
        }
    }
}

/// The HTTP side of the agent: answers requests from the current providers.
/// Cloned (one reference count) for each request that must wait: hyper's
/// service futures own what they use.
#[derive(Clone, Debug)]
pub(crate) struct Router(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    agent: Arc<Agent>,
    metrics: Option<PrometheusHandle>,
    /// `tokensmith_agent_requests_total`, by endpoint and status: each
    /// registered with the recorder on its first use, then a request only
    /// increments it (no labelled key built and looked up per request).
    requests: [[OnceLock<metrics::Counter>; STATUS_LABELS.len()]; ENDPOINTS],
}

/// How many [`Endpoint`]s there are.
const ENDPOINTS: usize = 7;

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Header => "header",
            Endpoint::Invalidate => "invalidate",
            Endpoint::Providers => "providers",
            Endpoint::Healthz => "healthz",
            Endpoint::Metrics => "metrics",
            Endpoint::Other => "other",
        }
    }
}

impl Router {
    /// A router for `agent`; `metrics` renders `/metrics` (without it,
    /// `/metrics` is empty).
    pub(crate) fn new(agent: Arc<Agent>, metrics: Option<PrometheusHandle>) -> Self {
        Self(Arc::new(Inner { agent, metrics, requests: Default::default() }))
    }

    /// The agent it answers for.
    pub(crate) fn agent(&self) -> &Arc<Agent> {
        &self.0.agent
    }

    /// Answers `req`: at once when it can (see the module's docs).
    pub(crate) fn handle(&self, req: Request<Incoming>) -> Answer {
        let (endpoint, name) = route(req.uri().path());
        let name = match self.answer_now(endpoint, name.as_deref(), &req) {
            Ok(response) => {
                self.count(endpoint, &response);
                return Answer::Now(Some(response));
            }
            // Only a named endpoint waits.
            Err(()) => name.map(Cow::into_owned).unwrap_or_default(),
        };
        let pending = if endpoint == Endpoint::Invalidate {
            Pending::Invalidate(name, Box::new(req))
        } else {
            Pending::Obtain(endpoint, name)
        };
        let router = self.clone();
        Answer::Later(Box::pin(async move {
            let response = router.answer_later(pending).await;
            router.count(endpoint, &response);
            response
        }))
    }

    /// Counts `response` in `tokensmith_agent_requests_total`.
    fn count(&self, endpoint: Endpoint, response: &Response<Body>) {
        let status = status_index(response.status().as_u16());
        self.0.requests[endpoint as usize][status]
            .get_or_init(|| {
                metrics::counter!(
                    "tokensmith_agent_requests_total",
                    "endpoint" => endpoint.label(),
                    "status" => STATUS_LABELS[status]
                )
            })
            .increment(1);
    }

    /// The answer to `req` when it needs no waiting; `Err` when it does: a
    /// token the cache must fetch (or the error it answers), an
    /// invalidation.
    fn answer_now(
        &self,
        endpoint: Endpoint,
        name: Option<&str>,
        req: &Request<Incoming>,
    ) -> Result<Response<Body>, ()> {
        if let Some(refusal) = forbidden(req, matches!(endpoint, Endpoint::Healthz)) {
            return Ok(refusal);
        }
        let allowed = match endpoint {
            Endpoint::Invalidate => Method::POST,
            _ => Method::GET,
        };
        if !matches!(endpoint, Endpoint::Other)
            && req.method() != allowed
            && !(allowed == Method::GET && req.method() == Method::HEAD)
        {
            let allow = if allowed == Method::POST { "POST" } else { "GET, HEAD" };
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                None,
                &format!("this endpoint answers {allow} only"),
            );
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            return Ok(response);
        }
        Ok(match (endpoint, name) {
            (Endpoint::Healthz, _) => text(StatusCode::OK, "ok"),
            (Endpoint::Metrics, _) => {
                // The caches report on their slow path: make their counters exact.
                for entry in self.agent().snapshot().providers.values() {
                    if let Some(cache) = &entry.cache {
                        cache.export_metrics();
                    }
                }
                let body =
                    self.0.metrics.as_ref().map(PrometheusHandle::render).unwrap_or_default();
                let mut response = Response::new(Full::new(Bytes::from(body).into()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            (Endpoint::Providers, _) => self.providers(),
            (Endpoint::Token | Endpoint::Header, Some(name)) => {
                match self.agent().warm_token(name) {
                    Some((token, kind)) => render(endpoint, name, &token, kind),
                    None => return Err(()),
                }
            }
            (Endpoint::Invalidate, Some(_)) => return Err(()),
            _ => error(
                StatusCode::NOT_FOUND,
                "not_found",
                None,
                "no such endpoint; see GET /v1/providers",
            ),
        })
    }

    /// The answer that needs waiting: a token the cache must fetch, or an
    /// invalidation's body.
    async fn answer_later(&self, pending: Pending) -> Response<Body> {
        match pending {
            Pending::Obtain(endpoint, name) => match self.obtain(&name).await {
                Ok((token, kind)) => render(endpoint, &name, &token, kind),
                Err(response) => response,
            },
            Pending::Invalidate(name, req) => self.invalidate(&name, *req).await,
        }
    }

    fn providers(&self) -> Response<Body> {
        #[derive(Serialize)]
        struct Row<'a> {
            name: &'a str,
            kind: &'a str,
        }
        let snapshot = self.agent().snapshot();
        let rows: Vec<Row<'_>> =
            snapshot.providers.iter().map(|(name, entry)| Row { name, kind: entry.kind }).collect();
        json(StatusCode::OK, serde_json::to_string(&rows).unwrap_or_default())
    }

    /// `POST /v1/invalidate/NAME`: the body is the token a resource server
    /// refused. The provider drops its current token only when that is the
    /// one, so a client holding a token already replaced changes nothing.
    async fn invalidate(&self, name: &str, req: Request<Incoming>) -> Response<Body> {
        let snapshot = self.agent().snapshot();
        let Some(entry) = snapshot.providers.get(name) else {
            return unknown_provider(name, &snapshot);
        };
        let body = match tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(req.into_body(), MAX_BODY).collect(),
        )
        .await
        {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    Some(name),
                    "the body is the refused token: at most 16 KiB",
                );
            }
            Err(_) => {
                return error(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    Some(name),
                    "the body did not arrive in time",
                );
            }
        };
        let refused = body.trim_ascii();
        if refused.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                Some(name),
                "the body must be the refused token",
            );
        }
        // The current token; when the provider cannot give one, there is
        // nothing to drop.
        if let Ok(current) = entry.provider.token().await
            && equal(current.secret().expose_secret().as_bytes(), refused)
        {
            entry.provider.invalidate(&current);
            tracing::info!(provider = name, "token invalidated at a client's request");
        } else {
            tracing::debug!(provider = name, "invalidate: not the current token; nothing to do");
        }
        let mut response = Response::new(Full::new(Bytes::new().into()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }

    /// The token of provider `name` and its kind from its `token()` (which
    /// fetches, joins a fetch or answers the error), or the error response.
    async fn obtain(&self, name: &str) -> Result<(AccessToken, &'static str), Response<Body>> {
        let snapshot = self.agent().snapshot();
        let Some(entry) = snapshot.providers.get(name) else {
            return Err(unknown_provider(name, &snapshot));
        };
        match entry.provider.token().await {
            Ok(token) => Ok((token, entry.kind)),
            Err(err) => {
                tracing::debug!(provider = name, error = %err, "token request failed");
                Err(token_error(err))
            }
        }
    }
}

/// What is left to do for a request that could not be answered at once.
enum Pending {
    /// `GET /v1/token/NAME` or `/v1/header/NAME` without a warm token.
    Obtain(Endpoint, String),
    /// `POST /v1/invalidate/NAME`.
    Invalidate(String, Box<Request<Incoming>>),
}

/// hyper's service future: the answer made in `call`, or the rest of the
/// work.
pub(crate) enum Answer {
    /// Answered at once (taken when polled).
    Now(Option<Response<Body>>),
    /// Answered once the token or the body arrives.
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            // Polled again after completion (a contract breach): stay pending.
            Answer::Now(response) => response.take().map_or(Poll::Pending, |r| Poll::Ready(Ok(r))),
            Answer::Later(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

/// The `200` for `GET /v1/token/NAME` (the JSON of `token NAME --json`) or
/// `GET /v1/header/NAME` (the header value) with provider `name`'s `token`.
fn render(endpoint: Endpoint, name: &str, token: &AccessToken, kind: &str) -> Response<Body> {
    if endpoint == Endpoint::Token {
        return no_store(json(
            StatusCode::OK,
            output::token_json(name, kind, token, SystemClock.now()),
        ));
    }
    match present(token) {
        Ok(value) => no_store(text(StatusCode::OK, value)),
        Err(()) => token_error(TokenError::invalid_response(
            name,
            200,
            "the access token holds bytes an HTTP header cannot carry",
            b"",
        )),
    }
}

/// The header value that presents `token` to a resource server
/// (`Bearer …`): the one place the agent turns a token into a header.
pub(crate) fn present(token: &AccessToken) -> Result<Chunk, ()> {
    token.header_value().map(|value| Chunk::Header(value, 0)).map_err(|_| ())
}

/// The 403 for a request that may come from a browser or be forwarded by
/// another server: an `Origin` or `X-Forwarded-For` header, or (unless
/// `exempt`) no `Tokensmith-Request: 1`.
fn forbidden<B>(req: &Request<B>, exempt: bool) -> Option<Response<Body>> {
    let headers = req.headers().iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
    let why = refusal(headers, exempt)?;
    Some(error(StatusCode::FORBIDDEN, "forbidden", None, why))
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only (a token is compared with what a client sent).
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 404 for a name no provider has.
fn unknown_provider(name: &str, snapshot: &super::agent::Snapshot) -> Response<Body> {
    let names: Vec<&str> = snapshot.providers.keys().map(String::as_str).collect();
    let err = anyhow::Error::new(TokenError::config(
        Some(name),
        None,
        format!(
            "no such provider; configured: {}",
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        ),
    ))
    .context(exit::UnknownProvider);
    report(&exit::describe(&err))
}

/// The response for a token error: its status follows the CLI's exit code
/// (3 → 502 `rejected`, 4 → 503 `unavailable`). When the token endpoint said
/// when to come back (`Retry-After` on a 429 or 5xx), so does the agent, in
/// whole seconds rounded up.
fn token_error(err: TokenError) -> Response<Body> {
    let retry_after = err.retry_after();
    let mut response = report(&exit::describe(&anyhow::Error::new(err)));
    if let Some(wait) = retry_after {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// The error object of `report` with the status its `error` stands for.
fn report(report: &ErrorReport) -> Response<Body> {
    let status = match report.error {
        "unknown_provider" => StatusCode::NOT_FOUND,
        "rejected" => StatusCode::BAD_GATEWAY,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json(status, output::error_json(report))
}

/// An error object of the agent's own (no token error behind it).
fn error(
    status: StatusCode,
    code: &'static str,
    provider: Option<&str>,
    message: &str,
) -> Response<Body> {
    let report = ErrorReport {
        error: code,
        provider: provider.map(str::to_owned),
        status: None,
        vendor_error: None,
        message: message.to_owned(),
    };
    json(status, output::error_json(&report))
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, Bytes::from(body).into(), "application/json")
}

fn text(status: StatusCode, body: impl Into<Chunk>) -> Response<Body> {
    with_type(status, body.into(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: Chunk, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Marks a response that carries a token: no cache may keep it.
fn no_store(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `status` labels: one per status the agent sends, and `other`.
const STATUS_LABELS: [&str; 12] =
    ["200", "204", "400", "403", "404", "405", "408", "413", "500", "502", "503", "other"];

/// The index of `status`'s label in [`STATUS_LABELS`].
fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        204 => 1,
        400 => 2,
        403 => 3,
        404 => 4,
        405 => 5,
        408 => 6,
        413 => 7,
        500 => 8,
        502 => 9,
        503 => 10,
        _ => 11,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_and_endpoint_has_its_label_and_counter() {
        for status in [200, 204, 400, 403, 404, 405, 408, 413, 500, 502, 503] {
            assert_eq!(STATUS_LABELS[status_index(status)], status.to_string());
        }
        assert_eq!(STATUS_LABELS[status_index(418)], "other");
        let endpoints = [
            Endpoint::Token,
            Endpoint::Header,
            Endpoint::Invalidate,
            Endpoint::Providers,
            Endpoint::Healthz,
            Endpoint::Metrics,
            Endpoint::Other,
        ];
        assert_eq!(endpoints.len(), ENDPOINTS);
        for (i, endpoint) in endpoints.into_iter().enumerate() {
            assert_eq!(endpoint as usize, i, "{}", endpoint.label());
        }
    }

    #[test]
    fn a_header_value_body_is_read_whole_and_in_parts() {
        let token = AccessToken::builder("abc", std::time::SystemTime::UNIX_EPOCH).build();
        let mut body = present(&token).unwrap();
        assert_eq!(body.remaining(), "Bearer abc".len());
        assert_eq!(body.chunk(), b"Bearer abc");
        body.advance(7);
        assert_eq!((body.remaining(), body.chunk()), (3, &b"abc"[..]));
        body.advance(3);
        assert_eq!((body.remaining(), body.chunk()), (0, &b""[..]));
        let mut text = Chunk::from("ok");
        text.advance(1);
        assert_eq!(text.chunk(), b"k");
    }

    #[test]
    fn equality_needs_the_same_bytes_and_length() {
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"abc", b"abcd"));
        assert!(equal(b"", b""));
    }

    #[test]
    fn the_header_rule() {
        let req = |headers: &[(&str, &str)]| {
            let mut b = Request::builder().uri("/v1/providers");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap()
        };
        assert!(forbidden(&req(&[("tokensmith-request", "1")]), false).is_none());
        assert!(forbidden(&req(&[("Tokensmith-Request", "1")]), false).is_none());
        assert!(forbidden(&req(&[]), false).is_some());
        assert!(forbidden(&req(&[]), true).is_none());
        assert!(forbidden(&req(&[("tokensmith-request", "true")]), false).is_some());
        let origin = [("tokensmith-request", "1"), ("origin", "https://evil.example")];
        assert!(forbidden(&req(&origin), false).is_some());
        assert!(forbidden(&req(&origin[1..]), true).is_some());
        let xff = [("tokensmith-request", "1"), ("x-forwarded-for", "10.0.0.1")];
        assert!(forbidden(&req(&xff), false).is_some());
    }
}
