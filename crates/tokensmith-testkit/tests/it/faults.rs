//! Fault injection: each fault as the client sees it, the next-N and
//! every-N rules, and the added latency.

use std::time::Duration;

use tokensmith_testkit::{Emulator, Fault, Vendor};

use crate::{client, json, post, read, start};

const SOTI_BASIC: Option<(&str, &str)> = Some(("Application1", "Application1Password"));
const SOTI_FORM: [(&str, &str); 3] =
    [("grant_type", "password"), ("username", "Administrator"), ("password", "1")];

async fn send(emulator: &Emulator) -> reqwest::Result<reqwest::Response> {
    client()
        .post(emulator.token_url())
        .basic_auth("Application1", Some("Application1Password"))
        .form(&SOTI_FORM)
        .send()
        .await
}

#[tokio::test]
async fn next_n_requests_then_normal() {
    let emulator = start(Vendor::SotiConnect).await;
    emulator.set_fault_next(2, Fault::Status(500));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&emulator, SOTI_BASIC, &SOTI_FORM).await.0);
    }
    assert_eq!(statuses, [500, 500, 200]);

    emulator.set_fault(Fault::Status(503));
    for _ in 0..3 {
        let (status, body) = post(&emulator, SOTI_BASIC, &SOTI_FORM).await;
        assert_eq!((status, json(&body)["error"].as_str()), (503, Some("temporarily_unavailable")));
    }
    emulator.clear_fault();
    assert_eq!(post(&emulator, SOTI_BASIC, &SOTI_FORM).await.0, 200);
    assert_eq!((emulator.requests(), emulator.tokens_issued()), (7, 2));
}

#[tokio::test]
async fn every_nth_request_is_faulted_and_latency_delays_every_request() {
    let emulator = start(Vendor::SotiConnect).await;
    emulator.set_fault_next(1, Fault::Status(500));
    assert_eq!(post(&emulator, SOTI_BASIC, &SOTI_FORM).await.0, 500);
    assert_eq!(emulator.faults_applied(), 1);

    // Counted from the call: requests 3, 6 and 9 of the next ten.
    emulator.set_fault_every(3, Fault::Status(503));
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(post(&emulator, SOTI_BASIC, &SOTI_FORM).await.0);
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200, 200, 503, 200]);
    assert_eq!((emulator.requests(), emulator.tokens_issued()), (11, 7));
    assert_eq!(emulator.faults_applied(), 4);

    // A latency on every request, faulted or not: a client whose timeout is
    // shorter gives up on each (the guard is generous; no timing asserted).
    emulator.set_latency(Duration::from_secs(30));
    let impatient = crate::client_builder().timeout(Duration::from_millis(200)).build().unwrap();
    for _ in 0..2 {
        let sent = impatient
            .post(emulator.token_url())
            .basic_auth("Application1", Some("Application1Password"))
            .form(&SOTI_FORM)
            .send()
            .await;
        assert!(sent.is_err_and(|e| e.is_timeout()), "the latency applies to every request");
    }
    emulator.set_latency(Duration::ZERO);
    emulator.clear_fault();
    assert_eq!(post(&emulator, SOTI_BASIC, &SOTI_FORM).await.0, 200);
    emulator.set_fault_every(0, Fault::Status(503));
    assert_eq!(post(&emulator, SOTI_BASIC, &SOTI_FORM).await.0, 200, "n = 0 clears");
    emulator.reset_counters();
    assert_eq!(emulator.faults_applied(), 0);
}

#[tokio::test]
async fn status_faults_use_each_vendors_error_shape() {
    for vendor in Vendor::ALL {
        let emulator = start(vendor).await;
        emulator.set_fault(Fault::Status(500));
        let (status, body) = post(&emulator, None, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, 500);
        let body = json(&body);
        match vendor {
            Vendor::SotiConnect | Vendor::ConfigApi => assert_eq!(body["error"], "server_error"),
            Vendor::OAuth2 => assert_eq!(body["errors"][0]["httpcode"], 500),
            Vendor::Deyel => assert_eq!(body["error"], "Server_error"),
            other => panic!("no expectation for {other}"),
        }
    }
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let emulator = start(Vendor::OAuth2).await;
    emulator.set_fault_next(1, Fault::TooManyRequests { retry_after_secs: 7 });
    let response = client()
        .post(emulator.token_url())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "7");
    let (status, body) = read(response).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["errors"][0]["httpcode"], 429);
}

#[tokio::test]
async fn delay_then_normal_answer() {
    let emulator = start(Vendor::SotiConnect).await;
    emulator.set_fault_next(1, Fault::Delay(Duration::from_millis(100)));
    let (status, _) = read(send(&emulator).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(emulator.tokens_issued(), 1);
}

#[tokio::test]
async fn dropped_connection_and_never_answer() {
    let emulator = start(Vendor::SotiConnect).await;
    emulator.set_fault_next(1, Fault::DropConnection);
    let err = send(&emulator).await.unwrap_err();
    assert!(!err.is_timeout(), "{err}");

    emulator.set_fault_next(1, Fault::NeverAnswer);
    let patient = crate::client_builder().timeout(Duration::from_secs(1)).build().unwrap();
    let err = patient
        .post(emulator.token_url())
        .basic_auth("Application1", Some("Application1Password"))
        .form(&SOTI_FORM)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(read(send(&emulator).await.unwrap()).await.0, 200);
    assert_eq!((emulator.requests(), emulator.tokens_issued()), (3, 1));
}

#[tokio::test]
async fn broken_bodies() {
    let emulator = start(Vendor::SotiConnect).await;

    emulator.set_fault_next(1, Fault::MalformedBody);
    let (status, body) = read(send(&emulator).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());

    emulator.set_fault_next(1, Fault::EmptyBody);
    let (status, body) = read(send(&emulator).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (200, ""));

    emulator.set_fault_next(1, Fault::HtmlErrorPage);
    let response = send(&emulator).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/html");
    let (status, body) = read(response).await;
    assert_eq!(status, 502);
    assert!(body.contains("<h1>502 Bad Gateway</h1>"));

    emulator.set_fault_next(1, Fault::OversizedBody);
    let response = send(&emulator).await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let (status, body) = read(response).await;
    assert_eq!(status, 200);
    assert!(body.len() > 2 * 1024 * 1024);
    assert!(json(&body)["access_token"].is_string());

    emulator.set_fault_next(
        1,
        Fault::Custom {
            status: 200,
            content_type: "text/plain".to_owned(),
            body: r#"{"access_token":"x"}"#.to_owned(),
        },
    );
    let response = send(&emulator).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(read(response).await, (200, r#"{"access_token":"x"}"#.to_owned()));
    assert_eq!(emulator.tokens_issued(), 0);
}

#[tokio::test]
async fn redirect_is_caught_when_followed() {
    let emulator = start(Vendor::SotiConnect).await;
    emulator.set_fault(Fault::Redirect);
    let response = send(&emulator).await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&emulator.base_url()), "{location}");
    assert_eq!(emulator.redirect_follows(), 0);

    let following = crate::client_builder().build().unwrap();
    let response = following
        .post(emulator.token_url())
        .basic_auth("Application1", Some("Application1Password"))
        .form(&SOTI_FORM)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(emulator.redirect_follows(), 1);
    assert_eq!((emulator.requests(), emulator.tokens_issued()), (2, 0));
}
