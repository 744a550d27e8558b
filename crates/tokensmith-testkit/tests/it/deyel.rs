//! Deyel: Basic `client_credentials`, a JWT access token, `Invalid_request`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokensmith_testkit::{Vendor, fixtures};

use crate::{json, post, start};

const ID: &str = "APIUSER";
const SECRET: &str = "Deyel-API-user-key-8.7";

#[tokio::test]
async fn success_returns_a_deyel_jwt() {
    let emulator = start(Vendor::Deyel).await;
    let now = 1_654_175_090;
    emulator.set_clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(now));
    let (status, body) =
        post(&emulator, Some((ID, SECRET)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    let token = json(&body)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        format!(
            "{{\n    \"access_token\": \"{token}\",\n    \"token_type\": \"Bearer\",\n    \"expires_in\": 86400\n}}"
        )
    );
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let payload = json(&String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap());
    assert_eq!(payload["iss"], "Deyel");
    assert_eq!(payload["iat"], now);
    assert_eq!(payload["exp"], now + 86_400);

    emulator.set_token_lifetime(Duration::from_mins(10));
    let (_, body) =
        post(&emulator, Some((ID, SECRET)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(json(&body)["expires_in"], 600);
    assert_ne!(json(&body)["access_token"].as_str().unwrap(), token);
}

#[tokio::test]
async fn bad_client_gives_the_documented_error() {
    let emulator = start(Vendor::Deyel).await;
    for basic in [None, Some((ID, "wrong")), Some(("someone", SECRET))] {
        let (status, body) = post(&emulator, basic, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, 401);
        assert_eq!(body, fixtures::DEYEL_ERROR_RESPONSE);
    }
}

#[tokio::test]
async fn request_errors_keep_deyel_casing() {
    let emulator = start(Vendor::Deyel).await;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "Invalid_request"),
        (&[("grant_type", "password")], "Unsupported_grant_type"),
        (&[("grant_type", "client_credentials"), ("client_secret", SECRET)], "Invalid_request"),
    ];
    for (form, error) in cases {
        let (status, body) = post(&emulator, Some((ID, SECRET)), form).await;
        assert_eq!((status, json(&body)["error"].as_str()), (400, Some(error)), "{body}");
        assert!(json(&body)["error_description"].is_string());
    }
}
