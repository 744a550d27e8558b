//! Injected time: [`Clock`], the real [`SystemClock`] and the test [`ManualClock`].
//!
//! Nothing in tokensmith reads the time directly (clippy bans
//! `SystemTime::now` outside this module); expiry, margins and backoff are
//! computed from a `Clock`, so tests drive them with a [`ManualClock`] and
//! never sleep.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// A cheap reading of the same clock for hot paths, which may lag behind
    /// [`now`](Clock::now) by a few milliseconds (one kernel tick) and is never
    /// ahead of it.
    ///
    /// The cache's hit path compares it with deadlines seconds away, where a
    /// tick does not matter but a full clock read would double the cost. The
    /// default returns [`now`](Clock::now), which is exact; [`SystemClock`]
    /// reads `CLOCK_REALTIME_COARSE` on Linux (about 5 ns instead of 25).
    fn now_coarse(&self) -> SystemTime {
        self.now()
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

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
    fn now_coarse(&self) -> SystemTime {
        use rustix::time::{ClockId, clock_gettime};
        let ts = clock_gettime(ClockId::RealtimeCoarse);
        // Seconds before the epoch (a badly set clock) read as the epoch, as
        // in `ManualClock`; nanoseconds are always below one second.
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    }
}

/// A clock that moves only when told to: for tests.
///
/// Clones share the same time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokensmith_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(90));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos_since_epoch: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `start` (times before the Unix epoch read as the epoch).
    pub fn new(start: SystemTime) -> Self {
        let clock = Self::default();
        clock.set(start);
        clock
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos_since_epoch.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        let nanos = to.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        self.nanos_since_epoch.store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.nanos_since_epoch.load(Ordering::SeqCst))
    }
}
