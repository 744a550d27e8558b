//! `ca_file` over real TLS: a private CA and a server certificate for
//! `localhost` and 127.0.0.1 are made at test time (rcgen), a rustls server on
//! 127.0.0.1 answers one token response, and the request helper must trust it
//! only through `ca_file` (issue 2: "an optional `ca_file` (PEM) for private PKI").

use std::error::Error as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    ClientAuth, HttpSettings, ManualClock, TokenEndpoint, TokenError, TransportErrorKind, Url,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, CertificateError, ServerConfig};

/// A bound on every await: a hang fails the test instead of stalling the run.
const OUTER: Duration = Duration::from_mins(1);

const PROVIDER: &str = "private-pki";
const CLIENT_ID: &str = "tls-client";
const CLIENT_SECRET: &str = "TLSCLIENTSECRET";
const TOKEN_BODY: &[u8] =
    br#"{"access_token":"tls-tok-1","token_type":"bearer","expires_in":3600}"#;

/// A private CA: its PEM (what goes into `ca_file`) and its issuer.
struct Ca {
    pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    Ca { pem: issuer.pem(), issuer }
}

/// A server certificate for `localhost` and 127.0.0.1 signed by `ca`, as a
/// rustls server config (leaf then CA in the chain).
fn server_config(ca: &Ca) -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&key, &ca.issuer).unwrap();
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.issuer.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// An HTTPS server on 127.0.0.1 answering every request with the token
/// response; records the head of each request that got through the handshake.
struct TlsServer {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl TlsServer {
    async fn start(ca: &Ca) -> Self {
        let acceptor = TlsAcceptor::from(server_config(ca));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, recorded) = (acceptor.clone(), recorded.clone());
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Some(head) = read_request(&mut tls).await else { return };
                    recorded.lock().unwrap().push(head);
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        TOKEN_BODY.len()
                    )
                    .into_bytes();
                    answer.extend_from_slice(TOKEN_BODY);
                    if tls.write_all(&answer).await.is_ok() {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self { port, heads }
    }

    fn url(&self, host: &str) -> Url {
        Url::parse(&format!("https://{host}:{}/token", self.port)).unwrap()
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// Reads one request (head and `Content-Length` body) and returns its head;
/// `None` when the peer closes first.
async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).ok()?;
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().unwrap());
    let mut body = buf.len() - (end + 4);
    while body < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body += n;
    }
    Some(head)
}

fn write_pem(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn settings(ca_file: Option<&Path>) -> HttpSettings {
    let mut settings = HttpSettings::default();
    settings.ca_file = ca_file.map(Path::to_owned);
    settings
}

/// One `client_credentials` request with `BasicRaw` client auth.
async fn request_token(
    url: Url,
    settings: &HttpSettings,
) -> Result<tokensmith_core::AccessToken, TokenError> {
    let endpoint = TokenEndpoint::new(
        PROVIDER,
        url,
        settings,
        Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH)),
    )
    .unwrap();
    let secret = SecretString::from(CLIENT_SECRET);
    let send = endpoint
        .request()
        .client_auth(ClientAuth::BasicRaw, CLIENT_ID, Some(&secret))
        .param("grant_type", "client_credentials")
        .send();
    tokio::time::timeout(OUTER, send).await.expect("the outer test bound elapsed")
}

/// The rustls error somewhere in `err`'s source chain. hyper wraps it in
/// nested `io::Error`s, whose `source` skips the wrapped error itself, so
/// those are opened with `get_ref`.
fn rustls_error(err: &TokenError) -> Option<&rustls::Error> {
    let mut next = err.source();
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        next = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Asserts a one-line `Connect` transport error caused by a certificate of an
/// unknown issuer, showing no secret.
#[track_caller]
fn assert_untrusted(err: &TokenError) {
    match err {
        TokenError::Transport { kind, .. } => {
            assert_eq!(*kind, TransportErrorKind::Connect, "{err}");
        }
        other => panic!("expected a Connect transport error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(!shown.contains('\n'), "not one line: {shown:?}");
    assert!(shown.starts_with(&format!("provider {PROVIDER:?}")), "{shown}");
    for text in [shown.clone(), format!("{err:?}")] {
        assert!(!text.contains(CLIENT_SECRET), "the client secret shows: {text}");
    }
    match rustls_error(err) {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {}
        other => panic!("expected an untrusted-certificate error, got {other:?} in {err:?}"),
    }
}

#[tokio::test]
async fn ca_file_trusts_a_private_ca_over_real_tls() {
    let ca = new_ca("tokensmith private test CA");
    let server = TlsServer::start(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write_pem(dir.path(), "private-ca.pem", &ca.pem);
    let settings = settings(Some(&ca_file));

    // By name (DNS SAN) and by address (IP SAN).
    for host in ["localhost", "127.0.0.1"] {
        let token = request_token(server.url(host), &settings).await.unwrap();
        assert_eq!(token.secret().expose_secret(), "tls-tok-1", "{host}");
    }
    let heads = server.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in &heads {
        assert!(head.starts_with("POST /token HTTP/1.1\r\n"), "{head}");
        // base64("tls-client:TLSCLIENTSECRET")
        let auth = "authorization: Basic dGxzLWNsaWVudDpUTFNDTElFTlRTRUNSRVQ=";
        assert!(head.to_ascii_lowercase().contains(&auth.to_ascii_lowercase()), "{head}");
    }
}

/// The client's rustls config carries the ring provider itself: a library
/// must neither need nor install a process-wide default (an application may
/// install its own, and would then be refused).
#[tokio::test]
async fn a_tls_request_installs_no_process_wide_crypto_provider() {
    let ca = new_ca("tokensmith provider test CA");
    let server = TlsServer::start(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write_pem(dir.path(), "private-ca.pem", &ca.pem);
    let token = request_token(server.url("localhost"), &settings(Some(&ca_file))).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "tls-tok-1");
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
}

#[tokio::test]
async fn without_ca_file_a_private_ca_is_not_trusted() {
    let ca = new_ca("tokensmith private test CA");
    let server = TlsServer::start(&ca).await;

    for host in ["localhost", "127.0.0.1"] {
        let err = request_token(server.url(host), &settings(None)).await.unwrap_err();
        assert_untrusted(&err);
    }
    assert_eq!(server.heads(), Vec::<String>::new(), "a request got past the handshake");
}

#[tokio::test]
async fn ca_file_of_another_ca_is_not_trusted() {
    let ca = new_ca("tokensmith private test CA");
    let other = new_ca("tokensmith other test CA");
    let server = TlsServer::start(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write_pem(dir.path(), "other-ca.pem", &other.pem);

    for host in ["localhost", "127.0.0.1"] {
        let err = request_token(server.url(host), &settings(Some(&ca_file))).await.unwrap_err();
        assert_untrusted(&err);
    }
    assert_eq!(server.heads(), Vec::<String>::new(), "a request got past the handshake");
}

#[test]
fn a_ca_file_that_is_a_fifo_a_device_or_too_large_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let large = dir.path().join("large.pem");
    std::fs::write(&large, vec![b'#'; 1024 * 1024 + 1]).unwrap();
    let mut cases = vec![(large, "larger than 1 MiB")];
    #[cfg(unix)]
    {
        let fifo = dir.path().join("ca.fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600))
            .unwrap();
        // Nobody writes to the FIFO: a blocking open would never return.
        cases.push((fifo, "not a regular file"));
        cases.push(("/dev/zero".into(), "not a regular file"));
    }
    for (path, expected) in cases {
        let err = TokenEndpoint::new(
            PROVIDER,
            Url::parse("https://127.0.0.1:1/token").unwrap(),
            &settings(Some(&path)),
            Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH)),
        )
        .unwrap_err();
        assert!(
            matches!(&err, TokenError::Config { field: Some(f), .. } if f == "ca_file"),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}
