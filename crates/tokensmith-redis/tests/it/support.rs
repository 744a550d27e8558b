//! Helpers: stores on a test server, keys, tokens, a counting upstream, log
//! capture.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use secrecy::SecretString;
use tokensmith_core::{
    AccessToken, Clock, NamingKey, ProviderIdentity, ProviderKey, SystemClock, TokenError,
    TokenProvider, TokenStore, async_trait,
};
use tokensmith_redis::{RedisStoreConfig, RedisTokenStore};
use tokensmith_testkit::redis::RedisServer;

/// A fresh random `encryption_key`, base64.
pub(crate) fn new_key() -> SecretString {
    let mut bytes = [0_u8; 32];
    SystemRandom::new().fill(&mut bytes).unwrap();
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An encrypting store on `server` under `key` (`prefix` "t").
pub(crate) fn store(server: &RedisServer, key: &SecretString) -> RedisTokenStore {
    let config = RedisStoreConfig::new(server.url(), key).unwrap().with_prefix("t").unwrap();
    RedisTokenStore::new(config.with_call_timeout(Duration::from_millis(500))).unwrap()
}

/// The provider key of `name` in `store`.
pub(crate) async fn provider_key(store: &RedisTokenStore, name: &str) -> ProviderKey {
    let naming: NamingKey = store.naming_key().await.unwrap();
    identity(name).key(&naming)
}

pub(crate) fn identity(name: &str) -> ProviderIdentity {
    ProviderIdentity::new("test")
        .field("token_url", "https://as.example/token")
        .field("name", name)
        .secret("client_secret", "CLIENT-SECRET-xyz")
}

/// A token `secret` received now, valid for `lifetime`.
pub(crate) fn token(secret: &str, lifetime: Duration) -> AccessToken {
    AccessToken::builder(secret, SystemClock.now()).expires_in(lifetime).build()
}

/// Waits `d` of real time (on the system clock).
pub(crate) async fn sleep(d: Duration) {
    SystemClock.sleep(d).await;
}

/// An upstream handing out `upstream-token-N-...` for an hour, counting.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    calls: AtomicUsize,
}

impl Upstream {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenProvider for Upstream {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(token(&format!("upstream-token-{n}-PLAINTEXT"), Duration::from_hours(1)))
    }
}

thread_local! {
    static BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        BUFFER.with_borrow_mut(|buffer| {
            if let Some(buffer) = buffer {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` on a current-thread runtime on this thread and returns its
/// value and every line `tracing` logged meanwhile (trace level).
pub(crate) fn capture<T>(f: impl Future<Output = T>) -> (T, String) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    BUFFER.set(Some(Vec::new()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let value = runtime.block_on(f);
    drop(runtime);
    let bytes = BUFFER.take().unwrap_or_default();
    (value, String::from_utf8_lossy(&bytes).into_owned())
}
