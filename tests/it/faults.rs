//! The fault table (issue 15, `docs/robustness.md` "Fault table"): each
//! fault of the network or the identity provider, over real sockets on
//! 127.0.0.1, gives the right `TokenError` class within the configured
//! timeout (1 s; a 20 s guard turns a hang into a failure), and a token
//! fetched before the fault keeps being served by the cache when the clock
//! (a `ManualClock`) enters the refresh window and the refresh fails.
//!
//! The CLI's exit codes and the agent's statuses for these classes are
//! tested in the CLI crate (`exit_codes.rs`, `serve.rs`); the table maps
//! them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, Clock as _, ManualClock, Providers, Registry, TokenError, TransportErrorKind,
};
use tokensmith_testkit::tls::PrivateCa;
use tokensmith_testkit::{Emulator, Fault, Vendor};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A hang fails the test instead of stalling the run (never a timing assertion).
const GUARD: Duration = Duration::from_secs(20);

const TOKEN_BODY: &str =
    r#"{"access_token":"fault-tok-1","token_type":"bearer","expires_in":3600}"#;

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A Deyel provider at `url` (1 s timeout) on `clock`, with no token store.
fn load(url: &str, clock: &ManualClock, extra: &str) -> Providers {
    let config = format!(
        "[providers.bpm]\nkind = \"deyel\"\ntoken_url = \"{url}\"\nclient_id = \"APIUSER\"\n\
         client_secret = \"Deyel-API-user-key-8.7\"\ntimeout = \"1s\"\n{extra}"
    );
    Registry::new()
        .with(tokensmith_deyel::Deyel)
        .with_clock(Arc::new(clock.clone()))
        .without_store()
        .load_str(&config)
        .unwrap()
}

async fn guarded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("the guard elapsed: a hang")
}

/// What a raw server does with a connection once the fault is on.
#[derive(Clone, Copy, Debug)]
enum Raw {
    /// Headers promising 4096 bytes, 20 of them, then a TCP reset.
    ResetMidBody,
    /// A complete response whose JSON stops half-way.
    TruncatedJson,
    /// One byte of the status line every 100 ms, forever.
    Slowloris,
    /// `429` with `Retry-After` as an HTTP-date 30 s after the clock's start.
    RetryAfterDate,
}

/// A raw HTTP/1.1 server on 127.0.0.1: answers a token until `fault` is
/// set, then does its [`Raw`] fault; counts connections.
struct RawServer {
    url: String,
    fault: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl RawServer {
    async fn start(mode: Raw) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let fault = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (on, count) = (fault.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let faulty = on.load(Ordering::SeqCst);
                tokio::spawn(serve(stream, faulty.then_some(mode)));
            }
        });
        Self { url, fault, connections, accept }
    }

    /// Stops listening: the port refuses connections from now on.
    async fn close(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }

    fn fault(&self) {
        self.fault.store(true, Ordering::SeqCst);
    }
}

async fn read_head(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    // The form body is small: one more read takes what is left of it.
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut chunk)).await;
}

fn response(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

async fn serve(mut stream: TcpStream, fault: Option<Raw>) {
    read_head(&mut stream).await;
    match fault {
        None => {
            let _ = stream.write_all(response("200 OK", "", TOKEN_BODY).as_bytes()).await;
        }
        Some(Raw::ResetMidBody) => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n";
            let _ = stream.write_all(format!("{head}{}", &TOKEN_BODY[..20]).as_bytes()).await;
            let _ = stream.flush().await;
            // SO_LINGER 0: closing sends a reset, not a FIN.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        Some(Raw::TruncatedJson) => {
            let body = &TOKEN_BODY[..TOKEN_BODY.len() / 2];
            let _ = stream.write_all(response("200 OK", "", body).as_bytes()).await;
        }
        Some(Raw::Slowloris) => {
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                // The dribble is real time by design: it is what the client's
                // real-time total timeout must cut; no code under test sleeps.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Some(Raw::RetryAfterDate) => {
            let date = httpdate::fmt_http_date(start() + Duration::from_secs(30));
            let body = r#"{"error":"slow_down","error_description":"too many requests"}"#;
            let extra = format!("Retry-After: {date}\r\n");
            let _ =
                stream.write_all(response("429 Too Many Requests", &extra, body).as_bytes()).await;
        }
    }
}

/// The cache column: a token fetched, the fault on, the clock moved into the
/// refresh window (3600 s token, refresh from 720 s before expiry): the
/// token is still served while the refresh fails, and after it failed.
async fn still_served(
    providers: &Providers,
    clock: &ManualClock,
    fault: impl Future<Output = ()>,
) -> AccessToken {
    let provider = providers.get("bpm").unwrap();
    let first = guarded(provider.token()).await.unwrap();
    fault.await;
    clock.advance(Duration::from_mins(50));
    let during = guarded(provider.token()).await.unwrap();
    assert!(during.same_token(&first), "served during the refresh");
    let cache = providers.cache("bpm").unwrap();
    guarded(async {
        while cache.stats().refresh_failures == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let after = guarded(provider.token()).await.unwrap();
    assert!(after.same_token(&first), "served after the refresh failed");
    first
}

#[track_caller]
fn assert_transport(err: &TokenError, expected: TransportErrorKind) {
    match err {
        TokenError::Transport { kind, .. } => assert_eq!(*kind, expected, "{err}"),
        other => panic!("expected a {expected:?} transport error, got {other:?}"),
    }
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_a_connect_error_and_the_cache_serves_on() {
    let clock = ManualClock::new(start());
    let server = RawServer::start(Raw::TruncatedJson).await;
    let providers = load(&server.url, &clock, "");
    // Refused: the port closed. A listener bound then dropped frees its port.
    let port = { TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port() };
    let refused = load(&format!("http://127.0.0.1:{port}/token"), &clock, "");
    let err = guarded(refused.get("bpm").unwrap().token()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Connect);
    // The cache: a token from a server that then goes away.
    still_served(&providers, &clock, server.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_body_is_an_io_error_and_the_cache_serves_on() {
    let clock = ManualClock::new(start());
    let server = RawServer::start(Raw::ResetMidBody).await;
    let providers = load(&server.url, &clock, "");
    still_served(&providers, &clock, async { server.fault() }).await;
    let fresh = load(&server.url, &clock, "");
    let err = guarded(fresh.get("bpm").unwrap().token()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Io);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_is_an_invalid_response_and_the_cache_serves_on() {
    let clock = ManualClock::new(start());
    let server = RawServer::start(Raw::TruncatedJson).await;
    let providers = load(&server.url, &clock, "");
    still_served(&providers, &clock, async { server.fault() }).await;
    let fresh = load(&server.url, &clock, "");
    let err = guarded(fresh.get("bpm").unwrap().token()).await.unwrap_err();
    assert!(matches!(err, TokenError::InvalidResponse { status: 200, .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_server_is_cut_by_the_total_timeout() {
    let clock = ManualClock::new(start());
    let server = RawServer::start(Raw::Slowloris).await;
    let providers = load(&server.url, &clock, "");
    still_served(&providers, &clock, async { server.fault() }).await;
    let fresh = load(&server.url, &clock, "");
    let err = guarded(fresh.get("bpm").unwrap().token()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Timeout);
    assert!(err.to_string().contains("1s"), "the configured timeout: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_an_http_date_is_honoured_as_a_delay() {
    let clock = ManualClock::new(start());
    let server = RawServer::start(Raw::RetryAfterDate).await;
    server.fault();
    let providers = load(&server.url, &clock, "");
    let provider = providers.get("bpm").unwrap();
    let err = guarded(provider.token()).await.unwrap_err();
    assert!(matches!(err, TokenError::Rejected { status: 429, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)), "the date, read on the clock");
    // No request before the date, whoever asks.
    for _ in 0..5 {
        guarded(provider.token()).await.unwrap_err();
    }
    clock.advance(Duration::from_secs(29));
    guarded(provider.token()).await.unwrap_err();
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "honoured for 30 s");
    clock.advance(Duration::from_secs(2));
    guarded(provider.token()).await.unwrap_err();
    assert_eq!(server.connections.load(Ordering::SeqCst), 2, "asked again after it");
}

/// Emulator faults: a 5xx storm, 429 in seconds, a dropped connection.
async fn emulated(fault: Fault) -> (Emulator, Providers, ManualClock, TokenError) {
    let clock = ManualClock::new(start());
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    emulator.set_token_lifetime(Duration::from_hours(1));
    let providers = load(&emulator.token_url(), &clock, "");
    let set = fault.clone();
    still_served(&providers, &clock, async { emulator.set_fault(set) }).await;
    let fresh = load(&emulator.token_url(), &clock, "");
    let err = guarded(fresh.get("bpm").unwrap().token()).await.unwrap_err();
    (emulator, fresh, clock, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_storm_is_a_server_error_with_requests_bounded_by_the_backoff() {
    let (emulator, fresh, clock, err) = emulated(Fault::Status(503)).await;
    assert!(matches!(err, TokenError::Server { status: 503, .. }), "{err:?}");
    assert!(err.is_retryable());
    let provider = fresh.get("bpm").unwrap();
    emulator.reset_counters();
    // 100 callers while the clock stands still: the backoff answers them.
    for _ in 0..100 {
        guarded(provider.token()).await.unwrap_err();
    }
    assert_eq!(emulator.requests(), 0, "no request during the backoff");
    // A minute of storm: the backoff (≤ 30 s, doubling) spaces the requests.
    for _ in 0..60 {
        clock.advance(Duration::from_secs(1));
        guarded(provider.token()).await.unwrap_err();
    }
    let requests = emulator.requests();
    assert!((1..=12).contains(&requests), "{requests} requests in a minute of 60 callers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_in_seconds_is_honoured() {
    let (emulator, fresh, clock, err) =
        emulated(Fault::TooManyRequests { retry_after_secs: 7 }).await;
    assert!(matches!(err, TokenError::Rejected { status: 429, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let provider = fresh.get("bpm").unwrap();
    emulator.reset_counters();
    clock.advance(Duration::from_secs(6));
    guarded(provider.token()).await.unwrap_err();
    assert_eq!(emulator.requests(), 0, "not before 7 s");
    clock.advance(Duration::from_secs(2));
    guarded(provider.token()).await.unwrap_err();
    assert_eq!(emulator.requests(), 1, "once after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_an_io_error() {
    let (_emulator, _fresh, _clock, err) = emulated(Fault::DropConnection).await;
    assert!(matches!(err, TokenError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_host_fails_fast_as_a_connect_error() {
    let clock = ManualClock::new(start());
    // `.invalid` never resolves (RFC 6761): the resolver answers at once,
    // no network needed; the 1 s timeout bounds it anyway.
    let providers = load("https://nonexistent.invalid/token", &clock, "");
    let err = guarded(providers.get("bpm").unwrap().token()).await.unwrap_err();
    assert!(matches!(err, TokenError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("provider \"bpm\""), "{err}");
}

// ---------------------------------------------------------------------------
// A self-signed (private CA) TLS endpoint

fn tls_acceptor(dir: &Path) -> (TlsAcceptor, std::path::PathBuf) {
    let ca = PrivateCa::new("tokensmith fault-table CA");
    let config = ca.issue(&["127.0.0.1"]).rustls_server_config();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (TlsAcceptor::from(config), ca_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_endpoint_is_refused_and_accepted_with_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca_file) = tls_acceptor(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut chunk = [0u8; 4096];
                let _ = tls.read(&mut chunk).await;
                let _ = tokio::time::timeout(Duration::from_millis(50), tls.read(&mut chunk)).await;
                let _ = tls.write_all(response("200 OK", "", TOKEN_BODY).as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let clock = ManualClock::new(start());
    let refused = load(&url, &clock, "");
    let err = guarded(refused.get("bpm").unwrap().token()).await.unwrap_err();
    assert_transport(&err, TransportErrorKind::Connect);
    let ca = format!("ca_file = {:?}\n", ca_file.display().to_string());
    let trusted = load(&url, &clock, &ca);
    let token = guarded(trusted.get("bpm").unwrap().token()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "fault-tok-1");
    assert!(clock.now() >= start());
}
