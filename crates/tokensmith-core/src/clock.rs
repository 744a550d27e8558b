//! Injected time: [`Clock`], the real [`SystemClock`], the test
//! [`ManualClock`], and [`Timestamp`] (one reading of both of a clock's
//! times).
//!
//! Nothing in tokensmith reads the time directly (clippy bans
//! `SystemTime::now` and `Instant::now` outside this module); expiry, margins
//! and backoff are computed from a `Clock`, so tests drive them with a
//! [`ManualClock`] and never sleep.
//!
//! A clock has two times:
//!
//! - **wall time** ([`Clock::now`]): what a JWT `exp`, a disk cache entry and
//!   a display need. It can step (NTP, an administrator, a VM restored from a
//!   snapshot).
//! - **monotonic time** ([`Clock::monotonic`]): never steps and keeps counting
//!   while the machine is suspended (`CLOCK_BOOTTIME` on Linux). The cache
//!   measures lifetimes (`expires_in`), margins and backoff on it, so a wall
//!   clock stepped back by an hour does not serve a token an hour past its
//!   expiry.

use std::fmt::Debug;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A source of time: wall time and monotonic time.
///
/// Implementations must give both; [`ManualClock`] moves them together
/// ([`advance`](ManualClock::advance)) or the wall time alone
/// ([`set_wall`](ManualClock::set_wall)).
pub trait Clock: Send + Sync + Debug {
    /// The current wall-clock time. It may step, backwards too.
    fn now(&self) -> SystemTime;

    /// The time on a monotonic clock, since an arbitrary origin fixed for
    /// the clock's life: it never goes back and keeps counting while the
    /// machine is suspended, so the difference of two readings is the time
    /// that really passed between them.
    ///
    /// [`SystemClock`] reads `CLOCK_BOOTTIME` on Linux and Android, and a
    /// monotonic `Instant` elsewhere (which may not count a suspend on every
    /// platform).
    fn monotonic(&self) -> Duration;

    /// A cheap reading for hot paths, only ever compared with another
    /// `monotonic_coarse` reading: the difference of two readings is at
    /// most the [`monotonic`](Clock::monotonic) time between them plus one
    /// kernel tick (a few milliseconds), and may be less (it may stop while
    /// the machine is suspended).
    ///
    /// The cache's hit path compares it with a horizon that a precise reading
    /// set at most a fraction of a second (100 ms)
    /// earlier, where a tick does not matter but a full clock read would more
    /// than double the cost of a hit. The default returns
    /// [`monotonic`](Clock::monotonic); [`SystemClock`] reads
    /// `CLOCK_MONOTONIC_COARSE` on Linux (about 6 ns instead of 25).
    /// `CLOCK_BOOTTIME` has no coarse variant; the coarse monotonic clock does
    /// not count a suspend, which the cache's bounded horizon makes harmless.
    fn monotonic_coarse(&self) -> Duration {
        self.monotonic()
    }

    /// Both times, read together.
    fn timestamp(&self) -> Timestamp {
        Timestamp::new(self.now(), Some(self.monotonic()))
    }

    /// Waits `duration` of this clock's monotonic time: the cache polls a
    /// [token store](crate::TokenStore) with it while another process
    /// fetches. The default sleeps on the Tokio timer (a runtime with the
    /// time driver is required); [`ManualClock`] waits until the test
    /// [advances](ManualClock::advance) it that far.
    fn sleep(&self, duration: Duration) -> Sleep {
        #[allow(clippy::disallowed_methods, reason = "the clock module is where sleeping lives")]
        Box::pin(tokio::time::sleep(duration))
    }

    /// Waits until the [monotonic](Clock::monotonic) time reaches `deadline`
    /// (at once when it has): how the cache's background refresher
    /// ([`CachedProvider::spawn_refresher`](crate::CachedProvider::spawn_refresher))
    /// waits, so tests drive it with a [`ManualClock`].
    ///
    /// The default sleeps on Tokio's timer for the time left (it must be
    /// polled inside a Tokio runtime). Tokio's timer may not count a suspend,
    /// so a caller that cares wakes up at least every few seconds and
    /// re-reads the clock, as the refresher does. [`ManualClock`] wakes its
    /// sleepers when [`advance`](ManualClock::advance) moves past their
    /// deadline.
    fn sleep_until(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let left = deadline.saturating_sub(self.monotonic());
        #[allow(clippy::disallowed_methods, reason = "the clock module owns real sleeping")]
        let sleep = tokio::time::sleep(left);
        Box::pin(sleep)
    }
}

/// A future sleeping on a [`Clock`] (see [`Clock::sleep`]).
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// One reading of a [`Clock`]: the wall time and, when known, the monotonic
/// time taken with it.
///
/// A token's receipt time is a `Timestamp`, so the cache can measure a
/// relative lifetime (`expires_in`) on the monotonic clock. A bare
/// [`SystemTime`] converts into one without a monotonic reading: the cache
/// then measures from the wall time once, when it takes the token.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokensmith_core::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(5));
/// let stamp = clock.timestamp();
/// assert_eq!(stamp.wall(), SystemTime::UNIX_EPOCH + Duration::from_secs(5));
/// assert_eq!(stamp.monotonic(), Some(Duration::from_secs(5)));
/// assert_eq!(Timestamp::from(SystemTime::UNIX_EPOCH).monotonic(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    wall: SystemTime,
    monotonic: Option<Duration>,
}

impl Timestamp {
    /// A reading of wall time `wall` and monotonic time `monotonic`.
    pub fn new(wall: SystemTime, monotonic: Option<Duration>) -> Self {
        Self { wall, monotonic }
    }

    /// The wall time.
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// The monotonic time ([`Clock::monotonic`]), when it was read.
    pub fn monotonic(&self) -> Option<Duration> {
        self.monotonic
    }
}

impl From<SystemTime> for Timestamp {
    fn from(wall: SystemTime) -> Self {
        Self { wall, monotonic: None }
    }
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "the one place that reads the real time")]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    fn monotonic(&self) -> Duration {
        read(rustix::time::ClockId::Boottime)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn monotonic(&self) -> Duration {
        #[allow(clippy::disallowed_methods, reason = "the one place that reads the real time")]
        fn now() -> std::time::Instant {
            std::time::Instant::now()
        }
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        // The origin is the first reading, so nothing reads before it.
        let origin = *ORIGIN.get_or_init(now);
        now().saturating_duration_since(origin)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    fn monotonic_coarse(&self) -> Duration {
        read(rustix::time::ClockId::MonotonicCoarse)
    }
}

/// Reads a Linux clock (both used here count from boot, never negative).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn read(clock: rustix::time::ClockId) -> Duration {
    let ts = rustix::time::clock_gettime(clock);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    // Nanoseconds are always below one second.
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// A clock that moves only when told to: for tests.
///
/// [`advance`](Self::advance) is time passing (both times move);
/// [`set_wall`](Self::set_wall) is a step of the wall clock (an NTP
/// correction: the monotonic time stays). Clones share the same time. The
/// monotonic time starts at zero.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokensmith_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(90));
/// assert_eq!(clock.monotonic(), Duration::from_secs(90));
///
/// // The wall clock steps back an hour; monotonic time does not move.
/// clock.set_wall(SystemTime::UNIX_EPOCH);
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
/// assert_eq!(clock.monotonic(), Duration::from_secs(90));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    times: Arc<Times>,
}

#[derive(Debug, Default)]
struct Times {
    wall_nanos_since_epoch: AtomicU64,
    monotonic_nanos: AtomicU64,
    /// Woken on every [`ManualClock::advance`], for sleepers ([`Clock::sleep`],
    /// [`Clock::sleep_until`]).
    advanced: tokio::sync::Notify,
}

impl ManualClock {
    /// A clock showing wall time `start` (times before the Unix epoch read
    /// as the epoch) and monotonic time zero.
    pub fn new(start: SystemTime) -> Self {
        let clock = Self::default();
        clock.set_wall(start);
        clock
    }

    /// Time passes: both the wall and the monotonic time move forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        self.times.wall_nanos_since_epoch.fetch_add(by, Ordering::SeqCst);
        self.times.monotonic_nanos.fetch_add(by, Ordering::SeqCst);
        self.times.advanced.notify_waiters();
    }

    /// The wall clock steps to `to` (back or forward); the monotonic time
    /// does not move.
    pub fn set_wall(&self, to: SystemTime) {
        let since_epoch = to.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        self.times.wall_nanos_since_epoch.store(nanos(since_epoch), Ordering::SeqCst);
    }

    /// Sets the wall clock to `to`: the same as [`set_wall`](Self::set_wall).
    #[deprecated(note = "use `set_wall` (a step of the wall clock) or `advance` (time passing)")]
    pub fn set(&self, to: SystemTime) {
        self.set_wall(to);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_nanos(self.times.wall_nanos_since_epoch.load(Ordering::SeqCst))
    }

    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.times.monotonic_nanos.load(Ordering::SeqCst))
    }

    /// Waits until the clock has been [advanced](ManualClock::advance) by
    /// `duration` (never on its own: the test drives time).
    fn sleep(&self, duration: Duration) -> Sleep {
        let times = Arc::clone(&self.times);
        let until = self.monotonic().saturating_add(duration);
        Box::pin(async move {
            loop {
                let notified = times.advanced.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if Duration::from_nanos(times.monotonic_nanos.load(Ordering::SeqCst)) >= until {
                    return;
                }
                notified.await;
            }
        })
    }

    /// Returns once [`advance`](ManualClock::advance) has moved the
    /// monotonic time to `deadline`; never on its own.
    fn sleep_until(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                // Registered before looking, so an advance in between is not missed.
                let mut advanced = pin!(self.times.advanced.notified());
                advanced.as_mut().enable();
                if self.monotonic() >= deadline {
                    return;
                }
                advanced.await;
            }
        })
    }
}
