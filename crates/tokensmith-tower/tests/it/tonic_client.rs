//! A tonic client against a tonic test server (a hand-written raw-bytes
//! codec: no protoc), through the layer and through the interceptor.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes};
use http::uri::PathAndQuery;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_tower::{AuthInterceptor, AuthLayer};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::common::{GUARD, Gate, cached};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

const ECHO: &str = "/test.Echo/Echo";
const FORBIDDEN: &str = "/test.Echo/Forbidden";

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

/// `Echo` answers with the request when its token is the valid one
/// (`UNAUTHENTICATED` otherwise); `Forbidden` is `PERMISSION_DENIED`.
#[derive(Clone)]
struct EchoServer(Arc<Gate>);

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "test.Echo";
}

struct Method(Arc<Gate>, bool);

impl tonic::server::UnaryService<Bytes> for Method {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;
    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let admitted =
            self.0.admit(req.metadata().get("authorization").and_then(|v| v.to_str().ok()));
        let forbidden = self.1;
        Box::pin(async move {
            if forbidden {
                Err(Status::permission_denied("not yours"))
            } else if admitted {
                Ok(Response::new(req.into_inner()))
            } else {
                Err(Status::unauthenticated("invalid token"))
            }
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
        let method = match req.uri().path() {
            ECHO => Method(self.0.clone(), false),
            FORBIDDEN => Method(self.0.clone(), true),
            _ => {
                return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
            }
        };
        Box::pin(async move { Ok(tonic::server::Grpc::new(Raw).unary(method, req).await) })
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

/// One unary call: the echoed message, or the status.
async fn call<T>(grpc: &mut tonic::client::Grpc<T>, path: &'static str) -> Result<Bytes, Code>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let call = async {
        grpc.ready().await.map_err(|_| Code::Unavailable)?;
        let path = PathAndQuery::from_static(path);
        grpc.unary(Request::new(Bytes::from_static(b"ping")), path, Raw)
            .await
            .map(Response::into_inner)
            .map_err(|s| s.code())
    };
    tokio::time::timeout(GUARD, call).await.expect("no hang")
}

#[tokio::test]
async fn the_layer_presents_the_token_and_invalidates_a_refused_one() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let channel = start(gate.clone()).await;
    let layered =
        tower::ServiceBuilder::new().layer(AuthLayer::new(cache.clone())).service(channel);
    let mut grpc = tonic::client::Grpc::new(layered);

    assert_eq!(call(&mut grpc, ECHO).await, Ok(Bytes::from_static(b"ping")));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // Rotated: UNAUTHENTICATED invalidates exactly that token; tonic's body
    // is a stream, so the call is not sent again and the caller gets it.
    gate.rotate("token-2");
    assert_eq!(call(&mut grpc, ECHO).await, Err(Code::Unauthenticated));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);
    assert_eq!(cache.stats().invalidations, 1);
    // The next call carries the fresh token.
    assert_eq!(call(&mut grpc, ECHO).await, Ok(Bytes::from_static(b"ping")));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);

    // PERMISSION_DENIED is not a refused token.
    assert_eq!(call(&mut grpc, FORBIDDEN).await, Err(Code::PermissionDenied));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (1, 2));
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
    assert_eq!(call(&mut grpc, ECHO).await, Err(Code::Unauthenticated));
    assert!(gate.take_seen().is_empty());
    assert_eq!(cache.stats().fetches, 0);

    // The refresher gets one; calls carry it.
    let _refresher = cache.spawn_refresher();
    tokio::time::timeout(GUARD, async {
        while cache.current().is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(call(&mut grpc, ECHO).await, Ok(Bytes::from_static(b"ping")));
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // The refresh window opens: the refresher fetches the next token before
    // any call needs it, and calls carry it.
    gate.rotate("token-2");
    clock.advance(Duration::from_mins(50));
    tokio::time::timeout(GUARD, async {
        while cache.current().is_none_or(|t| t.secret().expose_secret() != "token-2") {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(call(&mut grpc, ECHO).await, Ok(Bytes::from_static(b"ping")));
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
    assert_eq!(cache.stats().fetches, 2);
}
