//! The Redis store on a loopback `redis-server` (started by the bench):
//!
//! - `redis/`: the slow path, a local miss served from Redis (a fresh cache
//!   per call: one `GET`, AES-256-GCM open, decode) against a bare `GET` of
//!   the same value, and `p50`/`p99` of both, interleaved call by call;
//! - `redis_hit/`: the hit path of a cache with the Redis store under it
//!   against the same cache without a store, and their ratio interleaved
//!   batch by batch (issue 11: at most 1.1x; the hit path never touches the
//!   store).
//!
//! `cargo bench -p tokensmith-redis` (needs `redis-server` on `PATH`).

use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands as _;
use secrecy::SecretString;
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock, ProviderIdentity, SharedTokenProvider,
    SystemClock, TokenError, TokenProvider, TokenStore as _, async_trait,
};
use tokensmith_redis::{RedisStoreConfig, RedisTokenStore};
use tokensmith_testkit::redis::RedisServer;

/// An upstream that must never be asked (every call is a store hit).
#[derive(Debug)]
struct Never;

#[async_trait]
impl TokenProvider for Never {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        Err(TokenError::config(None, None, "the bench's upstream was asked"))
    }
}

fn identity() -> ProviderIdentity {
    ProviderIdentity::new("bench").field("client_id", "me").secret("client_secret", "s")
}

fn store_hit(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7_u8; 32]));
    let store = RedisTokenStore::new(RedisStoreConfig::new(server.url(), &key).unwrap()).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let (mut raw, name) = rt.block_on(async {
        let naming = store.naming_key().await.unwrap();
        let pk = identity().key(&naming);
        // A JWT-sized token (1 KiB), valid for an hour.
        let token = AccessToken::builder("x".repeat(1024), SystemClock.now())
            .expires_in(Duration::from_hours(1))
            .build();
        store.store(&pk, &token, Duration::from_mins(50)).await.unwrap();
        let raw = redis::aio::ConnectionManager::new(client).await.unwrap();
        (raw, store.token_key(&pk))
    });
    let shared: Arc<RedisTokenStore> = Arc::new(store);
    let miss_then_hit = || {
        let cached = CachedProvider::new(
            "bench",
            Arc::new(Never),
            CacheConfig::default(),
            Arc::new(SystemClock),
        )
        .with_store(shared.clone(), identity(), Duration::from_secs(10));
        async move { cached.token().await.expect("a store hit") }
    };

    let mut group = c.benchmark_group("redis");
    group.bench_function("local_miss_store_hit", |b| {
        b.iter(|| rt.block_on(async { black_box(miss_then_hit().await) }));
    });
    group.bench_function("bare_get", |b| {
        b.iter(|| rt.block_on(async { black_box(raw.get::<_, Vec<u8>>(&name).await.unwrap()) }));
    });
    group.finish();

    if !bench_mode() || !selected("redis/p50_p99") {
        return;
    }
    let rounds = 5000;
    let (mut hits, mut gets) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    rt.block_on(async {
        for round in 0..rounds {
            for hit_first in [round % 2 == 0, round % 2 == 1] {
                let began = SystemClock.monotonic();
                if hit_first {
                    black_box(miss_then_hit().await);
                    hits.push(SystemClock.monotonic().saturating_sub(began));
                } else {
                    black_box(raw.get::<_, Vec<u8>>(&name).await.unwrap());
                    gets.push(SystemClock.monotonic().saturating_sub(began));
                }
            }
        }
    });
    let (hit50, hit99) = percentiles(hits);
    let (get50, get99) = percentiles(gets);
    report(&format!(
        "redis/p50_p99 interleaved ({rounds} each): local miss + store hit p50 {hit50:.1?} p99 {hit99:.1?}; bare GET p50 {get50:.1?} p99 {get99:.1?}"
    ));
}

/// `provider.token().await?` where the token is cached: one poll.
#[inline]
fn cached_token(provider: &SharedTokenProvider) -> AccessToken {
    match pin!(provider.token()).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(token)) => token,
        Poll::Ready(Err(err)) => panic!("{err}"),
        Poll::Pending => panic!("a cached token() must be ready at once"),
    }
}

/// The hit path with the Redis store under the cache against the same
/// cache without a store, one thread.
fn hit(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7_u8; 32]));
    let store = RedisTokenStore::new(RedisStoreConfig::new(server.url(), &key).unwrap()).unwrap();
    let token = AccessToken::builder("x".repeat(1024), SystemClock.now())
        .expires_in(Duration::from_hours(1))
        .build();
    let cache = || {
        CachedProvider::new(
            "bench",
            Arc::new(token.clone()),
            CacheConfig::default(),
            Arc::new(SystemClock),
        )
    };
    let plain: SharedTokenProvider = Arc::new(cache());
    let stored: SharedTokenProvider =
        Arc::new(cache().with_store(Arc::new(store), identity(), Duration::from_secs(10)));
    // The first call fills each cache (the store's through Redis).
    for provider in [&plain, &stored] {
        rt.block_on(provider.token()).expect("a token");
    }
    assert_eq!(server.dump().unwrap().len(), 1, "the token went through Redis");

    let mut group = c.benchmark_group("redis_hit");
    group.bench_function("no_store", |b| b.iter(|| cached_token(black_box(&plain))));
    group.bench_function("redis_store", |b| b.iter(|| cached_token(black_box(&stored))));
    group.finish();

    if !bench_mode() || !selected("redis_hit/ratio") {
        return;
    }
    let (rounds, batch) = (200, 100_000_u32);
    let time = |provider: &SharedTokenProvider| {
        let began = SystemClock.monotonic();
        for _ in 0..batch {
            drop(black_box(cached_token(black_box(provider))));
        }
        SystemClock.monotonic().saturating_sub(began)
    };
    let (mut plains, mut storeds) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            plains.push(time(&plain));
            storeds.push(time(&stored));
        } else {
            storeds.push(time(&stored));
            plains.push(time(&plain));
        }
    }
    let per_op = |mut times: Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2].as_secs_f64() * 1e9 / f64::from(batch)
    };
    let (plain_ns, stored_ns) = (per_op(plains), per_op(storeds));
    report(&format!(
        "redis_hit/ratio interleaved (1 thread, {rounds} x {batch} calls): no store {plain_ns:.1} ns, Redis store {stored_ns:.1} ns, ratio {:.3}",
        stored_ns / plain_ns
    ));
}

/// Whether this is `cargo bench` (under `cargo test` the interleaved
/// reports are skipped).
fn bench_mode() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Whether the command line's filters (if any) name `bench`, as criterion's
/// own filters would (plain substrings here).
fn selected(bench: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| bench.contains(f.as_str()))
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

#[allow(clippy::print_stdout, reason = "a benchmark reports to the terminal, as criterion does")]
fn report(line: &str) {
    println!("{line}");
}

criterion_group!(benches, store_hit, hit);
criterion_main!(benches);
