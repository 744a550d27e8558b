//! [`Renewal`]: what a provider whose grant yields refresh tokens sends next.
//!
//! SOTI's `authorization_code` grant and `oauth2`'s `authorization_code` and
//! `refresh_token` grants share one rule set, kept here so each adapter only
//! describes its form:
//!
//! - the latest refresh token (from the [`RefreshTokenStore`](crate::RefreshTokenStore), else the one
//!   configured) is used whenever there is one;
//! - otherwise the configured authorization code is used **once**: a code is
//!   single-use, so it is never sent again (unless the connection could not
//!   even be made, so the server never saw it);
//! - every refresh token a response carries is saved to the store, so a
//!   rotated one survives a restart;
//! - with neither left, renewing is [`TokenError::ReauthorizationRequired`].

use std::fmt;
use std::sync::{Mutex, PoisonError};

use secrecy::SecretString;

use crate::{AccessToken, SharedRefreshTokenStore, TokenError, TransportErrorKind};

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
}

impl fmt::Debug for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code_unused = self.code.lock().unwrap_or_else(PoisonError::into_inner).is_some();
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
        Self { provider: provider.to_owned(), code: Mutex::new(code), refresh_token, store }
    }

    /// The grant to send next: the stored refresh token, else the configured
    /// one, else the unused code (now marked used), else
    /// [`TokenError::ReauthorizationRequired`].
    pub fn next(&self) -> Result<RenewalGrant, TokenError> {
        if let Some(token) = self.store.load()?.or_else(|| self.refresh_token.clone()) {
            return Ok(RenewalGrant::RefreshToken(token));
        }
        self.code.lock().unwrap_or_else(PoisonError::into_inner).take().map(RenewalGrant::AuthorizationCode).ok_or_else(|| {
            TokenError::reauthorization_required(
                &self.provider,
                "the authorization code is single-use and was already sent, and the server returned no refresh token; obtain a new authorization code and set `code`",
            )
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
                if let Some(refresh) = token.refresh_token() {
                    self.store.save(refresh)?;
                }
            }
            Err(TokenError::Transport { kind: TransportErrorKind::Connect, .. }) => {
                if let RenewalGrant::AuthorizationCode(code) = grant {
                    *self.code.lock().unwrap_or_else(PoisonError::into_inner) = Some(code);
                }
            }
            Err(_) => {}
        }
        result
    }
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
