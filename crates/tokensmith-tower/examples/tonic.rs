//! tonic, offline: tokens from the testkit's Deyel emulator through the
//! registry and its cache, sent to a tonic server on 127.0.0.1 (a
//! hand-written raw-bytes codec: no protoc), once through the interceptor
//! (synchronous; a background refresher keeps a token current) and once
//! through the layer (asynchronous; invalidates a refused token and retries
//! the call once).
//!
//! `cargo run -p tokensmith-tower --example tonic`

#![allow(clippy::print_stdout, reason = "an example shows what happened")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, BufMut as _, Bytes};
use http::uri::PathAndQuery;
use tokensmith_core::{Registry, TokenProvider as _};
use tokensmith_testkit::{Emulator, Vendor};
use tokensmith_tower::{AuthInterceptor, AuthLayer};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

type Error = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

const ECHO: &str = "/example.Echo/Echo";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let emulator = Emulator::start(Vendor::Deyel).await?;
    let providers =
        Registry::new().with(tokensmith_deyel::Deyel).load_str(&emulator.config_snippet("api"))?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(EchoServer, incoming));
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;

    // The interceptor: warm the cache once, keep it current in the background.
    let cache = providers.cache("api").expect("configured").clone();
    cache.token().await?;
    let _refresher = cache.spawn_refresher();
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(
        channel.clone(),
        AuthInterceptor::new(cache),
    ));
    grpc.ready().await?;
    let reply = grpc
        .unary(
            Request::new(Bytes::from("via the interceptor")),
            PathAndQuery::from_static(ECHO),
            Raw,
        )
        .await?;
    println!("{}", String::from_utf8_lossy(reply.get_ref()));

    // The layer on the channel.
    let layered =
        tower::ServiceBuilder::new().layer(AuthLayer::new(providers.get("api")?)).service(channel);
    let mut grpc = tonic::client::Grpc::new(layered);
    grpc.ready().await?;
    let reply = grpc
        .unary(Request::new(Bytes::from("via the layer")), PathAndQuery::from_static(ECHO), Raw)
        .await?;
    println!("{}", String::from_utf8_lossy(reply.get_ref()));

    println!("tokens issued by the emulator: {}", emulator.tokens_issued());
    assert_eq!(emulator.tokens_issued(), 1, "one token served both clients");
    Ok(())
}

/// Echoes a call carrying a Bearer token, with the token's length.
#[derive(Clone)]
struct EchoServer;

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "example.Echo";
}

struct EchoMethod;

impl tonic::server::UnaryService<Bytes> for EchoMethod {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;
    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let auth = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let answer = match auth.strip_prefix("Bearer ") {
            Some(token) => {
                let mut reply = req.get_ref().to_vec();
                reply.extend_from_slice(format!(": a {}-byte token", token.len()).as_bytes());
                Ok(Response::new(Bytes::from(reply)))
            }
            None => Err(Status::unauthenticated("no token")),
        };
        Box::pin(async move { answer })
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
        if req.uri().path() == ECHO {
            Box::pin(async move { Ok(tonic::server::Grpc::new(Raw).unary(EchoMethod, req).await) })
        } else {
            Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) })
        }
    }
}

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
