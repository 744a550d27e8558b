//! A small HTTP/1.1 client for `tokensmith serve`, over its Unix socket or
//! loopback TCP (hyper's client, one keep-alive connection). Shared by the
//! agent's tests and its benchmark (`benches/serve.rs` includes this file).

use std::path::PathBuf;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// Where an agent listens.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// The body as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:#?}"))
    }
}

/// One keep-alive connection to an agent.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    /// Connects to `target`.
    pub(crate) async fn connect(target: &Target) -> std::io::Result<Client> {
        let sender = match target {
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                let (sender, conn) = handshake(TokioIo::new(stream)).await.map_err(io)?;
                tokio::spawn(conn);
                sender
            }
            Target::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                let (sender, conn) = handshake(TokioIo::new(stream)).await.map_err(io)?;
                tokio::spawn(conn);
                sender
            }
        };
        Ok(Client { sender })
    }

    /// `GET path` with `Tokensmith-Request: 1`.
    pub(crate) async fn get(&mut self, path: &str) -> std::io::Result<Answer> {
        self.send(Method::GET, path, &[("tokensmith-request", "1")], "").await
    }

    /// Any request.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Answer> {
        let mut request = Request::builder().method(method).uri(path).header("host", "agent");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).map_err(io)?;
        self.sender.ready().await.map_err(io)?;
        let response = self.sender.send_request(request).await.map_err(io)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await.map_err(io)?.to_bytes();
        Ok(Answer {
            status,
            content_type,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn io(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}
