//! The Redis store's slow path on a loopback `redis-server` (started by the
//! bench): a local miss served from Redis (a fresh cache per call: one
//! `GET`, AES-256-GCM open, decode) against a bare `GET` of the same value,
//! and `p50`/`p99` of both, interleaved call by call.
//!
//! `cargo bench -p tokensmith-redis` (needs `redis-server` on `PATH`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands as _;
use secrecy::SecretString;
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock, ProviderIdentity, SystemClock, TokenError,
    TokenProvider, TokenStore as _, async_trait,
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

    if !std::env::args().any(|arg| arg == "--bench") {
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
        "redis interleaved ({rounds} each): local miss + store hit p50 {hit50:.1?} p99 {hit99:.1?}; bare GET p50 {get50:.1?} p99 {get99:.1?}"
    ));
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

#[allow(clippy::print_stdout, reason = "a benchmark reports to the terminal, as criterion does")]
fn report(line: &str) {
    println!("{line}");
}

criterion_group!(benches, store_hit);
criterion_main!(benches);
