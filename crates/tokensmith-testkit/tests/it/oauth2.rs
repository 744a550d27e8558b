//! The scoped OAuth 2.0 server: three grants, three client auth methods, PKCE,
//! rotation, and the `meta/errors` error shape with 400/403.

use serde_json::Value;
use tokensmith_testkit::{
    BasicEncoding, CodeRequest, Emulator, Vendor, fixtures, pkce_challenge_s256,
};

use crate::{json, post, start};

const ID: &str = "tokensmith-app";
const SECRET: &str = "s3cr3t+key/==";
const PUBLIC: &str = "tokensmith-public";
const REDIRECT: &str = "http://127.0.0.1:8080/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The RFC 6749 §2.3.1 form-encoding of a Basic credential.
fn form_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn basic_post(emulator: &Emulator, form: &[(&str, &str)]) -> (u16, String) {
    post(emulator, Some((&form_encoded(ID), &form_encoded(SECRET))), form).await
}

/// The `errors[0]` of the vendor's error shape, checking the rest of it.
fn error(status: u16, body: &str) -> (u16, String) {
    let value = json(body);
    let shape: Value = json(fixtures::OAUTH2_ERROR_RESPONSE);
    assert_eq!(value["meta"], shape["meta"], "{body}");
    assert_eq!(value["errors"].as_array().unwrap().len(), 1);
    assert_eq!(value["errors"][0]["httpcode"], status);
    (status, value["errors"][0]["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn client_credentials_with_basic_and_post() {
    let emulator = start(Vendor::OAuth2).await;
    let (status, body) =
        basic_post(&emulator, &[("grant_type", "client_credentials"), ("scope", "read write")])
            .await;
    assert_eq!(status, 200, "{body}");
    let token = json(&body)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        format!(
            "{{\n  \"access_token\": \"{token}\",\n  \"expires_in\": 3600,\n  \"scope\": \"read write\",\n  \"token_type\": \"bearer\"\n}}"
        )
    );

    let form = [("grant_type", "client_credentials"), ("client_id", ID), ("client_secret", SECRET)];
    let (status, body) = post(&emulator, None, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["scope"], "read write");
    assert!(json(&body).get("refresh_token").is_none());
    assert_eq!(emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn basic_credentials_are_form_decoded_unless_raw() {
    let emulator = start(Vendor::OAuth2).await;
    let form = [("grant_type", "client_credentials")];
    let (status, body) = post(&emulator, Some((ID, SECRET)), &form).await;
    assert_eq!(error(status, &body), (403, "Invalid client credentials".to_owned()));

    emulator.set_basic_encoding(BasicEncoding::Raw);
    let (status, body) = post(&emulator, Some((ID, SECRET)), &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn client_authentication_errors() {
    let emulator = start(Vendor::OAuth2).await;
    let cc = ("grant_type", "client_credentials");
    let (status, body) = post(&emulator, None, &[cc]).await;
    assert_eq!(error(status, &body).0, 403);
    let (status, body) = post(&emulator, None, &[cc, ("client_id", ID)]).await;
    assert_eq!(error(status, &body).0, 403);
    let (status, body) =
        post(&emulator, None, &[cc, ("client_id", ID), ("client_secret", "wrong")]).await;
    assert_eq!(error(status, &body).0, 403);
    let (status, body) = post(&emulator, None, &[cc, ("client_id", "stranger")]).await;
    assert_eq!(error(status, &body).0, 403);
    // Two methods at once.
    let (status, body) = basic_post(&emulator, &[cc, ("client_secret", SECRET)]).await;
    assert_eq!(error(status, &body).0, 400);
    // A public client may not use client_credentials.
    let (status, body) = post(&emulator, None, &[cc, ("client_id", PUBLIC)]).await;
    assert_eq!(error(status, &body).0, 403);
    assert_eq!(emulator.tokens_issued(), 0);
}

#[tokio::test]
async fn request_errors_are_400() {
    let emulator = start(Vendor::OAuth2).await;
    for form in [
        vec![("scope", "read")],
        vec![("grant_type", "password")],
        vec![("grant_type", "client_credentials"), ("scope", "read,write")],
        vec![("grant_type", "client_credentials"), ("scope", "admin")],
        vec![("grant_type", "authorization_code"), ("redirect_uri", REDIRECT)],
        vec![("grant_type", "refresh_token")],
    ] {
        let (status, body) = basic_post(&emulator, &form).await;
        assert_eq!(error(status, &body).0, 400, "{form:?}");
    }
}

/// An `authorization_code` exchange (an empty verifier is left out).
async fn exchange(
    emulator: &Emulator,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> (u16, String) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", ID),
    ];
    if !verifier.is_empty() {
        form.push(("code_verifier", verifier));
    }
    basic_post(emulator, &form).await
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let emulator = start(Vendor::OAuth2).await;
    let code =
        emulator.issue_code_with(CodeRequest::new().pkce_verifier(VERIFIER).scope("openid read"));

    let (status, body) = exchange(&emulator, &code, REDIRECT, &"A".repeat(43)).await;
    assert_eq!(
        error(status, &body),
        (400, "code_verifier does not match the code_challenge".to_owned())
    );
    let (status, body) = exchange(&emulator, &code, REDIRECT, "short").await;
    assert_eq!(error(status, &body).0, 400);
    let (status, body) = exchange(&emulator, &code, REDIRECT, "").await;
    assert_eq!(error(status, &body).0, 400, "missing verifier");
    let (status, body) = exchange(&emulator, &code, "http://evil.example/cb", VERIFIER).await;
    assert_eq!(error(status, &body).0, 400);

    let (status, body) = exchange(&emulator, &code, REDIRECT, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    let value = json(&body);
    assert_eq!(value["scope"], "openid read");
    assert_eq!(value["token_type"], "bearer");
    assert!(value["refresh_token"].is_string());
    assert_eq!(value["id_token"].as_str().unwrap().split('.').count(), 3);

    let (status, body) = exchange(&emulator, &code, REDIRECT, VERIFIER).await;
    assert_eq!(
        error(status, &body),
        (400, "The authorization code is invalid, expired or already used".to_owned())
    );
    assert_eq!(emulator.grant_requests("authorization_code"), 6);
}

/// The page's second request model lists `client_id` as required in the
/// body of the code exchange, whatever the client authentication.
#[tokio::test]
async fn authorization_code_requires_client_id_in_the_body() {
    let emulator = start(Vendor::OAuth2).await;
    let code = emulator.issue_code();
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)];
    let (status, body) = basic_post(&emulator, &form).await;
    assert_eq!(error(status, &body), (400, "missing parameter `client_id`".to_owned()));
    // The refusal did not spend the code; the body's client_id must match Basic.
    let (status, body) =
        basic_post(&emulator, &[&form[..], &[("client_id", PUBLIC)]].concat()).await;
    assert_eq!(error(status, &body).0, 400);
    let (status, body) = basic_post(&emulator, &[&form[..], &[("client_id", ID)]].concat()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emulator.tokens_issued(), 1);
}

#[tokio::test]
async fn public_client_code_without_pkce() {
    let emulator = start(Vendor::OAuth2).await;
    let code = emulator.issue_code_with(CodeRequest::new().client_id(PUBLIC));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", PUBLIC),
    ];
    // A verifier for a code issued without a challenge is refused.
    let with_verifier = [form.as_slice(), &[("code_verifier", VERIFIER)]].concat();
    let (status, body) = post(&emulator, None, &with_verifier).await;
    assert_eq!(error(status, &body).0, 400);
    let (status, body) = post(&emulator, None, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["scope"], "read write");

    // The confidential client cannot redeem a code of the public client.
    let other = emulator.issue_code_with(CodeRequest::new().client_id(PUBLIC));
    let (status, body) = basic_post(
        &emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &other),
            ("redirect_uri", REDIRECT),
            ("client_id", ID),
        ],
    )
    .await;
    assert_eq!(
        error(status, &body),
        (400, "The authorization code is invalid, expired or already used".to_owned())
    );
    assert_eq!(pkce_challenge_s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let emulator = start(Vendor::OAuth2).await;
    let first = emulator.issue_refresh_token();
    let (status, body) =
        basic_post(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(status, 200, "{body}");
    let second = json(&body)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(json(&body)["scope"], "read write");

    let (status, body) =
        basic_post(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(error(status, &body).0, 400, "the rotated token is refused");

    // Narrowing the scope is allowed, widening is not.
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", second.as_str()), ("scope", "openid")];
    let (status, body) = basic_post(&emulator, &form).await;
    assert_eq!(error(status, &body).0, 400);
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", second.as_str()), ("scope", "read")];
    let (status, body) = basic_post(&emulator, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["scope"], "read");
}

#[tokio::test]
async fn refresh_tokens_without_rotation_stay_valid() {
    let emulator = start(Vendor::OAuth2).await;
    emulator.set_rotate_refresh_tokens(false);
    let token = emulator.issue_refresh_token();
    for _ in 0..2 {
        let (status, body) =
            basic_post(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .await;
        assert_eq!(status, 200, "{body}");
        assert!(json(&body).get("refresh_token").is_none());
    }
}
