//! [`AuthLayer`] and [`AuthService`]: the token on every request, and one
//! retry after a refused token.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, Request, Response, StatusCode};
use tokensmith_core::{AccessToken, SharedTokenProvider, TokenError};
use tower::{Layer, Service};

use crate::present::present;
use crate::replay::{DEFAULT_REPLAY_LIMIT, Recorder, ReplayBody};

/// A `tower::Layer` giving every request the provider's access token, for
/// hyper (hyper-util's client) and tonic (`Channel`) clients alike.
///
/// Each call gets the token asynchronously from the provider (a cache hit
/// almost always: the registry's providers are cached), presents it in the
/// `Authorization` header (marked sensitive) and sends the request. When the
/// server refuses the token, the service:
///
/// 1. calls [`invalidate`](tokensmith_core::TokenProvider::invalidate) with
///    exactly the token it sent, so the cache fetches a new one;
/// 2. when the request body can be sent again ([`ReplayBody`]), gets a fresh
///    token and sends the request once more, returning that answer whatever
///    it is: it never loops;
/// 3. otherwise returns the refusal to the caller (the next request carries
///    a fresh token).
///
/// Which bodies can be sent again: one held in memory (`Full`, `Empty`,
/// `String`: copied before the request is sent), and tonic's body when all
/// of it had been in memory: it is recorded as it is sent, up to
/// [`DEFAULT_REPLAY_LIMIT`] (64 KiB, [`with_replay_limit`](Self::with_replay_limit))
/// bytes. So a unary or server-streaming gRPC call is retried; a
/// client-streaming or bidirectional one whose messages were still to come,
/// a call whose request is over the limit, and any other streaming body
/// (`BoxBody`) are not.
///
/// A refusal is a `401`, a response with a `WWW-Authenticate: Bearer
/// error="invalid_token"` challenge, or gRPC status 16 (`UNAUTHENTICATED`)
/// in the response headers (a trailers-only response, as servers answer a
/// call they refuse before running it; a status sent later, in trailers,
/// reaches the caller untouched). A `403`, or gRPC status 7
/// (`PERMISSION_DENIED`), is never one: the token is valid and lacks a
/// permission, which a new token does not grant.
///
/// Readiness is the inner service's: `poll_ready` delegates to it, and the
/// token is fetched in the returned future, never in `poll_ready`.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tokensmith_core::{AccessToken, SharedTokenProvider, SystemClock, Clock};
/// use tokensmith_tower::AuthLayer;
///
/// # fn demo() {
/// let provider: SharedTokenProvider = Arc::new(AccessToken::builder("abc", SystemClock.now()).build());
/// let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let service = tower::ServiceBuilder::new().layer(AuthLayer::new(provider)).service(client);
/// # let _ = service; }
/// ```
#[derive(Clone, Debug)]
pub struct AuthLayer {
    provider: SharedTokenProvider,
    replay_limit: usize,
}

impl AuthLayer {
    /// A layer presenting the tokens of `provider` (usually the registry's
    /// cached provider: `providers.get(name)?`).
    pub fn new(provider: SharedTokenProvider) -> Self {
        Self { provider, replay_limit: DEFAULT_REPLAY_LIMIT }
    }

    /// How many bytes of a streaming request body (tonic's) are kept to send
    /// it again after a refusal ([`DEFAULT_REPLAY_LIMIT`], 64 KiB, unless
    /// set): a longer body is not retried. Each call holds at most this
    /// much (the data is shared with the body sent, not copied), and only
    /// until its response arrives. `0` retries no streaming body.
    #[must_use]
    pub fn with_replay_limit(mut self, bytes: usize) -> Self {
        self.replay_limit = bytes;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService::new(inner, self.provider.clone()).with_replay_limit(self.replay_limit)
    }
}

/// The service of [`AuthLayer`]: see there for what it does.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    provider: SharedTokenProvider,
    replay_limit: usize,
}

impl<S> AuthService<S> {
    /// `inner`, with the tokens of `provider` on every request.
    pub fn new(inner: S, provider: SharedTokenProvider) -> Self {
        Self { inner, provider, replay_limit: DEFAULT_REPLAY_LIMIT }
    }

    /// As [`AuthLayer::with_replay_limit`].
    #[must_use]
    pub fn with_replay_limit(mut self, bytes: usize) -> Self {
        self.replay_limit = bytes;
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Why an [`AuthService`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError<E> {
    /// No token: the provider failed (the request was not sent, or, on the
    /// retry after a refusal, not sent again).
    #[error("no access token for the request: {0}")]
    Token(#[source] TokenError),
    /// The token holds bytes an HTTP header cannot carry (the request was
    /// not sent).
    #[error("the access token cannot be sent in an HTTP header")]
    UnusableToken,
    /// The wrapped service failed.
    #[error(transparent)]
    Service(E),
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: ReplayBody + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = AuthError<S::Error>;
    type Future = BoxFuture<Result<Response<RB>, AuthError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(AuthError::Service)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The instance `poll_ready` readied serves this call; the clone
        // stays for the next one (the usual tower pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let provider = self.provider.clone();
        let limit = self.replay_limit;
        Box::pin(async move {
            let token = provider.token().await.map_err(AuthError::Token)?;
            let (request, replay) = prepare_replay(request, limit);
            let response =
                inner.call(with_token(request, &token)?).await.map_err(AuthError::Service)?;
            if !refused(response.status(), response.headers()) {
                return Ok(response);
            }
            provider.invalidate(&token);
            // A recorded body is complete only now, if ever.
            let Some(replay) = replay.and_then(Resend::into_request) else {
                tracing::debug!(
                    status = response.status().as_u16(),
                    "access token refused; invalidated (the request body cannot be replayed: no retry)"
                );
                return Ok(response);
            };
            let fresh = provider.token().await.map_err(AuthError::Token)?;
            if fresh.same_token(&token) {
                // A provider that cannot give another token: retrying would
                // send the refused one again.
                return Ok(response);
            }
            tracing::debug!(
                status = response.status().as_u16(),
                "access token refused; invalidated, retrying once with a fresh one"
            );
            drop(response);
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(AuthError::Service)?;
            inner.call(with_token(replay, &fresh)?).await.map_err(AuthError::Service)
        })
    }
}

/// What is needed to send a request again: its head, and its body copied
/// or being recorded.
struct Resend<B> {
    head: Request<()>,
    body: ResendBody<B>,
}

enum ResendBody<B> {
    Copy(B),
    Recorded(Recorder<B>),
}

impl<B> Resend<B> {
    /// The request to send again, when its body can be.
    fn into_request(self) -> Option<Request<B>> {
        let body = match self.body {
            ResendBody::Copy(body) => body,
            ResendBody::Recorded(recorder) => recorder.replay()?,
        };
        Some(self.head.map(|()| body))
    }
}

/// `request` as it is to be sent (its body recording itself, for a streaming
/// body that can be recorded), and what is needed to send it again.
fn prepare_replay<B: ReplayBody>(
    request: Request<B>,
    limit: usize,
) -> (Request<B>, Option<Resend<B>>) {
    if let Some(copy) = request.body().try_replay() {
        let head = head_of(&request);
        return (request, Some(Resend { head, body: ResendBody::Copy(copy) }));
    }
    let (parts, body) = request.into_parts();
    let (body, recorder) = if limit == 0 { (body, None) } else { body.record(limit) };
    let request = Request::from_parts(parts, body);
    let resend =
        recorder.map(|r| Resend { head: head_of(&request), body: ResendBody::Recorded(r) });
    (request, resend)
}

/// A copy of everything of `request` but its body.
fn head_of<B>(request: &Request<B>) -> Request<()> {
    let mut copy = Request::new(());
    request.method().clone_into(copy.method_mut());
    request.uri().clone_into(copy.uri_mut());
    *copy.version_mut() = request.version();
    request.headers().clone_into(copy.headers_mut());
    request.extensions().clone_into(copy.extensions_mut());
    copy
}

/// `request` carrying `token` (replacing any header of that name).
fn with_token<B, E>(
    mut request: Request<B>,
    token: &AccessToken,
) -> Result<Request<B>, AuthError<E>> {
    let (name, value) = present(token).map_err(|_| AuthError::UnusableToken)?;
    request.headers_mut().insert(name, value);
    Ok(request)
}

/// Whether a response refuses the token it was sent with: a 401, a Bearer
/// `invalid_token` challenge, or gRPC `UNAUTHENTICATED`; never a 403.
fn refused(status: StatusCode, headers: &HeaderMap) -> bool {
    if status == StatusCode::FORBIDDEN {
        return false;
    }
    status == StatusCode::UNAUTHORIZED
        || headers.get_all(WWW_AUTHENTICATE).iter().any(|v| v.to_str().is_ok_and(invalid_token))
        || headers.get("grpc-status").is_some_and(|v| v.as_bytes() == b"16")
}

/// Whether a `WWW-Authenticate` value is a Bearer challenge with
/// `error="invalid_token"` (RFC 6750 §3; the quotes are optional here).
fn invalid_token(challenge: &str) -> bool {
    let lower = challenge.to_ascii_lowercase();
    lower.trim_start().starts_with("bearer")
        && lower.split([',', ' ']).any(|param| {
            param
                .trim()
                .strip_prefix("error=")
                .is_some_and(|v| v.trim_matches('"') == "invalid_token")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(status: u16, challenge: Option<&str>, grpc: Option<&str>, expected: bool) {
        let mut headers = HeaderMap::new();
        if let Some(c) = challenge {
            headers.insert(WWW_AUTHENTICATE, c.parse().unwrap());
        }
        if let Some(g) = grpc {
            headers.insert("grpc-status", g.parse().unwrap());
        }
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(refused(status, &headers), expected, "{status} {challenge:?} {grpc:?}");
    }

    #[test]
    fn what_counts_as_a_refused_token() {
        check(401, None, None, true);
        check(401, Some(r#"Basic realm="x""#), None, true);
        check(
            400,
            Some(r#"Bearer realm="api", error="invalid_token", error_description="expired""#),
            None,
            true,
        );
        check(400, Some("bearer error=invalid_token"), None, true);
        check(400, Some(r#"Bearer error="invalid_request""#), None, false);
        check(400, Some(r#"Basic error="invalid_token""#), None, false);
        check(403, None, None, false);
        check(403, Some(r#"Bearer error="invalid_token""#), None, false);
        check(403, Some(r#"Bearer error="insufficient_scope""#), None, false);
        check(200, None, Some("16"), true);
        check(200, None, Some("7"), false);
        check(200, None, None, false);
        check(500, None, None, false);
    }
}
