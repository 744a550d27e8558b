//! The request helper (`tokensmith_core::http`) against real HTTP/1.1 servers
//! on 127.0.0.1, written here on raw TCP so every byte is under control: the
//! exact request per client-auth style, the limits (timeout, body cap,
//! redirects, the https rule, `ca_file`), connection reuse and the
//! classification of transport errors.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    ClientAuth, HttpSettings, ManualClock, TokenEndpoint, TokenError, TransportErrorKind, Url,
};
use tokensmith_core::{check_url, fetch_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A bound on every await, far above any timeout under test: a hang fails
/// the test instead of stalling the run.
const OUTER: Duration = Duration::from_mins(1);

/// The request timeout where the timeout is the point.
const SHORT_TIMEOUT: Duration = Duration::from_secs(1);

const PROVIDER: &str = "idp";
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 server
// ---------------------------------------------------------------------------

/// One request as the server received it.
#[derive(Clone, Debug)]
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// Every value of header `name` (case-insensitive).
    fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// The single value of header `name`, if present.
    fn header(&self, name: &str) -> Option<&str> {
        let values = self.headers(name);
        assert!(values.len() <= 1, "header {name} sent {} times", values.len());
        values.first().copied()
    }

    fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (head and `Content-Length` body); `None` when the peer
/// closes first.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let mut body = buf[end + 4..].to_vec();
    let request = Request { head, body: Vec::new() };
    let length: usize = request.header("content-length").map_or(0, |v| v.parse().unwrap());
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request { body, ..request })
}

/// A raw response with a `Content-Length`.
fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        write!(out, "{name}: {value}\r\n").unwrap();
    }
    write!(out, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

const TOKEN_BODY: &[u8] = br#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#;

fn token_response() -> Vec<u8> {
    response("200 OK", &[("Content-Type", "application/json")], TOKEN_BODY)
}

/// A keep-alive server answering every request with `respond(request)`,
/// recording requests and counting accepted connections.
struct Server {
    url: Url,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    async fn start(
        path: &str,
        respond: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}{path}", listener.local_addr().unwrap())).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let respond = Arc::new(respond);
        let (reqs, conns) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                conns.fetch_add(1, Ordering::SeqCst);
                let (reqs, respond) = (reqs.clone(), respond.clone());
                tokio::spawn(async move {
                    while let Some(request) = read_request(&mut stream).await {
                        let answer = respond(&request);
                        reqs.lock().unwrap().push(request);
                        if stream.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, requests, connections }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Request {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "requests: {requests:?}");
        requests.into_iter().next().unwrap()
    }
}

/// A listener that accepts connections, reads the request and then runs
/// `after_request` on the stream (stall, truncate, close, stream a huge body).
async fn raw_server<F, Fut, T>(after_request: F) -> (Url, tokio::task::JoinHandle<T>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await.unwrap();
        after_request(stream).await
    });
    (url, task)
}

// ---------------------------------------------------------------------------
// Helpers on the client side
// ---------------------------------------------------------------------------

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(OUTER, future).await.expect("the outer test bound elapsed")
}

fn settings() -> HttpSettings {
    HttpSettings::default()
}

fn short_settings() -> HttpSettings {
    let mut settings = HttpSettings::default();
    settings.timeout = SHORT_TIMEOUT;
    settings
}

fn endpoint_with(url: &Url, settings: &HttpSettings) -> TokenEndpoint {
    TokenEndpoint::new(
        PROVIDER,
        url.clone(),
        settings,
        Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH)),
    )
    .unwrap()
}

fn epoch_clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH)
}

fn endpoint(url: &Url) -> TokenEndpoint {
    endpoint_with(url, &settings())
}

/// Asserts the error is a transport error of `kind`, one line, naming the provider.
#[track_caller]
fn assert_transport(err: &TokenError, kind: TransportErrorKind) {
    match err {
        TokenError::Transport { kind: got, .. } => assert_eq!(*got, kind, "{err}"),
        other => panic!("expected a {kind:?} transport error, got {other:?}"),
    }
    assert_one_line(err);
}

#[track_caller]
fn assert_one_line(err: &TokenError) {
    let shown = err.to_string();
    assert!(!shown.contains('\n'), "not one line: {shown:?}");
    assert!(shown.starts_with(&format!("provider {PROVIDER:?}")), "{shown}");
}

/// The reason of an `InvalidResponse` error.
#[track_caller]
fn invalid_reason(err: &TokenError) -> &str {
    match err {
        TokenError::InvalidResponse { reason, .. } => reason,
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[track_caller]
fn assert_config_field(err: &TokenError, field: &str) {
    match err {
        TokenError::Config { field: Some(f), provider: Some(p), .. } => {
            assert_eq!(f, field, "{err}");
            assert_eq!(p, PROVIDER, "{err}");
        }
        other => panic!("expected a config error naming {field}, got {other:?}"),
    }
    assert!(err.to_string().contains(field), "{err}");
}

// ---------------------------------------------------------------------------
// Request bytes: client-auth styles and headers
// ---------------------------------------------------------------------------

const ODD_ID: &str = "my client:1";
const ODD_SECRET: &str = "p:a+s%s wörd€";

/// Sends one `grant_type=client_credentials` request with `auth` and returns
/// what the server received.
async fn capture(auth: ClientAuth, id: &str, secret: Option<&str>) -> Request {
    let server = Server::start("/oauth/token", |_| token_response()).await;
    let secret = secret.map(SecretString::from);
    let endpoint = endpoint(&server.url);
    let _ = bounded(
        endpoint
            .request()
            .client_auth(auth, id, secret.as_ref())
            .param("grant_type", "client_credentials")
            .send(),
    )
    .await;
    server.only_request()
}

#[track_caller]
fn assert_common_headers(request: &Request) {
    assert_eq!(request.request_line(), "POST /oauth/token HTTP/1.1");
    assert_eq!(
        request.header("user-agent"),
        Some(format!("tokensmith/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("content-length"), Some(request.body.len().to_string().as_str()));
}

/// (style, id, secret, expected `Authorization` header, expected body)
type AuthCase =
    (ClientAuth, &'static str, Option<&'static str>, Option<&'static str>, &'static str);

#[tokio::test]
async fn client_auth_styles_send_exact_bytes() {
    let cases: &[AuthCase] = &[
        // SOTI's documented credentials: both Basic encodings agree on plain ASCII.
        (
            ClientAuth::BasicRaw,
            "Application1",
            Some("Application1Password"),
            Some("Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk"),
            "grant_type=client_credentials",
        ),
        (
            ClientAuth::BasicFormEncoded,
            "Application1",
            Some("Application1Password"),
            Some("Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk"),
            "grant_type=client_credentials",
        ),
        // As given: base64("my client:1:p:a+s%s wörd€") over UTF-8.
        (
            ClientAuth::BasicRaw,
            ODD_ID,
            Some(ODD_SECRET),
            Some("Basic bXkgY2xpZW50OjE6cDphK3MlcyB3w7ZyZOKCrA=="),
            "grant_type=client_credentials",
        ),
        // RFC 6749 §2.3.1: base64("my+client%3A1:p%3Aa%2Bs%25s+w%C3%B6rd%E2%82%AC").
        (
            ClientAuth::BasicFormEncoded,
            ODD_ID,
            Some(ODD_SECRET),
            Some("Basic bXkrY2xpZW50JTNBMTpwJTNBYSUyQnMlMjVzK3clQzMlQjZyZCVFMiU4MiVBQw=="),
            "grant_type=client_credentials",
        ),
        // application/x-www-form-urlencoded keeps `*-._` and encodes `~`:
        // base64("id:*-._%7E").
        (
            ClientAuth::BasicFormEncoded,
            "id",
            Some("*-._~"),
            Some("Basic aWQ6Ki0uXyU3RQ=="),
            "grant_type=client_credentials",
        ),
        // No secret: an empty one, base64("Application1:").
        (
            ClientAuth::BasicRaw,
            "Application1",
            None,
            Some("Basic QXBwbGljYXRpb24xOg=="),
            "grant_type=client_credentials",
        ),
        (
            ClientAuth::RequestBody,
            ODD_ID,
            Some(ODD_SECRET),
            None,
            "client_id=my+client%3A1&client_secret=p%3Aa%2Bs%25s+w%C3%B6rd%E2%82%AC\
             &grant_type=client_credentials",
        ),
        (
            ClientAuth::RequestBody,
            ODD_ID,
            None,
            None,
            "client_id=my+client%3A1&grant_type=client_credentials",
        ),
        // A public client: a secret handed in anyway is sent nowhere.
        (
            ClientAuth::None,
            ODD_ID,
            Some(ODD_SECRET),
            None,
            "client_id=my+client%3A1&grant_type=client_credentials",
        ),
    ];
    for &(auth, id, secret, header, body) in cases {
        let request = capture(auth, id, secret).await;
        let case = format!("{auth:?} {id:?} {secret:?}");
        assert_common_headers(&request);
        assert_eq!(request.header("authorization"), header, "{case}");
        assert_eq!(request.body_str(), body, "{case}");
        if auth == ClientAuth::None {
            let raw = format!("{}{}", request.head, request.body_str());
            assert!(!raw.contains("p:a") && !raw.contains("p%3Aa"), "{case}: {raw}");
        }
    }
}

#[tokio::test]
async fn encode_matches_the_wire() {
    let server = Server::start("/oauth/token", |_| token_response()).await;
    let endpoint = endpoint(&server.url);
    let secret = SecretString::from(ODD_SECRET);
    let password = SecretString::from("pa ss&word=1");
    let request = endpoint
        .request()
        .client_auth(ClientAuth::BasicFormEncoded, ODD_ID, Some(&secret))
        .param("grant_type", "password")
        .param("username", "Administrator")
        .secret_param("password", &password);
    let (header, body) = request.encode();
    assert_eq!(
        body.expose_secret(),
        "grant_type=password&username=Administrator&password=pa+ss%26word%3D1"
    );
    let _ = bounded(request.send()).await;
    let received = server.only_request();
    assert_eq!(received.header("authorization"), header.as_ref().map(SecretString::expose_secret));
    assert_eq!(received.body_str(), body.expose_secret());
    // The request's Debug names fields, never values.
    let shown = format!("{:?}", endpoint.request().secret_param("password", &password));
    assert!(shown.contains("password") && !shown.contains("pa ss"), "{shown}");
}

// ---------------------------------------------------------------------------
// Responses: success, Retry-After (need the parser)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_token_response_gives_a_token() {
    let server = Server::start("/oauth/token", |_| token_response()).await;
    let token = bounded(
        endpoint(&server.url)
            .request()
            .client_auth(ClientAuth::BasicRaw, "id", Some(&SecretString::from("s")))
            .param("grant_type", "client_credentials")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(token.secret().expose_secret(), "tok-1");
    assert_eq!(token.received_at(), SystemTime::UNIX_EPOCH);
    assert_eq!(token.expires_at(), Some(SystemTime::UNIX_EPOCH + Duration::from_hours(1)));
}

#[tokio::test]
async fn retry_after_seconds_reach_the_error() {
    for (status, body) in [
        ("503 Service Unavailable", &b"busy"[..]),
        ("429 Too Many Requests", br#"{"error":"slow_down"}"#),
    ] {
        let server = Server::start("/token", move |_| {
            response(status, &[("Retry-After", "7"), ("Content-Type", "text/plain")], body)
        })
        .await;
        let err = bounded(endpoint(&server.url).request().send()).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)), "{status}: {err:?}");
        assert!(err.is_retryable(), "{status}: {err:?}");
    }
}

/// `Retry-After` as an HTTP-date counts from the endpoint's clock (here the
/// epoch): a date two minutes later is a two-minute delay, now is none.
#[tokio::test]
async fn retry_after_dates_count_from_the_injected_clock() {
    for (date, expected) in [
        ("Thu, 01 Jan 1970 00:02:00 GMT", Some(120)),
        ("Thursday, 01-Jan-70 00:00:30 GMT", Some(30)),
        ("Thu Jan  1 00:00:07 1970", Some(7)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
        ("soon", None),
    ] {
        let server = Server::start("/token", move |_| {
            response("503 Service Unavailable", &[("Retry-After", date)], b"busy")
        })
        .await;
        let err = bounded(endpoint(&server.url).request().send()).await.unwrap_err();
        assert_eq!(err.retry_after(), expected.map(Duration::from_secs), "{date}: {err:?}");
        let server = Server::start("/token", move |_| {
            response("503 Service Unavailable", &[("Retry-After", date)], b"busy")
        })
        .await;
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let err =
            bounded(fetch_json(PROVIDER, &server.url, &settings(), &clock)).await.unwrap_err();
        assert_eq!(err.retry_after(), expected.map(Duration::from_secs), "{date}: {err:?}");
    }
}

// ---------------------------------------------------------------------------
// Connection reuse
// ---------------------------------------------------------------------------

// Current-thread runtime: hyper returns a connection to the pool from a
// background task once the body has ended; yielding lets that task run
// before the second request, deterministically.
#[tokio::test(flavor = "current_thread")]
async fn one_connection_serves_consecutive_requests() {
    let server = Server::start("/token", |_| token_response()).await;
    let first = endpoint(&server.url);
    let second = first.clone();
    for endpoint in [&first, &second, &first] {
        let _ = bounded(endpoint.request().param("grant_type", "client_credentials").send()).await;
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "connections were not reused");
}

// ---------------------------------------------------------------------------
// Timeouts and transport errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (url, _server) = raw_server(|stream| async move {
        // Hold the connection open, never answer.
        let mut stream = stream;
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
    .await;
    let err = bounded(endpoint_with(&url, &short_settings()).request().send()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(err.to_string().contains("within 1s"), "{err}");
}

#[tokio::test]
async fn a_stalled_body_times_out() {
    let (url, _server) = raw_server(|mut stream| async move {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"acc")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
    .await;
    let err = bounded(endpoint_with(&url, &short_settings()).request().send()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Timeout);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/token?tenant=QUERYSECRET")).unwrap();
    let secret = SecretString::from("CLIENTSECRET");
    let err = bounded(
        endpoint(&url)
            .request()
            .client_auth(ClientAuth::BasicRaw, "id", Some(&secret))
            .secret_param("password", &SecretString::from("PASSWORDSECRET"))
            .send(),
    )
    .await
    .unwrap_err();
    assert_transport(&err, TransportErrorKind::Connect);
    assert!(err.is_retryable());
    for shown in [err.to_string(), format!("{err:?}"), format!("{:?}", endpoint(&url))] {
        for secret in ["QUERYSECRET", "CLIENTSECRET", "PASSWORDSECRET", "/token"] {
            if secret == "/token" && shown.starts_with("TokenEndpoint") {
                continue; // the endpoint's Debug shows the path, never the query
            }
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}

#[tokio::test]
async fn a_connection_closed_early_is_an_io_error() {
    // Closed before any response; closed in the middle of the body.
    let (url, _server) = raw_server(|stream| async move { drop(stream) }).await;
    let err = bounded(endpoint(&url).request().send()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Io);

    let (url, _server) = raw_server(|mut stream| async move {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"access_token\"")
            .await;
    })
    .await;
    let err = bounded(endpoint(&url).request().send()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Io);
}

// ---------------------------------------------------------------------------
// The body cap
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Framing {
    ContentLength,
    Chunked,
    UntilClose,
}

const HUGE: usize = 64 * MIB;

/// Sends a 64 MiB body in 64 KiB writes until the peer hangs up; returns how
/// many body bytes were written.
async fn stream_huge_body(mut stream: TcpStream, framing: Framing) -> usize {
    let head = match framing {
        Framing::ContentLength => format!("Content-Length: {HUGE}\r\n"),
        Framing::Chunked => "Transfer-Encoding: chunked\r\n".to_owned(),
        Framing::UntilClose => "Connection: close\r\n".to_owned(),
    };
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let block = vec![b'x'; 64 * 1024];
    let mut written = 0;
    while written < HUGE {
        let result = match framing {
            Framing::Chunked => {
                let mut framed = format!("{:x}\r\n", block.len()).into_bytes();
                framed.extend_from_slice(&block);
                framed.extend_from_slice(b"\r\n");
                stream.write_all(&framed).await
            }
            Framing::ContentLength | Framing::UntilClose => stream.write_all(&block).await,
        };
        if result.is_err() {
            return written;
        }
        written += block.len();
    }
    written
}

#[tokio::test]
async fn a_64_mib_body_is_refused_without_reading_it() {
    for framing in [Framing::ContentLength, Framing::Chunked, Framing::UntilClose] {
        let (url, server) =
            raw_server(move |stream| async move { stream_huge_body(stream, framing).await }).await;
        let err = bounded(endpoint(&url).request().send()).await.unwrap_err();
        assert_eq!(invalid_reason(&err), "response body larger than 1 MiB refused", "{framing:?}");
        assert_eq!(err.status(), Some(200));
        assert!(!err.is_retryable());
        assert_one_line(&err);
        // The client hung up: the server's writes failed long before 64 MiB
        // (what it wrote is at most the 1 MiB read plus the socket buffers).
        let written = bounded(server).await.unwrap();
        assert!(written < HUGE / 4, "{framing:?}: the server wrote {written} bytes");
    }
}

/// A `Content-Length` that announces less than the server then sends: only
/// the announced bytes are read (the rest is never taken for the body), so
/// the cap cannot be slipped past by a small announcement; one that
/// announces more than the cap is refused before any body is read.
#[tokio::test]
async fn a_lying_content_length_does_not_widen_the_cap() {
    let mut settings = settings();
    settings.max_body_bytes = 1000;
    for (announced, sent) in [(20, 64 * 1024), (2000, 10)] {
        let (url, _server) = raw_server(move |mut stream| async move {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&vec![b'x'; sent]).await;
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        })
        .await;
        let err = bounded(endpoint_with(&url, &settings).request().send()).await.unwrap_err();
        let reason = invalid_reason(&err);
        let body = err.body().map_or("", |b| b.as_str());
        if announced > 1000 {
            assert_eq!(reason, "response body larger than 1000 bytes refused");
            assert!(!body.contains('x'), "a body announced too large was read: {body:?}");
        } else {
            assert_eq!(body, "x".repeat(announced), "{reason}");
        }
    }
}

#[tokio::test]
async fn the_cap_is_exact() {
    // fetch_json, so the check does not depend on the token parser.
    let mut settings = settings();
    settings.max_body_bytes = 1000;
    for (len, fits) in [(1000, true), (1001, false)] {
        let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(len - 10)).into_bytes();
        assert_eq!(body.len(), len);
        for chunked in [false, true] {
            let body = body.clone();
            let (url, _server) = raw_server(move |mut stream| async move {
                let raw = if chunked {
                    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    for part in body.chunks(300) {
                        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                        raw.extend_from_slice(part);
                        raw.extend_from_slice(b"\r\n");
                    }
                    raw.extend_from_slice(b"0\r\n\r\n");
                    raw
                } else {
                    response("200 OK", &[], &body)
                };
                let _ = stream.write_all(&raw).await;
            })
            .await;
            let result = bounded(fetch_json(PROVIDER, &url, &settings, &epoch_clock())).await;
            match result {
                Ok(value) if fits => assert_eq!(value["pad"].as_str().unwrap().len(), len - 10),
                Err(err) if !fits => {
                    assert_eq!(
                        invalid_reason(&err),
                        "response body larger than 1000 bytes refused"
                    );
                }
                other => panic!("len {len} chunked {chunked}: {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------

#[tokio::test]
async fn redirects_are_not_followed_and_credentials_not_replayed() {
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        // The target: a plain listener that must never see a connection.
        let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        target.set_nonblocking(true).unwrap();
        let target_addr = target.local_addr().unwrap();
        let location = format!("http://{target_addr}/steal?code=REDIRECTSECRET");
        let server =
            Server::start("/token", move |_| response(status, &[("Location", &location)], b""))
                .await;

        let secret = SecretString::from("CLIENTSECRET");
        let err = bounded(
            endpoint(&server.url)
                .request()
                .client_auth(ClientAuth::BasicRaw, "id", Some(&secret))
                .param("grant_type", "client_credentials")
                .send(),
        )
        .await
        .unwrap_err();
        assert_transport(&err, TransportErrorKind::Redirect);
        assert!(!err.is_retryable());
        let shown = err.to_string();
        assert!(shown.contains(&format!("http://{target_addr}")), "{shown}");
        assert!(shown.contains(&status[..3]), "{shown}");
        for hidden in ["steal", "REDIRECTSECRET", "CLIENTSECRET"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert_eq!(server.requests().len(), 1, "{status}: the request was repeated");
        match target.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("{status}: the redirect target was contacted: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration: the https rule, ca_file, timeout (no network)
// ---------------------------------------------------------------------------

fn new_endpoint(url: &str, allow_insecure_http: bool) -> Result<TokenEndpoint, TokenError> {
    let mut settings = settings();
    settings.allow_insecure_http = allow_insecure_http;
    TokenEndpoint::new(
        PROVIDER,
        Url::parse(url).unwrap(),
        &settings,
        Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH)),
    )
}

#[test]
fn https_is_required_except_for_loopback() {
    // (url, allow_insecure_http, accepted)
    let cases = [
        ("https://login.example.com/token", false, true),
        ("https://10.1.2.3/token", false, true),
        ("http://127.0.0.1:8080/token", false, true),
        ("http://127.8.9.10/token", false, true),
        ("http://localhost:9/token", false, true),
        ("http://LocalHost/token", false, true),
        ("http://[::1]:8080/token", false, true),
        ("http://example.com/token", false, false),
        ("http://10.1.2.3/token", false, false),
        ("http://[2001:db8::1]/token", false, false),
        ("http://localhost.example.com/token", false, false),
        ("http://127.0.0.1.nip.io/token", false, false),
        ("http://example.com/token", true, true),
        ("http://10.1.2.3/token", true, true),
        ("ftp://example.com/token", false, false),
        ("ftp://example.com/token", true, false),
        ("https://user:hunter2@login.example.com/token", false, false),
    ];
    for (url, allow, accepted) in cases {
        let result = new_endpoint(url, allow);
        assert_eq!(result.is_ok(), accepted, "{url} allow_insecure_http={allow}: {result:?}");
        assert_eq!(
            check_url(PROVIDER, "token_url", &Url::parse(url).unwrap(), allow).is_ok(),
            accepted,
            "{url}"
        );
        if let Err(err) = result {
            assert_config_field(&err, "token_url");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
    let err = new_endpoint("http://example.com/token", false).unwrap_err();
    assert!(err.to_string().contains("allow_insecure_http"), "{err}");
}

fn ca_settings(path: &std::path::Path) -> HttpSettings {
    let mut settings = settings();
    settings.ca_file = Some(path.to_owned());
    settings
}

const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATegAwIBAgIUZKj53SAnYasfdBxeqaObAecFJHAwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSdG9rZW5zbWl0aCB0ZXN0IENBMCAXDTI2MTEyMzAxMzgxNFoY
DzIxMjYxMDMwMDEzODE0WjAdMRswGQYDVQQDDBJ0b2tlbnNtaXRoIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARpIzJ8w8Rht3IjgDLXiGvVk8KAB1qE
V/m8Led72VptK8veZTPvs45+dOLVX/hYl8Dd94Z4WyuQsie31ObX++30o1MwUTAd
BgNVHQ4EFgQU6u6k5s1Ob4LCE80o+Qd+YVSDJDQwHwYDVR0jBBgwFoAU6u6k5s1O
b4LCE80o+Qd+YVSDJDQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE
AiA7qN2E4rMkQsHYYRhyIaQJlpx43CQNcwMAnO+qeXQ4bgIgaI1nbbZBYQThZFrq
fzKy86YLN11jqlffKSd8g3r7aYE=
-----END CERTIFICATE-----
";

#[test]
fn ca_file_must_hold_usable_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let url = Url::parse("https://login.example.com/token").unwrap();
    let build = |path: &std::path::Path| {
        TokenEndpoint::new(
            PROVIDER,
            url.clone(),
            &ca_settings(path),
            Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH)),
        )
    };

    let missing = dir.path().join("missing.pem");
    assert_config_field(&build(&missing).unwrap_err(), "ca_file");

    let bad = [
        ("empty.pem", ""),
        ("text.pem", "not a certificate\n"),
        (
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        ),
        ("garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    ];
    for (name, contents) in bad {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let err = build(&path).unwrap_err();
        assert_config_field(&err, "ca_file");
        assert!(err.to_string().contains(name), "{err}");
    }

    let good = dir.path().join("ca.pem");
    std::fs::write(&good, TEST_CA).unwrap();
    build(&good).unwrap();
}

#[test]
fn a_zero_timeout_is_a_config_error() {
    let mut settings = settings();
    settings.timeout = Duration::ZERO;
    let err = TokenEndpoint::new(
        PROVIDER,
        Url::parse("https://login.example.com/token").unwrap(),
        &settings,
        Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH)),
    )
    .unwrap_err();
    assert_config_field(&err, "timeout");
}

// ---------------------------------------------------------------------------
// fetch_json
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fetch_json_gets_a_document() {
    let server = Server::start("/.well-known/openid-configuration", |_| {
        response(
            "200 OK",
            &[("Content-Type", "application/json")],
            br#"{"token_endpoint":"https://login.example.com/token"}"#,
        )
    })
    .await;
    let value =
        bounded(fetch_json(PROVIDER, &server.url, &settings(), &epoch_clock())).await.unwrap();
    assert_eq!(value["token_endpoint"], "https://login.example.com/token");
    let request = server.only_request();
    assert_eq!(request.request_line(), "GET /.well-known/openid-configuration HTTP/1.1");
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(format!("tokensmith/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(request.header("authorization"), None);
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn fetch_json_errors() {
    // (status, headers, body, check)
    let server = Server::start("/doc", |request| match request.request_line() {
        l if l.starts_with("GET /doc?html") => {
            response("200 OK", &[("Content-Type", "text/html")], b"<html>login</html>")
        }
        l if l.starts_with("GET /doc?missing") => response("404 Not Found", &[], b"nope"),
        l if l.starts_with("GET /doc?busy") => {
            response("503 Service Unavailable", &[("Retry-After", "3")], b"busy")
        }
        _ => response("302 Found", &[("Location", "https://elsewhere.example/doc")], b""),
    })
    .await;
    let fetch = |query: &str| {
        let mut url = server.url.clone();
        url.set_query(Some(query));
        async move {
            bounded(fetch_json(PROVIDER, &url, &settings(), &epoch_clock())).await.unwrap_err()
        }
    };

    let err = fetch("html").await;
    assert!(invalid_reason(&err).starts_with("not a JSON document"), "{err}");
    assert_eq!(err.body().unwrap().as_str(), "<html>login</html>");

    let err = fetch("missing").await;
    assert_eq!(err.status(), Some(404));
    assert!(invalid_reason(&err).contains("404"), "{err}");

    let err = fetch("busy").await;
    assert!(matches!(err, TokenError::Server { status: 503, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert!(err.is_retryable());

    let err = fetch("redirect").await;
    assert_transport(&err, TransportErrorKind::Redirect);
    assert!(err.to_string().contains("https://elsewhere.example"), "{err}");

    let err = bounded(fetch_json(
        PROVIDER,
        &Url::parse("http://login.example.com/.well-known/openid-configuration").unwrap(),
        &settings(),
        &epoch_clock(),
    ))
    .await
    .unwrap_err();
    assert_config_field(&err, "url");
}

#[tokio::test]
async fn fetch_json_times_out() {
    let (url, _server) = raw_server(|mut stream| async move {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
    .await;
    let err =
        bounded(fetch_json(PROVIDER, &url, &short_settings(), &epoch_clock())).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Timeout);
}

/// A server that echoes the whole request (form body and `Authorization`
/// header) back in its error description, its body and a 2xx invalid body:
/// none of the secrets the request sent may reach the error.
#[tokio::test]
async fn secrets_echoed_by_the_server_are_scrubbed_from_errors() {
    const CLIENT_SECRET: &str = "cl1ent+secret/with space";
    const PASSWORD: &str = "hunter2-p@ss";
    fn echo(request: &Request) -> String {
        let auth = request.header("authorization").unwrap_or_default();
        format!("{} | {auth} | {}", request.body_str(), request.head.replace("\r\n", " "))
    }
    type Respond = fn(&Request) -> Vec<u8>;
    let cases: [(&str, Respond); 3] = [
        ("400 Bad Request", |r| {
            let body = serde_json::json!({"error": "invalid_grant", "error_description": echo(r)});
            response(
                "400 Bad Request",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
        }),
        ("503 Service Unavailable", |r| {
            response(
                "503 Service Unavailable",
                &[("Content-Type", "text/html")],
                echo(r).as_bytes(),
            )
        }),
        ("200 OK", |r| response("200 OK", &[("Content-Type", "text/plain")], echo(r).as_bytes())),
    ];
    for (status, respond) in cases {
        for auth in [ClientAuth::BasicRaw, ClientAuth::BasicFormEncoded, ClientAuth::RequestBody] {
            let server = Server::start("/token", respond).await;
            let err = bounded(
                endpoint(&server.url)
                    .request()
                    .client_auth(auth, "app", Some(&SecretString::from(CLIENT_SECRET)))
                    .param("grant_type", "password")
                    .secret_param("password", &SecretString::from(PASSWORD))
                    .send(),
            )
            .await
            .unwrap_err();
            let shown = format!("{err} {err:?}");
            let encoded_secret: String =
                url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
            for secret in [CLIENT_SECRET, PASSWORD, encoded_secret.as_str()] {
                assert!(!shown.contains(secret), "{status} {auth:?}: {secret:?} leaked in {shown}");
            }
            assert!(
                !shown.contains("Basic YXBw"),
                "{status} {auth:?}: Basic credentials leaked in {shown}"
            );
            assert!(
                shown.contains("[REDACTED]"),
                "{status} {auth:?}: nothing was scrubbed: {shown}"
            );
        }
    }
}

/// Secret form fields (password, code, refresh token) echoed the way the
/// request sent them (form-encoded) or decoded into a JSON string (escaped)
/// are scrubbed too, not only their raw spelling.
#[tokio::test]
async fn secrets_echoed_encoded_or_json_escaped_are_scrubbed_from_errors() {
    // Each secret starts with a marker no other text contains, so any
    // spelling of it that survives is found.
    const PASSWORD: &str = "Zq9 p@ss\"w\\rd";
    const CLIENT_SECRET: &str = "Xk7 s\"cr\\t";
    type Respond = fn(&Request) -> Vec<u8>;
    let cases: [(&str, Respond); 3] = [
        ("raw form body in a JSON description", |r| {
            let body =
                serde_json::json!({"error": "invalid_grant", "error_description": r.body_str()});
            response("400 Bad Request", &[], body.to_string().as_bytes())
        }),
        ("decoded fields as JSON strings", |r| {
            let fields: serde_json::Map<String, serde_json::Value> =
                url::form_urlencoded::parse(&r.body)
                    .map(|(k, v)| (format!("got_{k}"), v.into_owned().into()))
                    .collect();
            response(
                "400 Bad Request",
                &[],
                serde_json::Value::Object(fields).to_string().as_bytes(),
            )
        }),
        ("raw form body as text", |r| response("500 Oops", &[], &r.body)),
    ];
    for (what, respond) in cases {
        let server = Server::start("/token", respond).await;
        let err = bounded(
            endpoint(&server.url)
                .request()
                .client_auth(
                    ClientAuth::RequestBody,
                    "app",
                    Some(&SecretString::from(CLIENT_SECRET)),
                )
                .param("grant_type", "password")
                .secret_param("password", &SecretString::from(PASSWORD))
                .send(),
        )
        .await
        .unwrap_err();
        let shown = format!("{err} | {err:?}");
        for marker in ["Zq9", "Xk7"] {
            assert!(!shown.contains(marker), "{what}: a spelling of a secret leaked: {shown}");
        }
        assert!(shown.contains("[REDACTED]"), "{what}: nothing was scrubbed: {shown}");
    }
}

/// An error body over the size limit is cut for its snippet: what the request
/// sent (Basic credentials, password, client secret) is scrubbed from the
/// whole of what was read *before* the cut, so neither a whole secret nor
/// the part before the cut survives, and an echoed `Authorization` header is
/// redacted by key too.
#[tokio::test]
async fn an_oversized_error_body_is_scrubbed_too() {
    use base64::Engine as _;
    const PASSWORD: &str = "Zq9-hunter2-p@ss";
    const CLIENT_SECRET: &str = "Xk7-cl1ent-s3cret";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("app:{CLIENT_SECRET}"));
    // The Basic credentials echoed at the start; the password and secret
    // echoed at the start, and across the 4 KiB cut behind blank padding.
    let bodies = [
        format!("Authorization: Basic {basic}\r\npassword was {PASSWORD}, secret {CLIENT_SECRET}"),
        format!("{}got {PASSWORD} {CLIENT_SECRET}", " ".repeat(4096 - 7)),
        format!("{}got Basic {basic}", " ".repeat(4096 - 14)),
        format!("{{\"error_description\":\"{}{PASSWORD}\"}}", " ".repeat(4096 - 28)),
    ];
    for (i, start) in bodies.into_iter().enumerate() {
        for auth in [ClientAuth::BasicRaw, ClientAuth::RequestBody] {
            if i == 2 && auth == ClientAuth::RequestBody {
                continue; // no Basic credentials sent: nothing to scrub
            }
            let start = start.clone();
            let (url, _server) = raw_server(move |mut stream| async move {
                let head = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n";
                let mut body = start.into_bytes();
                body.resize(2 * MIB, b'.');
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            })
            .await;
            let err = bounded(
                endpoint(&url)
                    .request()
                    .client_auth(auth, "app", Some(&SecretString::from(CLIENT_SECRET)))
                    .param("grant_type", "password")
                    .secret_param("password", &SecretString::from(PASSWORD))
                    .send(),
            )
            .await
            .unwrap_err();
            assert_eq!(invalid_reason(&err), "response body larger than 1 MiB refused", "{i}");
            let shown = format!("{err} | {err:?}");
            for leaked in ["Zq9", "Xk7", &basic[..4]] {
                assert!(!shown.contains(leaked), "body {i} {auth:?}: {leaked:?} leaked: {shown}");
            }
            // The marker may be cut too.
            assert!(shown.contains("[RE"), "body {i} {auth:?}: nothing scrubbed: {shown}");
        }
    }
}

/// A shaped request (a vendor described in config): GET or POST with a JSON
/// body, query parameters and headers, Basic credentials from two values.
/// The bytes on the wire are the described ones, and a server echoing the
/// whole request back never gets a secret into the error, whatever name it
/// went under.
#[tokio::test]
async fn shaped_requests_send_exact_bytes_and_never_leak_what_they_sent() {
    use tokensmith_core::{RequestMethod, ResponseShape};
    const KEY: &str = "api-key/with+chars";
    const PASSWORD: &str = "json-p@ss \"quoted\"";
    const HEADER_SECRET: &str = "hdr-secret-value";
    fn echo(r: &Request) -> Vec<u8> {
        let text = format!("{} {}", r.head.replace("\r\n", " "), r.body_str());
        let body = serde_json::json!({"fault": {"code": "E1", "text": text}, "apiKey": "x"});
        response(
            "400 Bad Request",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }
    let shape = ResponseShape::new("/t").unwrap().error_code("/fault/code").unwrap();
    let server = Server::start("/token", echo).await;
    let key = SecretString::from(KEY);
    let err = bounded(
        endpoint(&server.url)
            .request()
            .json_body(serde_json::json!({"user": {"name": "svc"}, "n": 1}))
            .json_secret("/user/password", &SecretString::from(PASSWORD))
            .query("tenant", "north")
            .secret_query("apiKey", &key)
            .header("X-Plain", "plain")
            .secret_header("X-Secret", &SecretString::from(HEADER_SECRET))
            .basic_auth(&SecretString::from("user-1"), &SecretString::from("basic-pass-1"))
            .send_shaped(&shape),
    )
    .await
    .unwrap_err();
    let request = server.only_request();
    assert!(
        request.head.starts_with("POST /token?tenant=north&apiKey=api-key%2Fwith%2Bchars HTTP/1.1"),
        "{}",
        request.head
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-plain"), Some("plain"));
    assert_eq!(request.header("x-secret"), Some(HEADER_SECRET));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, serde_json::json!({"user": {"name": "svc", "password": PASSWORD}, "n": 1}));
    assert_eq!(err.oauth_error_code(), Some("e1"));
    let shown = format!("{err} {err:?}");
    let encoded: String = url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
    for secret in [
        KEY,
        encoded.as_str(),
        "json-p@ss",
        HEADER_SECRET,
        "basic-pass-1",
        "dXNlci0xOmJhc2ljLXBhc3MtMQ==",
    ] {
        assert!(!shown.contains(secret), "{secret:?} leaked in {shown}");
    }
    assert!(
        shown.contains("\\\"apiKey\\\":\\\"[REDACTED]\\\"")
            || shown.contains("apiKey\":\"[REDACTED]"),
        "{shown}"
    );

    // A GET sends no body and no Content-Type; a body with a GET is refused.
    let server = Server::start("/token", |_| token_response()).await;
    let token = bounded(
        endpoint(&server.url)
            .request()
            .method(RequestMethod::Get)
            .query("a", "b")
            .send_shaped(&ResponseShape::new("/access_token").unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(token.secret().expose_secret(), "tok-1");
    let request = server.only_request();
    assert!(request.head.starts_with("GET /token?a=b HTTP/1.1"), "{}", request.head);
    assert_eq!(request.header("content-type"), None);
    let err =
        bounded(endpoint(&server.url).request().method(RequestMethod::Get).param("a", "b").send())
            .await
            .unwrap_err();
    assert!(err.is_config(), "{err}");
}
