//! The HTTP plumbing under every emulator: the accept loop, the per-request
//! dispatch (counting, recording, faults), the response body type and the
//! request helpers (form parsing, Basic credentials) the vendors share.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::form_urlencoded;

use crate::emulator::Shared;
use crate::fault::{Fault, HTML_ERROR_PAGE, MALFORMED_BODY, OVERSIZED_TOKEN_BYTES};
use crate::recorded::RecordedRequest;
use crate::vendors;

/// The largest request body the emulators read.
const MAX_REQUEST_BODY: usize = 64 * 1024;

/// Path prefix of the target of [`Fault::Redirect`].
pub(crate) const REDIRECT_PREFIX: &str = "/redirected";

/// Accepts connections until `stop` is dropped, then closes every connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<()>) {
    accept_loop(listener, stop, move |req| dispatch(Arc::clone(&shared), req)).await;
}

/// The accept loop under every server of the testkit: HTTP/1.1 connections
/// answered by `answer` until `stop` is dropped, then every connection
/// closed.
pub(crate) async fn accept_loop<F, Fut, B, E>(
    listener: TcpListener,
    mut stop: watch::Receiver<()>,
    answer: F,
) where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors (EMFILE) and the like: back off
                    // briefly instead of spinning on a failing accept.
                    #[allow(clippy::disallowed_methods, reason = "a server's accept backoff, not a token timing")]
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let answer = answer.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer));
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
}

/// Returned by the service to make hyper close the connection unanswered.
#[derive(Debug)]
struct CloseConnection;

impl fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed by the emulator")
    }
}

impl std::error::Error for CloseConnection {}

/// A token request as the vendors see it.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

async fn dispatch(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<Response<EmuBody>, CloseConnection> {
    let (parts, body) = req.into_parts();
    let token_path = shared.vendor.token_path();
    let path = parts.uri.path();
    if let Some(answer) = crate::discovery::answer(&shared, &parts.method, path) {
        return Ok(answer);
    }
    if path != token_path {
        if path.strip_prefix(REDIRECT_PREFIX) == Some(token_path) {
            shared.count_redirect_follow();
            return Ok(vendors::redirect_target(&shared));
        }
        return Ok(response(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "Not Found\n"));
    }
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "Payload Too Large\n",
            ));
        }
    };
    let request = Request {
        method: parts.method,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let fault = shared.arrive(RecordedRequest::new(&request, parts.uri.to_string()));
    let latency = shared.latency();
    if !latency.is_zero() {
        #[allow(
            clippy::disallowed_methods,
            reason = "a test server's added latency is real time by design"
        )]
        tokio::time::sleep(latency).await;
    }
    let Some(fault) = fault else {
        return Ok(vendors::answer(&shared, &request));
    };
    Ok(match fault {
        Fault::Delay(delay) => {
            #[allow(
                clippy::disallowed_methods,
                reason = "a test server's injected delay is real time by design"
            )]
            tokio::time::sleep(delay).await;
            vendors::answer(&shared, &request)
        }
        Fault::Status(status) => vendors::fault_status(shared.vendor, status),
        Fault::DropConnection => return Err(CloseConnection),
        Fault::TooManyRequests { retry_after_secs } => {
            let mut resp = vendors::fault_status(shared.vendor, 429);
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            resp
        }
        Fault::MalformedBody => response(StatusCode::OK, "application/json", MALFORMED_BODY),
        Fault::HtmlErrorPage => response(StatusCode::BAD_GATEWAY, "text/html", HTML_ERROR_PAGE),
        Fault::EmptyBody => response(StatusCode::OK, "application/json", Bytes::new()),
        Fault::OversizedBody => oversized(),
        Fault::Redirect => {
            let mut resp =
                response(StatusCode::FOUND, "text/html", "<html><body>Moved</body></html>");
            let location = format!("{}{REDIRECT_PREFIX}{token_path}", shared.base_url);
            if let Ok(value) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(LOCATION, value);
            }
            resp
        }
        Fault::NeverAnswer => std::future::pending().await,
        Fault::Custom { status, content_type, body } => {
            response(status_code(status), &content_type, body)
        }
    })
}

/// A response with a body and a `Content-Type`.
pub(crate) fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<EmuBody> {
    let mut resp = Response::new(EmuBody::full(body.into()));
    *resp.status_mut() = status;
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

/// A status code from a number (out-of-range numbers become 500).
pub(crate) fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn oversized() -> Response<EmuBody> {
    const CHUNK: usize = 64 * 1024;
    let body = EmuBody::Stream {
        head: Some(Bytes::from_static(br#"{"access_token":""#)),
        chunk: Bytes::from(vec![b'A'; CHUNK]),
        chunks_left: OVERSIZED_TOKEN_BYTES / CHUNK,
        tail: Some(Bytes::from_static(br#"","token_type":"bearer","expires_in":3600}"#)),
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The body of every emulator response: whole, or streamed in chunks.
pub(crate) enum EmuBody {
    /// The whole body at once (`None` once sent).
    Full(Option<Bytes>),
    /// `head`, then `chunks_left` copies of `chunk`, then `tail`.
    Stream { head: Option<Bytes>, chunk: Bytes, chunks_left: usize, tail: Option<Bytes> },
}

impl EmuBody {
    fn full(bytes: Bytes) -> Self {
        EmuBody::Full(Some(bytes))
    }
}

impl Body for EmuBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            EmuBody::Full(bytes) => bytes.take().filter(|b| !b.is_empty()),
            EmuBody::Stream { head, chunk, chunks_left, tail } => head.take().or_else(|| {
                if *chunks_left > 0 {
                    *chunks_left -= 1;
                    Some(chunk.clone())
                } else {
                    tail.take()
                }
            }),
        };
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            EmuBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            EmuBody::Stream { head, chunks_left, tail, .. } => {
                head.is_none() && *chunks_left == 0 && tail.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            EmuBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            EmuBody::Stream { .. } => SizeHint::default(),
        }
    }
}

/// A parsed `application/x-www-form-urlencoded` body.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `body`; a repeated parameter (RFC 6749 §3.2 forbids them) is
    /// returned as the error.
    pub(crate) fn parse(body: &[u8]) -> Result<Form, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(name.into_owned());
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Form(pairs))
    }

    /// The value of `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The parameters, in the order sent.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Whether the request says its body is a form (parameters such as
/// `charset` allowed).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return false };
    let Ok(value) = value.to_str() else { return false };
    let media_type = value.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// How the client id and secret inside a Basic header are decoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum BasicEncoding {
    /// Each of id and secret was form-urlencoded before joining them with
    /// `:` (RFC 6749 §2.3.1): the emulator form-decodes them.
    #[default]
    Form,
    /// Id and secret are taken as sent.
    Raw,
}

/// The client credentials of an `Authorization` header.
pub(crate) enum Basic {
    /// No `Authorization` header.
    Absent,
    /// A header that is not valid Basic credentials, and why.
    Invalid(&'static str),
    /// The id and secret.
    Credentials { id: String, secret: String },
}

/// Reads Basic client credentials: the scheme `Basic`, one space, standard
/// padded base64 (no line breaks, no URL-safe alphabet) of `id:secret`.
pub(crate) fn basic(headers: &HeaderMap, encoding: BasicEncoding) -> Basic {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Basic::Absent,
        (Some(_), Some(_)) => return Basic::Invalid("more than one Authorization header"),
        (Some(value), None) => value,
    };
    let Ok(value) = value.to_str() else {
        return Basic::Invalid("the Authorization header is not ASCII");
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Basic::Invalid("the Authorization header is not `Basic <base64>`");
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Basic::Invalid("the Authorization header must use the Basic scheme");
    }
    let Ok(decoded) = STANDARD.decode(encoded) else {
        return Basic::Invalid("the Basic credentials are not standard padded base64");
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Basic::Invalid("the Basic credentials are not UTF-8");
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return Basic::Invalid("the Basic credentials have no `:` between id and secret");
    };
    match encoding {
        BasicEncoding::Raw => Basic::Credentials { id: id.to_owned(), secret: secret.to_owned() },
        BasicEncoding::Form => {
            Basic::Credentials { id: form_decode(id), secret: form_decode(secret) }
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(s: &str) -> String {
    // `&` would end the value early; as a literal it decodes to itself.
    let s = s.replace('&', "%26");
    form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Writes `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A bounded log of recent requests.
pub(crate) struct RequestLog {
    entries: VecDeque<RecordedRequest>,
}

impl RequestLog {
    const CAPACITY: usize = 1000;

    pub(crate) fn new() -> Self {
        Self { entries: VecDeque::new() }
    }

    pub(crate) fn push(&mut self, request: RecordedRequest) {
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(request);
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.entries.iter().cloned().collect()
    }

    pub(crate) fn last(&self) -> Option<RecordedRequest> {
        self.entries.back().cloned()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}
