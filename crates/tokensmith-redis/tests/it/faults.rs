//! Redis killed mid-run: bounded store errors, no caller error, one log
//! line per outage, and the connection manager reconnects after a restart.

use std::sync::Arc;
use std::time::Duration;

use tokensmith_core::{
    CacheConfig, CachedProvider, StoreErrorKind, SystemClock, TokenProvider as _, TokenStore as _,
};
use tokensmith_testkit::redis::RedisServer;

use crate::support::{Upstream, capture, identity, new_key, provider_key, sleep, store, token};

/// A generous bound for one failing call (the store's own is 500 ms here).
const BOUND: Duration = Duration::from_secs(3);

#[test]
fn a_killed_redis_fails_store_calls_in_bounded_time_and_the_store_reconnects_after_restart() {
    let mut server = RedisServer::start();
    let key = new_key();
    let (counts, logs) = capture(async {
        let s = store(&server, &key);
        let pk = provider_key(&s, "p").await;
        s.store(&pk, &token("tok-BEFORE", Duration::from_hours(1)), Duration::from_mins(10))
            .await
            .unwrap();
        server.kill();
        for _ in 0..3 {
            let err = tokio::time::timeout(BOUND, s.load(&pk)).await.expect("bounded").unwrap_err();
            assert!(
                matches!(err.kind(), StoreErrorKind::Unavailable | StoreErrorKind::Timeout),
                "{err}"
            );
        }
        // Callers never see it: the cache fetches for itself.
        let upstream = Arc::new(Upstream::default());
        let cached = |s| {
            CachedProvider::new(
                "p",
                upstream.clone(),
                CacheConfig::default(),
                Arc::new(SystemClock),
            )
            .with_store(Arc::new(s), identity("p"), Duration::from_secs(5))
        };
        let during = cached(s.clone());
        tokio::time::timeout(Duration::from_secs(10), during.token())
            .await
            .expect("bounded")
            .unwrap();
        assert_eq!(upstream.calls(), 1);

        server.restart();
        // The connection manager reconnects in the background.
        let mut tries = 0;
        while s.ping().await.is_err() {
            tries += 1;
            assert!(tries < 100, "never reconnected");
            sleep(Duration::from_millis(50)).await;
        }
        // Sharing resumes (the restarted Redis is empty).
        cached(s.clone()).token().await.unwrap();
        cached(store(&server, &key)).token().await.unwrap();
        (upstream.calls(), tries)
    });
    assert_eq!(counts.0, 2, "one fetch to refill the restarted Redis, then shared");
    assert_eq!(logs.matches("redis unusable").count(), 1, "once per outage: {logs}");
    assert_eq!(logs.matches("redis answers again").count(), 1, "{logs}");
    assert!(!logs.contains(&server.url()));
}
