//! The acceptance scenarios: the first request carries the token; after
//! rotation exactly one 401, one invalidation, one retry with the new token;
//! a streaming body is not retried; a second 401 in a row goes back to the
//! caller; a 403 is not retried.

use http_body_util::Full;
use tokensmith_testkit::INVALID_TOKEN_CHALLENGE;

use crate::Setup;

#[tokio::test]
async fn the_first_request_carries_the_token() {
    let s = Setup::new().await;
    let response = s.client.get(s.api.url("/devices")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let token = s.current_token().await;
    assert_eq!(s.api.tokens(), [Some(token)]);
    assert_eq!(s.emulator.tokens_issued(), 1);

    // The next requests reuse the cached token.
    for _ in 0..3 {
        assert_eq!(s.client.get(s.api.url("/devices")).send().await.unwrap().status(), 200);
    }
    assert_eq!(s.api.requests(), 4);
    assert_eq!(s.emulator.tokens_issued(), 1);
    assert_eq!(s.invalidations(), 0);
}

#[tokio::test]
async fn after_rotation_one_401_one_invalidation_one_retry_with_the_new_token() {
    let s = Setup::new().await;
    s.client.get(s.api.url("/devices")).send().await.unwrap();
    let first = s.current_token().await;
    s.api.rotate();

    let response =
        s.client.post(s.api.url("/devices")).body("a replayable body").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
    let second = s.current_token().await;
    assert_ne!(first, second);
    assert_eq!(s.api.statuses(), [200, 401, 200]);
    assert_eq!(s.api.tokens(), [Some(first.clone()), Some(first), Some(second.clone())]);
    let recorded = s.api.recorded();
    assert_eq!(recorded[1].body(), b"a replayable body");
    assert_eq!(recorded[2].body(), b"a replayable body", "the retry sends the same body");
    assert_eq!((recorded[2].method(), recorded[2].path()), ("POST", "/devices"));
    assert_eq!(s.invalidations(), 1);
    assert_eq!(s.emulator.tokens_issued(), 2);

    // And the new token stays in use.
    assert_eq!(s.client.get(s.api.url("/devices")).send().await.unwrap().status(), 200);
    assert_eq!(s.api.tokens()[3], Some(second));
    assert_eq!((s.api.requests(), s.emulator.tokens_issued(), s.invalidations()), (4, 2, 1));
}

#[tokio::test]
async fn a_streaming_body_is_not_sent_twice_but_the_token_is_invalidated() {
    let s = Setup::new().await;
    s.client.get(s.api.url("/devices")).send().await.unwrap();
    let first = s.current_token().await;
    s.api.rotate();

    let stream = reqwest::Body::wrap(Full::new(&b"streamed once"[..]));
    let response = s.client.post(s.api.url("/upload")).body(stream).send().await.unwrap();
    assert_eq!(response.status(), 401, "the refusal goes back to the caller");
    assert_eq!(s.api.requests(), 2);
    assert_eq!(s.api.recorded()[1].body(), b"streamed once");
    assert_eq!(s.invalidations(), 1, "the refused token is dropped all the same");

    // The caller's next request gets a fresh token at once.
    assert_eq!(s.client.get(s.api.url("/devices")).send().await.unwrap().status(), 200);
    let tokens = s.api.tokens();
    assert_eq!(tokens[1], Some(first.clone()));
    assert_ne!(tokens[2], Some(first));
    assert_eq!(s.emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn a_second_401_in_a_row_goes_back_to_the_caller() {
    let s = Setup::new().await;
    s.api.fail_next(2, 401, Some(INVALID_TOKEN_CHALLENGE));
    let response = s.client.get(s.api.url("/devices")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(s.api.requests(), 2, "one request and one retry, never a third");
    let tokens = s.api.tokens();
    assert!(tokens[0].is_some() && tokens[1].is_some());
    assert_ne!(tokens[0], tokens[1], "the retry carried a fresh token");
    assert_eq!(s.invalidations(), 1);
    assert_eq!(s.emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn a_403_is_not_retried_and_the_token_is_kept() {
    let s = Setup::new().await;
    for challenge in
        [None, Some(r#"Bearer error="insufficient_scope""#), Some(INVALID_TOKEN_CHALLENGE)]
    {
        s.api.fail_next(1, 403, challenge);
        let response = s.client.get(s.api.url("/admin")).send().await.unwrap();
        assert_eq!(response.status(), 403, "{challenge:?}");
    }
    assert_eq!(s.api.requests(), 3);
    assert_eq!(s.invalidations(), 0);
    assert_eq!(s.emulator.tokens_issued(), 1);
}

#[tokio::test]
async fn an_invalid_token_challenge_with_another_status_is_a_refusal_too() {
    let s = Setup::new().await;
    s.api.fail_next(1, 400, Some(INVALID_TOKEN_CHALLENGE));
    let response = s.client.get(s.api.url("/devices")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(s.api.statuses(), [400, 200]);
    assert_eq!(s.invalidations(), 1);

    // A 400 without the challenge, or a 500, is the API's answer: no retry.
    s.api.fail_next(1, 400, Some(r#"Bearer error="invalid_request""#));
    s.api.fail_next(1, 500, None);
    assert_eq!(s.client.get(s.api.url("/devices")).send().await.unwrap().status(), 400);
    assert_eq!(s.client.get(s.api.url("/devices")).send().await.unwrap().status(), 500);
    assert_eq!(s.api.requests(), 4);
    assert_eq!((s.invalidations(), s.emulator.tokens_issued()), (1, 2));
}

#[tokio::test]
async fn concurrent_refusals_of_one_token_fetch_one_new_token() {
    let s = Setup::new().await;
    s.client.get(s.api.url("/devices")).send().await.unwrap();
    s.api.rotate();
    let calls = (0..8).map(|_| s.client.get(s.api.url("/devices")).send());
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    // Each refused call invalidates the token it sent; the cache drops it
    // once (by identity) and single-flight fetches one new token.
    assert_eq!(s.emulator.tokens_issued(), 2);
    assert_eq!(s.invalidations(), 1);
    let statuses = s.api.statuses();
    // All eight sent the cached token before any answer came back.
    assert_eq!(statuses.iter().filter(|&&st| st == 401).count(), 8);
    assert_eq!(statuses.iter().filter(|&&st| st == 200).count(), 9);
}
