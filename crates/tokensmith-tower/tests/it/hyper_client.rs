//! The layer on a hyper-util client against a tiny hyper resource server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokensmith_tower::{AuthLayer, AuthService, ReplayBody};
use tower::{Service as _, ServiceExt as _};

use crate::common::{GUARD, Gate, cached};

/// The resource server: `/forbidden` answers 403; anything else echoes the
/// body with 200 when the token is the valid one, and 401 with a Bearer
/// `invalid_token` challenge otherwise.
async fn start(gate: Arc<Gate>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let gate = gate.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let gate = gate.clone();
                async move {
                    let authorization = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    let admitted = gate.admit(authorization);
                    let forbidden = req.uri().path() == "/forbidden";
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let response = if forbidden {
                        Response::builder()
                            .status(StatusCode::FORBIDDEN)
                            .body(Full::new(Bytes::new()))
                    } else if admitted {
                        Response::builder().body(Full::new(body))
                    } else {
                        Response::builder()
                            .status(StatusCode::UNAUTHORIZED)
                            .header("www-authenticate", r#"Bearer error="invalid_token""#)
                            .body(Full::new(Bytes::new()))
                    };
                    Ok::<_, Infallible>(response.unwrap())
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

type Api<B> = AuthService<Client<HttpConnector, B>>;

fn api<B>(cache: &Arc<tokensmith_core::CachedProvider>) -> Api<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http::<B>();
    tower::ServiceBuilder::new().layer(AuthLayer::new(cache.clone())).service(client)
}

/// Sends one request and returns the status and body.
async fn send<B>(api: &mut Api<B>, addr: SocketAddr, path: &str, body: B) -> (StatusCode, Bytes)
where
    B: hyper::body::Body + ReplayBody + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let request = Request::post(format!("http://{addr}{path}")).body(body).unwrap();
    let call = async { api.ready().await.unwrap().call(request).await.unwrap() };
    let response = tokio::time::timeout(GUARD, call).await.expect("no hang");
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

fn full(text: &'static str) -> Full<Bytes> {
    Full::new(Bytes::from_static(text.as_bytes()))
}

#[tokio::test]
async fn a_rotated_token_is_invalidated_and_the_request_retried_once() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let addr = start(gate.clone()).await;
    let mut api = api::<Full<Bytes>>(&cache);

    // The first request carries the token.
    assert_eq!(
        send(&mut api, addr, "/orders", full("one")).await,
        (StatusCode::OK, Bytes::from("one"))
    );
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);

    // Rotated: exactly one 401, the token invalidated, one retry with the
    // new token, the same body.
    gate.rotate("token-2");
    assert_eq!(
        send(&mut api, addr, "/orders", full("two")).await,
        (StatusCode::OK, Bytes::from("two"))
    );
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-2"]);
    let stats = cache.stats();
    assert_eq!((stats.invalidations, stats.fetches), (1, 2));

    // The new token stays in use.
    assert_eq!(send(&mut api, addr, "/orders", full("three")).await.0, StatusCode::OK);
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
}

#[tokio::test]
async fn a_second_refusal_in_a_row_goes_back_to_the_caller() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("nobody");
    let addr = start(gate.clone()).await;
    let mut api = api::<Full<Bytes>>(&cache);
    assert_eq!(send(&mut api, addr, "/orders", full("x")).await.0, StatusCode::UNAUTHORIZED);
    // One retry, never a loop.
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-2"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (1, 2));
}

#[tokio::test]
async fn a_403_is_not_retried_and_keeps_the_token() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let addr = start(gate.clone()).await;
    let mut api = api::<Full<Bytes>>(&cache);
    assert_eq!(send(&mut api, addr, "/forbidden", full("x")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(gate.take_seen(), ["Bearer token-1"]);
    assert_eq!((cache.stats().invalidations, cache.stats().fetches), (0, 1));
}

#[tokio::test]
async fn a_body_that_cannot_be_replayed_is_not_retried() {
    let (cache, _clock) = cached();
    let gate = Gate::accepting("token-1");
    let addr = start(gate.clone()).await;
    let mut api = api::<BoxBody<Bytes, Infallible>>(&cache);
    let streaming = || full("stream").boxed();
    assert_eq!(send(&mut api, addr, "/orders", streaming()).await.0, StatusCode::OK);
    gate.rotate("token-2");
    // Refused: invalidated, not sent again; the caller gets the 401.
    assert_eq!(send(&mut api, addr, "/orders", streaming()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(gate.take_seen(), ["Bearer token-1", "Bearer token-1"]);
    assert_eq!(cache.stats().invalidations, 1);
    // The next request carries the fresh token.
    assert_eq!(send(&mut api, addr, "/orders", streaming()).await.0, StatusCode::OK);
    assert_eq!(gate.take_seen(), ["Bearer token-2"]);
}
