//! A provider that fails: the request is not sent, and the caller gets the
//! `TokenError` back (without a secret).

use tokensmith_testkit::Fault;

use crate::Setup;

#[tokio::test]
async fn a_refused_token_request_fails_the_call_before_it_is_sent() {
    let s = Setup::new().await;
    s.emulator.set_fault(Fault::Status(401));
    let err = s.client.get(s.api.url("/devices")).send().await.unwrap_err();
    let token_error = tokensmith_reqwest::token_error(&err).expect("a TokenError inside");
    assert_eq!(token_error.status(), Some(401));
    assert_eq!(token_error.provider(), Some("api"));
    assert_eq!(s.api.requests(), 0, "no request without a token");

    let secret = s.emulator.credentials().client_secret().unwrap();
    for text in [err.to_string(), format!("{err:?}"), format!("{err:#}")] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_api_is_reqwest_s_error_not_a_token_error() {
    let Setup { api, client, emulator, .. } = Setup::new().await;
    let url = api.url("/devices");
    api.shutdown().await;
    let err = client.get(url).send().await.unwrap_err();
    assert!(matches!(err, reqwest_middleware::Error::Reqwest(_)), "{err:?}");
    assert!(tokensmith_reqwest::token_error(&err).is_none());
    assert_eq!(emulator.tokens_issued(), 1, "the token was fetched; the API was not there");
}
