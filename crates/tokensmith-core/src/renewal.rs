//! [`Renewal`]: what a provider whose grant yields refresh tokens sends next.
//!
//! SOTI's `authorization_code` grant and `oauth2`'s `authorization_code` and
//! `refresh_token` grants share one rule set, kept here so each adapter only
//! describes its form:
//!
//! - the latest refresh token (from the [`RefreshTokenStore`], else the one
//!   configured) is used whenever there is one;
//! - otherwise the configured authorization code is used **once**: a code is
//!   single-use, so it is never sent again (unless the connection could not
//!   even be made, so the server never saw it);
//! - every refresh token a response carries is saved to the store, so a
//!   rotated one survives a restart; when saving fails it is kept in memory
//!   (and its saving retried), since the token it replaced is revoked;
//! - a refresh token the server refused as `invalid_grant` is not sent again
//!   by this process: the next candidate is used (a newer one in the store,
//!   the configured one, an unused code), so setting a new `code` recovers;
//! - with neither left, renewing is [`TokenError::ReauthorizationRequired`];
//! - [`Renewal::exchange`] runs one renewal at a time and to its end, even
//!   when its caller stops waiting, so no rotated token is lost with a
//!   dropped future; and holds the store's lock
//!   ([`RefreshTokenStore::try_lock`])
//!   from reading the refresh token to saving its successor, so processes
//!   sharing a store (two replicas, a service and the CLI) never send one
//!   refresh token twice.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::{
    AccessToken, RefreshTokenStore, SharedRefreshTokenStore, StoreLock, TokenError,
    TransportErrorKind,
};

/// How long [`Renewal::exchange`] waits by default for the lock of the
/// [`RefreshTokenStore`] that holds the single-use code and the refresh
/// token: 30 s. (Not the token store's `lock_timeout`, which is
/// [`DEFAULT_TOKEN_STORE_LOCK_TIMEOUT`](crate::DEFAULT_TOKEN_STORE_LOCK_TIMEOUT).)
pub const DEFAULT_REFRESH_STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The grant a [`Renewal`] hands out for the next request.
#[derive(Clone)]
pub enum RenewalGrant {
    /// `grant_type=authorization_code` with this (not yet used) code.
    AuthorizationCode(SecretString),
    /// `grant_type=refresh_token` with this refresh token.
    RefreshToken(SecretString),
}

impl fmt::Debug for RenewalGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AuthorizationCode(_) => "AuthorizationCode(..)",
            Self::RefreshToken(_) => "RefreshToken(..)",
        })
    }
}

/// The renewal state of one provider: an unused authorization code, the
/// configured refresh token and the store of rotated ones.
///
/// ```
/// use std::sync::Arc;
/// use secrecy::SecretString;
/// use tokensmith_core::{MemoryRefreshTokenStore, Renewal, RenewalGrant};
///
/// let renewal = Renewal::new(
///     "mdm",
///     Some(SecretString::from("code-1")),
///     None,
///     Arc::new(MemoryRefreshTokenStore::default()),
/// );
/// assert!(matches!(renewal.next().unwrap(), RenewalGrant::AuthorizationCode(_)));
/// // The code is single-use: without a refresh token, a renewal needs a new one.
/// assert!(renewal.next().is_err());
/// ```
pub struct Renewal {
    provider: String,
    code: Mutex<Option<SecretString>>,
    refresh_token: Option<SecretString>,
    store: SharedRefreshTokenStore,
    /// The newest refresh token when saving it failed (the store holds an
    /// older, revoked one), and why saving failed.
    unsaved: Mutex<Option<SecretString>>,
    save_error: Mutex<Option<TokenError>>,
    /// The longest [`exchange`](Self::exchange) waits for the store's lock.
    lock_timeout: Duration,
    /// Refresh tokens the server refused as `invalid_grant`.
    refused: Mutex<Vec<SecretString>>,
    /// Held by [`exchange`](Self::exchange) from `next` to `finish`.
    exchanging: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code_unused = lock(&self.code).is_some();
        f.debug_struct("Renewal")
            .field("provider", &self.provider)
            .field("code_unused", &code_unused)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Renewal {
    /// The state of `provider`: its configured `code` and `refresh_token`
    /// (either may be absent) and its store.
    pub fn new(
        provider: &str,
        code: Option<SecretString>,
        refresh_token: Option<SecretString>,
        store: SharedRefreshTokenStore,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            code: Mutex::new(code),
            refresh_token,
            store,
            unsaved: Mutex::new(None),
            save_error: Mutex::new(None),
            lock_timeout: DEFAULT_REFRESH_STORE_LOCK_TIMEOUT,
            refused: Mutex::new(Vec::new()),
            exchanging: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits at most `timeout` (default [`DEFAULT_REFRESH_STORE_LOCK_TIMEOUT`]) for
    /// the store's lock in [`exchange`](Self::exchange); then the exchange
    /// fails, retryably, without sending anything.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Why the newest refresh token lives only in this process's memory:
    /// the error saving it to the store returned (an unwritable file, a full
    /// disk), or `None` when the store holds it. Saving is retried with
    /// every later renewal. A process about to exit should report it: the
    /// refresh token it replaced is revoked, so the grant is lost with it.
    pub fn save_error(&self) -> Option<TokenError> {
        lock(&self.save_error).clone()
    }

    /// One whole renewal: [`next`](Self::next), `send` (the request with
    /// that grant), [`finish`](Self::finish). Adapters should prefer it to
    /// calling the three themselves:
    ///
    /// - it runs to the end even when the caller stops waiting (a timeout,
    ///   a `select!`): on a Tokio runtime it is spawned, so a code the server
    ///   received and the refresh token it rotated in answer are never lost
    ///   with a dropped future;
    /// - renewals of one `Renewal` run one at a time, so two never send the
    ///   same refresh token (a rotating server would refuse the second);
    /// - across processes too: it takes the store's lock (waiting at most
    ///   [`with_lock_timeout`](Self::with_lock_timeout), off the async
    ///   workers) before reading the refresh token, and releases it after
    ///   saving the successor.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use secrecy::SecretString;
    /// use tokensmith_core::{AccessToken, MemoryRefreshTokenStore, Renewal, RenewalGrant};
    ///
    /// # async fn demo() {
    /// let renewal = Arc::new(Renewal::new(
    ///     "mdm",
    ///     Some(SecretString::from("code-1")),
    ///     None,
    ///     Arc::new(MemoryRefreshTokenStore::default()),
    /// ));
    /// let token = renewal
    ///     .exchange(|grant| async move {
    ///         assert!(matches!(grant, RenewalGrant::AuthorizationCode(_)));
    ///         // Build and send the request here.
    ///         Ok(AccessToken::builder("at", std::time::SystemTime::UNIX_EPOCH).build())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # let _ = token; }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo());
    /// ```
    pub async fn exchange<F, Fut>(self: &Arc<Self>, send: F) -> Result<AccessToken, TokenError>
    where
        F: FnOnce(RenewalGrant) -> Fut + Send + 'static,
        Fut: Future<Output = Result<AccessToken, TokenError>> + Send + 'static,
    {
        let renewal = Arc::clone(self);
        let run = async move {
            let _one_at_a_time = renewal.exchanging.lock().await;
            // Read the refresh token only once no other process can be
            // exchanging it: whoever held the lock may have rotated it.
            let _store_lock = renewal.lock_store().await?;
            let grant = renewal.next()?;
            let result = send(grant.clone()).await;
            renewal.finish(grant, result)
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return run.await;
        };
        runtime.spawn(run).await.unwrap_or_else(|err| {
            let what = if err.is_panic() { "panicked" } else { "was cancelled" };
            Err(TokenError::transport(
                &self.provider,
                TransportErrorKind::Io,
                format!("the token request task {what}"),
                None,
            ))
        })
    }

    /// Takes the store's lock, polling it off the async workers for at most
    /// the lock timeout.
    async fn lock_store(&self) -> Result<StoreLock, TokenError> {
        let store = Arc::clone(&self.store);
        let (provider, timeout) = (self.provider.clone(), self.lock_timeout);
        let wait = move || wait_for_lock(store.as_ref(), &provider, timeout);
        if tokio::runtime::Handle::try_current().is_err() {
            return wait();
        }
        tokio::task::spawn_blocking(wait).await.unwrap_or_else(|err| {
            Err(TokenError::transport(
                &self.provider,
                TransportErrorKind::Io,
                format!("waiting for the refresh_token_store lock failed: {err}"),
                None,
            ))
        })
    }

    /// The grant to send next: the newest refresh token (one that could not
    /// be saved, else the stored one, else the configured one) not refused
    /// as `invalid_grant`, else the unused code (now marked used), else
    /// [`TokenError::ReauthorizationRequired`].
    pub fn next(&self) -> Result<RenewalGrant, TokenError> {
        let unsaved = lock(&self.unsaved).clone();
        let stored = if unsaved.is_some() { None } else { self.store.load()? };
        let candidates = [unsaved, stored, self.refresh_token.clone()];
        let refused = lock(&self.refused);
        let is_refused = |token: &SecretString| {
            refused.iter().any(|r| r.expose_secret() == token.expose_secret())
        };
        if let Some(token) = candidates.into_iter().flatten().find(|t| !is_refused(t)) {
            return Ok(RenewalGrant::RefreshToken(token));
        }
        let any_refused = !refused.is_empty();
        drop(refused);
        lock(&self.code).take().map(RenewalGrant::AuthorizationCode).ok_or_else(|| {
            let message = if any_refused {
                "the server refused the refresh token (invalid_grant) and no unused authorization code is left; obtain a new authorization code and set `code`"
            } else {
                "the authorization code is single-use and was already sent, and the server returned no refresh token; obtain a new authorization code and set `code`"
            };
            TokenError::reauthorization_required(&self.provider, message)
        })
    }

    /// Records the outcome of a request made with `grant`: saves a refresh
    /// token the response carries, and gives the code back when the
    /// connection could not be made (the server never saw it).
    pub fn finish(
        &self,
        grant: RenewalGrant,
        result: Result<AccessToken, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        match &result {
            Ok(token) => {
                let mut unsaved = lock(&self.unsaved);
                if let Some(refresh) = token.refresh_token().or(unsaved.as_ref()).cloned() {
                    // The token it replaced may be revoked now: never lose it.
                    match self.store.save(&refresh) {
                        Ok(()) => {
                            *unsaved = None;
                            *lock(&self.save_error) = None;
                        }
                        Err(err) => {
                            tracing::warn!(
                                provider = %self.provider,
                                error = %err,
                                "cannot save the rotated refresh token; keeping it in memory"
                            );
                            *unsaved = Some(refresh);
                            *lock(&self.save_error) = Some(err);
                        }
                    }
                }
            }
            // Nothing reached a token endpoint (no connection, or a URL that
            // is no token endpoint at all): the code was not spent.
            Err(
                TokenError::Transport { kind: TransportErrorKind::Connect, .. }
                | TokenError::Endpoint { .. },
            ) => {
                if let RenewalGrant::AuthorizationCode(code) = grant {
                    *lock(&self.code) = Some(code);
                }
            }
            Err(err @ TokenError::Rejected { .. })
                if err
                    .oauth_error_code()
                    .is_some_and(|c| c.eq_ignore_ascii_case("invalid_grant")) =>
            {
                if let RenewalGrant::RefreshToken(token) = grant {
                    let mut unsaved = lock(&self.unsaved);
                    if unsaved.as_ref().is_some_and(|u| u.expose_secret() == token.expose_secret())
                    {
                        *unsaved = None;
                        *lock(&self.save_error) = None;
                    }
                    lock(&self.refused).push(token);
                }
            }
            Err(_) => {}
        }
        result
    }
}

/// Polls `store`'s lock until it is taken or `timeout` has been spent
/// waiting (blocking: run off the async workers). The waits are counted,
/// not read from a clock, so the bound holds whatever the wall clock does.
fn wait_for_lock(
    store: &dyn RefreshTokenStore,
    provider: &str,
    timeout: Duration,
) -> Result<StoreLock, TokenError> {
    const FIRST_PAUSE: Duration = Duration::from_millis(2);
    const LONGEST_PAUSE: Duration = Duration::from_millis(50);
    let (mut waited, mut pause) = (Duration::ZERO, FIRST_PAUSE);
    loop {
        if let Some(taken) = store.try_lock()? {
            return Ok(taken);
        }
        if waited >= timeout {
            return Err(TokenError::transport(
                provider,
                TransportErrorKind::Timeout,
                format!(
                    "nothing sent: another process kept the refresh_token_store locked for {} while renewing",
                    humantime::format_duration(timeout)
                ),
                None,
            ));
        }
        if waited.is_zero() {
            tracing::debug!(
                provider,
                "waiting for another process renewing with the refresh_token_store"
            );
        }
        let step = pause.min(timeout.saturating_sub(waited));
        std::thread::sleep(step);
        waited += step;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::{MemoryRefreshTokenStore, RefreshTokenStore};

    fn token(refresh: Option<&str>) -> AccessToken {
        AccessToken::builder("at", SystemTime::UNIX_EPOCH)
            .refresh_token(refresh.map(|r| SecretString::from(r.to_owned())))
            .build()
    }

    fn secret(grant: &RenewalGrant) -> (&'static str, &str) {
        match grant {
            RenewalGrant::AuthorizationCode(s) => ("code", s.expose_secret()),
            RenewalGrant::RefreshToken(s) => ("refresh", s.expose_secret()),
        }
    }

    #[test]
    fn code_once_then_rotated_refresh_tokens() {
        let store = Arc::new(MemoryRefreshTokenStore::default());
        let renewal = Renewal::new("p", Some("c".to_owned().into()), None, store.clone());
        let grant = renewal.next().unwrap();
        assert_eq!(secret(&grant), ("code", "c"));
        renewal.finish(grant, Ok(token(Some("r1")))).unwrap();
        let grant = renewal.next().unwrap();
        assert_eq!(secret(&grant), ("refresh", "r1"));
        renewal.finish(grant, Ok(token(Some("r2")))).unwrap();
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "r2");
        // A response without a refresh token keeps the last one.
        let grant = renewal.next().unwrap();
        renewal.finish(grant, Ok(token(None))).unwrap();
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "r2"));
    }

    #[test]
    fn used_code_without_refresh_token_needs_reauthorization() {
        let renewal = Renewal::new(
            "p",
            Some("c".to_owned().into()),
            None,
            Arc::new(MemoryRefreshTokenStore::default()),
        );
        let grant = renewal.next().unwrap();
        let rejected = TokenError::reauthorization_required("p", "x");
        assert!(renewal.finish(grant, Err(rejected)).is_err());
        let err = renewal.next().unwrap_err();
        assert!(matches!(err, TokenError::ReauthorizationRequired { .. }), "{err}");
    }

    #[test]
    fn code_comes_back_when_the_connection_failed() {
        let renewal = Renewal::new(
            "p",
            Some("c".to_owned().into()),
            None,
            Arc::new(MemoryRefreshTokenStore::default()),
        );
        let grant = renewal.next().unwrap();
        let err = TokenError::transport("p", TransportErrorKind::Connect, "refused", None);
        assert!(renewal.finish(grant, Err(err)).is_err());
        assert_eq!(secret(&renewal.next().unwrap()), ("code", "c"));
    }

    #[test]
    fn code_comes_back_when_the_url_is_no_token_endpoint() {
        let renewal = Renewal::new(
            "p",
            Some("c".to_owned().into()),
            None,
            Arc::new(MemoryRefreshTokenStore::default()),
        );
        let grant = renewal.next().unwrap();
        let err = TokenError::Endpoint {
            provider: "p".to_owned(),
            status: 404,
            body: crate::BodySnippet::new(b"Not Found"),
        };
        assert!(renewal.finish(grant, Err(err)).is_err());
        assert_eq!(secret(&renewal.next().unwrap()), ("code", "c"));
    }

    #[test]
    fn stored_refresh_token_wins_over_configured_one_and_code() {
        let store = Arc::new(MemoryRefreshTokenStore::default());
        store.save(&SecretString::from("stored")).unwrap();
        let renewal = Renewal::new(
            "p",
            Some("c".to_owned().into()),
            Some("configured".to_owned().into()),
            store,
        );
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "stored"));
        let renewal = Renewal::new(
            "p",
            None,
            Some("configured".to_owned().into()),
            Arc::new(MemoryRefreshTokenStore::default()),
        );
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "configured"));
    }

    /// A store whose writes fail (a full disk, a read-only directory).
    #[derive(Debug, Default)]
    struct BrokenStore {
        saves: std::sync::atomic::AtomicUsize,
    }

    impl RefreshTokenStore for BrokenStore {
        fn load(&self) -> Result<Option<SecretString>, TokenError> {
            Ok(None)
        }

        fn save(&self, _: &SecretString) -> Result<(), TokenError> {
            self.saves.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(TokenError::config(Some("p"), Some("refresh_token_store"), "disk full"))
        }
    }

    fn invalid_grant() -> TokenError {
        TokenError::Rejected {
            provider: "p".to_owned(),
            status: 400,
            detail: crate::ErrorDetail::new(Some("invalid_grant"), Some("expired")),
            body: crate::BodySnippet::new(b""),
            retry_after: None,
        }
    }

    #[test]
    fn a_rotated_refresh_token_that_cannot_be_saved_is_kept_and_the_token_served() {
        let store = Arc::new(BrokenStore::default());
        let renewal = Renewal::new("p", Some("c".to_owned().into()), None, store.clone());
        let grant = renewal.next().unwrap();
        // The code is spent and the server rotated: losing `r1` now would
        // lose the grant for good.
        let served = renewal.finish(grant, Ok(token(Some("r1")))).unwrap();
        assert_eq!(served.secret().expose_secret(), "at");
        let grant = renewal.next().unwrap();
        assert_eq!(secret(&grant), ("refresh", "r1"));
        // The next response carries no new one: saving `r1` is tried again.
        renewal.finish(grant, Ok(token(None))).unwrap();
        assert_eq!(store.saves.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "r1"));
    }

    #[test]
    fn a_refresh_token_refused_as_invalid_grant_is_not_sent_again() {
        // A stored token the server no longer accepts, and a new code the
        // user configured to recover.
        let store = Arc::new(MemoryRefreshTokenStore::default());
        store.save(&SecretString::from("dead")).unwrap();
        let renewal = Renewal::new("p", Some("new-code".to_owned().into()), None, store.clone());
        let grant = renewal.next().unwrap();
        assert_eq!(secret(&grant), ("refresh", "dead"));
        assert!(renewal.finish(grant, Err(invalid_grant())).is_err());
        let grant = renewal.next().unwrap();
        assert_eq!(secret(&grant), ("code", "new-code"));
        renewal.finish(grant, Ok(token(Some("r1")))).unwrap();
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "r1"));

        // Without a code left: a clear error instead of resending it.
        let grant = renewal.next().unwrap();
        assert!(renewal.finish(grant, Err(invalid_grant())).is_err());
        let err = renewal.next().unwrap_err();
        assert!(matches!(err, TokenError::ReauthorizationRequired { .. }), "{err}");
        assert!(err.to_string().contains("invalid_grant"), "{err}");

        // Another process rotated it meanwhile: the newer one is used.
        store.save(&SecretString::from("r2")).unwrap();
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "r2"));
    }

    #[tokio::test]
    async fn exchanges_run_one_at_a_time_and_to_the_end() {
        let renewal = Arc::new(Renewal::new(
            "p",
            Some("c".to_owned().into()),
            None,
            Arc::new(MemoryRefreshTokenStore::default()),
        ));
        let (sending, sent) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first = renewal.exchange(move |grant| async move {
            assert_eq!(secret(&grant), ("code", "c"));
            sending.send(()).unwrap();
            released.await.unwrap();
            Ok(token(Some("r1")))
        });
        // The caller stops waiting once the request is out.
        tokio::select! {
            _ = first => panic!("answered before release"),
            _ = sent => {}
        }
        let second = renewal.exchange(|grant| async move {
            // Only after the first exchange saved its refresh token.
            assert_eq!(secret(&grant), ("refresh", "r1"));
            Ok(token(Some("r2")))
        });
        release.send(()).unwrap();
        second.await.unwrap();
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "r2"));
    }

    /// A renewal whose store is `path`, with the configured refresh token `rt-0`.
    fn file_renewal(path: &std::path::Path) -> Arc<Renewal> {
        let store = Arc::new(crate::FileRefreshTokenStore::new("p", path.to_path_buf()));
        Arc::new(
            Renewal::new("p", Some("c".to_owned().into()), Some("rt-0".to_owned().into()), store)
                .with_lock_timeout(Duration::from_millis(40)),
        )
    }

    #[tokio::test]
    async fn an_exchange_sends_nothing_while_another_process_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt");
        let renewal = file_renewal(&path);
        // Another process renewing with the same store.
        let other = crate::FileRefreshTokenStore::new("p", path.clone());
        let held = other.try_lock().unwrap().unwrap();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&sent);
        let err = renewal
            .exchange(move |_| async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(token(Some("rt-1")))
            })
            .await
            .unwrap_err();
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 0, "sent while locked out");
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("refresh_token_store"), "{err}");
        drop(held);
        // Nothing was spent: the configured refresh token is still next.
        assert_eq!(secret(&renewal.next().unwrap()), ("refresh", "rt-0"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exchange_rereads_the_store_after_waiting_for_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt");
        let renewal = Arc::new(
            Renewal::new(
                "p",
                None,
                Some("rt-0".to_owned().into()),
                Arc::new(crate::FileRefreshTokenStore::new("p", path.clone())),
            )
            .with_lock_timeout(Duration::from_mins(1)),
        );
        let other = crate::FileRefreshTokenStore::new("p", path.clone());
        let held = other.try_lock().unwrap().unwrap();
        let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
        let waiting = tokio::spawn({
            let renewal = Arc::clone(&renewal);
            async move {
                renewal
                    .exchange(move |grant| async move {
                        sent_tx.send(secret(&grant).1.to_owned()).unwrap();
                        Ok(token(Some("rt-2")))
                    })
                    .await
            }
        });
        // Give the exchange every chance to run while the other process
        // still holds the lock (without the lock, it would send `rt-0` now).
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))
            .await
            .unwrap();
        // The other process rotated `rt-0` to `rt-1` and saved it.
        other.save(&SecretString::from("rt-1")).unwrap();
        drop(held);
        waiting.await.unwrap().unwrap();
        assert_eq!(sent_rx.recv().await.unwrap(), "rt-1", "the successor, read after locking");
        assert!(sent_rx.try_recv().is_err(), "one exchange");
        assert_eq!(other.load().unwrap().unwrap().expose_secret(), "rt-2");
    }

    #[test]
    fn debug_shows_no_secret() {
        let renewal = Renewal::new(
            "p",
            Some("secret-code".to_owned().into()),
            Some("secret-refresh".to_owned().into()),
            Arc::new(MemoryRefreshTokenStore::default()),
        );
        let shown = format!("{renewal:?} {:?}", renewal.next().unwrap());
        assert!(!shown.contains("secret-"), "{shown}");
    }
}
