//! A raw HTTP/1.1 token endpoint on 127.0.0.1 for the fault table
//! (`faults.rs`): it answers tokens of a set lifetime until a [`Mode`] is
//! switched on, then misbehaves in that way on every new connection, at the
//! byte level no emulator reaches (a reset mid-body, a dribbling head, an
//! endless body), optionally behind TLS signed by a private CA made at test
//! time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokensmith_core::{Clock as _, SystemClock};
use tokensmith_testkit::tls::PrivateCa;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// What the server does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A `200` with a new token of the server's lifetime (no fault).
    Token,
    /// The port closed: connections are refused.
    Refused,
    /// Headers promising 4096 bytes, 20 of them, then a TCP reset.
    ResetMidBody,
    /// A complete `200` whose JSON stops half-way (holding a token).
    TruncatedJson,
    /// `503` with an OAuth error body, every time (a 5xx storm).
    ServerError,
    /// `429` with `Retry-After: 7`.
    TooManySeconds,
    /// `429` with `Retry-After` as an HTTP-date 30 s ahead.
    TooManyDate,
    /// The request read, the connection closed without an answer.
    Dropped,
    /// One byte of the head every 100 ms, forever.
    Slowloris,
    /// A chunked `200` whose JSON token never ends (bytes as fast as the
    /// client takes them).
    EndlessBody,
}

/// The 503 body of [`Mode::ServerError`].
pub(crate) const SERVER_ERROR_BODY: &str =
    r#"{"error":"temporarily_unavailable","error_description":"the token service is overloaded"}"#;
/// The 429 body of [`Mode::TooManySeconds`] and [`Mode::TooManyDate`].
pub(crate) const TOO_MANY_BODY: &str =
    r#"{"error":"slow_down","error_description":"too many requests"}"#;

#[derive(Debug)]
struct Shared {
    mode: Mutex<Mode>,
    lifetime: Duration,
    faulted: AtomicU64,
    /// Every token the server sent, whole or in part.
    tokens: Mutex<Vec<String>>,
}

/// A running fault server (stops with its runtime, or when dropped).
pub(crate) struct FaultServer {
    url: String,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
    rt: tokio::runtime::Handle,
}

impl FaultServer {
    /// Plain HTTP on 127.0.0.1, answering tokens living `lifetime`.
    pub(crate) fn start(rt: &Runtime, lifetime: Duration) -> FaultServer {
        Self::start_inner(rt, lifetime, None)
    }

    /// HTTPS on 127.0.0.1 with a certificate for `127.0.0.1` signed by a
    /// private CA made now; returns the server and the CA's PEM file
    /// (written in `dir`), for `ca_file`.
    pub(crate) fn start_tls(
        rt: &Runtime,
        lifetime: Duration,
        dir: &Path,
    ) -> (FaultServer, PathBuf) {
        let (acceptor, ca_file) = tls_acceptor(dir);
        (Self::start_inner(rt, lifetime, Some(acceptor)), ca_file)
    }

    fn start_inner(rt: &Runtime, lifetime: Duration, tls: Option<TlsAcceptor>) -> FaultServer {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/token", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Token),
            lifetime,
            faulted: AtomicU64::new(0),
            tokens: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        let accept = rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let mode = *state.mode.lock().unwrap();
                if mode != Mode::Token {
                    state.faulted.fetch_add(1, Ordering::SeqCst);
                }
                tokio::spawn(connection(tcp, tls.clone(), mode, state.clone()));
            }
        });
        FaultServer { url, shared, accept: Mutex::new(Some(accept)), rt: rt.handle().clone() }
    }

    /// The token URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Switches `mode` on for every connection from now on;
    /// [`Mode::Refused`] closes the port.
    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
        if mode == Mode::Refused {
            let accept = self.accept.lock().unwrap().take();
            if let Some(accept) = accept {
                accept.abort();
                // Once it has ended, the listener is closed.
                let _ = self.rt.block_on(accept);
            }
        }
    }

    /// Connections that met a fault so far.
    pub(crate) fn faulted(&self) -> u64 {
        self.shared.faulted.load(Ordering::SeqCst)
    }

    /// Every token it sent, whole or in part (truncated JSON).
    pub(crate) fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap().clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
    }
}

async fn connection(mut tcp: TcpStream, tls: Option<TlsAcceptor>, mode: Mode, shared: Arc<Shared>) {
    if let Some(acceptor) = tls {
        let Ok(mut stream) = acceptor.accept(tcp).await else { return };
        respond(&mut stream, mode, &shared).await;
        let _ = stream.shutdown().await;
        return;
    }
    respond(&mut tcp, mode, &shared).await;
    if mode == Mode::ResetMidBody {
        // SO_LINGER 0: closing sends a reset, not a FIN.
        #[expect(
            deprecated,
            reason = "tokio deprecates set_linger for its blocking close; a reset is what we want"
        )]
        let _ = tcp.set_linger(Some(Duration::ZERO));
    }
}

/// Reads the request: its head, then as many body bytes as it announces.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn response(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// A token body, the token recorded.
fn token_body(shared: &Shared) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemClock.now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let token = format!("fault-e2e-token-{n}-{nanos:09}");
    shared.tokens.lock().unwrap().push(token.clone());
    format!(
        r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{}}}"#,
        shared.lifetime.as_secs()
    )
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, mode: Mode, shared: &Shared) {
    read_request(stream).await;
    let answer = match mode {
        Mode::Token => response("200 OK", "", &token_body(shared)),
        // Closed unanswered (`Refused` is not reached: a closed port
        // accepts nothing).
        Mode::Refused | Mode::Dropped => return,
        Mode::ResetMidBody => {
            let body = token_body(shared);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{}",
                &body[..20]
            )
        }
        Mode::TruncatedJson => {
            let body = token_body(shared);
            response("200 OK", "", &body[..body.len() / 2])
        }
        Mode::ServerError => response("503 Service Unavailable", "", SERVER_ERROR_BODY),
        Mode::TooManySeconds => {
            response("429 Too Many Requests", "Retry-After: 7\r\n", TOO_MANY_BODY)
        }
        Mode::TooManyDate => {
            let date = httpdate::fmt_http_date(SystemClock.now() + Duration::from_secs(30));
            response("429 Too Many Requests", &format!("Retry-After: {date}\r\n"), TOO_MANY_BODY)
        }
        Mode::Slowloris => return slowloris(stream).await,
        Mode::EndlessBody => return endless(stream).await,
    };
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.flush().await;
}

/// One byte every 100 ms, until the client goes away. The dribble is real
/// time by design: it is what the client's real-time total timeout must cut.
async fn slowloris<S: AsyncWrite + Unpin>(stream: &mut S) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
        ticks.tick().await;
        if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// A chunked `200` whose token string never ends, written as fast as the
/// client reads, until it goes away.
async fn endless<S: AsyncWrite + Unpin>(stream: &mut S) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let start = r#"{"access_token":""#;
    let first = format!("{head}{:x}\r\n{start}\r\n", start.len());
    if stream.write_all(first.as_bytes()).await.is_err() {
        return;
    }
    let data = vec![b'a'; 64 * 1024];
    let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
    chunk.extend_from_slice(&data);
    chunk.extend_from_slice(b"\r\n");
    while stream.write_all(&chunk).await.is_ok() {}
}

/// A TLS acceptor for `127.0.0.1` signed by a new private CA, and the CA's
/// PEM file in `dir`.
fn tls_acceptor(dir: &Path) -> (TlsAcceptor, PathBuf) {
    let ca = PrivateCa::new("tokensmith CLI fault-table CA");
    let config = ca.issue(&["127.0.0.1"]).rustls_server_config();
    let ca_file = dir.join("fault-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (TlsAcceptor::from(config), ca_file)
}
