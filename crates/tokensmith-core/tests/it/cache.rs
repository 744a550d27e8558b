//! The token cache against a counting upstream and a [`ManualClock`]:
//! single-flight, refresh-ahead, serve-while-valid with backoff, expiry with
//! the upstream down, invalidate, margins and the default lifetime.
//!
//! No test sleeps: time moves only when a test advances the clock. The few
//! timeouts are guards against a hang, never timing assertions.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use tokensmith_core::{
    AccessToken, AdapterFactory, CacheConfig, CachedProvider, Clock, DEFAULT_LIFETIME, ManualClock,
    ProviderContext, RawResponse, Registry, SharedTokenProvider, TokenError, TokenProvider,
    TransportErrorKind, async_trait, parse_response,
};
use tokio::sync::watch;
use tokio::time::timeout;

const HOUR: Duration = Duration::from_hours(1);
/// The documented backoff (docs/cache.md): full jitter up to `min(30 s, 1 s x 2^(n-1))`
/// after `n` consecutive failures, at least 100 ms. Written out here, not imported: the
/// numbers are behaviour users rely on, and a change of them should fail this test.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const BACKOFF_FLOOR: Duration = Duration::from_millis(100);
/// Guards against a hang; generous for a loaded 2-core machine.
const GUARD: Duration = Duration::from_secs(30);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A counting token endpoint: hands out `token-N` tokens (or a configured
/// error), can be held blocked, and tracks how many requests overlap.
#[derive(Debug)]
struct Upstream {
    clock: ManualClock,
    lifetime: Mutex<Option<Duration>>,
    failure: Mutex<Option<TokenError>>,
    open: watch::Sender<bool>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    call_times: Mutex<Vec<SystemTime>>,
}

impl Upstream {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            lifetime: Mutex::new(Some(HOUR)),
            failure: Mutex::new(None),
            open: watch::channel(true).0,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            call_times: Mutex::new(Vec::new()),
        })
    }

    /// Requests from now on wait until [`release`](Self::release).
    fn hold(&self) {
        self.open.send_replace(false);
    }

    fn release(&self) {
        self.open.send_replace(true);
    }

    fn fail_with(&self, err: Option<TokenError>) {
        *self.failure.lock().unwrap() = err;
    }

    fn set_lifetime(&self, lifetime: Option<Duration>) {
        *self.lifetime.lock().unwrap() = lifetime;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn call_times(&self) -> Vec<SystemTime> {
        self.call_times.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenProvider for Upstream {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.call_times.lock().unwrap().push(self.clock.now());
        let overlapping = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(overlapping, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let opened = open.wait_for(|open| *open).await.is_ok();
        assert!(opened, "the gate's sender lives as long as the upstream");
        let failure = self.failure.lock().unwrap().clone();
        let result = if let Some(err) = failure {
            Err(err)
        } else {
            let lifetime = *self.lifetime.lock().unwrap();
            let builder = AccessToken::builder(format!("token-{n}"), self.clock.now());
            Ok(match lifetime {
                Some(l) => builder.expires_in(l),
                None => builder,
            }
            .build())
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + secs(1_700_000_000))
}

fn cached(upstream: &Arc<Upstream>, config: CacheConfig) -> Arc<CachedProvider> {
    Arc::new(CachedProvider::new(
        "test",
        upstream.clone(),
        config,
        Arc::new(upstream.clock.clone()),
    ))
}

/// Waits (yielding, never sleeping) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = timeout(GUARD, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting until {what}");
}

fn connect_error() -> TokenError {
    TokenError::transport("test", TransportErrorKind::Connect, "connection refused", None)
}

/// What a server answering `invalid_client` yields: an error retrying
/// cannot fix.
fn invalid_client(now: SystemTime) -> TokenError {
    let body = br#"{"error":"invalid_client","error_description":"bad secret"}"#;
    let err = parse_response("test", &RawResponse::new(401, Some("application/json"), body), now)
        .expect_err("a 401 is an error");
    assert!(!err.is_retryable(), "{err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_on_a_cold_cache_share_one_request() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());

    let callers: Vec<_> = (0..10_000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    // Every caller is waiting on the one request before it may answer.
    wait_until("all callers wait", || cache.stats().misses == 10_000).await;
    assert_eq!(upstream.calls(), 1);
    upstream.release();

    let mut tokens = Vec::with_capacity(callers.len());
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(upstream.calls(), 1);
    let stats = cache.stats();
    assert_eq!((stats.fetches, stats.misses, stats.hits), (1, 10_000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_share_the_error_too() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.fail_with(Some(connect_error()));
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());

    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    wait_until("all callers wait", || cache.stats().misses == 1000).await;
    upstream.release();
    for caller in callers {
        let err = caller.await.unwrap().unwrap_err();
        assert!(matches!(err, TokenError::Transport { kind: TransportErrorKind::Connect, .. }));
    }
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_serves_the_current_token_while_the_upstream_is_blocked() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    let first = cache.token().await.unwrap();

    // A one-hour token: margin 60 s, refresh window from 2880 s (up to 72 s
    // earlier with jitter), stale at 3540 s.
    clock.advance(secs(2879 - 72));
    assert!(cache.token().await.unwrap().same_token(&first));
    assert_eq!((upstream.calls(), cache.stats().refreshes), (1, 0), "not inside the window yet");

    clock.advance(secs(100));
    upstream.hold();
    for _ in 0..100 {
        let token = timeout(GUARD, cache.token()).await.expect("a caller waited on the upstream");
        assert!(token.unwrap().same_token(&first));
    }
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    for caller in callers {
        let token = timeout(GUARD, caller).await.expect("a caller waited on the upstream");
        assert!(token.unwrap().unwrap().same_token(&first));
    }
    // The one refresh is at the upstream, held there.
    wait_until("the refresh reaches the upstream", || upstream.calls() == 2).await;
    assert_eq!(cache.stats().refreshes, 1);
    assert!(cache.token().await.unwrap().same_token(&first));

    upstream.release();
    let second = timeout(GUARD, async {
        loop {
            let token = cache.token().await.unwrap();
            if !token.same_token(&first) {
                break token;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the refreshed token arrives");
    assert_eq!(upstream.calls(), 2);
    assert_eq!(cache.stats().refreshes, 1);
    assert!(cache.token().await.unwrap().same_token(&second));
}

#[tokio::test]
async fn a_failing_refresh_keeps_serving_the_token_and_backs_off() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    let first = cache.token().await.unwrap();
    upstream.fail_with(Some(connect_error()));

    // Inside the refresh window, 560 s before the token goes stale: call
    // every 100 ms for 300 s.
    clock.advance(secs(2980));
    let step = Duration::from_millis(100);
    let calls = 3000;
    for _ in 0..calls {
        let token = cache.token().await.expect("the valid token is served");
        assert!(token.same_token(&first));
        // Let a refresh spawned by this call fail before time moves on.
        wait_until("the refresh fails", || {
            let s = cache.stats();
            s.refreshes == s.refresh_failures
        })
        .await;
        clock.advance(step);
    }

    let attempts = &upstream.call_times()[1..];
    // Each gap is at least the floor and at most the backoff bound for that
    // many consecutive failures (plus one step of the calling cadence).
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        let doublings = u32::try_from(i).unwrap().min(16);
        let bound = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP);
        assert!(gap >= BACKOFF_FLOOR, "retry {} after {gap:?}", i + 1);
        assert!(gap <= bound + step, "retry {} after {gap:?}, bound {bound:?}", i + 1);
    }
    // 300 s with retries at most 30.1 s apart.
    assert!(attempts.len() >= 10, "{} attempts", attempts.len());
    let stats = cache.stats();
    assert_eq!(stats.refreshes, u64::try_from(attempts.len()).unwrap());
    assert_eq!(stats.refresh_failures, stats.refreshes);
    assert_eq!(stats.hits, calls);
    assert_eq!(upstream.max_in_flight(), 1);
}

#[tokio::test]
async fn an_error_retrying_cannot_fix_is_not_retried_while_the_token_is_valid() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    let first = cache.token().await.unwrap();
    upstream.fail_with(Some(invalid_client(clock.now())));

    clock.advance(secs(2900));
    for _ in 0..600 {
        assert!(cache.token().await.unwrap().same_token(&first));
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(1));
    }
    // One attempt in the 10 minutes the token stayed valid.
    assert_eq!(upstream.calls(), 2);
    assert_eq!(cache.stats().refresh_failures, 1);

    // Stale now: the next caller tries once more and gets the error.
    clock.advance(secs(60));
    let err = cache.token().await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_with_the_upstream_down_every_caller_errs_and_one_request_at_a_time() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    cache.token().await.unwrap();
    upstream.fail_with(Some(connect_error()));
    clock.advance(HOUR + secs(1));

    for round in 1..=3_u64 {
        upstream.hold();
        let misses = cache.stats().misses;
        let callers: Vec<_> = (0..1000)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.token().await })
            })
            .collect();
        wait_until("all callers wait", || cache.stats().misses == misses + 1000).await;
        upstream.release();
        for caller in callers {
            assert!(caller.await.unwrap().is_err());
        }
        assert_eq!(upstream.calls(), 1 + usize::try_from(round).unwrap());

        // During the backoff callers get the error at once, with no request.
        for _ in 0..100 {
            let err = timeout(GUARD, cache.token()).await.expect("failed fast").unwrap_err();
            assert!(matches!(err, TokenError::Transport { .. }));
        }
        assert_eq!(upstream.calls(), 1 + usize::try_from(round).unwrap());
        clock.advance(BACKOFF_CAP + secs(1));
    }
    assert_eq!(upstream.max_in_flight(), 1);
    assert_eq!(cache.stats().failures, 3);

    // Back up: the next caller after the backoff gets a fresh token.
    upstream.fail_with(None);
    let token = cache.token().await.unwrap();
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(upstream.calls(), 5);
}

/// A wall clock stepped back (an NTP correction) after a failure does not
/// stretch the backoff by the size of the step: the last error is handed out
/// only while the clock is between the failure and the next attempt.
#[tokio::test]
async fn a_clock_stepped_back_does_not_stretch_the_backoff() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    upstream.fail_with(Some(connect_error()));
    cache.token().await.unwrap_err();
    // During the backoff: the last error at once, no request.
    cache.token().await.unwrap_err();
    assert_eq!(upstream.calls(), 1);

    upstream.fail_with(None);
    clock.set(clock.now() - HOUR);
    let token = cache.token().await.expect("a new attempt, not the last error for an hour");
    assert_eq!(upstream.calls(), 2);
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn invalidating_during_a_refresh_backoff_fetches_at_once() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    let first = cache.token().await.unwrap();
    // A background refresh inside the window fails: the token stays in
    // service and further refreshes back off.
    upstream.fail_with(Some(connect_error()));
    clock.advance(secs(2980));
    assert!(cache.token().await.unwrap().same_token(&first));
    wait_until("the refresh fails", || cache.stats().refresh_failures == 1).await;
    assert_eq!(upstream.calls(), 2);

    // The resource server refuses the token: the next call fetches at once,
    // not after the backoff, and not with the refresh's old error.
    upstream.fail_with(None);
    cache.invalidate(&first);
    let fresh = cache.token().await.expect("a fresh token, not the backoff's error");
    assert!(!fresh.same_token(&first));
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_callers_invalidating_the_same_token_cause_one_fetch() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    let refused = cache.token().await.unwrap();
    upstream.hold();

    let callers: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                cache.invalidate(&refused);
                cache.token().await
            })
        })
        .collect();
    // The first fetch was a miss too.
    wait_until("all callers wait", || cache.stats().misses == 1 + 10).await;
    upstream.release();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0]) && !t.same_token(&refused)));
    assert_eq!(upstream.calls(), 2);
    assert_eq!(cache.stats().invalidations, 1);

    // A late report of the old token, or of an equal string fetched
    // elsewhere, leaves the new one alone.
    cache.invalidate(&refused);
    cache.invalidate(&AccessToken::builder("token-2", clock.now()).build());
    assert!(cache.token().await.unwrap().same_token(&tokens[0]));
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_does_not_strand_the_others() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());

    let runner = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    wait_until("the first caller's request is out", || upstream.calls() == 1).await;
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    wait_until("the second caller waits", || cache.stats().misses == 2).await;

    // The caller running the request goes away: the waiter takes over.
    runner.abort();
    wait_until("the waiter sends its own request", || upstream.calls() == 2).await;
    upstream.release();
    let token = timeout(GUARD, waiter).await.expect("the waiter finishes").unwrap().unwrap();
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(upstream.calls(), 2);
}

/// Calls `token()` and says whether it fetched.
async fn fetched(cache: &CachedProvider, upstream: &Upstream) -> bool {
    let before = upstream.calls();
    cache.token().await.unwrap();
    upstream.calls() > before
}

#[tokio::test]
async fn the_margin_makes_a_token_stale_before_it_expires() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    // Refresh-ahead off, so only the margin decides.
    let no_ahead = CacheConfig::default().with_refresh_ahead(Duration::ZERO);

    // Default margin for a one-hour token: 60 s.
    let cache = cached(&upstream, no_ahead.clone());
    assert!(fetched(&cache, &upstream).await);
    clock.advance(secs(3539));
    assert!(!fetched(&cache, &upstream).await);
    clock.advance(secs(1));
    assert!(fetched(&cache, &upstream).await);

    // Scaled down for a 20 s token: 2 s.
    upstream.set_lifetime(Some(secs(20)));
    let cache = cached(&upstream, no_ahead.clone());
    assert!(fetched(&cache, &upstream).await);
    clock.advance(secs(17));
    assert!(!fetched(&cache, &upstream).await);
    clock.advance(secs(1));
    assert!(fetched(&cache, &upstream).await);

    // Configured: 300 s, capped at half of a 20 s token.
    let custom = no_ahead.with_expiry_margin(secs(300));
    let cache = cached(&upstream, custom.clone());
    assert!(fetched(&cache, &upstream).await);
    clock.advance(secs(9));
    assert!(!fetched(&cache, &upstream).await);
    clock.advance(secs(1));
    assert!(fetched(&cache, &upstream).await);
    upstream.set_lifetime(Some(HOUR));
    let cache = cached(&upstream, custom);
    assert!(fetched(&cache, &upstream).await);
    clock.advance(secs(3299));
    assert!(!fetched(&cache, &upstream).await);
    clock.advance(secs(1));
    assert!(fetched(&cache, &upstream).await);
}

#[tokio::test]
async fn a_token_without_expiry_lives_the_default_lifetime() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.set_lifetime(None);
    let cache = cached(&upstream, CacheConfig::default().with_refresh_ahead(Duration::ZERO));
    let first = cache.token().await.unwrap();
    assert_eq!(first.expires_at(), None);
    let stale = DEFAULT_LIFETIME.checked_sub(CacheConfig::default().margin_for(DEFAULT_LIFETIME));
    clock.advance(stale.unwrap().checked_sub(secs(1)).unwrap());
    assert!(cache.token().await.unwrap().same_token(&first));
    clock.advance(secs(1));
    assert!(!cache.token().await.unwrap().same_token(&first));
    assert_eq!(upstream.calls(), 2);
}

/// Polls a future once with no runtime around.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    pin!(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn without_a_runtime_the_token_is_refreshed_once_stale() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    let Poll::Ready(Ok(first)) = poll_once(cache.token()) else { panic!("ready at once") };
    // Inside the refresh window no task can be spawned: keep serving.
    clock.advance(secs(3000));
    for _ in 0..10 {
        let Poll::Ready(Ok(token)) = poll_once(cache.token()) else { panic!("ready at once") };
        assert!(token.same_token(&first));
    }
    assert_eq!(upstream.calls(), 1);
    // Stale: fetched in the caller.
    clock.advance(secs(600));
    let Poll::Ready(Ok(second)) = poll_once(cache.token()) else { panic!("ready at once") };
    assert!(!second.same_token(&first));
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn stats_count_hits_misses_and_fetches() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    for _ in 0..5 {
        cache.token().await.unwrap();
    }
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.fetches, stats.failures), (4, 1, 1, 0));
    assert_eq!(cache.name(), "test");
    let debug = format!("{cache:?}");
    assert!(debug.contains("CachedProvider") && !debug.contains("token-1"), "{debug}");
}

/// A kind whose provider is a fixed token: enough to see the registry's
/// wrapping.
#[derive(Debug)]
struct Fixed;

impl AdapterFactory for Fixed {
    fn kind(&self) -> &'static str {
        "fixed"
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        Ok(Arc::new(AccessToken::builder("fixed-token", ctx.clock().now()).build()))
    }
}

#[tokio::test]
async fn the_registry_wraps_each_provider_in_the_cache_once() {
    let clock = clock();
    let providers = Registry::new()
        .with(Fixed)
        .with_clock(Arc::new(clock.clone()))
        .load_str(
            r#"
            [providers.one]
            kind = "fixed"
            token_url = "https://example.com/token"
            client_id = "me"
            "#,
        )
        .unwrap();
    let provider = providers.get("one").unwrap();
    let first = provider.token().await.unwrap();
    assert!(provider.token().await.unwrap().same_token(&first));
    let stats = providers.cache_stats("one").unwrap();
    assert_eq!((stats.fetches, stats.hits), (1, 1));
    assert_eq!(providers.cache_stats("two"), None);
}
