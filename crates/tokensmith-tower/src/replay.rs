//! [`ReplayBody`]: which request bodies the layer may send twice.

use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{Empty, Full};

/// A request body that can be sent again: what [`AuthService`](crate::AuthService)
/// needs to retry a request once after its token was refused.
///
/// A body held in memory replays ([`Full`], [`Empty`], `String`); a
/// streaming one cannot ([`BoxBody`], [`UnsyncBoxBody`], tonic's body) and
/// such a request is never retried: the refused token is still invalidated,
/// the response goes back to the caller, and the next request carries a
/// fresh token. Implement it for your own body type when it can be copied.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tokensmith_tower::ReplayBody;
///
/// let body = Full::new(Bytes::from_static(b"{}"));
/// assert!(body.try_replay().is_some());
/// ```
pub trait ReplayBody: Sized {
    /// A copy to send again, or `None` when the body cannot be replayed.
    fn try_replay(&self) -> Option<Self>;
}

impl<D: Clone> ReplayBody for Full<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D: bytes::Buf> ReplayBody for Empty<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(Empty::new())
    }
}

impl ReplayBody for String {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D, E> ReplayBody for BoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for UnsyncBoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// tonic's request body is a stream of encoded messages: never replayed.
#[cfg(feature = "tonic")]
impl ReplayBody for tonic::body::Body {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}
