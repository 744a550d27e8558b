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

/// The fault table's Redis rows (`docs/robustness.md`), one function per
/// fault: the cache under a Redis store that is down, slow or speaks
/// garbage.
mod rows {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use secrecy::ExposeSecret as _;
    use tokensmith_core::{
        AccessToken, CacheConfig, CachedProvider, Clock as _, ManualClock, TokenError,
        TokenProvider, async_trait,
    };
    use tokensmith_redis::{RedisStoreConfig, RedisTokenStore};
    use tokensmith_testkit::redis::{Garbage, HostileRedis, RedisServer};

    use crate::support::{capture, identity, new_key, sleep};

    /// Turns a hang into a failure (never a timing assertion).
    const GUARD: Duration = Duration::from_secs(20);
    /// The store's bound on one Redis call in these rows.
    const CALL_TIMEOUT: Duration = Duration::from_millis(500);
    /// Long, so a lease left behind would still be there when looked for.
    const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long the slow row's Redis holds every command.
    const PAUSE: Duration = Duration::from_secs(3);
    /// A password in the URL of the garbage rows: it must never show.
    const PASSWORD: &str = "redis-PASSWORD-9fQ2";
    const TOKEN_PREFIX: &str = "redis-fault-token";

    /// An upstream on the test's `ManualClock`: a new one-hour token per
    /// call, counted.
    #[derive(Debug)]
    struct Upstream {
        clock: ManualClock,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl TokenProvider for Upstream {
        async fn token(&self) -> Result<AccessToken, TokenError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AccessToken::builder(format!("{TOKEN_PREFIX}-{n}"), self.clock.now())
                .expires_in(Duration::from_hours(1))
                .build())
        }
    }

    impl Upstream {
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    enum Fault {
        /// The server killed: connection refused.
        Down,
        /// `CLIENT PAUSE` on the real server: every call times out.
        Slow,
        /// A hostile server in Redis' place from the start.
        Garbage(Garbage),
    }

    async fn guarded<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(GUARD, f).await.expect("the guard elapsed: a hang")
    }

    fn same(a: &AccessToken, b: &AccessToken) -> bool {
        a.secret().expose_secret() == b.secret().expose_secret()
    }

    /// One row: a token fetched (Redis still fine, except for garbage), the
    /// fault switched on; then the token in service keeps being served, a
    /// second cache on the same store ("another process") gets its own
    /// token from upstream, and the refresh window's background refresh
    /// fetches upstream without Redis: no caller error, every Redis call
    /// bounded. Returns the logs (trace level).
    fn row(fault: &Fault) -> String {
        let mut server = RedisServer::start();
        let hostile = match fault {
            Fault::Garbage(garbage) => Some(HostileRedis::start(*garbage)),
            _ => None,
        };
        let url = match &hostile {
            Some(hostile) => format!("redis://:{PASSWORD}@127.0.0.1:{}", hostile.port()),
            None => server.url(),
        };
        let key = new_key();
        let ((), logs) = capture(async {
            let clock = ManualClock::default();
            let upstream = Arc::new(Upstream { clock: clock.clone(), calls: AtomicUsize::new(0) });
            let config =
                RedisStoreConfig::new(url.as_str(), &key).unwrap().with_prefix("t").unwrap();
            let store = RedisTokenStore::new(config.with_call_timeout(CALL_TIMEOUT)).unwrap();
            let cached = || {
                CachedProvider::new(
                    "p",
                    upstream.clone(),
                    CacheConfig::default(),
                    Arc::new(clock.clone()),
                )
                .with_store(Arc::new(store.clone()), identity("p"), LOCK_TIMEOUT)
            };
            let first = cached();
            let t1 = guarded(first.token()).await.expect("no caller error");
            assert_eq!(upstream.calls(), 1);
            match fault {
                Fault::Down => server.kill(),
                Fault::Slow => server.pause_clients(PAUSE),
                Fault::Garbage(_) => {}
            }
            // A still-valid token keeps being served (the hit path never
            // touches Redis).
            assert!(same(&guarded(first.token()).await.unwrap(), &t1));
            // Another process: its own upstream fetch, no error.
            let other = cached();
            let t2 = guarded(other.token()).await.expect("no caller error");
            assert!(!same(&t1, &t2));
            assert_eq!(upstream.calls(), 2);
            // The refresh window: the token in service while the refresh
            // fetches upstream for itself.
            clock.advance(Duration::from_mins(50));
            assert!(same(&guarded(first.token()).await.unwrap(), &t1), "served during the refresh");
            let refreshed = guarded(async {
                loop {
                    let token = first.token().await.unwrap();
                    if !same(&token, &t1) {
                        return token;
                    }
                    sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            assert_eq!(upstream.calls(), 3);
            assert!(!same(&refreshed, &t2));
            for stats in [first.stats(), other.stats()] {
                assert_eq!((stats.failures, stats.refresh_failures), (0, 0), "{stats:?}");
            }
            assert_eq!(first.stats().refreshes, 1);
            if let Fault::Garbage(_) = fault {
                assert!(hostile.as_ref().unwrap().connections() > 0, "the store talked to it");
            }
        });
        if let Fault::Slow = fault {
            // Once Redis runs the commands it held: the store's token is
            // still the first one, and no lease was left behind (after a
            // read that timed out the cache did not ask for one).
            let pong = server.command(&["PING"]).unwrap();
            assert_eq!(pong, "+PONG");
            let dump = server.dump().unwrap();
            let names: Vec<String> =
                dump.iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect();
            assert!(
                names.iter().all(|n| !n.starts_with("t:lock:")),
                "a lease left behind: {names:?}"
            );
            assert_eq!(names.iter().filter(|n| n.starts_with("t:token:")).count(), 1, "{names:?}");
        }
        assert!(logs.contains("tokensmith::store"), "the failure was logged: {logs}");
        // After a read that failed the cache asks for no lease: one call
        // timeout per fetch, not two.
        assert!(!logs.contains("operation=\"lock\""), "a lease asked of a failing store: {logs}");
        // Nor what the server sent: redis-rs' own messages quote replies
        // ("value was …", "Unexpected `…`"), the store's never do.
        for needle in [PASSWORD, key.expose_secret(), TOKEN_PREFIX, "value was", "Unexpected `"] {
            assert!(!logs.contains(needle), "{needle:?} in the logs: {logs}");
        }
        logs
    }

    /// Whether a store call was logged as cut by its timeout (redis-rs'
    /// response timeout or the store's own, both the call timeout).
    fn timed_out(logs: &str) -> bool {
        logs.contains("redis load: timed out")
            || logs.contains("redis load: no answer within 500ms")
    }

    #[test]
    fn redis_down_fetches_locally_and_serves_on() {
        let logs = row(&Fault::Down);
        assert_eq!(logs.matches("redis unusable").count(), 1, "once per outage: {logs}");
    }

    #[test]
    fn redis_slow_is_cut_by_the_call_timeout_and_leaves_no_lease() {
        let logs = row(&Fault::Slow);
        assert!(timed_out(&logs), "{logs}");
        assert_eq!(logs.matches("redis unusable").count(), 1, "once per outage: {logs}");
    }

    #[test]
    fn redis_answering_not_resp_fetches_locally_and_serves_on() {
        let logs = row(&Fault::Garbage(Garbage::NotResp));
        assert!(logs.contains("redis unusable"), "{logs}");
    }

    #[test]
    fn redis_answering_wrong_replies_fetches_locally_and_serves_on() {
        row(&Fault::Garbage(Garbage::WrongReplies));
    }

    #[test]
    fn redis_announcing_an_endless_value_is_cut_by_the_call_timeout() {
        let logs = row(&Fault::Garbage(Garbage::EndlessBulk));
        assert!(timed_out(&logs), "{logs}");
    }
}
