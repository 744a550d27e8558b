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

use secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, AdapterFactory, CacheConfig, CachedProvider, Clock, DEFAULT_LIFETIME,
    HttpSettings, ManualClock, ProviderContext, RawResponse, Registry, SharedTokenProvider,
    TokenEndpoint, TokenError, TokenProvider, TransportErrorKind, async_trait, parse_response,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::time::timeout;

const HOUR: Duration = Duration::from_hours(1);
/// The documented backoff (docs/cache.md): full jitter up to `min(30 s, 1 s x 2^(n-1))`
/// after `n` consecutive failures, at least 100 ms. Written out here, not imported: the
/// numbers are behaviour users rely on, and a change of them should fail this test.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const BACKOFF_FLOOR: Duration = Duration::from_millis(100);
/// The hit path re-checks time precisely at least this often (100 ms, documented in docs/cache.md).
const HIT_PATH_RECHECK: Duration = Duration::from_millis(100);
/// Guards against a hang; generous for a loaded 2-core machine.
const GUARD: Duration = Duration::from_secs(30);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A counting token endpoint: hands out `token-N` tokens (or a configured
/// error), can be held blocked, and tracks how many requests overlap.
#[derive(Debug)]
struct Upstream {
    clock: Arc<dyn Clock>,
    lifetime: Mutex<Option<Duration>>,
    /// Hand out tokens whose absolute expiry is this far in the past.
    expired_by: Mutex<Option<Duration>>,
    failure: Mutex<Option<TokenError>>,
    open: watch::Sender<bool>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    call_times: Mutex<Vec<SystemTime>>,
}

impl Upstream {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Self::on(Arc::new(clock.clone()))
    }

    fn on(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            lifetime: Mutex::new(Some(HOUR)),
            expired_by: Mutex::new(None),
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

    fn expire_tokens_by(&self, by: Option<Duration>) {
        *self.expired_by.lock().unwrap() = by;
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
        // Received when sent, as the request helper stamps it.
        let sent = self.clock.timestamp();
        self.call_times.lock().unwrap().push(sent.wall());
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
            let expired_by = *self.expired_by.lock().unwrap();
            let builder = AccessToken::builder(format!("token-{n}"), sent);
            Ok(match (expired_by, lifetime) {
                (Some(by), _) => builder.expires_at(Some(sent.wall() - by)),
                (None, Some(l)) => builder.expires_in(l),
                (None, None) => builder,
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
    Arc::new(CachedProvider::new("test", upstream.clone(), config, upstream.clock.clone()))
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

/// A 2 s token (default margin 200 ms, refresh window from 1 s, stale at
/// 1.8 s): a refresh that fails late in the window draws a backoff (at least
/// 100 ms) that would outlast the token. Callers once it is stale get a
/// fetch, not the refresh's error from a request made while they were
/// being served (found by the load test, `tokensmith-tests --test load`).
#[tokio::test]
async fn a_failed_refresh_backs_off_no_longer_than_the_token_in_service() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.set_lifetime(Some(secs(2)));
    let cache = cached(&upstream, CacheConfig::default());
    let first = cache.token().await.unwrap();
    let ms = Duration::from_millis;

    for round in 0..20 {
        // Late in the refresh window: the refresh fails.
        upstream.fail_with(Some(TokenError::server("test", 503, None, b"")));
        clock.advance(ms(1750));
        let served = cache.token().await.expect("the valid token is served");
        assert!(!served.same_token(&first) || round == 0, "round {round}");
        wait_until("the refresh fails", || {
            let s = cache.stats();
            s.refreshes == s.refresh_failures
        })
        .await;
        let calls = upstream.calls();
        // Stale 50 ms later, still inside the backoff it drew (≥ 100 ms):
        // the next caller fetches at once and gets the new token.
        upstream.fail_with(None);
        clock.advance(ms(50));
        let fresh = cache.token().await.expect("a fetch, not the refresh's error");
        assert!(!fresh.same_token(&served), "round {round}: a new token");
        assert_eq!(upstream.calls(), calls + 1, "round {round}: one fetch");
    }

    // With `Retry-After` the server's delay holds, stale or not.
    let busy = TokenError::server("test", 503, None, b"").with_retry_after(Some(secs(5)));
    upstream.fail_with(Some(busy));
    clock.advance(ms(1750));
    let served = cache.token().await.unwrap();
    wait_until("the refresh fails", || {
        let s = cache.stats();
        s.refreshes == s.refresh_failures
    })
    .await;
    let calls = upstream.calls();
    upstream.fail_with(None);
    clock.advance(ms(50));
    let err = cache.token().await.expect_err("Retry-After: 5 s is honoured");
    assert_eq!(err.retry_after(), Some(secs(5)), "{err}");
    assert_eq!(upstream.calls(), calls, "no request before the server's delay");
    clock.advance(secs(5));
    assert!(!cache.token().await.unwrap().same_token(&served));
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

/// A wall clock stepped (an NTP correction) after a failure changes nothing:
/// the backoff runs on monotonic time, neither stretched by a step back nor
/// cut by a step forward.
#[tokio::test]
async fn a_wall_clock_step_does_not_change_the_backoff() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let cache = cached(&upstream, CacheConfig::default());
    upstream.fail_with(Some(connect_error()));
    cache.token().await.unwrap_err();
    upstream.fail_with(None);
    // During the backoff: the last error at once, no request, wherever the
    // wall clock jumps.
    clock.set_wall(clock.now() - HOUR);
    cache.token().await.unwrap_err();
    clock.set_wall(clock.now() + 2 * HOUR);
    cache.token().await.unwrap_err();
    assert_eq!(upstream.calls(), 1);

    // The first backoff is at most BACKOFF_BASE.
    clock.advance(BACKOFF_BASE);
    let token = cache.token().await.expect("a new attempt once the backoff is over");
    assert_eq!(upstream.calls(), 2);
    assert!(cache.token().await.unwrap().same_token(&token));
}

/// Stepping the wall clock back an hour right after a fetch does not serve
/// the token an hour past its expiry, and stepping it forward does not
/// throw it away: its `expires_in` runs on monotonic time.
#[tokio::test]
async fn wall_clock_steps_neither_stretch_nor_cut_a_token() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let no_ahead = CacheConfig::default().with_refresh_ahead(Duration::ZERO);

    let cache = cached(&upstream, no_ahead.clone());
    let first = cache.token().await.unwrap();
    clock.set_wall(clock.now() - HOUR);
    clock.advance(secs(3539));
    assert!(cache.token().await.unwrap().same_token(&first));
    clock.advance(secs(1));
    assert!(fetched(&cache, &upstream).await, "stale 3540 s after it was sent");

    let cache = cached(&upstream, no_ahead);
    let first = cache.token().await.unwrap();
    clock.set_wall(clock.now() + 2 * HOUR);
    assert!(cache.token().await.unwrap().same_token(&first), "still valid");
    clock.advance(secs(3539));
    assert!(cache.token().await.unwrap().same_token(&first));
    clock.advance(secs(1));
    assert!(!cache.token().await.unwrap().same_token(&first));
    assert_eq!(upstream.calls(), 4);
}

/// A wall-clock step while the request is out does not move the token's
/// deadlines either: its lifetime counts from the monotonic time it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_step_during_the_fetch_does_not_stretch_the_token() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default().with_refresh_ahead(Duration::ZERO));
    let caller = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    wait_until("the request is out", || upstream.calls() == 1).await;
    clock.advance(secs(10));
    clock.set_wall(clock.now() - HOUR);
    upstream.release();
    let first = timeout(GUARD, caller).await.unwrap().unwrap().unwrap();
    // Stale at 3540 s after sending, 10 s of which passed during the fetch.
    clock.advance(secs(3529));
    assert!(cache.token().await.unwrap().same_token(&first));
    clock.advance(secs(1));
    assert!(!cache.token().await.unwrap().same_token(&first));
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

/// The caller whose call started the request goes away: the request goes
/// on, on its own task, and the other caller gets its token; no second
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_leaves_its_request_to_the_others() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());

    let first = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    wait_until("the first caller's request is out", || upstream.calls() == 1).await;
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    wait_until("the second caller waits", || cache.stats().misses == 2).await;

    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    upstream.release();
    let token = timeout(GUARD, waiter).await.expect("the waiter finishes").unwrap().unwrap();
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(upstream.calls(), 1);
}

/// Callers that each give up after a short timeout, against an upstream slower
/// than the timeout, end up with a token after exactly one request: each
/// cancelled caller leaves the request running for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_short_timeouts_get_a_token_after_one_request() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());
    for _ in 0..20 {
        assert!(timeout(Duration::from_millis(5), cache.token()).await.is_err(), "held");
    }
    upstream.release();
    let token = timeout(GUARD, cache.token()).await.expect("a token arrives").unwrap();
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(upstream.calls(), 1);
    let stats = cache.stats();
    assert_eq!((stats.fetches, stats.failures), (1, 0));
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

/// A clock whose coarse monotonic reading does not count a suspend, as
/// Linux's `CLOCK_MONOTONIC_COARSE` does not, while the precise one does
/// (`CLOCK_BOOTTIME`).
#[derive(Clone, Debug)]
struct SuspendingClock {
    awake: ManualClock,
    slept: Arc<Mutex<Duration>>,
}

impl SuspendingClock {
    fn suspend(&self, for_: Duration) {
        *self.slept.lock().unwrap() += for_;
    }
}

impl Clock for SuspendingClock {
    fn now(&self) -> SystemTime {
        self.awake.now() + *self.slept.lock().unwrap()
    }

    fn monotonic(&self) -> Duration {
        self.awake.monotonic() + *self.slept.lock().unwrap()
    }

    fn monotonic_coarse(&self) -> Duration {
        self.awake.monotonic()
    }
}

/// After a suspend longer than the token's life, the hit path (on the
/// coarse clock, blind to the suspend) serves the old token for at most
/// `HIT_PATH_RECHECK` more before a precise reading sees it stale.
#[tokio::test]
async fn time_slept_is_noticed_within_the_hit_path_recheck() {
    let awake = clock();
    let clock = SuspendingClock { awake: awake.clone(), slept: Arc::default() };
    let upstream = Upstream::on(Arc::new(clock.clone()));
    let cache = cached(&upstream, CacheConfig::default());
    let first = cache.token().await.unwrap();
    assert!(cache.token().await.unwrap().same_token(&first));
    clock.suspend(2 * HOUR);
    // Possibly served once more from the hit path, but not after the recheck.
    let _ = cache.token().await.unwrap();
    awake.advance(HIT_PATH_RECHECK);
    assert!(!cache.token().await.unwrap().same_token(&first));
    assert_eq!(upstream.calls(), 2);
}

/// A provider that returns a token already expired (an absolute expiry in
/// the past): no waiter gets it, every one gets an invalid-response error,
/// and later calls back off instead of fetching on every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expired_on_arrival_is_never_handed_out() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.expire_tokens_by(Some(secs(5)));
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    wait_until("all callers wait", || cache.stats().misses == 100).await;
    upstream.release();
    for caller in callers {
        let err = caller.await.unwrap().expect_err("an expired token is never handed out");
        assert!(matches!(err, TokenError::InvalidResponse { .. }), "{err}");
        assert!(err.to_string().contains("expired on arrival"), "{err}");
    }
    // The backoff applies: no request on every call.
    for _ in 0..10 {
        cache.token().await.unwrap_err();
    }
    assert_eq!(upstream.calls(), 1);
    // After the backoff, a good token.
    upstream.expire_tokens_by(None);
    clock.advance(BACKOFF_BASE);
    let token = cache.token().await.unwrap();
    assert!(cache.token().await.unwrap().same_token(&token));
    assert_eq!(upstream.calls(), 2);
}

#[test]
fn without_a_runtime_a_dropped_caller_hands_the_request_over() {
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.hold();
    let cache = cached(&upstream, CacheConfig::default());
    // The first caller runs the request in place, and is dropped waiting.
    assert!(poll_once(cache.token()).is_pending());
    assert_eq!(upstream.calls(), 1);
    // The next caller is not stranded on the abandoned request.
    upstream.release();
    let Poll::Ready(Ok(token)) = poll_once(cache.token()) else { panic!("ready at once") };
    let Poll::Ready(Ok(again)) = poll_once(cache.token()) else { panic!("ready at once") };
    assert!(again.same_token(&token));
    assert_eq!(upstream.calls(), 2);
}

// ---------------------------------------------------------------------------
// Through the request helper, against a real slow token endpoint
// ---------------------------------------------------------------------------

/// A token endpoint on 127.0.0.1 that holds every answer until released, and
/// moves the injected clock by `delay` before answering (the time the answer
/// takes, without waiting for it). Counts requests.
struct SlowEndpoint {
    url: tokensmith_core::Url,
    requests: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
    delay: Arc<Mutex<Duration>>,
    body: Arc<Mutex<String>>,
}

impl SlowEndpoint {
    async fn start(clock: &ManualClock, body: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap()).parse().unwrap();
        let endpoint = Self {
            url,
            requests: Arc::default(),
            open: watch::channel(true).0,
            delay: Arc::default(),
            body: Arc::new(Mutex::new(body.to_owned())),
        };
        let (requests, open, delay, body, clock) = (
            endpoint.requests.clone(),
            endpoint.open.clone(),
            endpoint.delay.clone(),
            endpoint.body.clone(),
            clock.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (requests, open, delay, body, clock) =
                    (requests.clone(), open.clone(), delay.clone(), body.clone(), clock.clone());
                tokio::spawn(async move {
                    while read_request(&mut stream).await {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let _ = open.subscribe().wait_for(|open| *open).await;
                        clock.advance(*delay.lock().unwrap());
                        let body = body.lock().unwrap().clone();
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        endpoint
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn provider(&self, clock: &ManualClock) -> Arc<CachedProvider> {
        let endpoint = TokenEndpoint::new(
            "slow",
            self.url.clone(),
            &HttpSettings::default(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        Arc::new(CachedProvider::new(
            "slow",
            Arc::new(ClientCredentials(endpoint)),
            CacheConfig::default(),
            Arc::new(clock.clone()),
        ))
    }
}

/// Reads one request (head and `Content-Length` body); `false` once the
/// peer closes.
async fn read_request(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A client-credentials provider on the core request helper.
#[derive(Debug)]
struct ClientCredentials(TokenEndpoint);

#[async_trait]
impl TokenProvider for ClientCredentials {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.0.request().param("grant_type", "client_credentials").send().await
    }
}

/// The issue's case: `timeout(short, p.token())` in a loop against an
/// endpoint slower than the timeout gets a token, after one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_timeouts_against_a_slow_endpoint_get_a_token_after_one_request() {
    let clock = clock();
    let server =
        SlowEndpoint::start(&clock, r#"{"access_token":"slow-1","expires_in":3600}"#).await;
    let provider = server.provider(&clock);
    server.open.send_replace(false);
    let mut timeouts = 0;
    let token = loop {
        if timeouts == 10 {
            // The endpoint answers at last (it was always just slower).
            server.open.send_replace(true);
        }
        let wait = if timeouts < 10 { Duration::from_millis(20) } else { GUARD };
        match timeout(wait, provider.token()).await {
            Ok(token) => break token.unwrap(),
            Err(_) => timeouts += 1,
        }
    };
    assert_eq!(timeouts, 10);
    assert_eq!(token.secret().expose_secret(), "slow-1");
    assert_eq!(server.requests(), 1);
    assert!(provider.token().await.unwrap().same_token(&token));
}

/// A 60 s token whose answer took 25 s lives 60 s from when the request was
/// sent: its expiry, and the cache's margin, count from then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receipt_time_is_when_the_request_is_sent() {
    let clock = clock();
    let server = SlowEndpoint::start(&clock, r#"{"access_token":"t","expires_in":60}"#).await;
    *server.delay.lock().unwrap() = secs(25);
    let provider = server.provider(&clock);
    let sent = clock.now();
    let token = provider.token().await.unwrap();
    assert_eq!(clock.now(), sent + secs(25));
    assert_eq!(token.received_at(), sent);
    assert_eq!(token.expires_at(), Some(sent + secs(60)));
    // A 6 s margin: stale 54 s after sending, 29 s from now.
    *server.delay.lock().unwrap() = Duration::ZERO;
    clock.advance(secs(28));
    assert!(provider.token().await.unwrap().same_token(&token));
    clock.advance(secs(1));
    assert!(!provider.token().await.unwrap().same_token(&token));
    assert_eq!(server.requests(), 2);

    // An answer slower than the lifetime minus the margin: expired on
    // arrival, never handed out.
    *server.delay.lock().unwrap() = secs(55);
    let fresh = CachedProvider::new(
        "slow",
        provider.clone(),
        CacheConfig::default(),
        Arc::new(clock.clone()),
    );
    clock.advance(secs(60));
    let err = fresh.token().await.unwrap_err();
    assert!(err.to_string().contains("expired on arrival"), "{err}");
}

/// A JWT whose `exp` is behind the local clock (no `expires_in`), or a
/// lifetime under a second, is an invalid response; the cache backs off
/// instead of asking again on every call.
#[tokio::test]
async fn a_response_expired_on_arrival_is_an_error_and_backs_off() {
    use base64::Engine as _;
    let clock = clock();
    let payload = format!(r#"{{"exp":{}}}"#, 1_700_000_000 - 3600);
    let jwt = format!(
        "eyJhbGciOiJub25lIn0.{}.sig",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
    );
    for body in [
        format!(r#"{{"access_token":"{jwt}","token_type":"Bearer"}}"#),
        r#"{"access_token":"abc","expires_in":0.5}"#.to_owned(),
    ] {
        let server = SlowEndpoint::start(&clock, &body).await;
        let provider = server.provider(&clock);
        for _ in 0..5 {
            let err = provider.token().await.expect_err("never an expired token");
            assert!(matches!(err, TokenError::InvalidResponse { .. }), "{err}");
            assert!(err.to_string().contains("expire on arrival"), "{err}");
        }
        assert_eq!(server.requests(), 1, "{body}");
    }
}
