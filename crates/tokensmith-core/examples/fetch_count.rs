//! A fixed number of uncached fetches, one way, for counting what a request
//! costs without a clock: instructions under `valgrind --tool=callgrind`,
//! syscalls under `strace -c -f`. The same local endpoint and the same two
//! sides as the `fetch` benchmark (`benches/cache.rs`), on a current-thread
//! runtime (one client thread; the endpoint serves on its own thread).
//!
//! ```sh
//! cargo build --release -p tokensmith-core --example fetch_count
//! # Arguments: SIDE REQUESTS CONCURRENCY (default: helper 100 8). The cost
//! # per request is the difference of two runs (e.g. 200 and 2200 requests)
//! # over the 2,000 requests between them.
//! valgrind --tool=callgrind target/release/examples/fetch_count helper 2200 8
//! strace -c -f target/release/examples/fetch_count raw 2200 8
//! ```
//!
//! Sides: `raw` (the bench's raw reqwest POST, whole-request timeout
//! included), `raw-bare` (the same client without a timeout),
//! `raw-settings` (the raw POST on a client with the helper's settings:
//! `connect_timeout`, `User-Agent`, `Accept`, a preconfigured rustls config),
//! and `helper` (`TokenEndpoint::request().send()`, parsed into a token).
//!
//! The helper reads its clock through [`StdClock`] (std's `SystemTime` and
//! `Instant`) rather than [`SystemClock`](tokensmith_core::SystemClock):
//! rustix's vDSO lookup, which `SystemClock` goes through on Linux, crashes
//! under valgrind 3.19. Either is one `clock_gettime` pair per request.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{ClientAuth, Clock, HttpSettings, TokenEndpoint, Url};
use tokio::net::TcpListener;

const TOKEN_BODY: &[u8] =
    br#"{"access_token":"bench-access-token","token_type":"Bearer","expires_in":3600,"scope":"read write"}"#;
const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-secret";
const FORM: [(&str, &str); 2] = [("grant_type", "client_credentials"), ("scope", "read write")];

/// The system's clocks through std (see the module docs).
#[derive(Debug)]
struct StdClock;

#[allow(clippy::disallowed_methods, reason = "a clock reads the real time")]
impl Clock for StdClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// Serves the token body on 127.0.0.1 from its own thread and runtime.
fn start_endpoint() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(answer);
                    let _closed = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Url::parse(&format!("http://{addr}/token")).expect("url")
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _form = req.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(TOKEN_BODY)));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("header"));
    Ok(response)
}

#[derive(Clone)]
enum Side {
    Raw { client: reqwest::Client, url: Url },
    Helper { endpoint: Arc<TokenEndpoint>, secret: SecretString },
}

impl Side {
    fn new(name: &str, url: Url) -> Self {
        // reqwest 0.13 with `rustls-no-provider` needs a process-wide
        // provider to build a client without a rustls config.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let timeout = HttpSettings::default().timeout;
        let raw =
            || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy();
        let client = match name {
            "raw" => raw().timeout(timeout),
            "raw-bare" => raw(),
            "raw-settings" => {
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(
                    reqwest::header::ACCEPT,
                    reqwest::header::HeaderValue::from_static("application/json"),
                );
                let roots =
                    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                let ring = Arc::new(rustls::crypto::ring::default_provider());
                let mut tls = rustls::ClientConfig::builder_with_provider(ring)
                    .with_safe_default_protocol_versions()
                    .expect("TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                tls.alpn_protocols = vec![b"http/1.1".to_vec()];
                raw()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .user_agent("tokensmith/0.1.0")
                    .default_headers(headers)
                    .tls_backend_preconfigured(tls)
            }
            "helper" => {
                let endpoint =
                    TokenEndpoint::new("count", url, &HttpSettings::default(), Arc::new(StdClock))
                        .expect("endpoint");
                return Self::Helper {
                    endpoint: Arc::new(endpoint),
                    secret: SecretString::from(CLIENT_SECRET),
                };
            }
            other => panic!("unknown side {other:?}: raw, raw-bare, raw-settings or helper"),
        };
        Self::Raw { client: client.build().expect("client"), url }
    }

    async fn once(&self) {
        match self {
            Self::Raw { client, url } => {
                let body = client
                    .post(url.clone())
                    .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                    .form(&FORM)
                    .send()
                    .await
                    .expect("raw POST")
                    .bytes()
                    .await
                    .expect("raw body");
                std::hint::black_box(body);
            }
            Self::Helper { endpoint, secret } => {
                let mut request =
                    endpoint.request().client_auth(ClientAuth::BasicRaw, CLIENT_ID, Some(secret));
                for (name, value) in FORM {
                    request = request.param(name, value);
                }
                std::hint::black_box(request.send().await.expect("token"));
            }
        }
    }
}

fn main() {
    // Without arguments (as `cargo xtask ci` runs every example): a short
    // run of the helper, as a smoke test.
    let mut args = std::env::args().skip(1);
    let side = args.next().unwrap_or_else(|| "helper".to_owned());
    let requests: usize = args.next().map_or(100, |n| n.parse().expect("REQUESTS: a number"));
    let concurrency: usize = args.next().map_or(8, |n| n.parse().expect("CONCURRENCY: a number"));
    let url = start_endpoint();
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
    let side = rt.block_on(async { Side::new(&side, url) });
    rt.block_on(async {
        // Each task connects once, then sends its share of the requests.
        let per_task = requests.div_ceil(concurrency);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let side = side.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        side.once().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("fetch task");
        }
    });
}
