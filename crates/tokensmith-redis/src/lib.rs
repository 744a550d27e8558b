//! A Redis [`TokenStore`] for tokensmith: every process of a fleet sharing
//! one Redis shares one token per provider, so a vendor sees one upstream
//! fetch per token lifetime instead of one per process (contract §6,
//! `docs/stores.md`).
//!
//! - **Connection:** redis-rs on Tokio with its connection manager, which
//!   reconnects in the background after Redis restarts or a network cut.
//!   `rediss://` is TLS through rustls with *ring* (no second TLS stack):
//!   redis-rs builds its TLS config from rustls' process-default crypto
//!   provider, so [`RedisTokenStore::new`] installs ring's as that default
//!   **only if no provider is installed yet** (an application that installed
//!   its own keeps it). Server certificates are checked against the
//!   operating system's roots.
//! - **Keys:** `{prefix}:token:{ProviderKey}` and `{prefix}:lock:{ProviderKey}`.
//!   A [`ProviderKey`] is an HMAC-SHA-256 of the provider's identity under a
//!   naming key derived (HKDF-SHA-256) from `encryption_key`, so every process
//!   sharing the config names a provider alike, and a key holds no secret nor
//!   an unkeyed hash of one.
//! - **Values:** core's [`encode_token`] document sealed with AES-256-GCM
//!   under a key derived from `encryption_key`, a random 96-bit nonce per
//!   value, the Redis key bound as associated data. A value that does not
//!   open (another key, tampering, a value moved to another key) is a miss:
//!   the cache fetches and overwrites it. Expiry: `PX` = the token's
//!   lifetime minus the cache's margin.
//! - **Lease:** `SET {prefix}:lock:{key} <random owner> NX PX <ttl>`;
//!   released by a Lua compare-and-delete, so a holder whose lease expired
//!   never frees another's. A holder that dies frees it by expiry.
//! - **Failures:** every call is bounded ([`RedisStoreConfig::with_call_timeout`],
//!   default 1 s, on the injected [`Clock`](tokensmith_core::Clock)); an unreachable or slow Redis is
//!   a [`StoreError`] and the cache fetches for itself. The store logs once
//!   per outage (target `tokensmith::store`) and once when Redis answers
//!   again; never a URL, key material or token.
//!
//! ```no_run
//! use tokensmith_core::Registry;
//! use tokensmith_redis::RedisStoreFactory;
//!
//! // `[store] kind = "redis"` in the config now builds a RedisTokenStore.
//! let registry = Registry::new().with_store_factory(RedisStoreFactory);
//! # let _ = registry;
//! ```
#![forbid(unsafe_code)]

mod seal;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, ExistenceCheck, Script, SetExpiry, SetOptions};
use secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::{
    AccessToken, NamingKey, ProviderKey, STORE_CALL_TIMEOUT, SharedClock, SharedTokenStore,
    StoreConfig, StoreError, StoreErrorKind, StoreFactory, StoreLease, SystemClock, TokenError,
    TokenStore, decode_token, encode_token,
};

use crate::seal::{KEY_LEN, Keys};

/// The default key namespace: `"tokensmith"`.
pub const DEFAULT_PREFIX: &str = "tokensmith";

/// The default bound on one Redis call (connecting included): 1 s, below
/// the cache's own [`STORE_CALL_TIMEOUT`]
/// so the store reports the failure itself.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// The shortest bound on one Redis call.
const MIN_CALL_TIMEOUT: Duration = Duration::from_millis(10);

/// The largest value read back (a sealed token document).
const MAX_VALUE_LEN: usize = tokensmith_core::MAX_ENCODED_TOKEN_LEN + seal::OVERHEAD;

/// The `tracing` target, the cache's.
const TARGET: &str = "tokensmith::store";

/// Deletes `KEYS[1]` only if it still holds exactly `ARGV[1]`: the lease's
/// release (its owner value) and `remove_if_same` (the sealed value read).
const COMPARE_AND_DELETE: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// A validated Redis store configuration: the `[store]` table of
/// `kind = "redis"`, or one built in code.
///
/// `Debug` shows neither the URL (it may hold a password) nor key material.
///
/// ```
/// use secrecy::SecretString;
/// use tokensmith_redis::RedisStoreConfig;
///
/// let key = SecretString::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
/// let config = RedisStoreConfig::new("redis://127.0.0.1:6379", &key)?.with_prefix("myapp")?;
/// assert_eq!(config.prefix(), "myapp");
/// assert!(config.is_encrypted());
/// assert!(RedisStoreConfig::new("http://127.0.0.1", &key).is_err());
/// assert!(RedisStoreConfig::new("redis://127.0.0.1", &SecretString::from("c2hvcnQ=")).is_err());
/// # Ok::<(), tokensmith_core::TokenError>(())
/// ```
#[derive(Clone)]
pub struct RedisStoreConfig {
    url: SecretString,
    keys: Option<Arc<Keys>>,
    prefix: String,
    call_timeout: Duration,
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &"[REDACTED]")
            .field("encrypted", &self.keys.is_some())
            .field("prefix", &self.prefix)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl RedisStoreConfig {
    /// Values encrypted under `encryption_key` (32 bytes, standard base64
    /// with or without padding): `head -c 32 /dev/urandom | base64`.
    /// Errors name the field (`store.url`, `store.encryption_key`) and never
    /// quote it.
    pub fn new(
        url: impl Into<SecretString>,
        encryption_key: &SecretString,
    ) -> Result<Self, TokenError> {
        let url = checked_url(url.into())?;
        let key = decode_key(encryption_key)?;
        Ok(Self {
            url,
            keys: Some(Arc::new(Keys::derive(&key))),
            prefix: DEFAULT_PREFIX.to_owned(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        })
    }

    /// Values stored **unencrypted** (`encrypt = false`): anyone who can
    /// read the Redis database can use the tokens. Key names then use a
    /// random naming key the first process creates in Redis
    /// (`{prefix}:naming-key`).
    pub fn unencrypted(url: impl Into<SecretString>) -> Result<Self, TokenError> {
        Ok(Self {
            url: checked_url(url.into())?,
            keys: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        })
    }

    /// Reads a `[store]` table of `kind = "redis"`: `url` (required),
    /// `encryption_key` (required unless `encrypt = false` is written, and
    /// then refused), `prefix`, `call_timeout` (10 ms to the cache's
    /// [`STORE_CALL_TIMEOUT`]), `lock_timeout` (used by the cache).
    pub fn from_store_config(config: &StoreConfig) -> Result<Self, TokenError> {
        config.refuse_fields(&["path"])?;
        let url = config.url.as_ref().ok_or_else(|| {
            StoreConfig::error(
                "url",
                "required for a store of kind \"redis\" (redis:// or rediss://)",
            )
        })?;
        let url = url.as_secret().clone();
        let store = match (config.encrypt, &config.encryption_key) {
            (Some(false), None) => Self::unencrypted(url)?,
            (Some(false), Some(_)) => {
                return Err(StoreConfig::error(
                    "encrypt",
                    "`encrypt = false` with an `encryption_key`: remove one of them",
                ));
            }
            (_, Some(key)) => Self::new(url, key.as_secret())?,
            (_, None) => {
                return Err(StoreConfig::error(
                    "encryption_key",
                    "required for a store of kind \"redis\" (32 random bytes, base64: `head -c 32 /dev/urandom | base64`), unless `encrypt = false` is written",
                ));
            }
        };
        let store = match config.call_timeout {
            None => store,
            Some(timeout) if (MIN_CALL_TIMEOUT..=STORE_CALL_TIMEOUT).contains(&timeout) => {
                store.with_call_timeout(timeout)
            }
            Some(_) => {
                return Err(StoreConfig::error(
                    "call_timeout",
                    format!(
                        "must be between {MIN_CALL_TIMEOUT:?} and {STORE_CALL_TIMEOUT:?} (the cache stops waiting for a store call after {STORE_CALL_TIMEOUT:?})",
                    ),
                ));
            }
        };
        match &config.prefix {
            Some(prefix) => store.with_prefix(prefix),
            None => Ok(store),
        }
    }

    /// Sets the key namespace (default [`DEFAULT_PREFIX`]): 1 to 64
    /// printable ASCII characters, no space.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, TokenError> {
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StoreConfig::error(
                "prefix",
                "must be 1 to 64 printable ASCII characters without spaces",
            ));
        }
        prefix.clone_into(&mut self.prefix);
        Ok(self)
    }

    /// Sets the bound on one Redis call, connecting included (default
    /// [`DEFAULT_CALL_TIMEOUT`]; at least 10 ms).
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout.max(MIN_CALL_TIMEOUT);
        self
    }

    /// The key namespace.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether values are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }
}

fn checked_url(url: SecretString) -> Result<SecretString, TokenError> {
    let text = url.expose_secret();
    let lower = text.get(..9).unwrap_or(text).to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(StoreConfig::error("url", "must start with redis:// or rediss:// (TLS)"));
    }
    if text.contains("#insecure") {
        return Err(StoreConfig::error(
            "url",
            "`#insecure` turns certificate checks off: not supported",
        ));
    }
    // Parsed again by `redis::Client::open`; the error never quotes the URL.
    redis::Client::open(text)
        .map_err(|_| StoreConfig::error("url", "not a valid Redis URL (host, port, database)"))?;
    Ok(url)
}

fn decode_key(key: &SecretString) -> Result<[u8; KEY_LEN], TokenError> {
    let text = key.expose_secret().trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|_| StoreConfig::error("encryption_key", "not base64 (standard alphabet)"))?;
    let len = bytes.len();
    let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
        StoreConfig::error(
            "encryption_key",
            format!("must be {KEY_LEN} bytes, base64 (this one is {len} bytes): `head -c 32 /dev/urandom | base64`"),
        )
    })?;
    Ok(key)
}

/// Builds a [`RedisTokenStore`] for `[store] kind = "redis"`: register it
/// with [`Registry::with_store_factory`](tokensmith_core::Registry::with_store_factory).
/// Connects lazily, on the first store call.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisStoreFactory;

impl StoreFactory for RedisStoreFactory {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn build(&self, config: &StoreConfig) -> Result<SharedTokenStore, TokenError> {
        Ok(Arc::new(RedisTokenStore::new(RedisStoreConfig::from_store_config(config)?)?))
    }
}

/// Tokens in Redis, shared by every process using the same Redis, prefix
/// and `encryption_key` (see the crate notes and `docs/stores.md`).
///
/// Cheap to clone (one connection, multiplexed). Put it under a
/// [`CachedProvider`](tokensmith_core::CachedProvider) with
/// [`with_store`](tokensmith_core::CachedProvider::with_store), or let the
/// registry build it from `[store]` ([`RedisStoreFactory`]).
#[derive(Clone)]
pub struct RedisTokenStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    keys: Option<Arc<Keys>>,
    prefix: String,
    call_timeout: Duration,
    clock: SharedClock,
    /// Whether Redis is failing: logged once per outage.
    down: AtomicBool,
    /// Whether an undecryptable value was logged (once per store).
    corrupt_logged: AtomicBool,
    compare_and_delete: Script,
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.inner.prefix)
            .field("encrypted", &self.inner.keys.is_some())
            .field("call_timeout", &self.inner.call_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// The store `config` describes, not connected yet (the first call
    /// connects, within its timeout). For `rediss://`, installs ring as
    /// rustls' process-default crypto provider when none is installed.
    pub fn new(config: RedisStoreConfig) -> Result<Self, TokenError> {
        if config.url.expose_secret().get(..9).is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
        {
            install_ring_provider();
        }
        let client = redis::Client::open(config.url.expose_secret())
            .map_err(|_| StoreConfig::error("url", "not a valid Redis URL"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                connection: tokio::sync::OnceCell::new(),
                keys: config.keys,
                prefix: config.prefix,
                call_timeout: config.call_timeout,
                clock: Arc::new(SystemClock),
                down: AtomicBool::new(false),
                corrupt_logged: AtomicBool::new(false),
                compare_and_delete: Script::new(COMPARE_AND_DELETE),
            }),
        })
    }

    /// The store `config` describes, connected: fails (naming `store.url`)
    /// when Redis does not answer a `PING` within the call timeout.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self, TokenError> {
        let store = Self::new(config)?;
        store
            .ping()
            .await
            .map_err(|e| StoreConfig::error("url", format!("Redis did not answer: {e}")))?;
        Ok(store)
    }

    /// Reads time (the call timeouts) from `clock` instead of the system
    /// clock.
    #[must_use]
    pub fn with_clock(self, clock: SharedClock) -> Self {
        let inner = Inner {
            client: self.inner.client.clone(),
            connection: tokio::sync::OnceCell::new(),
            keys: self.inner.keys.clone(),
            prefix: self.inner.prefix.clone(),
            call_timeout: self.inner.call_timeout,
            clock,
            down: AtomicBool::new(false),
            corrupt_logged: AtomicBool::new(false),
            compare_and_delete: Script::new(COMPARE_AND_DELETE),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Sends `PING`: `Ok` when Redis answers within the call timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", |mut con| async move {
            let _: String = redis::cmd("PING").query_async(&mut con).await?;
            Ok(())
        })
        .await
    }

    /// The Redis key of the token of `key`: `{prefix}:token:{key}`.
    pub fn token_key(&self, key: &ProviderKey) -> String {
        format!("{}:token:{key}", self.inner.prefix)
    }

    /// The Redis key of the fetch lease of `key`: `{prefix}:lock:{key}`.
    pub fn lock_key(&self, key: &ProviderKey) -> String {
        format!("{}:lock:{key}", self.inner.prefix)
    }

    /// The connection manager, created on first use (it connects lazily and
    /// reconnects in the background).
    fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(con) = self.inner.connection.get() {
            return Ok(con.clone());
        }
        let timeout = self.inner.call_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let con = ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)?;
        // Another task may have set one meanwhile: use that one.
        let _ = self.inner.connection.set(con);
        Ok(self.inner.connection.get().cloned().unwrap_or_else(|| unreachable!("just set")))
    }

    /// Runs one call on the connection, bounded by the call timeout on the
    /// clock; logs the first failure of an outage and the recovery.
    async fn run<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let timeout = self.inner.call_timeout;
        let result = async {
            let con = self.connection().map_err(|e| redis_error(what, &e))?;
            tokio::select! {
                biased;
                result = call(con) => result.map_err(|e| redis_error(what, &e)),
                () = self.inner.clock.sleep(timeout) => Err(StoreError::new(
                    StoreErrorKind::Timeout,
                    format!("redis {what}: no answer within {timeout:?}"),
                )),
            }
        }
        .await;
        match &result {
            Ok(_) => {
                if self.inner.down.swap(false, Ordering::AcqRel) {
                    tracing::info!(target: TARGET, store = "redis", "redis answers again; sharing tokens through it");
                }
            }
            Err(err) => {
                if !self.inner.down.swap(true, Ordering::AcqRel) {
                    tracing::warn!(target: TARGET, store = "redis", error = %err, "redis unusable; every process fetches for itself until it answers again (reconnecting in the background)");
                }
            }
        }
        result
    }

    /// A value that did not open or decode: a miss, logged once per store
    /// at warn level (a fleet with mixed keys refetches on every miss).
    fn corrupt(&self, why: &str) -> StoreError {
        if !self.inner.corrupt_logged.swap(true, Ordering::AcqRel) {
            tracing::warn!(target: TARGET, store = "redis", reason = why, "a stored token was ignored (wrong encryption_key, tampering, or another format); fetching a new one");
        }
        StoreError::new(StoreErrorKind::Corrupt, format!("redis value ignored: {why}"))
    }

    /// The plaintext of the value stored under the Redis key `key`.
    fn unseal(&self, key: &str, value: &[u8]) -> Result<AccessToken, StoreError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(self.corrupt("value too large"));
        }
        let plain = match &self.inner.keys {
            Some(keys) => keys
                .open(key, value)
                .ok_or_else(|| self.corrupt("value does not decrypt and authenticate"))?,
            None => value.to_vec(),
        };
        decode_token(&plain).map_err(|e| self.corrupt(&e.to_string()))
    }
}

/// Installs ring as rustls' process-default crypto provider unless one is
/// installed (redis-rs' TLS uses the default).
fn install_ring_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread installed one meanwhile, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A store error for a failed Redis call: what went wrong, never the URL
/// nor what the server sent ([`describe`]).
fn redis_error(what: &str, err: &redis::RedisError) -> StoreError {
    let kind = if err.is_timeout() { StoreErrorKind::Timeout } else { StoreErrorKind::Unavailable };
    StoreError::new(kind, format!("redis {what}: {}", describe(err)))
}

/// What a failed Redis call says, never a secret: the message holds
/// neither the URL (redis-rs errors name the failure, not the connection
/// string) nor anything the server wrote. A server's error text may quote
/// the command it was sent (a proxy, a misconfigured or hostile server),
/// and a command carries the password (`AUTH`) or a value (the token
/// itself when `encrypt = false`); redis-rs' parse and type errors quote
/// the reply. So a timeout, a reply that is not RESP and a reply of the
/// wrong type are named by their class; an I/O failure is the operating
/// system's, rustls' or redis-rs' own text (`Connection refused (os error
/// 111)`, an unknown certificate issuer); anything else redis-rs' category
/// of the failure and the server's error code (`response error (ERR)`,
/// `WRONGPASS`), without its message.
fn describe(err: &redis::RedisError) -> String {
    use redis::ErrorKind;
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    match err.kind() {
        ErrorKind::Io if err.detail().is_none() => return err.to_string(),
        ErrorKind::Parse => return "the reply is not RESP (is this a Redis server?)".to_owned(),
        ErrorKind::UnexpectedReturnType => return "a reply of an unexpected type".to_owned(),
        _ => {}
    }
    let category = match err.category() {
        "" => "server error",
        category => category,
    };
    // A code is one upper-case word (`ERR`, `NOAUTH`); anything else is
    // not a code a server sends on its own.
    let code = err.code().filter(|code| {
        (1..=32).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    match code {
        Some(code) => format!("{category} ({code}; the server's message is not shown)"),
        None => format!("{category} (the server's message is not shown)"),
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn naming_key(&self) -> Result<NamingKey, StoreError> {
        if let Some(keys) = &self.inner.keys {
            return Ok(keys.naming.clone());
        }
        // Unencrypted: a random key kept in Redis, created by the first
        // process (`SET NX`), read by every other.
        let name = format!("{}:naming-key", self.inner.prefix);
        let fresh = seal::random_hex(32)
            .map_err(|_| StoreError::new(StoreErrorKind::Unavailable, "no system randomness"))?;
        let stored: Option<String> = self
            .run("naming key", |mut con| async move {
                let _: Option<String> = con
                    .set_options(
                        &name,
                        fresh,
                        SetOptions::default().conditional_set(ExistenceCheck::NX),
                    )
                    .await?;
                con.get(&name).await
            })
            .await?;
        match stored {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(NamingKey::new(hex.as_bytes()))
            }
            _ => Err(StoreError::new(StoreErrorKind::Corrupt, "redis naming key malformed")),
        }
    }

    async fn load(&self, key: &ProviderKey) -> Result<Option<AccessToken>, StoreError> {
        let name = self.token_key(key);
        let value: Option<Vec<u8>> =
            self.run("load", |mut con| async move { con.get(&name).await }).await?;
        match value {
            None => Ok(None),
            Some(value) => self.unseal(&self.token_key(key), &value).map(Some),
        }
    }

    async fn store(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let name = self.token_key(key);
        let plain = encode_token(token);
        let value = match &self.inner.keys {
            Some(keys) => keys
                .seal(&name, plain.expose_secret().as_bytes())
                .map_err(|_| StoreError::new(StoreErrorKind::Unavailable, "encryption failed"))?,
            None => plain.expose_secret().as_bytes().to_vec(),
        };
        let opts = SetOptions::default().with_expiration(SetExpiry::PX(millis(ttl)));
        self.run("store", |mut con| async move {
            let _: Option<String> = con.set_options(&name, value, opts).await?;
            Ok(())
        })
        .await
    }

    async fn remove_if_same(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
    ) -> Result<bool, StoreError> {
        let name = self.token_key(key);
        let read = name.clone();
        let value: Option<Vec<u8>> =
            self.run("remove_if_same", |mut con| async move { con.get(&read).await }).await?;
        let Some(value) = value else { return Ok(false) };
        let same = match self.unseal(&name, &value) {
            Ok(stored) => stored.secret().expose_secret() == token.secret().expose_secret(),
            // Garbage under the key: not that token, but no use to anyone.
            Err(_) => true,
        };
        if !same {
            return Ok(false);
        }
        // Deletes only the exact value read: a newer token stored since
        // stays.
        let script = self.inner.compare_and_delete.clone();
        let deleted: i64 = self
            .run("remove_if_same", |mut con| async move {
                script.key(&name).arg(value).invoke_async(&mut con).await
            })
            .await?;
        Ok(deleted == 1)
    }

    async fn remove(&self, key: &ProviderKey) -> Result<bool, StoreError> {
        let name = self.token_key(key);
        let deleted: i64 =
            self.run("remove", |mut con| async move { con.del(&name).await }).await?;
        Ok(deleted > 0)
    }

    async fn try_lock(
        &self,
        key: &ProviderKey,
        ttl: Duration,
    ) -> Result<Option<Box<dyn StoreLease>>, StoreError> {
        let name = self.lock_key(key);
        let owner = seal::random_hex(16)
            .map_err(|_| StoreError::new(StoreErrorKind::Unavailable, "no system randomness"))?;
        let opts = SetOptions::default()
            .conditional_set(ExistenceCheck::NX)
            .with_expiration(SetExpiry::PX(millis(ttl)));
        let (set_name, set_owner) = (name.clone(), owner.clone());
        let reply: Option<String> = self
            .run("lock", |mut con| async move { con.set_options(&set_name, set_owner, opts).await })
            .await?;
        Ok(reply.map(|_| {
            Box::new(RedisLease { store: self.clone(), name, owner }) as Box<dyn StoreLease>
        }))
    }
}

/// A held fetch lease: the lock key holds this owner value until released
/// or expired.
struct RedisLease {
    store: RedisTokenStore,
    name: String,
    owner: String,
}

impl fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLease").field("name", &self.name).finish_non_exhaustive()
    }
}

#[async_trait]
impl StoreLease for RedisLease {
    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        let Self { store, name, owner } = *self;
        let script = store.inner.compare_and_delete.clone();
        let _: i64 = store
            .run("unlock", |mut con| async move {
                script.key(&name).arg(owner).invoke_async(&mut con).await
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn a_failure_never_shows_what_the_server_wrote() {
        // A server error quoting the command it was sent (found by the
        // secret-leak audit: `encrypt = false` put the token in the log).
        let quoting = b"-ERR unexpected command: SET t:token:ab {\"access_token\":\"tok-s3cr3t\"} AUTH u pw-s3cr3t\r\n";
        let redis::Value::ServerError(server) = redis::parse_redis_value(quoting).unwrap() else {
            panic!("a server error")
        };
        let shown = describe(&redis::RedisError::from(server));
        assert_eq!(shown, "response error (ERR; the server's message is not shown)");
        // A code that is not one word of capitals is not shown either.
        let odd = b"-pw-s3cr3t was sent\r\n";
        let redis::Value::ServerError(server) = redis::parse_redis_value(odd).unwrap() else {
            panic!("a server error")
        };
        let shown = describe(&redis::RedisError::from(server));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        // redis-rs' own errors with a detail: the detail is withheld.
        let general = redis::RedisError::from((
            redis::ErrorKind::AuthenticationFailed,
            "Password authentication failed",
            "the server said: pw-s3cr3t".to_owned(),
        ));
        assert_eq!(describe(&general), "authentication failed (the server's message is not shown)");
        // An I/O failure is the operating system's text.
        let io =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            describe(&io),
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).to_string()
        );
    }
}
