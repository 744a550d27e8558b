//! Benchmarks of the token cache and the request helper, each next to its
//! baseline in the same run (`cargo bench -p tokensmith-core`; the numbers
//! and ratios are recorded in `docs/BENCHMARKS.md`):
//!
//! - `hit`: a cached `token()` called through `Arc<dyn TokenProvider>`, the
//!   way applications call it, next to `Arc::clone` of the same token; on one
//!   thread and on two threads hitting the same provider at once;
//! - `hit_store`: the same cached `token()` on a cache with a token store
//!   under it (a `FileTokenStore`) next to one without: the store is
//!   consulted only on a miss, so the hit path must not notice it (issue
//!   11: an interleaved ratio of at most 1.1x);
//! - `cold_start`: 1,000 and 10,000 concurrent callers on a cold cache
//!   against a local endpoint answering in 50 ms (exactly one upstream
//!   request each time, checked), next to one uncached fetch from it; the
//!   callers either as 1,000 / 10,000 spawned Tokio tasks, or as that many
//!   futures polled concurrently inside one task (as a server multiplexing
//!   requests on one connection does), which leaves out the runtime's cost of
//!   scheduling 10,000 tasks;
//! - `fetch`: uncached fetches through the core request helper
//!   (`TokenEndpoint::request().send()`) next to raw reqwest POSTs of the
//!   same form to the same local endpoint, by 1, 8 and 64 concurrent tasks
//!   (criterion's time per request is the inverse of requests per second);
//!   then the interleaved p50 of one request, and the interleaved
//!   requests-per-second ratio at each concurrency.

use std::convert::Infallible;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, ClientAuth, Clock, FileTokenStore, HttpSettings,
    ProviderIdentity, SharedTokenProvider, SystemClock, TokenEndpoint, TokenError, TokenProvider,
    Url, async_trait,
};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::Notify;

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

/// `provider.token().await?` where the token is cached: one poll, and the
/// token taken out of the `Result` as `?` does.
#[inline]
fn cached_token(provider: &SharedTokenProvider) -> AccessToken {
    match pin!(provider.token()).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(token)) => token,
        Poll::Ready(Err(err)) => panic!("{err}"),
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
    let cached = cached_token(&provider);
    assert!(cached_token(&provider).same_token(&cached));

    let mut group = c.benchmark_group("hit");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("arc_clone/1_thread", |b| b.iter(|| black_box(&cached).clone()));
    group.bench_function("cached_token/1_thread", |b| {
        b.iter(|| cached_token(black_box(&provider)));
    });
    group.bench_function("arc_clone/2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || black_box(&cached).clone()));
    });
    group.bench_function("cached_token/2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || cached_token(black_box(&provider))));
    });
    group.finish();

    // The ratios, measured interleaved batch by batch so that the host's
    // load (this is a shared VM) hits both sides alike.
    if !bench_mode() || !selected("hit/ratio") {
        return;
    }
    let rounds = 200;
    let batch: u32 = 100_000;
    for threads in [1, 2] {
        let time = |op: &(dyn Fn() + Sync)| {
            if threads == 1 {
                let began = now();
                for _ in 0..batch {
                    op();
                }
                began.elapsed()
            } else {
                on_two_threads(u64::from(batch), op)
            }
        };
        let (mut clones, mut hits) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            clones.push(time(&|| drop(black_box(black_box(&cached).clone()))));
            hits.push(time(&|| drop(black_box(cached_token(black_box(&provider))))));
        }
        let per_op = |times| median(times).as_secs_f64() * 1e9 / f64::from(batch);
        let (clone_ns, hit_ns) = (per_op(clones), per_op(hits));
        report(&format!(
            "hit/ratio interleaved ({threads} thread(s), {rounds} x {batch} calls): Arc::clone {clone_ns:.1} ns, cached token() {hit_ns:.1} ns, ratio {:.2}",
            hit_ns / clone_ns
        ));
    }
}

/// The hit path with a token store under the cache against the same cache
/// without one, one thread, interleaved batch by batch (issue 11's target:
/// at most 1.1x).
fn hit_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token =
        AccessToken::builder("bench-access-token", SystemClock.now()).expires_in(HOUR).build();
    let cache = || {
        CachedProvider::new(
            "bench",
            Arc::new(token.clone()),
            CacheConfig::default(),
            Arc::new(SystemClock),
        )
    };
    let plain: SharedTokenProvider = Arc::new(cache());
    let stored: SharedTokenProvider = Arc::new(
        cache().with_store(
            Arc::new(FileTokenStore::new(dir.path())),
            ProviderIdentity::new("bench")
                .field("client_id", CLIENT_ID)
                .secret("client_secret", CLIENT_SECRET),
            Duration::from_secs(10),
        ),
    );
    // The first call of each fills its cache (the store's through a miss,
    // the lease, the fetch and a write); every call after is a hit.
    let rt = runtime();
    for provider in [&plain, &stored] {
        rt.block_on(provider.token()).expect("a token");
    }
    assert!(cached_token(&stored).same_token(&cached_token(&stored)));

    let mut group = c.benchmark_group("hit_store");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("no_store/1_thread", |b| b.iter(|| cached_token(black_box(&plain))));
    group.bench_function("file_store/1_thread", |b| {
        b.iter(|| cached_token(black_box(&stored)));
    });
    group.finish();

    if !bench_mode() || !selected("hit_store/ratio") {
        return;
    }
    let (rounds, batch) = (200, 100_000_u32);
    let time = |provider: &SharedTokenProvider| {
        let began = now();
        for _ in 0..batch {
            drop(black_box(cached_token(black_box(provider))));
        }
        began.elapsed()
    };
    let (mut plains, mut storeds) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Which side goes first alternates too.
        if round % 2 == 0 {
            plains.push(time(&plain));
            storeds.push(time(&stored));
        } else {
            storeds.push(time(&stored));
            plains.push(time(&plain));
        }
    }
    let per_op = |times| median(times).as_secs_f64() * 1e9 / f64::from(batch);
    let (plain_ns, stored_ns) = (per_op(plains), per_op(storeds));
    report(&format!(
        "hit_store/ratio interleaved (1 thread, {rounds} x {batch} calls): no store {plain_ns:.1} ns, file store {stored_ns:.1} ns, ratio {:.3}",
        stored_ns / plain_ns
    ));
}

/// The synchronous `CachedProvider::current()` against `Arc::clone`, one
/// thread (issue 12's target: at most 3x).
fn current(c: &mut Criterion) {
    let token =
        AccessToken::builder("bench-access-token", SystemClock.now()).expires_in(HOUR).build();
    let cache = CachedProvider::new(
        "bench",
        Arc::new(token),
        CacheConfig::default(),
        Arc::new(SystemClock),
    );
    let rt = runtime();
    let cached = rt.block_on(cache.token()).expect("a token");
    assert!(cache.current().is_some_and(|t| t.same_token(&cached)));

    let mut group = c.benchmark_group("current");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("arc_clone/1_thread", |b| b.iter(|| black_box(&cached).clone()));
    group.bench_function("current/1_thread", |b| b.iter(|| black_box(&cache).current()));
    group.finish();

    if !bench_mode() || !selected("current/ratio") {
        return;
    }
    let (rounds, batch) = (200, 100_000_u32);
    let time = |op: &dyn Fn()| {
        let began = now();
        for _ in 0..batch {
            op();
        }
        began.elapsed()
    };
    let (mut clones, mut currents) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        clones.push(time(&|| drop(black_box(black_box(&cached).clone()))));
        currents.push(time(&|| drop(black_box(black_box(&cache).current()))));
    }
    let per_op = |times| median(times).as_secs_f64() * 1e9 / f64::from(batch);
    let (clone_ns, current_ns) = (per_op(clones), per_op(currents));
    report(&format!(
        "current/ratio interleaved (1 thread, {rounds} x {batch} calls): Arc::clone {clone_ns:.1} ns, current() {current_ns:.1} ns, ratio {:.2}",
        current_ns / clone_ns
    ));
}

/// A local token endpoint: `/slow` answers after [`UPSTREAM_LATENCY`],
/// anything else at once. Counts requests.
struct LocalEndpoint {
    base: Url,
    requests: Arc<AtomicUsize>,
}

impl LocalEndpoint {
    /// Serves on its own thread and runtime, as a separate process would, so
    /// the callers being measured do not delay its answers.
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
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

/// A way of starting `n` concurrent callers on a cache; returns the time until the last has its token.
type Callers = fn(Arc<CachedProvider>, usize) -> BoxFuture<'static, Duration>;

fn cold_start(c: &mut Criterion) {
    let rt = runtime();
    let server = LocalEndpoint::start();
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
    // Callers as spawned tasks, then as futures polled by one task.
    let shapes: [(&str, Callers); 2] = [
        ("", |cache, n| Box::pin(concurrent_callers(cache, n))),
        ("_in_one_task", |cache, n| Box::pin(concurrent_futures(cache, n))),
    ];
    for (suffix, run) in shapes {
        for callers in [1_000, 10_000] {
            group.bench_function(format!("{callers}_callers{suffix}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let cache = Arc::new(CachedProvider::new(
                            "bench",
                            inner.clone(),
                            CacheConfig::default(),
                            Arc::new(SystemClock),
                        ));
                        let before = server.requests();
                        // Measured on a worker, as a service's own tasks run.
                        total += rt.block_on(rt.spawn(run(cache, callers))).expect("bench task");
                        assert_eq!(server.requests() - before, 1, "one upstream request");
                    }
                    total
                });
            });
        }
    }
    // The runtime's own share: the same 10,000 tasks on a warm cache (no
    // fetch, no waiting), so the cold-start overhead can be split into the
    // runtime's and the cache's.
    group.bench_function("10000_callers_warm_cache", |b| {
        let cache = Arc::new(CachedProvider::new(
            "bench",
            inner.clone(),
            CacheConfig::default(),
            Arc::new(SystemClock),
        ));
        rt.block_on(cache.token()).expect("token");
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt
                    .block_on(rt.spawn(concurrent_callers(cache.clone(), 10_000)))
                    .expect("bench task");
            }
            total
        });
    });
    group.finish();
}

/// Starts `callers` tasks asking `cache` for a token at once; the time until
/// the last one has it.
async fn concurrent_callers(cache: Arc<CachedProvider>, callers: usize) -> Duration {
    let remaining = Arc::new(AtomicUsize::new(callers));
    let all_done = Arc::new(Notify::new());
    let first = Arc::new(OnceLock::new());
    let began = now();
    for _ in 0..callers {
        let (cache, remaining, all_done, first) =
            (cache.clone(), remaining.clone(), all_done.clone(), first.clone());
        tokio::spawn(async move {
            let token = cache.token().await.expect("token");
            // Every caller gets the one token fetched.
            assert!(first.get_or_init(|| token.clone()).same_token(&token));
            if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_done.notify_one();
            }
        });
    }
    all_done.notified().await;
    began.elapsed()
}

/// `callers` calls of `cache.token()` started at once as futures polled
/// concurrently by this one task; the time until the last one has its token.
async fn concurrent_futures(cache: Arc<CachedProvider>, callers: usize) -> Duration {
    let began = now();
    let mut pending: FuturesUnordered<_> = (0..callers).map(|_| cache.token()).collect();
    let mut first: Option<AccessToken> = None;
    while let Some(result) = pending.next().await {
        let token = result.expect("token");
        // Every caller gets the one token fetched.
        assert!(first.get_or_insert_with(|| token.clone()).same_token(&token));
    }
    began.elapsed()
}

/// One side of the fetch comparison, cheap to clone into spawned tasks.
#[derive(Clone)]
enum Fetcher {
    /// A raw reqwest POST of the same form, the body read to the end.
    Raw { client: reqwest::Client, url: Url },
    /// The core request helper, the response parsed into a token.
    Helper(Arc<ClientCredentials>),
}

impl Fetcher {
    async fn once(&self) {
        match self {
            Self::Raw { client, url } => {
                let body = client
                    .post(url.clone())
                    .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                    .form(&FORM)
                    .send()
                    .await
                    .expect("raw POST")
                    .bytes()
                    .await
                    .expect("raw body");
                black_box(body);
            }
            Self::Helper(helper) => {
                black_box(helper.fetch().await.expect("token"));
            }
        }
    }

    /// `requests` requests made by `concurrency` spawned tasks, each sending
    /// its share one after the other; the time until the last answer.
    async fn batch(&self, concurrency: usize, requests: u64) -> Duration {
        let per_task = requests.div_ceil(concurrency as u64);
        let began = now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let fetcher = self.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        fetcher.once().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("fetch task");
        }
        began.elapsed()
    }
}

/// The concurrency levels of the fetch benchmarks.
const CONCURRENCY: [usize; 3] = [1, 8, 64];

#[allow(clippy::cast_precision_loss, reason = "request counts stay far below 2^52")]
fn fetch(c: &mut Criterion) {
    let rt = runtime();
    let server = LocalEndpoint::start();
    let url = server.url("token");
    let helper = Fetcher::Helper(Arc::new(ClientCredentials::new(url.clone())));
    let client = raw_client();
    let raw = Fetcher::Raw { client, url };
    rt.block_on(helper.once());
    rt.block_on(raw.once());

    let mut group = c.benchmark_group("fetch");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for concurrency in CONCURRENCY {
        for (name, fetcher) in [("raw_reqwest", &raw), ("request_helper", &helper)] {
            // Criterion's time per iteration is one request's share of the
            // batch: the inverse of requests per second.
            group.bench_function(format!("{name}/concurrency_{concurrency}"), |b| {
                b.iter_custom(|iters| {
                    let requests = iters.max(concurrency as u64);
                    let time = rt.block_on(fetcher.batch(concurrency, requests));
                    time.mul_f64(iters as f64 / requests as f64)
                });
            });
        }
    }
    group.finish();

    // The p50 comparison: the two interleaved request by request, so drift
    // in the machine's load hits both alike.
    if bench_mode() && selected("fetch/p50") {
        let rounds = 2000;
        let (raw_p50, helper_p50) = rt.block_on(async {
            let mut raw_times = Vec::with_capacity(rounds);
            let mut helper_times = Vec::with_capacity(rounds);
            for round in 0..rounds {
                for first_raw in [round % 2 == 0, round % 2 == 1] {
                    let began = now();
                    if first_raw {
                        raw.once().await;
                        raw_times.push(began.elapsed());
                    } else {
                        helper.once().await;
                        helper_times.push(began.elapsed());
                    }
                }
            }
            (median(raw_times), median(helper_times))
        });
        report(&format!(
            "fetch/p50 interleaved ({rounds} each): raw_reqwest {raw_p50:.1?}, request_helper {helper_p50:.1?}, ratio {:.3}",
            helper_p50.as_secs_f64() / raw_p50.as_secs_f64()
        ));
    }

    // Requests per second under concurrency: batches of each side
    // alternating (which goes first alternating too), the ratio taken per
    // pair of batches run back to back, its median reported. Measured twice:
    // on the two-worker runtime above, and on a current-thread runtime (with
    // its own endpoint and clients, so no connection crosses runtimes). On
    // two workers the caller task and each connection's driver task may land
    // on the same worker or on different ones, and that placement holds for
    // a whole run: concurrency 1 then swings between two modes (see
    // docs/BENCHMARKS.md). One thread has no placement to draw, so it shows
    // the helper's own cost per request.
    if bench_mode() && selected("fetch/rps") {
        let single = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("current-thread runtime");
        let single_server = LocalEndpoint::start();
        let single_url = single_server.url("token");
        let (single_raw, single_helper) = single.block_on(async {
            let helper = Fetcher::Helper(Arc::new(ClientCredentials::new(single_url.clone())));
            let raw = Fetcher::Raw { client: raw_client(), url: single_url };
            helper.once().await;
            raw.once().await;
            (raw, helper)
        });
        let sides = [
            ("multi-thread, 2 workers", &rt, &raw, &helper),
            ("current-thread", &single, &single_raw, &single_helper),
        ];
        for (runtime_name, rt, raw, helper) in sides {
            for concurrency in CONCURRENCY {
                let (raw_rps, helper_rps, ratio) = rt.block_on(rps_ratio(raw, helper, concurrency));
                report(&format!(
                    "fetch/rps interleaved ({runtime_name}, concurrency {concurrency}, {RPS_ROUNDS} x {RPS_REQUESTS} requests each): raw_reqwest {raw_rps:.0}/s, request_helper {helper_rps:.0}/s, raw/helper ratio {ratio:.3}"
                ));
            }
        }
    }
}

/// Pairs of batches per requests-per-second comparison.
const RPS_ROUNDS: usize = 40;
/// Requests per batch in the requests-per-second comparison.
const RPS_REQUESTS: u64 = 1024;

/// Median requests/s of each side and median raw/helper ratio over
/// [`RPS_ROUNDS`] interleaved pairs of batches.
#[allow(clippy::cast_precision_loss, reason = "request counts stay far below 2^52")]
async fn rps_ratio(raw: &Fetcher, helper: &Fetcher, concurrency: usize) -> (f64, f64, f64) {
    let (mut raw_rps, mut helper_rps, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..RPS_ROUNDS {
        let (raw_time, helper_time) = if round % 2 == 0 {
            let r = raw.batch(concurrency, RPS_REQUESTS).await;
            (r, helper.batch(concurrency, RPS_REQUESTS).await)
        } else {
            let h = helper.batch(concurrency, RPS_REQUESTS).await;
            (raw.batch(concurrency, RPS_REQUESTS).await, h)
        };
        let rps = |t: Duration| RPS_REQUESTS as f64 / t.as_secs_f64();
        raw_rps.push(rps(raw_time));
        helper_rps.push(rps(helper_time));
        ratios.push(rps(raw_time) / rps(helper_time));
    }
    (median_f64(raw_rps), median_f64(helper_rps), median_f64(ratios))
}

/// A plain reqwest client with the settings the helper uses for a loopback
/// endpoint: the default timeout, no redirects, no proxy.
fn raw_client() -> reqwest::Client {
    // reqwest 0.13 with `rustls-no-provider` (as core enables it) needs a
    // process-wide provider to build a client without a rustls config.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(HttpSettings::default().timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// Whether this is `cargo bench`: under `cargo test` criterion runs each
/// bench once, and the interleaved reports are skipped.
fn bench_mode() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Whether the command line's filters (if any) name `bench`, as criterion's
/// own filters would (plain substrings here).
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

criterion_group!(benches, hit, hit_store, current, cold_start, fetch);
criterion_main!(benches);
