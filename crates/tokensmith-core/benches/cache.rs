//! Benchmarks of the token cache and the request helper, each next to its
//! baseline in the same run (`cargo bench -p tokensmith-core`; the numbers
//! and ratios are recorded in `docs/BENCHMARKS.md`):
//!
//! - `hit`: a cached `token()` called through `Arc<dyn TokenProvider>`, the
//!   way applications call it, next to `Arc::clone` of the same token; on one
//!   thread and on two threads hitting the same provider at once;
//! - `cold_start`: 1,000 and 10,000 concurrent callers on a cold cache
//!   against a local endpoint answering in 50 ms (exactly one upstream
//!   request each time, checked), next to one uncached fetch from it;
//! - `fetch`: one uncached fetch through the core request helper
//!   (`TokenEndpoint::request().send()`) next to a raw reqwest POST of the
//!   same form to the same local endpoint.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokensmith_core::http::build_client;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, ClientAuth, Clock, HttpSettings, SharedTokenProvider,
    SystemClock, TokenEndpoint, TokenError, TokenProvider, Url, async_trait,
};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const HOUR: Duration = Duration::from_hours(1);
/// How long the slow endpoint takes to answer.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(50);
const TOKEN_BODY: &[u8] =
    br#"{"access_token":"bench-access-token","token_type":"Bearer","expires_in":3600,"scope":"read write"}"#;
const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-secret";
const FORM: [(&str, &str); 2] = [("grant_type", "client_credentials"), ("scope", "read write")];

#[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
fn now() -> Instant {
    Instant::now()
}

/// Polls a future once: a cached `token()` is ready at once.
fn ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a cached token() must be ready at once"),
    }
}

/// Runs `op` `iters` times on each of two threads started together; the
/// time of the slower thread.
fn on_two_threads<T>(iters: u64, op: impl Fn() -> T + Sync) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let began = now();
                    for _ in 0..iters {
                        black_box(op());
                    }
                    began.elapsed()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn hit(c: &mut Criterion) {
    let token =
        AccessToken::builder("bench-access-token", SystemClock.now()).expires_in(HOUR).build();
    let provider: SharedTokenProvider = Arc::new(CachedProvider::new(
        "bench",
        Arc::new(token.clone()),
        CacheConfig::default(),
        Arc::new(SystemClock),
    ));
    let cached = ready(provider.token()).expect("first fetch");
    assert!(ready(provider.token()).expect("hit").same_token(&cached));

    let mut group = c.benchmark_group("hit");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("arc_clone/1_thread", |b| b.iter(|| black_box(&cached).clone()));
    group.bench_function("cached_token/1_thread", |b| {
        b.iter(|| ready(black_box(&provider).token()));
    });
    group.bench_function("arc_clone/2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || black_box(&cached).clone()));
    });
    group.bench_function("cached_token/2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || ready(black_box(&provider).token())));
    });
    group.finish();
}

/// A local token endpoint: `/slow` answers after [`UPSTREAM_LATENCY`],
/// anything else at once. Counts requests.
struct LocalEndpoint {
    base: Url,
    requests: Arc<AtomicUsize>,
}

impl LocalEndpoint {
    fn start(rt: &Runtime) -> Self {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        answer(req, counter.clone())
                    });
                    let _closed = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let base = Url::parse(&format!("http://{addr}/")).expect("url");
        Self { base, requests }
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("url")
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer(
    req: Request<Incoming>,
    requests: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    requests.fetch_add(1, Ordering::SeqCst);
    let slow = req.uri().path() == "/slow";
    let _form = req.into_body().collect().await;
    if slow {
        #[allow(clippy::disallowed_methods, reason = "the local endpoint's answer delay")]
        tokio::time::sleep(UPSTREAM_LATENCY).await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(TOKEN_BODY)));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("header"));
    Ok(response)
}

/// A minimal client-credentials adapter on the core request helper.
#[derive(Debug)]
struct ClientCredentials {
    endpoint: TokenEndpoint,
    secret: SecretString,
}

impl ClientCredentials {
    fn new(url: Url) -> Self {
        let endpoint =
            TokenEndpoint::new("bench", url, &HttpSettings::default(), Arc::new(SystemClock))
                .expect("endpoint");
        Self { endpoint, secret: SecretString::from(CLIENT_SECRET) }
    }

    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let mut request = self.endpoint.request().client_auth(
            ClientAuth::BasicRaw,
            CLIENT_ID,
            Some(&self.secret),
        );
        for (name, value) in FORM {
            request = request.param(name, value);
        }
        request.send().await
    }
}

#[async_trait]
impl TokenProvider for ClientCredentials {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn cold_start(c: &mut Criterion) {
    let rt = runtime();
    let server = LocalEndpoint::start(&rt);
    let inner: SharedTokenProvider = Arc::new(ClientCredentials::new(server.url("slow")));
    // Connect once, as a running service has.
    rt.block_on(inner.token()).expect("the local endpoint answers a token");

    let mut group = c.benchmark_group("cold_start");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("one_fetch", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = now();
                for _ in 0..iters {
                    inner.token().await.expect("token");
                }
                began.elapsed()
            })
        });
    });
    for callers in [1_000, 10_000] {
        group.bench_function(format!("{callers}_callers"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let cache = Arc::new(CachedProvider::new(
                            "bench",
                            inner.clone(),
                            CacheConfig::default(),
                            Arc::new(SystemClock),
                        ));
                        let before = server.requests();
                        let began = now();
                        let tasks: Vec<_> = (0..callers)
                            .map(|_| {
                                let cache = cache.clone();
                                tokio::spawn(async move { cache.token().await })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("caller task").expect("token");
                        }
                        total += began.elapsed();
                        assert_eq!(server.requests() - before, 1, "one upstream request");
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

fn fetch(c: &mut Criterion) {
    let rt = runtime();
    let server = LocalEndpoint::start(&rt);
    let url = server.url("token");
    let helper = ClientCredentials::new(url.clone());
    let client = build_client("bench", &HttpSettings::default()).expect("client");
    let raw = || async {
        client
            .post(url.clone())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&FORM)
            .send()
            .await
            .expect("raw POST")
            .bytes()
            .await
            .expect("raw body")
    };
    rt.block_on(helper.fetch()).expect("the local endpoint answers a token");
    rt.block_on(raw());

    let mut group = c.benchmark_group("fetch");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    group.bench_function("raw_reqwest", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = now();
                for _ in 0..iters {
                    black_box(raw().await);
                }
                began.elapsed()
            })
        });
    });
    group.bench_function("request_helper", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = now();
                for _ in 0..iters {
                    black_box(helper.fetch().await.expect("token"));
                }
                began.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, hit, cold_start, fetch);
criterion_main!(benches);
