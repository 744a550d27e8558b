//! [`ResourceServer`]: an API on 127.0.0.1 that takes the tokens the
//! emulators issue, refuses them once they are rotated, and counts requests.
//! The other side of an HTTP client that presents tokens (the
//! `tokensmith-reqwest` middleware, a tower layer, your own client).

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The largest request body the resource server reads.
const MAX_BODY: usize = 1024 * 1024;

/// The challenge sent with a 401 for a rotated or revoked token (RFC 6750
/// §3.1).
pub const INVALID_TOKEN_CHALLENGE: &str =
    r#"Bearer error="invalid_token", error_description="The access token was revoked""#;

/// A protected API on `127.0.0.1`: it answers `200 ok` to a request that
/// presents a token in the expected header, and `401` with
/// `WWW-Authenticate: Bearer error="invalid_token"` to one whose token has
/// been [rotated](ResourceServer::rotate) or [revoked](ResourceServer::revoke)
/// (or that presents none). It counts and records every request, and a test
/// can make the next requests fail with any status
/// ([`fail_next`](ResourceServer::fail_next)).
///
/// Any path and method are served. It stops when dropped (or with
/// [`shutdown`](ResourceServer::shutdown)).
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
/// use tokensmith_testkit::ResourceServer;
///
/// // The status of one GET presenting `Authorization: Bearer <token>`.
/// async fn get(api: &ResourceServer, token: &str) -> std::io::Result<String> {
///     let mut tcp = tokio::net::TcpStream::connect(api.addr()).await?;
///     let request = format!(
///         "GET /devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
///     );
///     tcp.write_all(request.as_bytes()).await?;
///     let mut answer = String::new();
///     tcp.read_to_string(&mut answer).await?;
///     Ok(answer[9..12].to_owned())
/// }
///
/// let api = ResourceServer::start().await?;
/// assert_eq!(get(&api, "t1").await?, "200");
/// api.rotate(); // every token seen so far is refused from now on
/// assert_eq!(get(&api, "t1").await?, "401");
/// assert_eq!(get(&api, "t2").await?, "200");
/// assert_eq!(api.requests(), 3);
/// assert_eq!(api.recorded()[1].token(), Some("t1"));
/// assert_eq!(api.statuses(), [200, 401, 200]);
/// api.shutdown().await;
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct ResourceServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<()>,
    task: JoinHandle<()>,
}

/// One request to a [`ResourceServer`], as received, and the status it got.
///
/// It holds the token the client presented, so its `Debug` shows only the
/// method, path, body length and status.
#[derive(Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    method: String,
    path: String,
    token: Option<String>,
    body: Bytes,
    status: u16,
}

impl ResourceRequest {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, e.g. `/devices`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The token presented: the expected header's value without its prefix
    /// (`Bearer `), or `None` when the header was missing or had another
    /// prefix.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The request body, read in full.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The status the server answered with.
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Debug for ResourceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("body_len", &self.body.len())
            .field("status", &self.status)
            .finish()
    }
}

struct Shared {
    header: HeaderName,
    prefix: String,
    requests: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every token presented so far.
    seen: HashSet<String>,
    /// Tokens refused from now on.
    revoked: HashSet<String>,
    /// Answers for the next requests, oldest first: status and challenge.
    fail_next: Vec<(u16, Option<String>)>,
    recorded: Vec<ResourceRequest>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ResourceServer {
    /// Starts a resource server on `127.0.0.1` and an ephemeral port that
    /// expects `Authorization: Bearer <token>`.
    ///
    /// Must be called inside a Tokio runtime with the IO driver enabled.
    pub async fn start() -> io::Result<Self> {
        Self::start_with("authorization", "Bearer ").await
    }

    /// Starts a resource server that expects the token in header `name`
    /// after `prefix` (`("X-Auth-Token", "")`, `("Authorization", "CwsAuth
    /// Bearer=")`). The prefix is compared case-sensitively.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name.
    pub async fn start_with(name: &str, prefix: &str) -> io::Result<Self> {
        let header = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            header,
            prefix: prefix.to_owned(),
            requests: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        });
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), stopped));
        Ok(Self { shared, addr, stop, task })
    }

    /// Stops accepting connections, closes open ones and waits until the
    /// port is released. Dropping the server stops it too, without waiting.
    pub async fn shutdown(self) {
        let Self { stop, task, .. } = self;
        drop(stop);
        let _ = task.await;
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Rotates the credentials: every token presented so far is refused from
    /// now on (401, [`INVALID_TOKEN_CHALLENGE`]); tokens not seen yet are
    /// accepted.
    pub fn rotate(&self) {
        let mut state = self.shared.lock();
        let seen: Vec<String> = state.seen.iter().cloned().collect();
        state.revoked.extend(seen);
    }

    /// Refuses `token` from now on (401, [`INVALID_TOKEN_CHALLENGE`]).
    pub fn revoke(&self, token: &str) {
        self.shared.lock().revoked.insert(token.to_owned());
    }

    /// Answers the next `count` requests with `status` (and, when given, a
    /// `WWW-Authenticate: <challenge>` header) whatever they present; the
    /// ones after them as usual. Calls queue up.
    pub fn fail_next(&self, count: usize, status: u16, challenge: Option<&str>) {
        let mut state = self.shared.lock();
        for _ in 0..count {
            state.fail_next.push((status, challenge.map(str::to_owned)));
        }
    }

    /// How many requests reached the server, whatever their outcome.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every request so far, oldest first.
    pub fn recorded(&self) -> Vec<ResourceRequest> {
        self.shared.lock().recorded.clone()
    }

    /// The tokens of the requests so far, oldest first (`None` for a request
    /// that presented none).
    pub fn tokens(&self) -> Vec<Option<String>> {
        self.shared.lock().recorded.iter().map(|r| r.token.clone()).collect()
    }

    /// The statuses of the answers so far, oldest first.
    pub fn statuses(&self) -> Vec<u16> {
        self.shared.lock().recorded.iter().map(|r| r.status).collect()
    }
}

impl fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceServer")
            .field("addr", &self.addr)
            .field("header", &self.shared.header)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

/// Accepts connections until `stop` is dropped, then closes every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<()>) {
    crate::server::accept_loop(listener, stop, move |req| answer(Arc::clone(&shared), req)).await;
}

async fn answer(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let token = parts
        .headers
        .get(&shared.header)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(shared.prefix.as_str()))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let mut state = shared.lock();
    let (status, challenge) = if state.fail_next.is_empty() {
        match &token {
            None => (401, Some("Bearer".to_owned())),
            Some(t) if state.revoked.contains(t) => (401, Some(INVALID_TOKEN_CHALLENGE.to_owned())),
            Some(_) => (200, None),
        }
    } else {
        state.fail_next.remove(0)
    };
    if let Some(t) = &token {
        state.seen.insert(t.clone());
    }
    state.recorded.push(ResourceRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        token,
        body,
        status,
    });
    drop(state);
    let text = if status == 200 { "ok\n" } else { "refused\n" };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if let Some(value) = challenge.and_then(|c| HeaderValue::try_from(c).ok()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    Ok(response)
}
