//! The token cache: [`CachedProvider`] wraps any provider with an expiry
//! margin, single-flight fetching, refresh-ahead, serve-while-valid with
//! backoff, and [`invalidate`](TokenProvider::invalidate).
//!
//! The [`Registry`](crate::Registry) wraps every adapter in one
//! `CachedProvider`; adapters never cache. `docs/cache.md` explains the
//! guarantees with a timeline.
//!
//! # Lifecycle of a token
//!
//! For a token living `L` (`expires_at - received_at`, or
//! [`DEFAULT_LIFETIME`](crate::DEFAULT_LIFETIME) when the server gave no
//! expiry) the cache derives two instants:
//!
//! - **stale** at `expires_at - margin`: from here the token is never handed
//!   out; callers wait for a fetch (one for all of them);
//! - **refresh** at `expires_at - refresh_ahead` (up to 10% earlier, at
//!   random, so a fleet does not refresh in lockstep): from here the first
//!   caller starts **one** background refresh and every caller keeps getting
//!   the current token at once.
//!
//! A refresh that fails while the token is still valid keeps the token in
//! service and is retried with exponential backoff and full jitter
//! ([`BACKOFF_BASE`], [`BACKOFF_CAP`]), checked lazily by callers (no timer
//! runs). A failure retrying cannot fix (`invalid_client`) is logged at once
//! and not retried while the token lasts. Once stale with the endpoint down,
//! callers share the one fetch in flight, and during the backoff that follows
//! get its error at once without a request.
//!
//! # Cost of a hit
//!
//! The current token and its deadlines sit in an [`ArcSwapOption`]: a cached
//! `token()` is one lock-free load, a coarse clock read
//! ([`Clock::now_coarse`](crate::Clock::now_coarse)), a compare, a striped
//! counter increment and an `Arc` clone, plus the boxed future `async-trait`
//! requires. No lock, no full clock read, no other allocation.
//!
//! # Runtime
//!
//! Background refreshes are spawned on the current Tokio runtime. Outside one
//! (a provider polled by another executor) the cache still works, but
//! refreshes when the token goes stale instead of ahead of time.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::config::CommonConfig;
use crate::{AccessToken, SharedClock, SharedTokenProvider, TokenError, TokenProvider};

/// The default expiry margin: 60 s, scaled down to a tenth of the lifetime
/// for tokens living less than 10 minutes (a 60 s token gets 6 s).
///
/// Anchors range from 10 s (golang/oauth2, whose fixed 10 s drew years of
/// complaints about clock skew and slow requests) to 300 s (MSAL); 60 s
/// (Spring, authlib) covers skew and a slow resource request without
/// throwing away much of a short token.
pub(crate) const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_mins(1);

/// The default refresh-ahead is a fifth of the lifetime, but at least this
/// (30 s), and never more than half the lifetime.
pub(crate) const MIN_REFRESH_AHEAD: Duration = Duration::from_secs(30);

/// First retry bound after a failed fetch: 1 s; it doubles per consecutive
/// failure up to [`BACKOFF_CAP`].
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The largest retry delay after failed fetches: 30 s.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The smallest retry delay (full jitter can draw zero): 100 ms.
pub(crate) const BACKOFF_FLOOR: Duration = Duration::from_millis(100);

/// The longest server `Retry-After` honoured: 5 minutes.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_mins(5);

/// The cache's timing settings for one provider.
///
/// `None` means "the documented default", which depends on each token's
/// lifetime `L`:
///
/// | setting | default | explicit value |
/// |---|---|---|
/// | `expiry_margin` | 60 s, at most `L / 10` | at most `L / 2` |
/// | `refresh_ahead` | `L / 5`, at least 30 s, at most `L / 2` | at most `L / 2` |
///
/// The caps keep a short-lived token usable: a 60 s token gets a 6 s margin
/// and refreshes from 30 s on. A `refresh_ahead` not larger than the margin
/// turns background refresh off (the token is refetched when it goes stale).
///
/// ```
/// use std::time::Duration;
/// use tokensmith_core::CacheConfig;
///
/// let hour = Duration::from_secs(3600);
/// let defaults = CacheConfig::default();
/// assert_eq!(defaults.margin_for(hour), Duration::from_secs(60));
/// assert_eq!(defaults.refresh_ahead_for(hour), Duration::from_secs(720));
/// assert_eq!(defaults.margin_for(Duration::from_secs(60)), Duration::from_secs(6));
///
/// let custom = CacheConfig::default().with_expiry_margin(Duration::from_secs(300));
/// assert_eq!(custom.margin_for(hour), Duration::from_secs(300));
/// assert_eq!(custom.margin_for(Duration::from_secs(60)), Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Treat a token as expired this long before it expires (`None`: default).
    pub expiry_margin: Option<Duration>,
    /// Start a background refresh this long before expiry (`None`: default).
    pub refresh_ahead: Option<Duration>,
}

impl CacheConfig {
    /// The cache settings a provider's config asks for.
    pub fn from_common(common: &CommonConfig) -> Self {
        Self { expiry_margin: common.expiry_margin, refresh_ahead: common.refresh_ahead }
    }

    /// Sets the expiry margin.
    #[must_use]
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = Some(margin);
        self
    }

    /// Sets the refresh-ahead time (`Duration::ZERO` turns background refresh
    /// off).
    #[must_use]
    pub fn with_refresh_ahead(mut self, ahead: Duration) -> Self {
        self.refresh_ahead = Some(ahead);
        self
    }

    /// The margin applied to a token living `lifetime`.
    pub fn margin_for(&self, lifetime: Duration) -> Duration {
        match self.expiry_margin {
            Some(margin) => margin.min(lifetime / 2),
            None => DEFAULT_EXPIRY_MARGIN.min(lifetime / 10),
        }
    }

    /// How long before expiry the refresh window of a token living
    /// `lifetime` opens (before jitter).
    pub fn refresh_ahead_for(&self, lifetime: Duration) -> Duration {
        let ahead = self.refresh_ahead.unwrap_or_else(|| (lifetime / 5).max(MIN_REFRESH_AHEAD));
        ahead.min(lifetime / 2)
    }
}

/// The counters of one [`CachedProvider`], read with
/// [`CachedProvider::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered with the cached token (including during a refresh).
    pub hits: u64,
    /// Calls that found no usable token: they waited for a fetch or got the
    /// last error during a backoff.
    pub misses: u64,
    /// Upstream requests made (calls of the wrapped provider).
    pub fetches: u64,
    /// Upstream requests that failed.
    pub failures: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Background refreshes that failed (the current token stayed in service).
    pub refresh_failures: u64,
    /// Tokens dropped by [`invalidate`](TokenProvider::invalidate).
    pub invalidations: u64,
}

/// Wraps a provider with caching: single-flight, refresh-ahead, backoff.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tokensmith_core::{AccessToken, CacheConfig, CachedProvider, Clock, ManualClock, TokenProvider};
///
/// # async fn demo() -> Result<(), tokensmith_core::TokenError> {
/// let clock = ManualClock::default();
/// let upstream = AccessToken::builder("abc", clock.now()).expires_in(Duration::from_secs(3600)).build();
/// let cached = CachedProvider::new("demo", Arc::new(upstream), CacheConfig::default(), Arc::new(clock));
/// cached.token().await?;
/// cached.token().await?;
/// assert_eq!((cached.stats().fetches, cached.stats().hits), (1, 1));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct CachedProvider {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    inner: SharedTokenProvider,
    config: CacheConfig,
    clock: SharedClock,
    /// The token in service and its deadlines: what the hit path reads.
    current: ArcSwapOption<Entry>,
    /// Nanoseconds since the epoch before which a caller inside the refresh
    /// window need not look at `state` (`u64::MAX`: a fetch is in flight or
    /// refreshing is paused). A mirror of `state`, written under its lock.
    refresh_quiet_until: AtomicU64,
    /// The fetch in flight: a mirror of `state.flight`, written under its lock.
    in_flight: ArcSwapOption<Flight>,
    state: Mutex<State>,
    hits: StripedCounter,
    misses: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    invalidations: AtomicU64,
}

/// A token in service with the instants derived from it.
struct Entry {
    token: AccessToken,
    /// From here the first caller starts a background refresh.
    refresh_at: SystemTime,
    /// From here the token is not handed out.
    stale_at: SystemTime,
}

/// Bookkeeping of the slow path, behind a lock never held across `.await`.
#[derive(Default)]
struct State {
    /// The one upstream request in flight, shared by every waiter.
    flight: Option<Arc<Flight>>,
    /// Consecutive failed fetches.
    failures: u32,
    /// No fetch (background or not) starts before this, after a failure.
    next_attempt_at: Option<SystemTime>,
    /// When the last failure happened: a clock that reads earlier has been
    /// stepped back, and the backoff no longer applies.
    failed_at: Option<SystemTime>,
    /// The last failure, handed to callers without a token during the backoff.
    last_error: Option<TokenError>,
    /// No background refresh for the current token (a failure retrying cannot
    /// fix, or no runtime to spawn on): it is refetched once stale.
    refresh_paused: bool,
}

/// One upstream request: the first waiter runs it; everyone gets a clone of
/// its result. A runner dropped before the end (a cancelled caller) hands
/// over to the next waiter. Waiters check the result without a lock, so
/// thousands of them wake and finish without contending.
struct Flight {
    result: OnceLock<Result<AccessToken, TokenError>>,
    /// Someone is running the request.
    running: AtomicBool,
    /// Notified when the result is set or the runner gave up.
    done: Notify,
    background: bool,
}

impl Flight {
    fn new(background: bool) -> Self {
        Self {
            result: OnceLock::new(),
            running: AtomicBool::new(false),
            done: Notify::new(),
            background,
        }
    }
}

/// Releases a flight whose runner is dropped before setting the result.
struct Runner<'a>(&'a Flight);

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        if self.0.result.get().is_none() {
            self.0.running.store(false, Ordering::Release);
            self.0.done.notify_waiters();
        }
    }
}

enum Plan {
    Serve(AccessToken),
    Fail(TokenError),
    Wait(Arc<Flight>),
}

impl CachedProvider {
    /// Wraps `inner` (named `name` in logs and errors), reading time from
    /// `clock`.
    pub fn new(
        name: &str,
        inner: SharedTokenProvider,
        config: CacheConfig,
        clock: SharedClock,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                inner,
                config,
                clock,
                current: ArcSwapOption::empty(),
                refresh_quiet_until: AtomicU64::new(0),
                in_flight: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                hits: StripedCounter::default(),
                misses: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                refresh_failures: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
            }),
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The timing settings.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    /// The counters so far (each read on its own, so a snapshot taken under
    /// load may be a few calls apart).
    pub fn stats(&self) -> CacheStats {
        let s = &*self.shared;
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: s.hits.sum(),
            misses: read(&s.misses),
            fetches: read(&s.fetches),
            failures: read(&s.failures),
            refreshes: read(&s.refreshes),
            refresh_failures: read(&s.refresh_failures),
            invalidations: read(&s.invalidations),
        }
    }
}

impl fmt::Debug for CachedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProvider")
            .field("name", &self.shared.name)
            .field("config", &self.shared.config)
            .field("inner", &self.shared.inner)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenProvider for CachedProvider {
    // Written out (the signature `#[async_trait]` gives `async fn token`) so
    // a hit boxes a small ready future instead of the whole slow path's
    // state machine.
    fn token<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        match self.shared.cached() {
            Some(token) => Box::pin(Hit(Some(token))),
            None => Box::pin(self.shared.token_slow()),
        }
    }

    fn invalidate(&self, token: &AccessToken) {
        self.shared.invalidate(token);
        self.shared.inner.invalidate(token);
    }
}

/// The future of a hit: one pointer, so boxing it is a small allocation and
/// no copy of a whole `Result<AccessToken, TokenError>`.
struct Hit(Option<AccessToken>);

impl Future for Hit {
    type Output = Result<AccessToken, TokenError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        // Polled again after completion (a contract breach): stay pending
        // rather than panic.
        self.0.take().map_or(Poll::Pending, |token| Poll::Ready(Ok(token)))
    }
}

impl Shared {
    /// The hit path: the current token when it needs nothing done.
    #[inline]
    fn cached(&self) -> Option<AccessToken> {
        let guard = self.current.load();
        let entry = guard.as_deref()?;
        let now = self.clock.now_coarse();
        if now < entry.refresh_at
            || (now < entry.stale_at
                && unix_nanos(now) < self.refresh_quiet_until.load(Ordering::Relaxed))
        {
            self.hits.increment();
            return Some(entry.token.clone());
        }
        None
    }

    async fn token_slow(self: &Arc<Self>) -> Result<AccessToken, TokenError> {
        // No token and a fetch in flight (a cold start, or just invalidated):
        // join it without taking the lock, as `plan` would.
        if self.current.load().is_none()
            && let Some(flight) = self.in_flight.load_full()
        {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return self.join(&flight).await;
        }
        match self.plan() {
            Plan::Serve(token) => Ok(token),
            Plan::Fail(err) => Err(err),
            Plan::Wait(flight) => self.join(&flight).await,
        }
    }

    /// Decides, under the lock and with the precise time, what a caller the
    /// hit path could not serve gets.
    fn plan(self: &Arc<Self>) -> Plan {
        let now = self.clock.now();
        let mut state = self.lock();
        if let Some(entry) = self.current.load_full()
            && now < entry.stale_at
        {
            if now >= entry.refresh_at && state.may_refresh(now) {
                self.start_refresh(&mut state);
            }
            self.hits.increment();
            return Plan::Serve(entry.token.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(flight) = &state.flight {
            return Plan::Wait(Arc::clone(flight));
        }
        if let Some(err) = &state.last_error
            && state.backing_off(now)
        {
            return Plan::Fail(err.clone());
        }
        let flight = Arc::new(Flight::new(false));
        state.flight = Some(Arc::clone(&flight));
        self.sync_mirrors(&state);
        Plan::Wait(flight)
    }

    /// Spawns one background refresh (the lock is held by the caller).
    fn start_refresh(self: &Arc<Self>, state: &mut State) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(
                provider = %self.name,
                "no Tokio runtime to refresh in the background: refetching once the token is stale"
            );
            state.refresh_paused = true;
            self.sync_mirrors(state);
            return;
        };
        let flight = Arc::new(Flight::new(true));
        state.flight = Some(Arc::clone(&flight));
        self.sync_mirrors(state);
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(self);
        let _detached = runtime.spawn(async move {
            let _ = shared.join(&flight).await;
        });
    }

    /// Waits for `flight`, running it if nobody does.
    async fn join(&self, flight: &Flight) -> Result<AccessToken, TokenError> {
        loop {
            if let Some(result) = flight.result.get() {
                return result.clone();
            }
            // Registered before looking again, so a result set in between
            // is not missed.
            let mut notified = pin!(flight.done.notified());
            notified.as_mut().enable();
            if let Some(result) = flight.result.get() {
                return result.clone();
            }
            if !flight.running.swap(true, Ordering::AcqRel) {
                let runner = Runner(flight);
                let result = self.fetch(flight).await;
                // Set once: only the one runner gets here.
                let _ = flight.result.set(result.clone());
                drop(runner);
                flight.done.notify_waiters();
                return result;
            }
            notified.await;
        }
    }

    /// One upstream request, and publishing its outcome.
    async fn fetch(&self, flight: &Flight) -> Result<AccessToken, TokenError> {
        let span = tracing::debug_span!(
            "tokensmith.fetch",
            provider = %self.name,
            trigger = if flight.background { "refresh" } else { "fetch" },
        );
        async {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            let started = self.clock.now();
            let result = self.inner.token().await;
            self.publish(flight, &result, started);
            result
        }
        .instrument(span)
        .await
    }

    fn publish(
        &self,
        flight: &Flight,
        result: &Result<AccessToken, TokenError>,
        started: SystemTime,
    ) {
        let now = self.clock.now();
        let duration_ms =
            u64::try_from(now.duration_since(started).unwrap_or_default().as_millis())
                .unwrap_or(u64::MAX);
        let mut state = self.lock();
        if state.flight.as_deref().is_some_and(|f| std::ptr::eq(f, flight)) {
            state.flight = None;
        }
        match result {
            Ok(token) => {
                let entry = Entry::new(token.clone(), &self.config);
                tracing::debug!(
                    provider = %self.name,
                    duration_ms,
                    outcome = "ok",
                    valid_for_s = entry.stale_at.duration_since(now).unwrap_or_default().as_secs(),
                    "token fetched"
                );
                self.current.store(Some(Arc::new(entry)));
                state.failures = 0;
                state.next_attempt_at = None;
                state.failed_at = None;
                state.last_error = None;
                state.refresh_paused = false;
            }
            Err(err) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if flight.background {
                    self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                }
                state.failures = state.failures.saturating_add(1);
                let delay = backoff_delay(state.failures, err.retry_after());
                state.next_attempt_at = Some(now + delay);
                state.failed_at = Some(now);
                state.last_error = Some(err.clone());
                let serving = self.current.load().as_deref().is_some_and(|e| now < e.stale_at);
                let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                if err.is_retryable() {
                    tracing::warn!(
                        provider = %self.name,
                        duration_ms,
                        outcome = "error",
                        error = %err,
                        retryable = true,
                        consecutive_failures = state.failures,
                        retry_in_ms,
                        serving_cached = serving,
                        "token fetch failed; retrying with backoff"
                    );
                } else {
                    // Retrying cannot fix it: no background retries for this
                    // token; it is refetched (once) when it goes stale.
                    state.refresh_paused |= serving;
                    tracing::error!(
                        provider = %self.name,
                        duration_ms,
                        outcome = "error",
                        error = %err,
                        retryable = false,
                        consecutive_failures = state.failures,
                        serving_cached = serving,
                        "token fetch failed with an error retrying cannot fix"
                    );
                }
            }
        }
        self.sync_mirrors(&state);
    }

    fn invalidate(&self, token: &AccessToken) {
        // Under the lock, so a token published meanwhile is never dropped.
        let mut state = self.lock();
        if self.current.load().as_deref().is_some_and(|e| e.token.same_token(token)) {
            self.current.store(None);
            // The caller needs a fresh token now (contract: the next
            // `token()` fetches): a backoff left by a failed background
            // refresh of the dropped token no longer applies. The failure
            // count stays, so a failing fetch still backs off further.
            state.next_attempt_at = None;
            state.failed_at = None;
            state.last_error = None;
            self.sync_mirrors(&state);
            self.invalidations.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(provider = %self.name, "token invalidated; the next call fetches one");
        }
    }

    /// Mirrors `state` into `in_flight` and `refresh_quiet_until`, which
    /// callers read without the lock.
    fn sync_mirrors(&self, state: &State) {
        self.in_flight.store(state.flight.clone());
        let until = if state.flight.is_some() || state.refresh_paused {
            u64::MAX
        } else {
            state.next_attempt_at.map_or(0, unix_nanos)
        };
        self.refresh_quiet_until.store(until, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock: a panic elsewhere
        // cannot leave it half-written, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Whether a caller inside the refresh window starts a refresh now.
    fn may_refresh(&self, now: SystemTime) -> bool {
        self.flight.is_none() && !self.refresh_paused && !self.backing_off(now)
    }

    /// Whether `now` is inside the backoff after a failure: from the failure
    /// (a clock stepped back to before it does not count) to the next attempt.
    fn backing_off(&self, now: SystemTime) -> bool {
        match (self.failed_at, self.next_attempt_at) {
            (Some(from), Some(until)) => from <= now && now < until,
            _ => false,
        }
    }
}

impl Entry {
    fn new(token: AccessToken, config: &CacheConfig) -> Self {
        let received = token.received_at();
        let expires = token.effective_expires_at();
        let lifetime = expires.duration_since(received).unwrap_or_default();
        let margin = config.margin_for(lifetime);
        let ahead = config.refresh_ahead_for(lifetime);
        // Up to 10% earlier, so a fleet started together spreads its refreshes.
        let jitter = (ahead / 10).mul_f64(fastrand::f64());
        let stale_at = expires.checked_sub(margin).unwrap_or(received);
        let refresh_at =
            expires.checked_sub(ahead + jitter).unwrap_or(received).max(received).min(stale_at);
        Self { token, refresh_at, stale_at }
    }
}

/// The delay before the next attempt after `failures` consecutive failures:
/// full jitter (uniform up to `min(cap, base * 2^(failures - 1))`), at least
/// [`BACKOFF_FLOOR`], and at least the server's `Retry-After` (capped).
fn backoff_delay(failures: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let bound = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP);
    let delay = bound.mul_f64(fastrand::f64()).max(BACKOFF_FLOOR);
    retry_after.map_or(delay, |server| delay.max(server.min(MAX_RETRY_AFTER)))
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A counter with one cache line per thread stripe, so threads hitting the
/// same provider do not contend on it.
struct StripedCounter {
    stripes: [PaddedCounter; STRIPES],
}

const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

impl Default for StripedCounter {
    fn default() -> Self {
        Self { stripes: std::array::from_fn(|_| PaddedCounter::default()) }
    }
}

impl StripedCounter {
    #[inline]
    fn increment(&self) {
        self.stripes[stripe()].0.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }
}

/// This thread's stripe: threads take stripes round-robin.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        // `const`: a plain thread-local load on the hit path, no lazy init.
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut stripe = s.get();
        if stripe == usize::MAX {
            stripe = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(stripe);
        }
        stripe
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[track_caller]
    fn check(config: &CacheConfig, lifetime: u64, margin: Duration, ahead: Duration) {
        assert_eq!(config.margin_for(secs(lifetime)), margin, "margin for {lifetime} s");
        assert_eq!(
            config.refresh_ahead_for(secs(lifetime)),
            ahead,
            "refresh-ahead for {lifetime} s"
        );
    }

    #[test]
    fn defaults_scale_with_the_lifetime() {
        let d = CacheConfig::default();
        check(&d, 86_400, secs(60), secs(17_280));
        check(&d, 3600, secs(60), secs(720));
        check(&d, 600, secs(60), secs(120));
        check(&d, 300, secs(30), secs(60));
        check(&d, 60, secs(6), secs(30));
        check(&d, 10, secs(1), secs(5));
        check(&d, 0, secs(0), secs(0));
    }

    #[test]
    fn explicit_settings_are_capped_at_half_the_lifetime() {
        let c = CacheConfig::default().with_expiry_margin(secs(300)).with_refresh_ahead(secs(600));
        check(&c, 3600, secs(300), secs(600));
        check(&c, 60, secs(30), secs(30));
        let off = CacheConfig::default().with_refresh_ahead(Duration::ZERO);
        check(&off, 3600, secs(60), Duration::ZERO);
    }

    #[test]
    fn entry_deadlines_follow_the_settings() {
        let t0 = SystemTime::UNIX_EPOCH + secs(1_000_000);
        for _ in 0..100 {
            let token = AccessToken::builder("t", t0).expires_in(secs(3600)).build();
            let e = Entry::new(token, &CacheConfig::default());
            assert_eq!(e.stale_at, t0 + secs(3540));
            assert!(e.refresh_at <= t0 + secs(2880), "{:?}", e.refresh_at);
            assert!(e.refresh_at >= t0 + secs(2880 - 72), "{:?}", e.refresh_at);
        }
        // No expiry: the default lifetime.
        let token = AccessToken::builder("t", t0).build();
        assert_eq!(Entry::new(token, &CacheConfig::default()).stale_at, t0 + secs(3540));
        // Refresh-ahead off: the window opens when the token goes stale.
        let token = AccessToken::builder("t", t0).expires_in(secs(3600)).build();
        let e = Entry::new(token, &CacheConfig::default().with_refresh_ahead(Duration::ZERO));
        assert_eq!((e.refresh_at, e.stale_at), (t0 + secs(3540), t0 + secs(3540)));
        // Already expired: stale at once.
        let token = AccessToken::builder("t", t0).expires_at(Some(t0 - secs(5))).build();
        let e = Entry::new(token, &CacheConfig::default());
        assert!(e.stale_at <= t0 && e.refresh_at <= e.stale_at);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        for failures in 1..40_u32 {
            let bound = BACKOFF_BASE
                .saturating_mul(1 << failures.saturating_sub(1).min(16))
                .min(BACKOFF_CAP);
            for _ in 0..50 {
                let d = backoff_delay(failures, None);
                assert!(d >= BACKOFF_FLOOR && d <= bound.max(BACKOFF_FLOOR), "{failures}: {d:?}");
            }
        }
        assert_eq!(backoff_delay(1, Some(secs(60))), secs(60));
        assert_eq!(backoff_delay(1, Some(secs(3600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn striped_counter_sums_every_thread() {
        let c = StripedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1000).for_each(|_| c.increment()));
            }
        });
        assert_eq!(c.sum(), 4000);
    }
}
