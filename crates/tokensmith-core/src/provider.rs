//! The [`TokenProvider`] trait: one async source of access tokens.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{AccessToken, TokenError};

/// A source of OAuth 2.0 access tokens.
///
/// Vendor adapters implement this trait for **one exchange** with their token
/// endpoint: every call to [`token`](TokenProvider::token) on an adapter is an
/// upstream request. Applications never see a bare adapter: the
/// [`Registry`](crate::Registry) wraps each one in the cache
/// ([`CachedProvider`](crate::CachedProvider)) exactly once, and the cache is a
/// `TokenProvider` too.
///
/// The trait is object safe and is used as `Arc<dyn TokenProvider>`
/// ([`SharedTokenProvider`]).
///
/// # Implementing
///
/// Write the exchange as an inherent `async fn` on your type and forward to it
/// from the trait, so the code reads like ordinary async Rust and the boxing
/// that `async-trait` adds stays at the edge:
///
/// ```
/// use async_trait::async_trait;
/// use tokensmith_core::{AccessToken, TokenError, TokenProvider};
///
/// #[derive(Debug)]
/// struct Fixed(AccessToken);
///
/// impl Fixed {
///     async fn fetch(&self) -> Result<AccessToken, TokenError> {
///         Ok(self.0.clone())
///     }
/// }
///
/// #[async_trait]
/// impl TokenProvider for Fixed {
///     async fn token(&self) -> Result<AccessToken, TokenError> {
///         self.fetch().await
///     }
/// }
/// ```
#[async_trait]
pub trait TokenProvider: Send + Sync + Debug {
    /// Returns an access token.
    ///
    /// On an adapter this performs one request to the token endpoint. On a
    /// [`CachedProvider`](crate::CachedProvider) it returns a token that stays
    /// valid for at least the configured expiry margin, fetching one only when
    /// needed.
    async fn token(&self) -> Result<AccessToken, TokenError>;

    /// Reports that a resource server refused `token` (for example with HTTP
    /// 401), so the next [`token`](TokenProvider::token) call fetches a fresh
    /// one.
    ///
    /// Only that token is dropped (compared by identity, see
    /// [`AccessToken::same_token`]); a token that has already been replaced is
    /// left alone. The default does nothing, which is right for providers that
    /// hold no state.
    fn invalidate(&self, token: &AccessToken) {
        let _ = token;
    }
}

/// A shared, type-erased provider: what the registry hands out.
pub type SharedTokenProvider = Arc<dyn TokenProvider>;

#[async_trait]
impl<P: TokenProvider + ?Sized> TokenProvider for Arc<P> {
    // Forwards the inner boxed future as is: `provider.token()` on an
    // `Arc<dyn TokenProvider>` resolves to this impl, and an `async fn` here
    // would box a second future around the first on every call.
    fn token<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (**self).token()
    }

    fn invalidate(&self, token: &AccessToken) {
        (**self).invalidate(token);
    }
}

/// A fixed token is a provider of itself (handy in tests and for static
/// credentials).
#[async_trait]
impl TokenProvider for AccessToken {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        Ok(self.clone())
    }
}
