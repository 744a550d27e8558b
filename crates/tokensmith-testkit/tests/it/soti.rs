//! SOTI Connect: Basic client auth, password and single-use code grants,
//! optional rotating refresh tokens, RFC 6749 errors.

use tokensmith_testkit::{Vendor, fixtures};

use crate::{client, json, post, read, start};

const ID: &str = "Application1";
const SECRET: &str = "Application1Password";

#[tokio::test]
async fn password_grant_answers_like_the_documentation() {
    let emulator = start(Vendor::SotiConnect).await;
    let response = client()
        .post(emulator.token_url())
        .header("authorization", fixtures::SOTI_AUTHORIZATION_HEADER)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(fixtures::SOTI_PASSWORD_REQUEST_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
    let token = json(&body)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":3600}}"#)
    );
    assert_eq!(emulator.requests(), 1);
    assert_eq!(emulator.tokens_issued(), 1);
    assert_eq!(emulator.grant_requests("password"), 1);
    let recorded = emulator.last_request().unwrap();
    assert_eq!(recorded.header("Authorization"), Some(fixtures::SOTI_AUTHORIZATION_HEADER));
    assert_eq!(recorded.form_value("username").as_deref(), Some("Administrator"));
}

#[tokio::test]
async fn tokens_are_fresh_per_request_and_follow_the_lifetime() {
    let emulator = start(Vendor::SotiConnect).await;
    emulator.set_token_lifetime(std::time::Duration::from_mins(2));
    let form = [("grant_type", "password"), ("username", "Administrator"), ("password", "1")];
    let (_, first) = post(&emulator, Some((ID, SECRET)), &form).await;
    let (_, second) = post(&emulator, Some((ID, SECRET)), &form).await;
    assert_ne!(json(&first)["access_token"], json(&second)["access_token"]);
    assert_eq!(json(&second)["expires_in"], 120);
    assert_eq!(emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn authorization_codes_are_single_use() {
    let emulator = start(Vendor::SotiConnect).await;
    let code = emulator.issue_code();
    let form = [("grant_type", "authorization_code"), ("code", code.as_str())];
    let (status, body) = post(&emulator, Some((ID, SECRET)), &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(json(&body).get("refresh_token").is_none());

    let (status, body) = post(&emulator, Some((ID, SECRET)), &form).await;
    assert_eq!(status, 400);
    assert_eq!(json(&body)["error"], "invalid_grant");
    assert_eq!(json(&body)["error_description"], "The authorization code has already been used");

    let (status, body) = post(
        &emulator,
        Some((ID, SECRET)),
        &[("grant_type", "authorization_code"), ("code", "nope")],
    )
    .await;
    assert_eq!((status, json(&body)["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(emulator.grant_requests("authorization_code"), 3);
    assert_eq!(emulator.tokens_issued(), 1);
}

#[tokio::test]
async fn refresh_mode_issues_and_rotates_refresh_tokens() {
    let emulator = start(Vendor::SotiConnect).await;
    let (status, body) = post(
        &emulator,
        Some((ID, SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!((status, json(&body)["error"].as_str()), (400, Some("unsupported_grant_type")));

    emulator.set_issue_refresh_tokens(true);
    let code = emulator.issue_code();
    let (_, body) = post(
        &emulator,
        Some((ID, SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    let first = json(&body)["refresh_token"].as_str().unwrap().to_owned();
    assert!(body.ends_with(&format!(
        r#","token_type":"bearer","expires_in":3600,"refresh_token":"{first}"}}"#
    )));

    let (status, body) = post(
        &emulator,
        Some((ID, SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let second = json(&body)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    let (status, body) = post(
        &emulator,
        Some((ID, SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
    )
    .await;
    assert_eq!((status, json(&body)["error"].as_str()), (400, Some("invalid_grant")));
}

/// Basic credentials, form, expected status and `error`.
type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test]
async fn request_errors_use_soti_shapes() {
    let emulator = start(Vendor::SotiConnect).await;
    let good = [("grant_type", "password"), ("username", "Administrator"), ("password", "1")];
    // (basic, form, status, error)
    let cases: Vec<Case<'_>> = vec![
        (None, good.to_vec(), 401, "invalid_client"),
        (Some((ID, "wrong")), good.to_vec(), 401, "invalid_client"),
        (
            None,
            [good.as_slice(), &[("client_id", ID), ("client_secret", SECRET)]].concat(),
            400,
            "invalid_request",
        ),
        (
            Some((ID, SECRET)),
            vec![("username", "Administrator"), ("password", "1")],
            400,
            "invalid_request",
        ),
        (
            Some((ID, SECRET)),
            vec![("grant_type", "password"), ("username", "Administrator")],
            400,
            "invalid_request",
        ),
        (
            Some((ID, SECRET)),
            vec![("grant_type", "password"), ("username", "Administrator"), ("password", "2")],
            400,
            "invalid_grant",
        ),
        (
            Some((ID, SECRET)),
            vec![("grant_type", "client_credentials")],
            400,
            "unsupported_grant_type",
        ),
    ];
    for (basic, form, status, error) in cases {
        let (got, body) = post(&emulator, basic, &form).await;
        assert_eq!((got, json(&body)["error"].as_str()), (status, Some(error)), "{form:?}: {body}");
    }
    assert_eq!(emulator.tokens_issued(), 0);
}

#[tokio::test]
async fn basic_header_must_be_standard_padded_base64() {
    let emulator = start(Vendor::SotiConnect).await;
    let form = "grant_type=password&username=Administrator&password=1";
    let headers = [
        // Whitespace inside, missing padding, another scheme.
        "Basic QXBwbGljYXRpb24xOkFw\tcGxpY2F0aW9uMVBhc3N3b3Jk",
        "Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3JkMQ",
        "Bearer QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk",
    ];
    for header in headers {
        let value = reqwest::header::HeaderValue::from_str(header).unwrap();
        let response = client()
            .post(emulator.token_url())
            .header("authorization", value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Basic");
        let (status, body) = read(response).await;
        assert_eq!(
            (status, json(&body)["error"].as_str()),
            (401, Some("invalid_client")),
            "{header}"
        );
    }
}

#[tokio::test]
async fn wrong_content_type_and_method_are_refused() {
    let emulator = start(Vendor::SotiConnect).await;
    let response = client()
        .post(emulator.token_url())
        .basic_auth(ID, Some(SECRET))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"password"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!((status, json(&body)["error"].as_str()), (400, Some("invalid_request")));

    let response = client().get(emulator.token_url()).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(read(response).await.0, 405);

    let query = format!("{}?grant_type=password", emulator.token_url());
    let response = client()
        .post(query)
        .basic_auth(ID, Some(SECRET))
        .form(&[("username", "Administrator")])
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, 400);
    assert_eq!(emulator.requests(), 3);
}
