//! A tonic client against a tonic test server (a hand-written raw-bytes
//! codec: no protoc), through the layer and through the interceptor.
//!
//! The server checks the token before it runs a method, as a server-side
//! interceptor does: a token that is not the valid one gets a trailers-only
//! `UNAUTHENTICATED` (HTTP 200, `grpc-status: 16` in the headers) without
//! the request body being read. It records every `authorization` value it
//! is sent ([`Gate`]), so each test counts the requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes};
use futures_util::StreamExt as _;
use http::uri::PathAndQuery;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{CachedProvider, TokenProvider as _};
use tokensmith_tower::{AuthInterceptor, AuthLayer, AuthService, DEFAULT_REPLAY_LIMIT};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::common::{GUARD, Gate, cached};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

const ECHO: &str = "/test.Echo/Echo";
const COLLECT: &str = "/test.Echo/Collect";
const FORBIDDEN: &str = "/test.Echo/Forbidden";

/// The gRPC framing of a message: a flag byte and a 4-byte length.
const GRPC_FRAME_HEADER: usize = 5;

/// Messages are raw bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        *self
    }
    fn decoder(&mut self) -> Raw {
        *self
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// `Echo` answers with the request; `Collect` (client-streaming) with the
/// messages joined; `Forbidden` is `PERMISSION_DENIED` for a valid token.
#[derive(Clone)]
struct EchoServer(Arc<Gate>);

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "test.Echo";
}

struct Echo;

impl tonic::server::UnaryService<Bytes> for Echo {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;
    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        Box::pin(async move { Ok(Response::new(req.into_inner())) })
    }
}

struct Collect;

impl tonic::server::ClientStreamingService<Bytes> for Collect {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;
    fn call(&mut self, req: Request<Streaming<Bytes>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = req.into_inner();
            let mut all = Vec::new();
            while let Some(message) = stream.message().await? {
                all.extend_from_slice(&message);
            }
            Ok(Response::new(Bytes::from(all)))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for EchoServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok());
        let admitted = self.0.admit(authorization);
        Box::pin(async move {
            if !admitted {
                // Before the method runs, the body unread: trailers-only.
                return Ok(Status::unauthenticated("invalid token").into_http());
            }
            Ok(match req.uri().path() {
                ECHO => tonic::server::Grpc::new(Raw).unary(Echo, req).await,
                COLLECT => tonic::server::Grpc::new(Raw).client_streaming(Collect, req).await,
                FORBIDDEN => Status::permission_denied("not yours").into_http(),
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

async fn start(gate: Arc<Gate>) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder().serve_with_incoming(EchoServer(gate), incoming),
    );
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A client through the layer.
fn layered(
    cache: &Arc<CachedProvider>,
    channel: Channel,
) -> tonic::client::Grpc<AuthService<Channel>> {
    tonic::client::Grpc::new(
        tower::ServiceBuilder::new().layer(AuthLayer::new(cache.clone())).service(channel),
    )
}

/// One unary call with `message`: the echoed message, or the status.
async fn call<T>(
    grpc: &mut tonic::client::Grpc<T>,
    path: &'static str,
    message: Bytes,
) -> Result<Bytes, Code>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let call = async {
        grpc.ready().await.map_err(|_| Code::Unavailable)?;
        let path = PathAndQuery::from_static(path);
        grpc.unary(Request::new(message), path, Raw)
            .await
            .map(Response::into_inner)
            .map_err(|s| s.code())
    };
    tokio::time::timeout(GUARD, call).await.expect("no hang")
}

fn ping() -> Bytes {
    Bytes::from_static(b"ping")
}

/// A message whose gRPC frame is `len` bytes long.
fn framed_len(len: usize) -> Bytes {
    Bytes::from(vec![b'x'; len - GRPC_FRAME_HEADER])
}

#[tokio::test]
async fn the_layer_retries_a_unary_call_once_after_unauthenticated() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let mut grpc = layered(&cache, start(gate.clone()).await);

    // The first call carries the token.
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Ok(ping()));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // Rotated: exactly one UNAUTHENTICATED, the token invalidated, one
    // retry with the new token and the same message.
    gate.rotate("token-2");
    assert_eq!(call(&mut grpc, ECHO, Bytes::from_static(b"two")).await, Ok(Bytes::from("two")));
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-2"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (1, 2));

    // The new token stays in use.
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Ok(ping()));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
}

#[tokio::test]
async fn the_layer_returns_a_second_unauthenticated_in_a_row_to_the_caller() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("nobody");
    let mut grpc = layered(&cache, start(gate.clone()).await);
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Err(Code::Unauthenticated));
    // One retry, never a loop.
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-2"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (1, 2));
}

#[tokio::test]
async fn the_layer_does_not_retry_permission_denied() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let mut grpc = layered(&cache, start(gate.clone()).await);
    assert_eq!(call(&mut grpc, FORBIDDEN, ping()).await, Err(Code::PermissionDenied));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (0, 1));
}

/// A client-streaming call of `messages`, from a channel whose sender stays
/// open while the call runs when `wait` is set (the stream then waits for
/// more), or is dropped before it (the stream ends after them).
async fn collect(
    grpc: &mut tonic::client::Grpc<AuthService<Channel>>,
    messages: &[&'static [u8]],
    wait: bool,
) -> Result<Bytes, Code> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    for message in messages {
        tx.send(Bytes::from_static(message)).unwrap();
    }
    let tx = wait.then_some(tx);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let call = async {
        grpc.ready().await.map_err(|_| Code::Unavailable)?;
        let path = PathAndQuery::from_static(COLLECT);
        grpc.client_streaming(Request::new(stream.boxed()), path, Raw)
            .await
            .map(Response::into_inner)
            .map_err(|s| s.code())
    };
    let answer = tokio::time::timeout(GUARD, call).await.expect("no hang");
    drop(tx);
    answer
}

#[tokio::test]
async fn the_layer_does_not_retry_a_streaming_call_still_waiting_for_messages() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let mut grpc = layered(&cache, start(gate.clone()).await);
    assert_eq!(collect(&mut grpc, &[b"a", b"b"], false).await, Ok(Bytes::from("ab")));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // Refused, invalidated, not sent again: its next message may still be
    // to come, so it cannot be replayed. The caller gets UNAUTHENTICATED.
    gate.rotate("token-2");
    assert_eq!(collect(&mut grpc, &[b"one"], true).await, Err(Code::Unauthenticated));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (1, 1));

    // The next call carries the fresh token.
    assert_eq!(collect(&mut grpc, &[b"c", b"d"], false).await, Ok(Bytes::from("cd")));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
}

#[tokio::test]
async fn the_layer_retries_a_request_up_to_the_replay_limit_and_no_longer_one() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let channel = start(gate.clone()).await;
    let mut grpc = layered(&cache, channel.clone());

    // Exactly the limit (frame header included): retried with the same
    // message. The server refuses before reading it, so the layer reads the
    // rest of it (already in memory) itself.
    gate.rotate("token-2");
    let at_limit = framed_len(DEFAULT_REPLAY_LIMIT);
    assert_eq!(call(&mut grpc, ECHO, at_limit.clone()).await, Ok(at_limit));
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-2"]);

    // One byte more: invalidated, not retried.
    gate.rotate("token-3");
    let over = framed_len(DEFAULT_REPLAY_LIMIT + 1);
    assert_eq!(call(&mut grpc, ECHO, over.clone()).await, Err(Code::Unauthenticated));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (2, 2));
    // The next call carries the fresh token.
    assert_eq!(call(&mut grpc, ECHO, over.clone()).await, Ok(over));
    assert_eq!(gate.take_seen(), ["Bearer token-3"]);

    // A smaller limit, set on the layer.
    let mut small = tonic::client::Grpc::new(
        tower::ServiceBuilder::new()
            .layer(AuthLayer::new(cache.clone()).with_replay_limit(1024))
            .service(channel),
    );
    gate.rotate("token-4");
    assert_eq!(call(&mut small, ECHO, framed_len(1025)).await, Err(Code::Unauthenticated));
    assert_eq!(gate.take_seen(), ["Bearer token-3"]);
    let fits = framed_len(1024);
    gate.rotate("token-5");
    assert_eq!(call(&mut small, ECHO, fits.clone()).await, Ok(fits));
    assert_eq!(gate.take_seen(), ["Bearer token-4", "Bearer token-5"]);
}

/// Waits (bounded) until the cache's current token is `expected`.
async fn until_current(cache: &CachedProvider, expected: &str) {
    tokio::time::timeout(GUARD, async {
        while cache.current().is_none_or(|t| t.secret().expose_secret() != expected) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the refresher fetches the token");
}

#[tokio::test]
async fn the_interceptor_never_blocks_and_follows_the_refresher() {
    let (cache, clock) = cached();
    let gate = Gate::accepting("token-1");
    let channel = start(gate.clone()).await;
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(
        channel,
        AuthInterceptor::new(cache.clone()),
    ));

    // No token yet: the call fails at once, is not sent, fetches nothing.
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Err(Code::Unauthenticated));
    assert!(gate.take_seen().is_empty());
    assert_eq!(cache.stats().fetches, 0);

    // The refresher gets one; calls carry it.
    let _refresher = cache.spawn_refresher();
    until_current(&cache, "token-1").await;
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Ok(ping()));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // The refresh window opens: the refresher fetches the next token before
    // any call needs it, and calls carry it.
    gate.rotate("token-2");
    clock.advance(Duration::from_mins(50));
    until_current(&cache, "token-2").await;
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Ok(ping()));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
    assert_eq!(cache.stats().fetches, 2);
}

/// What the interceptor can and cannot do with a refused token: it sees only
/// requests, so it neither invalidates nor retries; the application
/// invalidates the current token on `UNAUTHENTICATED` and the refresher
/// fetches the next one at once.
#[tokio::test]
async fn the_interceptor_does_not_retry_and_the_application_invalidates() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let channel = start(gate.clone()).await;
    cache.token().await.unwrap();
    let _refresher = cache.spawn_refresher();
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(
        channel,
        AuthInterceptor::new(cache.clone()),
    ));

    // The first call carries the token.
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Ok(ping()));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // PERMISSION_DENIED: the token stays.
    assert_eq!(call(&mut grpc, FORBIDDEN, ping()).await, Err(Code::PermissionDenied));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // Rotated before its time: each call is refused once and goes back to
    // the caller; the interceptor keeps sending the token it has.
    gate.rotate("token-2");
    for _ in 0..2 {
        assert_eq!(call(&mut grpc, ECHO, ping()).await, Err(Code::Unauthenticated));
    }
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-1"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (0, 1));

    // The application invalidates the token `current()` gives; the
    // refresher fetches the next one, and calls carry it.
    let refused = cache.current().expect("a current token");
    cache.invalidate(&refused);
    until_current(&cache, "token-2").await;
    assert_eq!(call(&mut grpc, ECHO, ping()).await, Ok(ping()));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (1, 2));
}
