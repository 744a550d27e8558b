//! [`AuthInterceptor`]: the token on tonic calls, synchronously.

use std::sync::Arc;

use tokensmith_core::CachedProvider;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::{Request, Status};

use crate::present::present;

/// A tonic `Interceptor` putting the current access token on every call.
///
/// tonic's interceptors are synchronous, so this one reads
/// [`CachedProvider::current`]: it never waits and never fetches. When no
/// token is current (none fetched yet, invalidated, or gone stale with the
/// upstream failing) the call fails at once with `UNAUTHENTICATED` and is
/// not sent. Run the cache's background refresher
/// ([`CachedProvider::spawn_refresher`]) for as long as the client lives, so
/// a token is always current, and await `token()` once at start-up if the
/// first call must not fail.
///
/// An interceptor sees only requests: a call refused for its token fails
/// with `UNAUTHENTICATED`, is not retried, and the token is not invalidated
/// (every call carries it until the cache replaces it). When the server may
/// revoke tokens before they expire, invalidate the current one on
/// `UNAUTHENTICATED` (`cache.invalidate(&token)` with the token
/// [`current`](CachedProvider::current) gives): the refresher fetches the
/// next one at once. Or wrap the channel in [`AuthLayer`](crate::AuthLayer)
/// instead: asynchronous, it invalidates the refused token and retries the
/// call once.
///
/// ```no_run
/// # async fn demo(providers: tokensmith_core::Providers, channel: tonic::transport::Channel) -> Result<(), tokensmith_core::TokenError> {
/// use tokensmith_core::TokenProvider as _;
/// use tonic::service::interceptor::InterceptedService;
/// use tokensmith_tower::AuthInterceptor;
///
/// let cache = providers.cache("orders").expect("configured").clone();
/// cache.token().await?; // the first token, before the first call
/// let _refresher = cache.spawn_refresher(); // keeps one current; stops when dropped
/// let grpc = tonic::client::Grpc::new(InterceptedService::new(channel, AuthInterceptor::new(cache)));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    cache: Arc<CachedProvider>,
}

impl AuthInterceptor {
    /// An interceptor presenting the tokens of `cache`.
    pub fn new(cache: Arc<CachedProvider>) -> Self {
        Self { cache }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = self.cache.current() else {
            return Err(Status::unauthenticated(format!(
                "no current access token for provider {} (is its background refresher running?)",
                self.cache.name()
            )));
        };
        let unusable =
            || Status::unauthenticated("the access token cannot be sent as gRPC metadata");
        let (name, value) = present(&token).map_err(|_| unusable())?;
        let key = MetadataKey::from_bytes(name.as_str().as_bytes()).map_err(|_| unusable())?;
        let mut value = MetadataValue::try_from(value.as_bytes()).map_err(|_| unusable())?;
        value.set_sensitive(true);
        request.metadata_mut().insert(key, value);
        Ok(request)
    }
}
