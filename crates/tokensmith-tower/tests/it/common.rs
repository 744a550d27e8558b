//! What both clients' tests share: the counting provider in a real cache,
//! and the resource server's notion of which token is valid.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock as _, ManualClock, TokenError, TokenProvider,
    async_trait,
};

/// Guards against a hang; never a timing assertion.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// Hands out `token-1`, `token-2`, …, each living an hour.
#[derive(Debug)]
pub(crate) struct Counting {
    clock: ManualClock,
    calls: AtomicUsize,
}

#[async_trait]
impl TokenProvider for Counting {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::builder(format!("token-{n}"), self.clock.timestamp())
            .expires_in(Duration::from_hours(1))
            .build())
    }
}

/// A real cache around a counting upstream, on a manual clock.
pub(crate) fn cached() -> (Arc<CachedProvider>, ManualClock) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let upstream = Arc::new(Counting { clock: clock.clone(), calls: AtomicUsize::new(0) });
    let cache =
        CachedProvider::new("api", upstream, CacheConfig::default(), Arc::new(clock.clone()));
    (Arc::new(cache), clock)
}

/// The resource server's state: the one token it accepts (rotated by the
/// test), and every `Authorization` value it was sent, in order.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    valid: Mutex<String>,
    seen: Mutex<Vec<String>>,
}

impl Gate {
    pub(crate) fn accepting(token: &str) -> Arc<Self> {
        let gate = Arc::new(Self::default());
        gate.rotate(token);
        gate
    }

    /// From now on only `token` is accepted.
    pub(crate) fn rotate(&self, token: &str) {
        token.clone_into(&mut self.valid.lock().unwrap());
    }

    /// Records a request's `Authorization` value; whether it is accepted.
    pub(crate) fn admit(&self, authorization: Option<&str>) -> bool {
        let authorization = authorization.unwrap_or("<none>").to_owned();
        let ok = authorization == format!("Bearer {}", self.valid.lock().unwrap());
        self.seen.lock().unwrap().push(authorization);
        ok
    }

    /// The `Authorization` values sent since the last call, in order.
    pub(crate) fn take_seen(&self) -> Vec<String> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}
