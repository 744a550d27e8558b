//! The token store under the cache ([`FileTokenStore`] on real files, a
//! [`ManualClock`] for time): consulted only on a miss or refresh, shared
//! between instances, one upstream request per lease, and a broken store
//! never fails a caller.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock, FileTokenStore, ManualClock, NamingKey,
    ProviderIdentity, ProviderKey, SharedTokenStore, StoreError, StoreLease, TokenError,
    TokenProvider, TokenStore, async_trait,
};
use tokio::sync::watch;
use tokio::time::timeout;

const HOUR: Duration = Duration::from_hours(1);
const GUARD: Duration = Duration::from_secs(30);
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// A counting upstream handing out `token-N` for an hour; can be held.
#[derive(Debug)]
struct Upstream {
    clock: ManualClock,
    calls: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Upstream {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            calls: AtomicUsize::new(0),
            open: watch::channel(true).0,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenProvider for Upstream {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let sent = self.clock.timestamp();
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        Ok(AccessToken::builder(format!("token-{n}"), sent).expires_in(HOUR).build())
    }
}

/// The real file store, with a count of every call made to it; with
/// `keeps`, removals do nothing (a removal still under way).
#[derive(Debug)]
struct Counted {
    inner: FileTokenStore,
    calls: Mutex<Vec<&'static str>>,
    keeps: bool,
}

impl Counted {
    fn new(dir: &std::path::Path) -> Arc<Self> {
        Arc::new(Self {
            inner: FileTokenStore::new(dir),
            calls: Mutex::new(Vec::new()),
            keeps: false,
        })
    }

    fn keeping_everything(dir: &std::path::Path) -> Arc<Self> {
        Arc::new(Self { keeps: true, ..Arc::into_inner(Self::new(dir)).unwrap() })
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    fn note(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait]
impl TokenStore for Counted {
    fn kind(&self) -> &'static str {
        "counted"
    }

    async fn naming_key(&self) -> Result<NamingKey, StoreError> {
        self.note("naming_key");
        self.inner.naming_key().await
    }

    async fn load(&self, key: &ProviderKey) -> Result<Option<AccessToken>, StoreError> {
        self.note("load");
        self.inner.load(key).await
    }

    async fn store(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.note("store");
        self.inner.store(key, token, ttl).await
    }

    async fn remove_if_same(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
    ) -> Result<bool, StoreError> {
        self.note("remove_if_same");
        if self.keeps {
            return Ok(false);
        }
        self.inner.remove_if_same(key, token).await
    }

    async fn remove(&self, key: &ProviderKey) -> Result<bool, StoreError> {
        self.note("remove");
        if self.keeps {
            return Ok(false);
        }
        self.inner.remove(key).await
    }

    async fn try_lock(
        &self,
        key: &ProviderKey,
        ttl: Duration,
    ) -> Result<Option<Box<dyn StoreLease>>, StoreError> {
        self.note("try_lock");
        self.inner.try_lock(key, ttl).await
    }
}

fn identity() -> ProviderIdentity {
    ProviderIdentity::new("test")
        .field("token_url", "https://as.example/token")
        .field("client_id", "me")
        .secret("client_secret", "s3cret")
}

fn cached(upstream: &Arc<Upstream>, store: SharedTokenStore) -> Arc<CachedProvider> {
    Arc::new(
        CachedProvider::new(
            "test",
            upstream.clone(),
            CacheConfig::default(),
            Arc::new(upstream.clock.clone()),
        )
        .with_store(store, identity(), LOCK_TIMEOUT),
    )
}

fn value(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

async fn guarded<T>(what: &str, f: impl Future<Output = T>) -> T {
    timeout(GUARD, f).await.unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

#[tokio::test]
async fn the_store_is_consulted_on_a_miss_only_never_on_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let store = Counted::new(dir.path());
    let cache = cached(&upstream, store.clone());
    cache.token().await.unwrap();
    assert_eq!(store.calls(), ["naming_key", "load", "try_lock", "load", "store"]);
    for _ in 0..1000 {
        cache.token().await.unwrap();
    }
    clock.advance(Duration::from_mins(10));
    for _ in 0..1000 {
        cache.token().await.unwrap();
    }
    assert_eq!(store.calls().len(), 5, "hits make no store call: {:?}", store.calls());
    assert_eq!((upstream.calls(), cache.stats().fetches), (1, 1));
}

#[tokio::test]
async fn a_token_stored_by_one_instance_is_used_by_another_without_a_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let (up1, up2) = (Upstream::new(&clock), Upstream::new(&clock));
    let first = cached(&up1, Arc::new(FileTokenStore::new(dir.path())));
    let token = first.token().await.unwrap();
    clock.advance(Duration::from_mins(5));
    let second = cached(&up2, Arc::new(FileTokenStore::new(dir.path())));
    let got = second.token().await.unwrap();
    assert_eq!(value(&got), value(&token));
    assert_eq!(
        got.expires_at(),
        token.expires_at().map(|t| {
            // Stored in milliseconds.
            SystemTime::UNIX_EPOCH
                + Duration::from_millis(
                    u64::try_from(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis())
                        .unwrap(),
                )
        })
    );
    assert_eq!((up2.calls(), second.stats().store_hits), (0, 1));
    // Another identity is another key: not shared.
    let other = Arc::new(
        CachedProvider::new("other", up2.clone(), CacheConfig::default(), Arc::new(clock.clone()))
            .with_store(
                Arc::new(FileTokenStore::new(dir.path())),
                identity().field("scope", "x"),
                LOCK_TIMEOUT,
            ),
    );
    other.token().await.unwrap();
    assert_eq!(up2.calls(), 1);
}

#[tokio::test]
async fn a_stored_token_within_its_margin_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let (up1, up2) = (Upstream::new(&clock), Upstream::new(&clock));
    cached(&up1, Arc::new(FileTokenStore::new(dir.path()))).token().await.unwrap();
    // 30 s before expiry: inside the default 60 s margin.
    clock.advance(HOUR.saturating_sub(Duration::from_secs(30)));
    let second = cached(&up2, Arc::new(FileTokenStore::new(dir.path())));
    assert_eq!(value(&second.token().await.unwrap()), "token-1");
    assert_eq!(up2.calls(), 1, "a stale stored token is refetched");
}

/// A file store where another process stores its token just as this one
/// takes the lease, and the lease's release is slow: the clock moves
/// `release_takes` on while it runs.
#[derive(Debug)]
struct SlowRelease {
    inner: FileTokenStore,
    clock: ManualClock,
    planted: AccessToken,
    release_takes: Duration,
}

#[derive(Debug)]
struct SlowLease {
    inner: Box<dyn StoreLease>,
    clock: ManualClock,
    takes: Duration,
}

#[async_trait]
impl StoreLease for SlowLease {
    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        self.clock.advance(self.takes);
        self.inner.release().await
    }
}

#[async_trait]
impl TokenStore for SlowRelease {
    fn kind(&self) -> &'static str {
        "slow-release"
    }

    async fn naming_key(&self) -> Result<NamingKey, StoreError> {
        self.inner.naming_key().await
    }

    async fn load(&self, key: &ProviderKey) -> Result<Option<AccessToken>, StoreError> {
        self.inner.load(key).await
    }

    async fn store(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.inner.store(key, token, ttl).await
    }

    async fn remove_if_same(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
    ) -> Result<bool, StoreError> {
        self.inner.remove_if_same(key, token).await
    }

    async fn remove(&self, key: &ProviderKey) -> Result<bool, StoreError> {
        self.inner.remove(key).await
    }

    async fn try_lock(
        &self,
        key: &ProviderKey,
        ttl: Duration,
    ) -> Result<Option<Box<dyn StoreLease>>, StoreError> {
        self.inner.store(key, &self.planted, HOUR).await?;
        let inner = self.inner.try_lock(key, ttl).await?;
        Ok(inner.map(|inner| {
            Box::new(SlowLease { inner, clock: self.clock.clone(), takes: self.release_takes })
                as Box<dyn StoreLease>
        }))
    }
}

/// A stored token usable when read but stale by the time the cache would
/// serve it (here: a slow lease release; in a loaded fleet, a process
/// descheduled between the two) is not served as "expired on arrival": the
/// caller gets a token from upstream. Found by the CLI fleet test under load.
#[tokio::test]
async fn a_stored_token_gone_stale_before_it_is_served_is_fetched_past() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let upstream = Upstream::new(&clock);
    // Another process's token, 10 s outside the default 60 s margin.
    let received = clock.now() - HOUR + Duration::from_secs(70);
    let planted = AccessToken::builder("from-elsewhere", received).expires_in(HOUR).build();
    let store = Arc::new(SlowRelease {
        inner: FileTokenStore::new(dir.path()),
        clock: clock.clone(),
        planted,
        release_takes: Duration::from_secs(20),
    });
    let cache = cached(&upstream, store);
    let got = guarded("the token", cache.token()).await.expect("no caller error");
    assert_eq!(value(&got), "token-1", "fetched upstream, not the stale stored token");
    assert_eq!((upstream.calls(), cache.stats().failures), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_sharing_a_file_store_make_one_upstream_request() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let upstream = Upstream::new(&clock);
    upstream.open.send_replace(false);
    // Two caches, two store instances (two open lock files): as two processes.
    let a = cached(&upstream, Arc::new(FileTokenStore::new(dir.path())));
    let b = cached(&upstream, Arc::new(FileTokenStore::new(dir.path())));
    let ta = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    let tb = tokio::spawn({
        let b = b.clone();
        async move { b.token().await }
    });
    guarded("one caller to reach the upstream", async {
        while upstream.calls() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    upstream.open.send_replace(true);
    // The lease holder has its token (stored before it returns) without any
    // clock movement; the other polls the store on the clock: move it a poll
    // at a time (far less in all than the store's 2 s call timeout).
    let tasks = [ta, tb];
    guarded("the lease holder", async {
        while !tasks.iter().any(tokio::task::JoinHandle::is_finished) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    for _ in 0..50 {
        clock.advance(Duration::from_millis(20));
        let all = async {
            while !tasks.iter().all(tokio::task::JoinHandle::is_finished) {
                tokio::task::yield_now().await;
            }
        };
        if timeout(Duration::from_millis(100), all).await.is_ok() {
            break;
        }
    }
    let [ta, tb] = tasks;
    assert!(tb.is_finished() && ta.is_finished(), "the waiter found the stored token");
    let (ra, rb) = (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap());
    assert_eq!(upstream.calls(), 1, "one upstream request for both caches");
    assert_eq!(value(&ra), value(&rb));
    assert_eq!(a.stats().fetches + b.stats().fetches, 1);
    assert_eq!(a.stats().store_hits + b.stats().store_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_past_lock_timeout_is_waited_for_then_fetched_past() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let holder = FileTokenStore::new(dir.path());
    let key = identity().key(&holder.naming_key().await.unwrap());
    let lease = holder.try_lock(&key, LOCK_TIMEOUT).await.unwrap().expect("free");
    assert!(holder.try_lock(&key, LOCK_TIMEOUT).await.unwrap().is_none(), "held");
    let cache = cached(&upstream, Arc::new(FileTokenStore::new(dir.path())));
    let task = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    // Time moves a poll at a time, each given time to look at the store.
    let mut advanced = Duration::ZERO;
    let mut task = task;
    let token = loop {
        if let Ok(done) = timeout(Duration::from_millis(20), &mut task).await {
            break done.unwrap().unwrap();
        }
        assert!(advanced < GUARD, "still waiting after {advanced:?} of clock time");
        clock.advance(Duration::from_millis(100));
        advanced += Duration::from_millis(100);
    };
    assert_eq!(value(&token), "token-1");
    assert!(advanced >= LOCK_TIMEOUT, "waited out the lease: {advanced:?}");
    assert_eq!(upstream.calls(), 1);
    lease.release().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_broken_store_never_fails_a_caller() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    // Not a directory; a directory linked in; garbage in the entry.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for broken in [file, link] {
        let upstream = Upstream::new(&clock);
        let cache = cached(&upstream, Arc::new(FileTokenStore::new(&broken)));
        assert_eq!(value(&cache.token().await.unwrap()), "token-1", "{}", broken.display());
        assert_eq!(upstream.calls(), 1);
    }
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing written through the link");

    // Garbage in the entry: a miss, then replaced by a good entry.
    let store_dir = dir.path().join("store");
    let store = FileTokenStore::new(&store_dir);
    let key = identity().key(&store.naming_key().await.unwrap());
    let entry = store_dir.join(format!("{key}.json"));
    for garbage in [
        &b"{not json"[..],
        b"",
        &vec![0xff; 100_000][..],
        br#"{"v":1,"access_token":"a\nb","token_type":"Bearer","received_at_ms":0}"#,
    ] {
        std::fs::write(&entry, garbage).unwrap();
        let upstream = Upstream::new(&clock);
        let cache = cached(&upstream, Arc::new(FileTokenStore::new(&store_dir)));
        assert_eq!(value(&cache.token().await.unwrap()), "token-1");
        assert_eq!(upstream.calls(), 1);
        assert!(store.load(&key).await.unwrap().is_some(), "a good entry replaced the garbage");
    }
}

#[tokio::test]
async fn invalidate_removes_the_stored_token_if_it_is_still_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let upstream = Upstream::new(&clock);
    let store = Arc::new(FileTokenStore::new(dir.path()));
    let cache = cached(&upstream, store.clone());
    let token = cache.token().await.unwrap();
    let key = identity().key(&store.naming_key().await.unwrap());
    assert!(store.load(&key).await.unwrap().is_some());
    cache.invalidate(&token);
    guarded("the removal", async {
        while store.load(&key).await.unwrap().is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(value(&cache.token().await.unwrap()), "token-2");
    // An older token does not remove the newer one.
    let newer = store.load(&key).await.unwrap().unwrap();
    assert!(!store.remove_if_same(&key, &token).await.unwrap());
    assert!(store.remove_if_same(&key, &newer).await.unwrap());
}

/// `peek`: the cache's own token, else the store's on `token()`'s terms;
/// never a fetch, never the lease.
#[tokio::test]
async fn peek_answers_from_the_cache_or_the_store_and_never_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let (up1, up2) = (Upstream::new(&clock), Upstream::new(&clock));
    // Nothing anywhere: nothing, and no request, no lease.
    let store = Counted::new(dir.path());
    let empty = cached(&up1, store.clone());
    assert!(empty.peek().await.is_none());
    assert_eq!(store.calls(), ["naming_key", "load"]);
    assert_eq!((up1.calls(), empty.stats().fetches), (0, 0));
    // Its own token: no store call.
    let token = empty.token().await.unwrap();
    let calls = store.calls().len();
    assert_eq!(value(&empty.peek().await.unwrap()), value(&token));
    assert_eq!(store.calls().len(), calls);
    // Another instance: the stored token, counted as a store hit.
    let second = cached(&up2, Arc::new(FileTokenStore::new(dir.path())));
    assert_eq!(value(&second.peek().await.unwrap()), value(&token));
    assert_eq!((up2.calls(), second.stats().store_hits), (0, 1));
    // Not kept: `token()` reads the store again (no request either).
    assert_eq!(value(&second.token().await.unwrap()), value(&token));
    assert_eq!((up2.calls(), second.stats().store_hits), (0, 2));
    // Within the margin: neither instance serves it; still no request.
    clock.advance(HOUR.saturating_sub(Duration::from_secs(30)));
    let third = cached(&up2, Arc::new(FileTokenStore::new(dir.path())));
    assert!(empty.peek().await.is_none());
    assert!(third.peek().await.is_none());
    assert_eq!((up1.calls(), up2.calls()), (1, 0));
}

#[tokio::test]
async fn peek_never_serves_a_token_just_invalidated() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let upstream = Upstream::new(&clock);
    // The store keeps the token: its removal is not seen yet.
    let cache = cached(&upstream, Counted::keeping_everything(dir.path()));
    let token = cache.token().await.unwrap();
    cache.invalidate(&token);
    assert!(cache.peek().await.is_none());
    assert_eq!(upstream.calls(), 1);
}

/// What the CLI relies on: with the file store, `peek` runs on a runtime
/// with a timer only (no I/O driver), on the real system clock.
#[test]
fn peek_on_the_file_store_needs_no_io_driver() {
    let dir = tempfile::tempdir().unwrap();
    let upstream =
        AccessToken::builder("abc", tokensmith_core::SystemClock.now()).expires_in(HOUR).build();
    let cached = || {
        CachedProvider::new(
            "test",
            Arc::new(upstream.clone()),
            CacheConfig::default(),
            Arc::new(tokensmith_core::SystemClock),
        )
        .with_store(Arc::new(FileTokenStore::new(dir.path())), identity(), LOCK_TIMEOUT)
    };
    let timer_only =
        || tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let first = cached();
    assert!(timer_only().block_on(first.peek()).is_none());
    timer_only().block_on(first.token()).unwrap();
    let second = cached();
    assert_eq!(value(&timer_only().block_on(second.peek()).unwrap()), "abc");
    assert_eq!((second.stats().fetches, second.stats().store_hits), (0, 1));
}

/// The naming key file: a link at its name (even to a good key of this
/// user) or a loose mode is not trusted and is replaced, the link's target
/// left alone; a good key is kept.
#[cfg(unix)]
#[tokio::test]
async fn an_untrusted_naming_key_is_replaced_and_a_good_one_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let key = async || identity().key(&FileTokenStore::new(&store_dir).naming_key().await.unwrap());
    let first = key().await;
    assert_eq!(key().await, first, "a good key is kept");
    let key_file = store_dir.join("key");
    let good = std::fs::read(&key_file).unwrap();
    let copy = dir.path().join("copy");
    std::fs::write(&copy, &good).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    std::os::unix::fs::symlink(&copy, &key_file).unwrap();
    let second = key().await;
    assert_ne!(second, first, "the link is not followed");
    assert!(!std::fs::symlink_metadata(&key_file).unwrap().is_symlink(), "the link is replaced");
    assert_eq!(std::fs::read(&copy).unwrap(), good, "its target is untouched");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_ne!(key().await, second, "a key others may read is replaced");
}
