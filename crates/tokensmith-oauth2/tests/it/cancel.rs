//! A caller that stops waiting (a timeout, a `select!`) must not lose the
//! refresh token the server rotated in answer to its request: the request
//! is finished and its outcome saved, and the next renewal waits for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::{AdapterFactory, ManualClock, ProviderContext, SharedTokenProvider};
use tokensmith_oauth2::OAuth2;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Reads one request (head and `Content-Length` body); returns its body.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed the connection mid-request");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buf.len() >= end + length {
            return String::from_utf8_lossy(&buf[end..end + length]).into_owned();
        }
    }
}

async fn respond(sock: &mut TcpStream, body: &str) {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // The client may be gone (without the fix): nothing to do then.
    let _ = sock.write_all(response.as_bytes()).await;
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_caller_that_stopped_waiting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let (received_tx, mut received) = mpsc::unbounded_channel::<String>();
    let (release, released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        // 1: the configured refresh token; held until released, then
        // answered with its rotated successor rt-1.
        let (mut sock, _) = listener.accept().await.unwrap();
        received_tx.send(read_request(&mut sock).await).unwrap();
        released.await.unwrap();
        respond(
            &mut sock,
            r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}"#,
        )
        .await;
        // 2: the next renewal.
        let (mut sock, _) = listener.accept().await.unwrap();
        received_tx.send(read_request(&mut sock).await).unwrap();
        respond(
            &mut sock,
            r#"{"access_token":"at-2","token_type":"bearer","expires_in":3600,"refresh_token":"rt-2"}"#,
        )
        .await;
    });
    let text = format!(
        "kind = \"oauth2\"\ntoken_url = \"{url}\"\nclient_id = \"A\"\nclient_secret = \"S\"\ngrant = \"refresh_token\"\nrefresh_token = \"rt-0\""
    );
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let ctx = ProviderContext::new("mdm", text.parse().unwrap(), Arc::new(clock)).unwrap();
    let provider: SharedTokenProvider = OAuth2.build(ctx).unwrap();

    // The caller gives up once the server has the request (and revokes rt-0).
    let first = tokio::select! {
        _ = provider.token() => panic!("answered before release"),
        body = received.recv() => body.unwrap(),
    };
    assert_eq!(first, "grant_type=refresh_token&refresh_token=rt-0");
    release.send(()).unwrap();

    // The next renewal sends the rotated token, not the revoked one.
    let token = provider.token().await.unwrap();
    assert_eq!(received.recv().await.unwrap(), "grant_type=refresh_token&refresh_token=rt-1");
    assert!(token.refresh_token().is_some());
}
