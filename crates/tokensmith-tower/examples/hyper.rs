//! The layer on a hyper-util client, offline: tokens from the testkit's
//! Deyel emulator through the registry and its cache, sent to a small
//! resource server on 127.0.0.1 that refuses the first token it sees once
//! (as after a rotation). The second request recovers by itself: 401 →
//! invalidate → one retry with a fresh token.
//!
//! `cargo run -p tokensmith-tower --example hyper`

#![allow(clippy::print_stdout, reason = "an example shows what happened")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokensmith_core::Registry;
use tokensmith_testkit::{Emulator, Vendor};
use tokensmith_tower::AuthLayer;
use tower::{Service as _, ServiceExt as _};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The token endpoint and the provider (registry + cache), as in production.
    let emulator = Emulator::start(Vendor::Deyel).await?;
    let providers =
        Registry::new().with(tokensmith_deyel::Deyel).load_str(&emulator.config_snippet("api"))?;

    let resource = resource_server().await?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api =
        tower::ServiceBuilder::new().layer(AuthLayer::new(providers.get("api")?)).service(client);

    for n in 1..=2 {
        let request = Request::post(format!("http://{resource}/orders"))
            .body(Full::new(Bytes::from("{}")))?;
        let response = api.ready().await?.call(request).await?;
        println!("request {n}: {}", response.status());
        assert_eq!(response.status(), StatusCode::OK);
    }
    let stats = providers.cache_stats("api").expect("configured");
    println!(
        "tokens issued by the emulator: {}, invalidations: {}, cache hits: {}",
        emulator.tokens_issued(),
        stats.invalidations,
        stats.hits
    );
    assert_eq!((emulator.tokens_issued(), stats.invalidations), (2, 1));
    Ok(())
}

/// Answers 200 to a Bearer token, except that it refuses the first token it
/// sees from the second request on (401 with an `invalid_token` challenge).
async fn resource_server() -> Result<std::net::SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The first token seen: accepted once, refused afterwards.
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let first = first.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let auth =
                    req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                let refused = match &mut *first.lock().expect("not poisoned") {
                    slot @ None => {
                        *slot = Some(auth.to_owned());
                        false
                    }
                    Some(first) => first == auth,
                } || !auth.starts_with("Bearer ");
                let response = if refused {
                    Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .header("www-authenticate", r#"Bearer error="invalid_token""#)
                        .body(Full::new(Bytes::new()))
                } else {
                    Response::builder().body(Full::new(Bytes::from("ok")))
                };
                async move { Ok::<_, Infallible>(response.expect("a valid response")) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::spawn(connection);
        }
    });
    Ok(addr)
}
