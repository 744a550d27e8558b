//! The synchronous [`CachedProvider::current`] and the background refresher
//! ([`CachedProvider::spawn_refresher`]), on a [`ManualClock`]: `current()`
//! never fetches and never serves a stale token; the refresher keeps it
//! answering through the refresh window, an invalidation and failures, and
//! stops with its handle or its cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock, ManualClock, TokenError, TokenProvider,
    TransportErrorKind, async_trait,
};
use tokio::time::timeout;

/// Guards against a hang; never a timing assertion.
const GUARD: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_hours(1);
/// Inside the default refresh window of a one-hour token (opens 720-792 s
/// before expiry), outside its 60 s margin.
const INTO_REFRESH_WINDOW: Duration = Duration::from_mins(50);

/// Hands out `token-N`, living an hour from the clock's reading, or fails.
#[derive(Debug)]
pub(crate) struct Counting {
    clock: ManualClock,
    calls: AtomicUsize,
    failing: AtomicBool,
}

impl Counting {
    pub(crate) fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            calls: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
        })
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

#[async_trait]
impl TokenProvider for Counting {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.failing.load(Ordering::SeqCst) {
            return Err(TokenError::transport(
                "counting",
                TransportErrorKind::Connect,
                "down",
                None,
            ));
        }
        Ok(AccessToken::builder(format!("token-{n}"), self.clock.timestamp())
            .expires_in(HOUR)
            .build())
    }
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

pub(crate) fn cache(clock: &ManualClock, upstream: &Arc<Counting>) -> CachedProvider {
    CachedProvider::new("sync", upstream.clone(), CacheConfig::default(), Arc::new(clock.clone()))
}

fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

/// Waits (yielding, never sleeping) until `done` holds.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    let waited = timeout(GUARD, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

#[tokio::test]
async fn current_never_fetches_and_never_serves_a_stale_token() {
    let clock = clock();
    let upstream = Counting::new(&clock);
    let cache = cache(&clock, &upstream);
    assert!(cache.current().is_none(), "nothing fetched yet");
    assert_eq!(upstream.calls(), 0, "current() does not fetch");

    let token = cache.token().await.unwrap();
    let current = cache.current().expect("a fresh token is current");
    assert!(current.same_token(&token));
    assert_eq!(cache.stats().hits, 1);

    // Past the 60 s margin: none, and still no fetch.
    clock.advance(Duration::from_secs(3541));
    assert!(cache.current().is_none(), "a token inside its margin is not current");
    tokio::task::yield_now().await;
    assert_eq!(upstream.calls(), 1);
    assert_eq!(cache.stats().hits, 1, "None counts nothing");

    // Invalidated: none.
    let fresh = cache.token().await.unwrap();
    assert_eq!(secret(&fresh), "token-2");
    cache.invalidate(&fresh);
    assert!(cache.current().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_in_the_refresh_window_serves_and_starts_one_refresh() {
    let clock = clock();
    let upstream = Counting::new(&clock);
    let cache = cache(&clock, &upstream);
    cache.token().await.unwrap();
    clock.advance(INTO_REFRESH_WINDOW);
    for _ in 0..100 {
        let token = cache.current().expect("still valid in the refresh window");
        assert!(["token-1", "token-2"].contains(&secret(&token).as_str()));
    }
    until("the refresh", || cache.stats().fetches == 2).await;
    until("the new token", || cache.current().is_some_and(|t| secret(&t) == "token-2")).await;
    assert_eq!((upstream.calls(), cache.stats().refreshes), (2, 1));
}

#[test]
fn current_outside_a_runtime_answers_without_pausing_the_refresh() {
    let clock = clock();
    let upstream = Counting::new(&clock);
    let cache = cache(&clock, &upstream);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(cache.token()).unwrap();
    clock.advance(INTO_REFRESH_WINDOW);
    // No runtime here: served, no refresh started...
    assert_eq!(secret(&cache.current().unwrap()), "token-1");
    assert_eq!(cache.stats().refreshes, 0);
    // ...and callers on a runtime still refresh in the background.
    rt.block_on(async {
        cache.token().await.unwrap();
        until("the refresh", || cache.stats().refreshes == 1 && upstream.calls() == 2).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_keeps_current_answering() {
    let clock = clock();
    let upstream = Counting::new(&clock);
    let cache = cache(&clock, &upstream);
    let refresher = cache.spawn_refresher();

    // It fetches the first token without a caller.
    until("the first token", || cache.current().is_some()).await;
    assert_eq!(upstream.calls(), 1);

    // It refreshes when the window opens, before anyone asks.
    clock.advance(INTO_REFRESH_WINDOW);
    until("the refresh", || upstream.calls() == 2).await;
    until("the new token", || cache.current().is_some_and(|t| secret(&t) == "token-2")).await;
    assert_eq!(cache.stats().refreshes, 1);
    assert_eq!(cache.stats().misses, 0, "the refresher's own fetches are not misses");

    // An invalidated token is replaced at once.
    cache.invalidate(&cache.current().unwrap());
    until("a fetch after the invalidation", || upstream.calls() == 3).await;
    until("the replacement", || cache.current().is_some_and(|t| secret(&t) == "token-3")).await;

    // Failures back off and are retried; the token stays in service while valid.
    upstream.fail(true);
    clock.advance(INTO_REFRESH_WINDOW);
    until("a failed refresh", || cache.stats().refresh_failures == 1).await;
    assert_eq!(secret(&cache.current().unwrap()), "token-3");
    upstream.fail(false);
    // The first backoff is at most 1 s.
    clock.advance(Duration::from_secs(1));
    until("the retry", || cache.current().is_some_and(|t| secret(&t) == "token-5")).await;
    assert_eq!(upstream.calls(), 5);

    // Dropped, it stops: the window opens again and nothing fetches.
    drop(refresher);
    clock.advance(INTO_REFRESH_WINDOW);
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(upstream.calls(), 5);
}

#[tokio::test]
async fn the_refresher_stops_with_its_cache() {
    let clock = clock();
    let upstream = Counting::new(&clock);
    let cache = cache(&clock, &upstream);
    let refresher = cache.spawn_refresher();
    until("the first token", || cache.current().is_some()).await;
    assert!(!refresher.is_finished());
    drop(cache);
    // Woken by the clock, it finds its cache gone.
    clock.advance(INTO_REFRESH_WINDOW);
    until("the refresher to stop", || refresher.is_finished()).await;
}
