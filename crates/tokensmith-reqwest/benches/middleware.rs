//! The middleware's per-request overhead (`cargo bench -p tokensmith-reqwest`;
//! the numbers are recorded in `docs/BENCHMARKS.md`): one GET over loopback
//! through a `reqwest-middleware` client with
//!
//! - `token_middleware`: [`TokenMiddleware`] on a `CachedProvider` holding a
//!   valid token (a cache hit, the header built from the token's
//!   presentation, the request cloned for a possible replay), next to
//! - `static_header`: a middleware that sets a prebuilt
//!   `Authorization: Bearer …` value, the least a middleware can do.
//!
//! Both against the same local HTTP/1.1 server answering `200` at once, on
//! one current-thread runtime (so thread wake-ups add no noise). After the
//! Criterion group the binary prints the p50 of each, measured interleaved
//! request by request, and their ratio.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Extensions;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock as _, SharedTokenProvider, SystemClock,
};
use tokensmith_reqwest::TokenMiddleware;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const TOKEN: &str = "bench-access-token-0123456789abcdef0123456789abcdef";

#[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
fn now() -> Instant {
    Instant::now()
}

/// Sets a prebuilt header: the baseline.
struct StaticHeader(HeaderValue);

#[async_trait]
impl Middleware for StaticHeader {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        req.headers_mut().insert(AUTHORIZATION, self.0.clone());
        next.run(req, extensions).await
    }
}

/// A local HTTP/1.1 server answering every request with `200 ok`.
async fn start_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/devices")
}

fn client_with(middleware: impl Middleware) -> ClientWithMiddleware {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    reqwest_middleware::ClientBuilder::new(client).with(middleware).build()
}

async fn get(client: &ClientWithMiddleware, url: &str) {
    let response = client.get(url).send().await.expect("request");
    assert_eq!(response.status(), 200);
    black_box(response.bytes().await.expect("body"));
}

fn overhead(c: &mut Criterion) {
    let rt: Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let url = rt.block_on(start_server());

    let upstream: SharedTokenProvider = Arc::new(
        AccessToken::builder(TOKEN, SystemClock.timestamp())
            .expires_in(Duration::from_hours(1))
            .build(),
    );
    let cached: SharedTokenProvider = Arc::new(CachedProvider::new(
        "bench",
        upstream,
        CacheConfig::default(),
        Arc::new(SystemClock),
    ));
    let with_token = client_with(TokenMiddleware::new(cached));
    let mut value = HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header");
    value.set_sensitive(true);
    let with_static = client_with(StaticHeader(value));
    // Warm both connection pools (and the cache).
    rt.block_on(async {
        get(&with_token, &url).await;
        get(&with_static, &url).await;
    });

    let mut group = c.benchmark_group("middleware");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for (name, client) in [("static_header", &with_static), ("token_middleware", &with_token)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let began = now();
                    for _ in 0..iters {
                        get(client, &url).await;
                    }
                    began.elapsed()
                })
            });
        });
    }
    group.finish();

    if !bench_mode() || !selected("middleware/p50") {
        return;
    }
    // The p50 comparison: interleaved request by request (the order
    // alternating), so drift in the machine's load hits both alike.
    let rounds = 5000;
    let (static_p50, token_p50) = rt.block_on(async {
        let mut static_times = Vec::with_capacity(rounds);
        let mut token_times = Vec::with_capacity(rounds);
        for round in 0..rounds {
            for static_first in [round % 2 == 0, round % 2 == 1] {
                let began = now();
                if static_first {
                    get(&with_static, &url).await;
                    static_times.push(began.elapsed());
                } else {
                    get(&with_token, &url).await;
                    token_times.push(began.elapsed());
                }
            }
        }
        (median(static_times), median(token_times))
    });
    report(&format!(
        "middleware/p50 interleaved ({rounds} each): static_header {static_p50:.2?}, token_middleware {token_p50:.2?}, ratio {:.3}",
        token_p50.as_secs_f64() / static_p50.as_secs_f64()
    ));
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// Whether this is `cargo bench`: under `cargo test` criterion runs each
/// bench once, and the interleaved report is skipped.
fn bench_mode() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Whether the command line's filters (if any) name `bench`.
fn selected(bench: &str) -> bool {
    let filters = filters(std::env::args().skip(1));
    filters.is_empty() || filters.iter().any(|f| bench.contains(f.as_str()))
}

/// The filters among criterion's arguments: what is neither an option nor
/// the value of one (`--measurement-time 2` filters nothing).
fn filters(args: impl Iterator<Item = String>) -> Vec<String> {
    const TAKE_A_VALUE: [&str; 14] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
    ];
    let mut filters = Vec::new();
    let mut value_next = false;
    for arg in args {
        if std::mem::take(&mut value_next) {
            continue;
        }
        if arg.starts_with('-') {
            value_next = TAKE_A_VALUE.contains(&arg.as_str()) || arg == "-c";
        } else {
            filters.push(arg);
        }
    }
    filters
}

#[allow(clippy::print_stdout, reason = "a benchmark reports to the terminal, as criterion does")]
fn report(line: &str) {
    println!("{line}");
}

criterion_group!(benches, overhead);
criterion_main!(benches);
