//! A caller that stops waiting (a timeout, a `select!`) must not lose the
//! refresh token the server rotated in answer to its request: the request
//! is finished and its outcome saved, and the next renewal waits for it.
//! Both adapters whose grants are single-use (SOTI's code, oauth2's rotated
//! refresh token) go through core's `Renewal::exchange`; one scripted server
//! checks each.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::{AdapterFactory, ManualClock, ProviderContext, SharedTokenProvider};
use tokensmith_oauth2::OAuth2;
use tokensmith_soti::SotiConnect;
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

/// One adapter's case: its factory, its token path, its config (after
/// `token_url`), its `token_type` spelling, and the two form bodies expected.
struct Case {
    factory: &'static dyn AdapterFactory,
    path: &'static str,
    config: &'static str,
    token_type: &'static str,
    first: &'static str,
    second: &'static str,
}

async fn check(case: Case) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{}", listener.local_addr().unwrap(), case.path);
    let (received_tx, mut received) = mpsc::unbounded_channel::<String>();
    let (release, released) = oneshot::channel::<()>();
    let token_type = case.token_type;
    tokio::spawn(async move {
        // 1: the single-use grant; held until released, then answered with
        // refresh token rt-1.
        let (mut sock, _) = listener.accept().await.unwrap();
        received_tx.send(read_request(&mut sock).await).unwrap();
        released.await.unwrap();
        let body = format!(
            r#"{{"access_token":"at-1","token_type":"{token_type}","expires_in":3600,"refresh_token":"rt-1"}}"#
        );
        respond(&mut sock, &body).await;
        // 2: the next renewal.
        let (mut sock, _) = listener.accept().await.unwrap();
        received_tx.send(read_request(&mut sock).await).unwrap();
        let body = format!(
            r#"{{"access_token":"at-2","token_type":"{token_type}","expires_in":3600,"refresh_token":"rt-2"}}"#
        );
        respond(&mut sock, &body).await;
    });
    let text = format!("token_url = \"{url}\"\n{}", case.config);
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let ctx = ProviderContext::new("p", text.parse().unwrap(), Arc::new(clock)).unwrap();
    let provider: SharedTokenProvider = case.factory.build(ctx).unwrap();

    // The caller gives up once the server has the request (and spends the
    // code, or revokes the refresh token).
    let first = tokio::select! {
        _ = provider.token() => panic!("answered before release"),
        body = received.recv() => body.unwrap(),
    };
    assert_eq!(first, case.first);
    release.send(()).unwrap();

    // The next renewal sends the rotated token, not the spent grant.
    let token = provider.token().await.unwrap();
    assert_eq!(received.recv().await.unwrap(), case.second);
    assert!(token.refresh_token().is_some());
}

#[tokio::test]
async fn soti_a_rotated_refresh_token_survives_a_caller_that_stopped_waiting() {
    check(Case {
        factory: &SotiConnect,
        path: "/Connect/api/token",
        config: "kind = \"soti-connect\"\nclient_id = \"A\"\nclient_secret = \"S\"\ngrant = \"authorization_code\"\ncode = \"code-1\"",
        token_type: "bearer",
        first: "grant_type=authorization_code&code=code-1",
        second: "grant_type=refresh_token&refresh_token=rt-1",
    })
    .await;
}

#[tokio::test]
async fn oauth2_a_rotated_refresh_token_survives_a_caller_that_stopped_waiting() {
    check(Case {
        factory: &OAuth2,
        path: "/token",
        config: "kind = \"oauth2\"\nclient_id = \"A\"\nclient_secret = \"S\"\ngrant = \"refresh_token\"\nrefresh_token = \"rt-0\"",
        token_type: "Bearer",
        first: "grant_type=refresh_token&refresh_token=rt-0",
        second: "grant_type=refresh_token&refresh_token=rt-1",
    })
    .await;
}
