//! The agent's server settings: its async runtime and hyper's HTTP/1.1
//! options. Plain tokio and hyper on purpose: the benchmark
//! (`benches/serve.rs`) includes this file by path, so its baseline server
//! (a constant string) runs on exactly the agent's runtime and settings.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;

/// How long a client may take to send a request's headers.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The most headers a request may carry.
pub(crate) const MAX_HEADERS: usize = 64;
/// The largest request head (request line and headers), in bytes; hyper's
/// smallest allowed read buffer.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The agent's runtime: multi-threaded, one worker per CPU (tokio's
/// default), with I/O and timers.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("tokensmith-serve").build()
}

/// The hyper HTTP/1.1 settings of the agent: bounded heads, a header read
/// timeout.
pub(crate) fn http() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    http
}
