//! The one tolerant token-response parser every adapter uses.

use std::time::{Duration, SystemTime};

use crate::{AccessToken, TokenError};

/// A token endpoint's response, as read by the request helper.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RawResponse<'a> {
    /// HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Retry-After` header as a delay, if any.
    pub retry_after: Option<Duration>,
    /// The whole body (already capped).
    pub body: &'a [u8],
}

impl<'a> RawResponse<'a> {
    /// A response with `status`, `content_type` and `body`.
    pub fn new(status: u16, content_type: Option<&'a str>, body: &'a [u8]) -> Self {
        Self { status, content_type, retry_after: None, body }
    }
}

/// Parses a token response into an [`AccessToken`] or a [`TokenError`].
pub fn parse_response(
    provider: &str,
    response: &RawResponse<'_>,
    received_at: SystemTime,
) -> Result<AccessToken, TokenError> {
    let _ = received_at;
    Err(TokenError::invalid_response(
        provider,
        response.status,
        "parser not written yet",
        response.body,
    ))
}
