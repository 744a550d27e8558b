//! Fault injection: what a broken or hostile token endpoint does instead of
//! answering ([`Fault`]).

use std::time::Duration;

/// Something the emulator does instead of (or before) answering a token
/// request, set with [`Emulator::set_fault`](crate::Emulator::set_fault)
/// (every request), [`Emulator::set_fault_next`](crate::Emulator::set_fault_next)
/// (the next `n`) or [`Emulator::set_fault_every`](crate::Emulator::set_fault_every)
/// (every `n`-th: a deterministic ratio for load tests).
///
/// Faults apply to requests to the token endpoint whatever their content; the
/// request is still counted and recorded.
/// [`Emulator::set_latency`](crate::Emulator::set_latency) adds a delay to
/// every request, faulted or not.
///
/// ```
/// use std::time::Duration;
/// use tokensmith_testkit::Fault;
///
/// let faults = [
///     Fault::Delay(Duration::from_secs(2)),
///     Fault::Status(503),
///     Fault::TooManyRequests { retry_after_secs: 7 },
///     Fault::DropConnection,
/// ];
/// assert_eq!(faults.len(), 4);
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Fault {
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Answer with this status and the vendor's own error body (e.g. `500`,
    /// `503`).
    Status(u16),
    /// Close the connection after reading the request, without any response.
    DropConnection,
    /// Answer `429 Too Many Requests` with `Retry-After: <secs>` and the
    /// vendor's error body.
    TooManyRequests {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// Answer `200` with `Content-Type: application/json` and a truncated JSON
    /// body.
    MalformedBody,
    /// Answer `502 Bad Gateway` with an HTML page, as a proxy in front of the
    /// vendor does.
    HtmlErrorPage,
    /// Answer `200` with `Content-Type: application/json` and an empty body.
    EmptyBody,
    /// Answer `200` with a JSON token body of more than 2 MiB, streamed in
    /// chunks without a `Content-Length`.
    OversizedBody,
    /// Answer `302 Found` with a `Location` on the same emulator that, if
    /// followed, answers with a token (so a client following it is caught by
    /// [`Emulator::redirect_follows`](crate::Emulator::redirect_follows)).
    Redirect,
    /// Read the request and never answer (until the client gives up or the
    /// emulator stops).
    NeverAnswer,
    /// Answer exactly this.
    Custom {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header.
        content_type: String,
        /// The body.
        body: String,
    },
}

/// Size of the [`Fault::OversizedBody`] token value.
pub(crate) const OVERSIZED_TOKEN_BYTES: usize = 2 * 1024 * 1024;

/// The body of [`Fault::MalformedBody`].
pub(crate) const MALFORMED_BODY: &str =
    r#"{"access_token":"malformed","token_type":"bearer","expires_in":"#;

/// The body of [`Fault::HtmlErrorPage`].
pub(crate) const HTML_ERROR_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
     <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
