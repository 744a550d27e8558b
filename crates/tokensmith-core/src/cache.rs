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
//! For a token living `L` (its `expires_in`, `expires_at - received_at`, or
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
//! A token that is already stale when it arrives (a JWT `exp` behind the
//! local clock, a short lifetime that took most of itself to arrive) is never
//! handed out: the fetch fails with [`TokenError::InvalidResponse`] and the
//! backoff below applies, so callers do not fetch on every call.
//!
//! A refresh that fails while the token is still valid keeps the token in
//! service and is retried with exponential backoff and full jitter
//! ([`BACKOFF_BASE`], [`BACKOFF_CAP`]), checked lazily by callers (no timer
//! runs); such a backoff ends by the time the token goes stale at the latest
//! (unless the server sent `Retry-After`), so a short token's last callers
//! get a fetch rather than the refresh's error. A failure retrying cannot fix (`invalid_client`) is logged at once
//! and not retried while the token lasts. Once stale with the endpoint down,
//! callers share the one fetch in flight, and during the backoff that follows
//! get its error at once without a request.
//!
//! # Time
//!
//! Every deadline (refresh, stale, backoff) is on the clock's
//! [monotonic time](crate::Clock::monotonic), which never steps and counts
//! through suspend (`CLOCK_BOOTTIME` on Linux): a wall clock stepped back by
//! an hour does not serve a token an hour past its expiry. A relative
//! lifetime (`expires_in`) is measured from the monotonic time at which its
//! request was sent; an absolute one (a JWT `exp`, a token read from disk) is
//! converted from wall time once, when the token arrives.
//!
//! # Fetches run on their own task
//!
//! Each upstream request runs on its own Tokio task; callers only wait for
//! its outcome (a `OnceLock` and a `tokio::sync::Notify`). A caller that stops waiting (a timeout, a dropped `select!`
//! branch) leaves the request running for the others and for the next call,
//! so repeated short timeouts against a slow endpoint still end with a token
//! after exactly one request. Outside a Tokio runtime (a provider polled by
//! another executor) there is no task to spawn: the first caller runs the
//! request in place, and if it is dropped first, the next caller starts a new
//! one; background refresh is off there (the token is refetched when it goes
//! stale).
//!
//! # Cost of a hit
//!
//! The current token and its deadlines sit in an [`ArcSwapOption`]: a cached
//! `token()` is one lock-free load, a coarse clock read
//! ([`Clock::monotonic_coarse`](crate::Clock::monotonic_coarse)), a compare
//! with the entry's horizon, a striped counter increment (a plain load and
//! store on a stripe the calling thread alone writes, not a locked
//! read-modify-write) and an `Arc` clone, plus the boxed future
//! `async-trait` requires. No lock, no full clock read, no other allocation.
//!
//! The horizon is set under the lock from a precise reading, to the next
//! deadline but never more than [`HIT_PATH_RECHECK`] ahead. The coarse clock
//! does not count a suspend (Linux has no coarse `CLOCK_BOOTTIME`), so after
//! a resume the hit path may serve for at most that long before a precise
//! reading notices the time slept; a tick of coarse-clock lag is the only
//! other error, far inside any margin.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::config::CommonConfig;
use crate::store::{
    ProviderIdentity, ProviderKey, STORE_CALL_TIMEOUT, SharedTokenStore, StoreError,
    StoreErrorKind, StoreLease,
};
use crate::telemetry;
use crate::{
    AccessToken, SharedClock, SharedTokenProvider, TokenError, TokenProvider, TransportErrorKind,
};

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

/// The longest the hit path serves on a coarse clock reading alone: 100 ms.
/// After that one caller takes the slow path, reads the precise monotonic
/// clock and sets the next horizon, so time the coarse clock did not count
/// (a suspend) is noticed within it.
pub(crate) const HIT_PATH_RECHECK: Duration = Duration::from_millis(100);

/// The first pause between looks at the store while another process holds
/// the fetch lease: 20 ms, doubling up to [`LEASE_POLL_MAX`].
const LEASE_POLL_FIRST: Duration = Duration::from_millis(20);

/// The longest pause between looks at the store while another process
/// holds the fetch lease: 200 ms.
const LEASE_POLL_MAX: Duration = Duration::from_millis(200);

/// How far in the future a stored token's receipt time may be (another
/// host's clock ahead of ours): 5 minutes.
const MAX_STORE_SKEW: Duration = Duration::from_mins(5);

/// The `tracing` target of the token store's events, so a program can
/// show them (the CLI prints its warnings) or silence them on their own.
pub(crate) const STORE_TARGET: &str = "tokensmith::store";

/// The longest the background refresher sleeps before it reads the clock
/// again: 10 s. Tokio's timer may not count a suspend, so a refresher
/// sleeping towards a deadline notices a resume within this.
pub(crate) const REFRESHER_RECHECK: Duration = Duration::from_secs(10);

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
    /// Tokens taken from the [token store](CachedProvider::with_store)
    /// instead of an upstream request.
    pub store_hits: u64,
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
    /// The provider's kind: a metrics label.
    kind: Arc<str>,
    /// Wakes a background refresher early (the token was invalidated).
    refresher_wake: Arc<Notify>,
    inner: SharedTokenProvider,
    config: CacheConfig,
    clock: SharedClock,
    /// The token in service and its deadlines: what the hit path reads.
    current: ArcSwapOption<Entry>,
    /// The upstream request in flight: set and cleared under the `state`
    /// lock, read without it by callers joining a cold start.
    flight: ArcSwapOption<Flight>,
    state: Mutex<State>,
    hits: StripedCounter,
    misses: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    invalidations: AtomicU64,
    store_hits: AtomicU64,
    /// The token store under the cache, if any: read on the slow path only.
    store: ArcSwapOption<StoreTier>,
}

/// A [`TokenStore`](crate::TokenStore) under the cache, for one provider.
struct StoreTier {
    store: SharedTokenStore,
    identity: ProviderIdentity,
    lock_timeout: Duration,
    /// The provider's key in the store, once the store gave its naming key.
    key: OnceLock<ProviderKey>,
    /// Whether the store is failing: logged once per outage.
    down: AtomicBool,
    /// The last token invalidated: never taken from the store again (its
    /// removal may still be under way).
    invalidated: Mutex<Option<AccessToken>>,
}

/// Where a fetch's token came from.
enum Got {
    /// The store's token, usable when it was read.
    Stored(AccessToken),
    /// An upstream request's outcome.
    Fetched(Result<AccessToken, TokenError>),
}

impl Got {
    fn into_result(self) -> Result<AccessToken, TokenError> {
        match self {
            Self::Stored(token) => Ok(token),
            Self::Fetched(result) => result,
        }
    }
}

/// A fetch lease held while the upstream request runs: then the token is
/// stored and the lease released.
struct Held {
    tier: Arc<StoreTier>,
    key: ProviderKey,
    lease: Box<dyn StoreLease>,
}

/// A token in service with the instants derived from it, on the clock's
/// monotonic time.
struct Entry {
    token: AccessToken,
    /// From here the first caller starts a background refresh.
    refresh_at: Duration,
    /// From here the token is not handed out.
    stale_at: Duration,
    /// `expires - stale_at`.
    margin: Duration,
    /// The hit path serves the token while
    /// [`Clock::monotonic_coarse`](crate::Clock::monotonic_coarse) reads
    /// below this (nanoseconds); set under the lock by
    /// [`Shared::set_horizon`].
    hit_until: AtomicU64,
}

/// Bookkeeping of the slow path, behind a lock never held across `.await`.
#[derive(Default)]
struct State {
    /// Consecutive failed fetches.
    failures: u32,
    /// No fetch (background or not) starts before this (monotonic), after a
    /// failure.
    next_attempt_at: Option<Duration>,
    /// The last failure, handed to callers without a token during the backoff.
    last_error: Option<TokenError>,
    /// No background refresh for the current token (a failure retrying cannot
    /// fix, or no runtime to spawn on): it is refetched once stale.
    refresh_paused: bool,
    /// The hit count when the token in service began to be served while its
    /// refresh was failing (metrics only).
    #[cfg(feature = "metrics")]
    backoff_hits_from: Option<u64>,
}

/// One upstream request; every caller that needs it waits for its outcome.
///
/// A `OnceLock` and a `Notify` rather than a `watch` channel: waiters read
/// the outcome without a lock, and `Notify` does not spend the task's
/// cooperative budget, which `watch::Receiver::wait_for` does (10,000
/// callers polled by one task took twice as long on a cold start with it).
struct Flight {
    outcome: OnceLock<Result<AccessToken, TokenError>>,
    /// Set when the flight ended without an outcome.
    abandoned: AtomicBool,
    /// Notified when the outcome is set or the flight is abandoned.
    done: Notify,
    /// Runs on its own task, so it ends with an outcome (unless it panics or
    /// the runtime drops it); otherwise a caller runs it in place.
    spawned: bool,
}

impl Flight {
    /// The flight's outcome, or `None` when it was abandoned without one (the
    /// caller running it in place was dropped): the caller then plans again.
    async fn wait(&self, provider: &str) -> Option<Result<AccessToken, TokenError>> {
        loop {
            // Registered before looking, so an outcome set in between is
            // not missed.
            let mut notified = pin!(self.done.notified());
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return Some(outcome.clone());
            }
            if self.abandoned.load(Ordering::Acquire) {
                return self.spawned.then(|| {
                    Err(TokenError::transport(
                        provider,
                        TransportErrorKind::Io,
                        "the token request task panicked or was cancelled",
                        None,
                    ))
                });
            }
            notified.await;
        }
    }
}

/// Runs one flight: the request, publishing its outcome, telling the
/// waiters. Dropped before it told them (a panicking provider, a runtime
/// shutting down, a caller running it in place dropped), it clears the
/// flight so the next caller starts another.
struct FlightRun {
    shared: Arc<Shared>,
    flight: Arc<Flight>,
    background: bool,
    span: tracing::Span,
}

impl FlightRun {
    async fn run(self) -> Result<AccessToken, TokenError> {
        let span = self.span.clone();
        let result = self.shared.fetch(&self.flight, self.background).instrument(span).await;
        // Set once: only this run sets it.
        let _ = self.flight.outcome.set(result.clone());
        self.flight.done.notify_waiters();
        result
    }
}

impl Drop for FlightRun {
    fn drop(&mut self) {
        if self.flight.outcome.get().is_none() {
            self.shared.abandon(&self.flight);
            self.flight.abandoned.store(true, Ordering::Release);
            self.flight.done.notify_waiters();
        }
    }
}

enum Plan {
    Serve(AccessToken),
    Fail(TokenError),
    Wait(Arc<Flight>),
    /// No runtime to spawn on: the caller runs the request.
    Run(FlightRun),
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
                kind: "unknown".into(),
                refresher_wake: Arc::new(Notify::new()),
                inner,
                config,
                clock,
                current: ArcSwapOption::empty(),
                flight: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                hits: StripedCounter::default(),
                misses: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                refresh_failures: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
                store_hits: AtomicU64::new(0),
                store: ArcSwapOption::empty(),
            }),
        }
    }

    /// Puts `store` under the cache for the provider `identity` describes
    /// (see [`TokenStore`](crate::TokenStore)): on a local miss or refresh
    /// the cache first takes a valid token from the store, else one process
    /// at a time fetches and stores it while the others wait at most
    /// `lock_timeout` for it. The hit path never touches the store, and a
    /// failing store never fails a caller.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tokensmith_core::{
    ///     AccessToken, CacheConfig, CachedProvider, Clock, FileTokenStore, ManualClock,
    ///     ProviderIdentity, TokenProvider,
    /// };
    ///
    /// # async fn demo() -> Result<(), tokensmith_core::TokenError> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let clock = ManualClock::default();
    /// let upstream = AccessToken::builder("abc", clock.now()).expires_in(Duration::from_secs(3600)).build();
    /// let identity = ProviderIdentity::new("fixed").field("client_id", "me");
    /// let cached = |store| {
    ///     CachedProvider::new("demo", Arc::new(upstream.clone()), CacheConfig::default(), Arc::new(clock.clone()))
    ///         .with_store(store, identity.clone(), Duration::from_secs(10))
    /// };
    /// let first = cached(Arc::new(FileTokenStore::new(dir.path())));
    /// first.token().await?;
    /// // Another instance (another process, a restart) finds it in the store.
    /// let second = cached(Arc::new(FileTokenStore::new(dir.path())));
    /// second.token().await?;
    /// assert_eq!((second.stats().fetches, second.stats().store_hits), (0, 1));
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
    /// ```
    #[must_use]
    pub fn with_store(
        self,
        store: SharedTokenStore,
        identity: ProviderIdentity,
        lock_timeout: Duration,
    ) -> Self {
        self.shared.store.store(Some(Arc::new(StoreTier {
            store,
            identity,
            lock_timeout,
            key: OnceLock::new(),
            down: AtomicBool::new(false),
            invalidated: Mutex::new(None),
        })));
        self
    }

    /// The kind of the token store under the cache, if any.
    pub fn store_kind(&self) -> Option<&'static str> {
        self.shared.store.load().as_deref().map(|tier| tier.store.kind())
    }

    /// Removes this provider's token from the store under the cache
    /// (`tokensmith cache clear`): `Ok(true)` when there was one,
    /// `Ok(false)` when there was none or there is no store.
    pub async fn remove_stored(&self) -> Result<bool, StoreError> {
        let Some(tier) = self.shared.store.load_full() else { return Ok(false) };
        let key = match tier.key.get() {
            Some(key) => key.clone(),
            None => tier.identity.key(&tier.store.naming_key().await?),
        };
        tier.store.remove(&key).await
    }

    /// Sets the provider's kind (`"soti-connect"`, `"oauth2"`, …), a label
    /// of the cache's metrics; the [`Registry`](crate::Registry) sets it,
    /// and it is `"unknown"` otherwise.
    ///
    /// A builder step, for a cache just made with [`new`](Self::new): once
    /// the cache is in use (a fetch in flight, a refresher running) the kind
    /// stays as it was.
    #[must_use]
    pub fn with_kind(mut self, kind: &str) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.kind = kind.into();
        }
        self
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The provider's kind ([`with_kind`](Self::with_kind)).
    pub fn kind(&self) -> &str {
        &self.shared.kind
    }

    /// The current token, if it is valid for the expiry margin: synchronous,
    /// never waiting and never fetching. For callers that cannot await, such
    /// as tonic's `Interceptor`; keep it fresh with
    /// [`spawn_refresher`](Self::spawn_refresher).
    ///
    /// `None` when there is no token yet, it was
    /// [invalidated](TokenProvider::invalidate), or it has gone stale (the
    /// upstream failing, or nothing refreshing it). A token is served on
    /// exactly the terms of [`token`](TokenProvider::token): the same
    /// margin, and a call inside the refresh window starts the one
    /// background refresh when it runs inside a Tokio runtime (outside one
    /// it only answers). A served token counts as a hit; `None` counts
    /// nothing.
    ///
    /// It costs what a cached `token()` costs without the boxed future: a
    /// lock-free load, a coarse clock read and an `Arc` clone. At most every
    /// 100 ms one call re-reads the precise clock, taking the cache's lock
    /// only if it is free (otherwise it answers from the precise reading
    /// alone).
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
    /// assert!(cached.current().is_none()); // nothing fetched yet: no waiting, no fetch
    /// cached.token().await?;
    /// assert!(cached.current().is_some());
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
    /// ```
    #[inline]
    pub fn current(&self) -> Option<AccessToken> {
        match self.shared.cached() {
            Some(token) => Some(token),
            None => self.shared.current_slow(),
        }
    }

    /// The token the cache can serve without asking the token endpoint: its
    /// own while it is valid for the expiry margin, else its token store's
    /// when [`token`](TokenProvider::token) would take it (not stale by the
    /// margin, not the token just invalidated). `None` otherwise, and when
    /// the store fails or is slow.
    ///
    /// It never fetches, never takes or waits for the store's fetch lease
    /// and never starts a refresh; a token it reads from the store is not
    /// kept (a `token()` that follows reads the store again). Unlike
    /// `token()` it reads the store during a backoff and while a fetch is in
    /// flight (it waits for neither). It may write: the first call to a
    /// store can create the store's naming key (for the file store, its
    /// directory and key file). It is for a
    /// short-lived process that answers from the store before building what
    /// a request needs: on a cache hit the CLI runs it on a runtime with a
    /// timer only, and starts no I/O driver. It needs a Tokio runtime with
    /// the time driver (each store call is bounded); the
    /// [`FileTokenStore`](crate::FileTokenStore) needs no I/O driver.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tokensmith_core::{
    ///     AccessToken, CacheConfig, CachedProvider, Clock, FileTokenStore, ManualClock,
    ///     ProviderIdentity, TokenProvider,
    /// };
    ///
    /// # async fn demo() -> Result<(), tokensmith_core::TokenError> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let clock = ManualClock::default();
    /// let upstream = AccessToken::builder("abc", clock.now()).expires_in(Duration::from_secs(3600)).build();
    /// let cached = || {
    ///     let store = Arc::new(FileTokenStore::new(dir.path()));
    ///     CachedProvider::new("demo", Arc::new(upstream.clone()), CacheConfig::default(), Arc::new(clock.clone()))
    ///         .with_store(store, ProviderIdentity::new("fixed"), Duration::from_secs(10))
    /// };
    /// let first = cached();
    /// assert!(first.peek().await.is_none()); // nothing stored, and nothing fetched
    /// first.token().await?;
    /// // The next process finds it without a request.
    /// let second = cached();
    /// assert!(second.peek().await.is_some());
    /// assert_eq!(second.stats().fetches, 0);
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn peek(&self) -> Option<AccessToken> {
        let shared = &self.shared;
        if let Some(entry) = shared.current.load_full()
            && shared.clock.monotonic() < entry.stale_at
        {
            shared.hits.increment();
            return Some(entry.token.clone());
        }
        let tier = shared.store.load_full()?;
        let key = tier.provider_key(shared).await?;
        shared.stored_token(&tier, &key, None).await
    }

    /// Starts a task that keeps [`current`](Self::current) answering: it
    /// fetches a token when there is none, starts the background refresh
    /// when the refresh window opens, retries failures on the cache's
    /// backoff, and wakes at once when the token is invalidated. It shares
    /// the cache's single flight, so it never adds a request a caller would
    /// have made anyway; its own fetches are not counted as misses.
    ///
    /// It waits on the cache's clock ([`Clock::sleep_until`](crate::Clock::sleep_until)),
    /// waking at least every 10 s, and stops when the returned handle is
    /// dropped or the cache is.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (as `tokio::spawn`).
    #[must_use = "the refresher stops when its handle is dropped"]
    pub fn spawn_refresher(&self) -> RefresherHandle {
        let task = tokio::spawn(refresher(Arc::downgrade(&self.shared)));
        RefresherHandle { task: task.abort_handle() }
    }

    /// Reports the metrics the cache keeps in its own counters (hits, calls
    /// served during a backoff) and the seconds left on the current token,
    /// as of now. They are otherwise reported whenever the cache takes its
    /// slow path (a fetch, an invalidation, and at least every 100 ms while
    /// calls arrive); an exporter calls this before rendering so they are
    /// exact. Does nothing without the `metrics` cargo feature.
    pub fn export_metrics(&self) {
        #[cfg(feature = "metrics")]
        {
            telemetry::describe_all();
            let mut state = self.shared.lock();
            self.shared.export(&mut state, self.shared.clock.monotonic());
        }
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
            store_hits: read(&s.store_hits),
        }
    }
}

/// Stops the background refresher of [`CachedProvider::spawn_refresher`]
/// when dropped.
#[derive(Debug)]
pub struct RefresherHandle {
    task: tokio::task::AbortHandle,
}

impl RefresherHandle {
    /// Whether the refresher has stopped (its cache was dropped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for RefresherHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the background refresher does next.
enum RefresherStep {
    Wait(Arc<Flight>),
    SleepUntil(Duration),
}

/// The background refresher: holds the cache only while deciding, so
/// dropping the cache ends it.
async fn refresher(shared: Weak<Shared>) {
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let step = strong.refresher_step();
        let (clock, wake, name) =
            (strong.clock.clone(), strong.refresher_wake.clone(), strong.name.clone());
        drop(strong);
        match step {
            RefresherStep::Wait(flight) => {
                let _ = flight.wait(&name).await;
            }
            RefresherStep::SleepUntil(at) => {
                let at = at.min(clock.monotonic().saturating_add(REFRESHER_RECHECK));
                tokio::select! {
                    () = clock.sleep_until(at) => {}
                    () = wake.notified() => {}
                }
            }
        }
    }
}

impl fmt::Debug for CachedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProvider")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
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
        self.shared.forget_stored(token);
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
        if nanos(self.clock.monotonic_coarse()) < entry.hit_until.load(Ordering::Relaxed) {
            self.hits.increment();
            return Some(entry.token.clone());
        }
        None
    }

    /// [`CachedProvider::current`] past the hit path: the precise time
    /// decides; never waits for the lock, never fetches.
    fn current_slow(self: &Arc<Self>) -> Option<AccessToken> {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // Someone is on the slow path (microseconds): answer from
                // the precise time alone and leave the bookkeeping to them.
                let entry = self.current.load_full()?;
                if self.clock.monotonic() < entry.stale_at {
                    self.hits.increment();
                    return Some(entry.token.clone());
                }
                return None;
            }
        };
        let now = self.clock.monotonic();
        let entry = self.current.load_full()?;
        if now >= entry.stale_at {
            return None;
        }
        // Only with a runtime: outside one, `start_refresh` would pause
        // refreshing for callers that have one.
        if now >= entry.refresh_at
            && self.may_refresh(&state, now)
            && tokio::runtime::Handle::try_current().is_ok()
        {
            self.start_refresh(&mut state);
        }
        self.set_horizon(&state, now);
        self.hits.increment();
        self.export(&mut state, now);
        Some(entry.token.clone())
    }

    /// The background refresher's next step, decided under the lock.
    fn refresher_step(self: &Arc<Self>) -> RefresherStep {
        let mut state = self.lock();
        let now = self.clock.monotonic();
        if let Some(flight) = self.flight.load_full() {
            return RefresherStep::Wait(flight);
        }
        if let Some(at) = state.next_attempt_at.filter(|at| now < *at) {
            return RefresherStep::SleepUntil(at);
        }
        let entry = self.current.load_full();
        match &entry {
            Some(e) if now < e.refresh_at => return RefresherStep::SleepUntil(e.refresh_at),
            Some(e) if now < e.stale_at => {
                if !state.refresh_paused {
                    self.start_refresh(&mut state);
                }
            }
            _ => {
                // The refresher runs on a runtime (a `FlightRun` handed back
                // would take this lock when dropped).
                let _ = self.start_flight(Some(tokio::runtime::Handle::current()), false);
            }
        }
        self.set_horizon(&state, now);
        match (self.flight.load_full(), entry) {
            (Some(flight), _) => RefresherStep::Wait(flight),
            // Refresh paused (a failure retrying cannot fix): refetch once stale.
            (None, Some(e)) if now < e.stale_at => RefresherStep::SleepUntil(e.stale_at),
            (None, _) => RefresherStep::SleepUntil(now.saturating_add(REFRESHER_RECHECK)),
        }
    }

    async fn token_slow(self: &Arc<Self>) -> Result<AccessToken, TokenError> {
        let mut counted = false;
        // No token and a fetch in flight (a cold start, or just invalidated):
        // join it without taking the lock, as `plan` would.
        if self.current.load().is_none()
            && let Some(flight) = self.flight.load_full()
        {
            self.misses.fetch_add(1, Ordering::Relaxed);
            counted = true;
            if let Some(result) = flight.wait(&self.name).await {
                return result;
            }
        }
        loop {
            match self.plan(!counted) {
                Plan::Serve(token) => return Ok(token),
                Plan::Fail(err) => return Err(err),
                Plan::Run(run) => return run.run().await,
                Plan::Wait(flight) => {
                    if let Some(result) = flight.wait(&self.name).await {
                        return result;
                    }
                }
            }
            // The flight was abandoned (only outside a runtime): plan again.
            counted = true;
        }
    }

    /// Decides, under the lock and with the precise time, what a caller the
    /// hit path could not serve gets.
    fn plan(self: &Arc<Self>, count_miss: bool) -> Plan {
        let mut state = self.lock();
        let now = self.clock.monotonic();
        if let Some(entry) = self.current.load_full()
            && now < entry.stale_at
        {
            if now >= entry.refresh_at && self.may_refresh(&state, now) {
                self.start_refresh(&mut state);
            }
            self.set_horizon(&state, now);
            self.hits.increment();
            self.export(&mut state, now);
            return Plan::Serve(entry.token.clone());
        }
        if count_miss {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(flight) = self.flight.load_full() {
            return Plan::Wait(flight);
        }
        if let Some(err) = &state.last_error
            && state.backing_off(now)
        {
            return Plan::Fail(err.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        match self.start_flight(runtime, false) {
            Ok(flight) => Plan::Wait(flight),
            Err(run) => Plan::Run(run),
        }
    }

    /// Whether a caller inside the refresh window starts a refresh now.
    fn may_refresh(&self, state: &State, now: Duration) -> bool {
        self.flight.load().is_none() && !state.refresh_paused && !state.backing_off(now)
    }

    /// Starts one background refresh (the lock is held by the caller).
    fn start_refresh(self: &Arc<Self>, state: &mut State) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(
                provider = %self.name,
                "no Tokio runtime to refresh in the background: refetching once the token is stale"
            );
            state.refresh_paused = true;
            return;
        };
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        telemetry::refresh_started(&self.labels());
        let _spawned = self.start_flight(Some(runtime), true);
    }

    /// Starts one upstream request (the lock is held by the caller): spawned
    /// on `runtime` (the flight to wait for), or, without one, handed back
    /// for the caller to run in place.
    fn start_flight(
        self: &Arc<Self>,
        runtime: Option<tokio::runtime::Handle>,
        background: bool,
    ) -> Result<Arc<Flight>, FlightRun> {
        let flight = Arc::new(Flight {
            outcome: OnceLock::new(),
            abandoned: AtomicBool::new(false),
            done: Notify::new(),
            spawned: runtime.is_some(),
        });
        self.flight.store(Some(Arc::clone(&flight)));
        let run = FlightRun {
            shared: Arc::clone(self),
            flight: Arc::clone(&flight),
            background,
            // A child of the caller's span, wherever it runs.
            span: tracing::debug_span!(
                "tokensmith.fetch",
                provider = %self.name,
                trigger = if background { "refresh" } else { "fetch" },
            ),
        };
        match runtime {
            Some(runtime) => {
                let _detached = runtime.spawn(async move {
                    let _ = run.run().await;
                });
                Ok(flight)
            }
            None => Err(run),
        }
    }

    /// A token from the store, or one upstream request, and publishing its
    /// outcome. A token fetched under the store's lease is stored (and the
    /// lease released) before it is published, so a short-lived process
    /// that exits once it has its token has shared it.
    async fn fetch(
        &self,
        flight: &Arc<Flight>,
        background: bool,
    ) -> Result<AccessToken, TokenError> {
        let started = self.clock.monotonic();
        let result = match self.store.load_full() {
            None => self.upstream().await,
            Some(tier) => match self.through_store(tier, background).await {
                (Got::Stored(token), _) if self.stale_by_now(&token) => {
                    // Usable when read, stale by now (the process was
                    // descheduled, or a lease release was slow): the caller
                    // gets a token from upstream, not "expired on arrival".
                    tracing::debug!(target: STORE_TARGET, provider = %self.name, "the stored token went stale before it was used; fetching");
                    self.upstream().await
                }
                (got, None) => got.into_result(),
                (got, Some(held)) => {
                    let result = got.into_result();
                    held.finish(self, result.as_ref().ok()).await;
                    result
                }
            },
        };
        self.publish(flight, result, started, background)
    }

    /// Whether `token` (from the store) is stale by the cache's rule now.
    fn stale_by_now(&self, token: &AccessToken) -> bool {
        let expires = token.effective_expires_at();
        let lifetime = expires.duration_since(token.received_at()).unwrap_or_default();
        expires
            .checked_sub(self.config.margin_for(lifetime))
            .is_none_or(|stale| self.clock.now() >= stale)
    }

    /// One upstream request.
    async fn upstream(&self) -> Result<AccessToken, TokenError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.inner.token().await
    }

    /// The store's token when it has a usable one; else the lease and an
    /// upstream request, or a wait (at most `lock_timeout`) for the lease
    /// holder's token. Any store failure: an upstream request.
    async fn through_store(&self, tier: Arc<StoreTier>, background: bool) -> (Got, Option<Held>) {
        let Some(key) = tier.provider_key(self).await else {
            return (Got::Fetched(self.upstream().await), None);
        };
        // A refresh wants a newer token than the one in service.
        let current = if background { self.current.load_full() } else { None };
        let current = current.as_deref();
        if let Some(token) = self.stored_token(&tier, &key, current).await {
            return (Got::Stored(token), None);
        }
        // The read failed (the store is down or slow, not merely empty or
        // corrupt): no round trip for the lease. It would cost a second call
        // timeout per fetch, and a store that is only slow could still grant
        // a lease the cache has stopped waiting for.
        if tier.down.load(Ordering::Acquire) {
            return (Got::Fetched(self.upstream().await), None);
        }
        let deadline = self.clock.monotonic().saturating_add(tier.lock_timeout);
        let mut pause = LEASE_POLL_FIRST;
        loop {
            match tier.call(self, "lock", tier.store.try_lock(&key, tier.lock_timeout)).await {
                None => return (Got::Fetched(self.upstream().await), None),
                Some(Some(lease)) => {
                    // Whoever held it may have just stored a token.
                    if let Some(token) = self.stored_token(&tier, &key, current).await {
                        tier.call(self, "release", lease.release()).await;
                        return (Got::Stored(token), None);
                    }
                    let result = self.upstream().await;
                    return (Got::Fetched(result), Some(Held { tier, key, lease }));
                }
                Some(None) => {
                    let now = self.clock.monotonic();
                    if now >= deadline {
                        tracing::warn!(
                            target: STORE_TARGET,
                            provider = %self.name,
                            store = tier.store.kind(),
                            "another process held the token store's fetch lock for longer than lock_timeout ({}); fetching without the cache",
                            humantime::format_duration(tier.lock_timeout)
                        );
                        return (Got::Fetched(self.upstream().await), None);
                    }
                    self.clock.sleep(pause.min(deadline.saturating_sub(now))).await;
                    pause = (pause * 2).min(LEASE_POLL_MAX);
                    if let Some(token) = self.stored_token(&tier, &key, current).await {
                        return (Got::Stored(token), None);
                    }
                }
            }
        }
    }

    /// The store's token for `key` when the cache may use it: not stale by
    /// the cache's own rule (`expires_at - margin`, on the wall clock: the
    /// token came from elsewhere), not the token just invalidated, and, for
    /// a refresh of `current`, another token not itself due for refresh.
    async fn stored_token(
        &self,
        tier: &StoreTier,
        key: &ProviderKey,
        current: Option<&Entry>,
    ) -> Option<AccessToken> {
        use secrecy::ExposeSecret as _;
        let token = tier.call(self, "load", tier.store.load(key)).await??;
        let same =
            |other: &AccessToken| other.secret().expose_secret() == token.secret().expose_secret();
        let wall = self.clock.now();
        let expires = token.effective_expires_at();
        let lifetime = expires.duration_since(token.received_at()).unwrap_or_default();
        let before = |ahead: Duration| expires.checked_sub(ahead).is_some_and(|at| wall < at);
        // Received in the future (beyond clock skew): implausible, and it
        // would live as long as it claims.
        let plausible = token.received_at() <= wall + MAX_STORE_SKEW;
        let usable = plausible
            && before(self.config.margin_for(lifetime))
            && !tier.lock_invalidated().as_ref().is_some_and(same)
            && current.is_none_or(|entry| {
                !same(&entry.token) && before(self.config.refresh_ahead_for(lifetime))
            });
        if usable {
            self.store_hits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: STORE_TARGET, provider = %self.name, store = tier.store.kind(), "token taken from the store");
            Some(token)
        } else {
            tracing::debug!(target: STORE_TARGET, provider = %self.name, store = tier.store.kind(), "stored token stale or refused");
            None
        }
    }

    /// How long a token fetched now stays in a store: until it goes stale
    /// by the cache's rule (`lifetime - margin` from its receipt).
    fn store_ttl(&self, token: &AccessToken) -> Duration {
        let expires = token.effective_expires_at();
        let lifetime = expires.duration_since(token.received_at()).unwrap_or_default();
        expires
            .checked_sub(self.config.margin_for(lifetime))
            .and_then(|stale| stale.duration_since(self.clock.now()).ok())
            .unwrap_or_default()
    }

    /// After [`invalidate`](TokenProvider::invalidate): the store drops
    /// `token` too (if it still holds it), on its own task.
    fn forget_stored(self: &Arc<Self>, token: &AccessToken) {
        let Some(tier) = self.store.load_full() else { return };
        *tier.invalidated.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        let (Some(key), Ok(runtime)) =
            (tier.key.get().cloned(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (shared, token) = (Arc::clone(self), token.clone());
        let _detached = runtime.spawn(async move {
            tier.call(&shared, "remove", tier.store.remove_if_same(&key, &token)).await;
        });
    }

    /// Records the outcome of `flight` (started at monotonic time
    /// `started`): the new entry, or the failure and its backoff. A token
    /// already stale on arrival is a failure too.
    fn publish(
        &self,
        flight: &Arc<Flight>,
        result: Result<AccessToken, TokenError>,
        started: Duration,
        background: bool,
    ) -> Result<AccessToken, TokenError> {
        let wall = self.clock.now();
        let mut state = self.lock();
        let now = self.clock.monotonic();
        let duration_ms =
            u64::try_from(now.saturating_sub(started).as_millis()).unwrap_or(u64::MAX);
        if self.flight.load().as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
            self.flight.store(None);
        }
        let result = result.and_then(|token| {
            let entry = Entry::new(token, &self.config, started, now, wall);
            if now < entry.stale_at { Ok(entry) } else { Err(self.expired_on_arrival(&entry)) }
        });
        telemetry::fetched(&self.labels(), result.is_ok(), now.saturating_sub(started));
        let result = match result {
            Ok(entry) => {
                tracing::debug!(
                    provider = %self.name,
                    duration_ms,
                    outcome = "ok",
                    valid_for_s = entry.stale_at.saturating_sub(now).as_secs(),
                    "token fetched"
                );
                let token = entry.token.clone();
                self.current.store(Some(Arc::new(entry)));
                state.failures = 0;
                state.next_attempt_at = None;
                state.last_error = None;
                state.refresh_paused = false;
                self.export(&mut state, now);
                #[cfg(feature = "metrics")]
                {
                    state.backoff_hits_from = None;
                }
                Ok(token)
            }
            Err(err) => {
                self.failed(&mut state, &err, now, duration_ms, background);
                Err(err)
            }
        };
        self.set_horizon(&state, now);
        result
    }

    fn labels(&self) -> telemetry::Labels<'_> {
        telemetry::Labels { provider: &self.name, kind: &self.kind }
    }

    /// Reports the metrics read from the cache's own state (the lock is
    /// held; `now` is a precise reading): the hit count, the hits served
    /// during a failing refresh since the last report, the seconds left.
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self, unused_variables))]
    #[inline]
    fn export(&self, state: &mut State, now: Duration) {
        #[cfg(feature = "metrics")]
        {
            let labels = self.labels();
            let total = self.hits.sum();
            telemetry::hits(&labels, || total);
            if let Some(from) = state.backoff_hits_from.as_mut() {
                telemetry::served_during_backoff(&labels, total.wrapping_sub(*from));
                *from = total;
            }
            let left = self
                .current
                .load()
                .as_deref()
                .map(|e| e.stale_at.saturating_add(e.margin).saturating_sub(now));
            telemetry::seconds_left(&labels, left);
        }
    }

    /// Records a failed fetch: the backoff, and the log line.
    fn failed(
        &self,
        state: &mut State,
        err: &TokenError,
        now: Duration,
        duration_ms: u64,
        background: bool,
    ) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if background {
            self.refresh_failures.fetch_add(1, Ordering::Relaxed);
        }
        state.failures = state.failures.saturating_add(1);
        let mut delay = backoff_delay(state.failures, err.retry_after());
        let serving_until =
            self.current.load().as_deref().map(|e| e.stale_at).filter(|stale| now < *stale);
        let serving = serving_until.is_some();
        // A backoff drawn while a token is in service ends when that token
        // goes stale, unless the server asked for a delay (`Retry-After`):
        // a short-lived token's refresh window can be shorter than the
        // backoff, and callers arriving once it is stale must get a fetch,
        // not an error from a request made while they were being served.
        if let Some(stale_at) = serving_until
            && err.retry_after().is_none()
        {
            delay = delay.min(stale_at.saturating_sub(now));
        }
        state.next_attempt_at = Some(now.saturating_add(delay));
        state.last_error = Some(err.clone());
        self.export(state, now);
        #[cfg(feature = "metrics")]
        if serving && state.backoff_hits_from.is_none() {
            state.backoff_hits_from = Some(self.hits.sum());
        }
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
                retry_in_ms,
                serving_cached = serving,
                "token fetch failed with an error retrying cannot fix"
            );
        }
    }

    /// The error for a token already inside its margin when it arrived.
    fn expired_on_arrival(&self, entry: &Entry) -> TokenError {
        let margin = entry.margin;
        // Only a 2xx response carries a token.
        TokenError::invalid_response(
            &self.name,
            200,
            format!(
                "the token arrived with less than its {margin:?} expiry margin left: expired on arrival (a lifetime too short for the answer's delay, an old token, or the local clock ahead of the server's)",
            ),
            b"",
        )
    }

    /// Clears `flight` if it is still the one in flight: it ended without
    /// an outcome, so the next caller starts another.
    fn abandon(&self, flight: &Arc<Flight>) {
        let state = self.lock();
        if self.flight.load().as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
            self.flight.store(None);
            self.set_horizon(&state, self.clock.monotonic());
        }
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
            state.last_error = None;
            self.invalidations.fetch_add(1, Ordering::Relaxed);
            self.export(&mut state, self.clock.monotonic());
            #[cfg(feature = "metrics")]
            {
                state.backoff_hits_from = None;
            }
            // A background refresher fetches the next one now.
            self.refresher_wake.notify_one();
            tracing::debug!(provider = %self.name, "token invalidated; the next call fetches one");
        }
    }

    /// Sets how long the hit path may serve the current token without the
    /// lock (the lock is held by the caller; `now` is a precise reading):
    /// until its next deadline (the refresh window, the end of a backoff, or
    /// stale while a refresh runs or is paused), and never more than
    /// [`HIT_PATH_RECHECK`] ahead.
    fn set_horizon(&self, state: &State, now: Duration) {
        let guard = self.current.load();
        let Some(entry) = guard.as_deref() else { return };
        let until = if now < entry.refresh_at {
            entry.refresh_at
        } else if self.flight.load().is_some() || state.refresh_paused {
            entry.stale_at
        } else {
            state.next_attempt_at.map_or(now, |at| at.min(entry.stale_at))
        };
        let serve_for = until.saturating_sub(now).min(HIT_PATH_RECHECK);
        let coarse = self.clock.monotonic_coarse();
        entry.hit_until.store(nanos(coarse.saturating_add(serve_for)), Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock: a panic elsewhere
        // cannot leave it half-written, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StoreTier {
    /// The provider's key in the store (the store's naming key asked once).
    async fn provider_key(&self, shared: &Shared) -> Option<ProviderKey> {
        if let Some(key) = self.key.get() {
            return Some(key.clone());
        }
        let naming = self.call(shared, "naming key", self.store.naming_key()).await?;
        Some(self.key.get_or_init(|| self.identity.key(&naming)).clone())
    }

    fn lock_invalidated(&self) -> MutexGuard<'_, Option<AccessToken>> {
        self.invalidated.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one store call, bounded by [`STORE_CALL_TIMEOUT`] on the
    /// clock: its value, or `None` after a failure (logged once per
    /// outage; a corrupt entry is a miss, logged at debug level).
    async fn call<T>(
        &self,
        shared: &Shared,
        what: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Option<T> {
        let result = tokio::select! {
            biased;
            result = call => result,
            () = shared.clock.sleep(STORE_CALL_TIMEOUT) => Err(StoreError::new(
                StoreErrorKind::Timeout,
                format!("{what} took longer than {STORE_CALL_TIMEOUT:?}"),
            )),
        };
        match result {
            Ok(value) => {
                if self.down.swap(false, Ordering::AcqRel) {
                    tracing::info!(target: STORE_TARGET, provider = %shared.name, store = self.store.kind(), "token store usable again");
                }
                Some(value)
            }
            Err(err) if err.kind() == StoreErrorKind::Corrupt => {
                tracing::debug!(target: STORE_TARGET, provider = %shared.name, store = self.store.kind(), error = %err, "stored token ignored");
                None
            }
            Err(err) => {
                if self.down.swap(true, Ordering::AcqRel) {
                    tracing::debug!(target: STORE_TARGET, provider = %shared.name, store = self.store.kind(), operation = what, error = %err, "token store still unusable");
                } else {
                    tracing::warn!(target: STORE_TARGET, provider = %shared.name, store = self.store.kind(), operation = what, error = %err, "token store unusable; fetching without it until it recovers");
                }
                None
            }
        }
    }
}

impl Held {
    /// Stores `token` (when the fetch gave one that is not yet stale) and
    /// releases the lease.
    async fn finish(self, shared: &Shared, token: Option<&AccessToken>) {
        let Self { tier, key, lease } = self;
        if let Some(token) = token {
            let ttl = shared.store_ttl(token);
            if !ttl.is_zero() {
                tier.call(shared, "store", tier.store.store(&key, token, ttl)).await;
            }
        }
        tier.call(shared, "release", lease.release()).await;
    }
}

impl State {
    /// Whether `now` is inside the backoff after a failure.
    fn backing_off(&self, now: Duration) -> bool {
        self.next_attempt_at.is_some_and(|until| now < until)
    }
}

impl Entry {
    /// The entry for `token`, fetched from monotonic time `started` to
    /// `now` (wall time `wall`).
    fn new(
        token: AccessToken,
        config: &CacheConfig,
        started: Duration,
        now: Duration,
        wall: SystemTime,
    ) -> Self {
        // A relative lifetime counts from the monotonic receipt time, when
        // the token carries one read during this fetch (so on this clock);
        // anything else (a JWT `exp`, a token from elsewhere) is converted
        // from wall time now.
        let (received, expires) = match token.monotonic_expiry() {
            Some((received, expires)) if (started..=now).contains(&received) => (received, expires),
            _ => {
                let expires_at = token.effective_expires_at();
                let lifetime = expires_at.duration_since(token.received_at()).unwrap_or_default();
                let expires =
                    now.saturating_add(expires_at.duration_since(wall).unwrap_or_default());
                (expires.saturating_sub(lifetime), expires)
            }
        };
        let lifetime = expires.saturating_sub(received);
        let margin = config.margin_for(lifetime);
        let ahead = config.refresh_ahead_for(lifetime);
        // Up to 10% earlier, so a fleet started together spreads its refreshes.
        let jitter = (ahead / 10).mul_f64(fastrand::f64());
        let stale_at = expires.saturating_sub(margin);
        let refresh_at = expires.saturating_sub(ahead + jitter).max(received).min(stale_at);
        Self { token, refresh_at, stale_at, margin, hit_until: AtomicU64::new(0) }
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

#[inline]
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A counter with one cache line per thread stripe, so threads hitting the
/// same provider do not contend on it.
///
/// A thread that owns a stripe ([`OWNED_STRIPES`] of them, each held by at
/// most one live thread at a time, across every cache) is its only writer,
/// so it adds with a plain load and store rather than a locked
/// read-modify-write: the hit path's cheapest exact count. Threads beyond
/// those share the last stripe and add atomically.
struct StripedCounter {
    stripes: [PaddedCounter; OWNED_STRIPES + 1],
}

/// Stripes a thread can own alone.
const OWNED_STRIPES: usize = 16;

/// The stripe of threads owning none.
const SHARED_STRIPE: usize = OWNED_STRIPES;

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
        let stripe = stripe();
        let counter = &self.stripes[stripe].0;
        if stripe == SHARED_STRIPE {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            // This thread is the stripe's only writer (see `stripe`).
            counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
    }

    fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }
}

/// Which owned stripes live threads hold (one bit each).
static STRIPES_TAKEN: AtomicU64 = AtomicU64::new(0);

/// A thread's stripe: claimed on its first count, given back when it exits.
struct StripeOwner(Cell<usize>);

/// Not claimed yet.
const UNCLAIMED: usize = usize::MAX;

impl StripeOwner {
    /// Takes a free owned stripe, or the shared one when all are taken.
    fn claim() -> usize {
        let mut taken = STRIPES_TAKEN.load(Ordering::Relaxed);
        loop {
            let free = (!taken).trailing_zeros() as usize;
            if free >= OWNED_STRIPES {
                return SHARED_STRIPE;
            }
            // Acquire: the previous owner's last counts (written before
            // its release below) are seen before this thread adds to them.
            match STRIPES_TAKEN.compare_exchange_weak(
                taken,
                taken | (1 << free),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return free,
                Err(now) => taken = now,
            }
        }
    }
}

impl Drop for StripeOwner {
    fn drop(&mut self) {
        let stripe = self.0.get();
        if stripe < OWNED_STRIPES {
            STRIPES_TAKEN.fetch_and(!(1 << stripe), Ordering::Release);
        }
    }
}

/// This thread's stripe.
#[inline]
fn stripe() -> usize {
    thread_local! {
        // `const`: no lazy initialiser on the hit path.
        static STRIPE: StripeOwner = const { StripeOwner(Cell::new(UNCLAIMED)) };
    }
    STRIPE
        .try_with(|s| {
            let mut stripe = s.0.get();
            if stripe == UNCLAIMED {
                stripe = StripeOwner::claim();
                s.0.set(stripe);
            }
            stripe
        })
        // The thread is exiting and its stripe already given back.
        .unwrap_or(SHARED_STRIPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

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
        let m0 = secs(500);
        let entry =
            |token: AccessToken, config: &CacheConfig| Entry::new(token, config, m0, m0, t0);
        for _ in 0..100 {
            let token = AccessToken::builder("t", t0).expires_in(secs(3600)).build();
            let e = entry(token, &CacheConfig::default());
            assert_eq!(e.stale_at, m0 + secs(3540));
            assert!(e.refresh_at <= m0 + secs(2880), "{:?}", e.refresh_at);
            assert!(e.refresh_at >= m0 + secs(2880 - 72), "{:?}", e.refresh_at);
        }
        // No expiry: the default lifetime.
        let token = AccessToken::builder("t", t0).build();
        assert_eq!(entry(token, &CacheConfig::default()).stale_at, m0 + secs(3540));
        // Refresh-ahead off: the window opens when the token goes stale.
        let token = AccessToken::builder("t", t0).expires_in(secs(3600)).build();
        let e = entry(token, &CacheConfig::default().with_refresh_ahead(Duration::ZERO));
        assert_eq!((e.refresh_at, e.stale_at), (m0 + secs(3540), m0 + secs(3540)));
        // Already expired: stale at once.
        let token = AccessToken::builder("t", t0).expires_at(Some(t0 - secs(5))).build();
        let e = entry(token, &CacheConfig::default());
        assert!(e.stale_at <= m0 && e.refresh_at <= e.stale_at);
    }

    #[test]
    fn a_relative_lifetime_counts_from_the_monotonic_receipt() {
        let t0 = SystemTime::UNIX_EPOCH + secs(1_000_000);
        let no_ahead = CacheConfig::default().with_refresh_ahead(Duration::ZERO);
        let stamped = |mono: Duration| {
            AccessToken::builder("t", Timestamp::new(t0, Some(mono))).expires_in(secs(3600)).build()
        };
        // Sent at monotonic 100 s, published at 130 s while the wall clock
        // stepped back an hour: 3540 s after the sending, not the wall's view.
        let e = Entry::new(stamped(secs(100)), &no_ahead, secs(90), secs(130), t0 - secs(3600));
        assert_eq!(e.stale_at, secs(100 + 3540));
        // A stamp outside this fetch (another clock, an old token): converted
        // from wall time.
        let e = Entry::new(stamped(secs(5)), &no_ahead, secs(90), secs(130), t0 + secs(30));
        assert_eq!(e.stale_at, secs(130 + 3540 - 30));
        // An absolute expiry is always converted from wall time.
        let token = AccessToken::builder("t", Timestamp::new(t0, Some(secs(100))))
            .expires_at(Some(t0 + secs(3600)))
            .build();
        let e = Entry::new(token, &no_ahead, secs(90), secs(130), t0 + secs(30));
        assert_eq!(e.stale_at, secs(130 + 3540 - 30));
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

    /// The tests that take many stripes at once, one at a time.
    static MANY_THREADS: Mutex<()> = Mutex::new(());

    #[test]
    fn striped_counter_is_exact_with_more_threads_than_stripes() {
        let _one_at_a_time = MANY_THREADS.lock().unwrap_or_else(PoisonError::into_inner);
        let c = StripedCounter::default();
        // Three waves of 40 threads at once (more than the owned stripes:
        // some share the last one), each wave's stripes given back and
        // taken again by the next.
        for _ in 0..3 {
            let start = std::sync::Barrier::new(40);
            std::thread::scope(|s| {
                for _ in 0..40 {
                    s.spawn(|| {
                        start.wait();
                        (0..50_000).for_each(|_| c.increment());
                    });
                }
            });
        }
        assert_eq!(c.sum(), 3 * 40 * 50_000);
    }

    #[test]
    fn no_two_live_threads_own_the_same_stripe_and_exited_ones_give_theirs_back() {
        let _one_at_a_time = MANY_THREADS.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..3 {
            // 40 threads alive at once, each with its stripe.
            let all_claimed = std::sync::Barrier::new(40);
            let stripes: Vec<usize> = std::thread::scope(|s| {
                let threads: Vec<_> = (0..40)
                    .map(|_| {
                        s.spawn(|| {
                            let mine = stripe();
                            all_claimed.wait();
                            assert_eq!(stripe(), mine, "a thread keeps its stripe");
                            mine
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let mut owned: Vec<usize> =
                stripes.iter().copied().filter(|&s| s != SHARED_STRIPE).collect();
            let n = owned.len();
            owned.sort_unstable();
            owned.dedup();
            assert_eq!(owned.len(), n, "an owned stripe held by two live threads: {stripes:?}");
            assert!(owned.iter().all(|&s| s < OWNED_STRIPES));
            // Given back on exit: the next wave owns stripes again (other
            // tests' threads may hold a few meanwhile).
            assert!(n >= OWNED_STRIPES / 2, "stripes not given back: {stripes:?}");
        }
    }
}
