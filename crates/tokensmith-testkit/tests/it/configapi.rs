//! configapi: credentials and tenant in the body, no Authorization header,
//! the documented body with a string `expires_in` and a trailing comma.

use tokensmith_testkit::Vendor;

use crate::{json, post, start};

const ID: &str = "sheila.thomas";
const SECRET: &str = "qkDwDJlDfig2IpeuUZYKH1Wb8q1V0ju6sILxQQqhJ";

fn good() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", ID),
        ("client_secret", SECRET),
        ("scope", "example.com"),
    ]
}

#[tokio::test]
async fn success_body_is_byte_faithful() {
    let emulator = start(Vendor::ConfigApi).await;
    let (status, body) = post(&emulator, None, &good()).await;
    assert_eq!(status, 200, "{body}");
    let token = body.split('"').nth(3).unwrap();
    assert!(!token.is_empty());
    assert_eq!(
        body,
        format!(
            "{{\n\"access_token\":\"{token}\",\n\"token_type\":\"Bearer\",\n\"expires_in\":\"3599\",\n}}"
        )
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "the trailing comma is kept"
    );
    assert!(emulator.last_request().unwrap().header("authorization").is_none());

    emulator.set_token_lifetime(std::time::Duration::from_mins(1));
    let (_, body) = post(&emulator, None, &good()).await;
    assert!(body.ends_with("\"expires_in\":\"60\",\n}"));
    assert_eq!(emulator.grant_requests("client_credentials"), 2);
}

#[tokio::test]
async fn request_errors() {
    let emulator = start(Vendor::ConfigApi).await;
    let without = |name: &str| good().into_iter().filter(|(n, _)| *n != name).collect::<Vec<_>>();
    let with = |name: &'static str, value: &'static str| {
        good()
            .into_iter()
            .map(|(n, v)| if n == name { (n, value) } else { (n, v) })
            .collect::<Vec<_>>()
    };
    let cases = [
        (Some((ID, SECRET)), good(), 400, "invalid_request"),
        (None, without("grant_type"), 400, "invalid_request"),
        (None, without("client_id"), 400, "invalid_request"),
        (None, without("client_secret"), 400, "invalid_request"),
        (None, without("scope"), 400, "invalid_request"),
        (None, with("grant_type", "password"), 400, "unsupported_grant_type"),
        (None, with("client_secret", "wrong"), 401, "invalid_client"),
        (None, with("scope", "other.example.com"), 400, "invalid_scope"),
    ];
    for (basic, form, status, error) in cases {
        let (got, body) = post(&emulator, basic, &form).await;
        assert_eq!((got, json(&body)["error"].as_str()), (status, Some(error)), "{form:?}: {body}");
    }
    assert_eq!(emulator.tokens_issued(), 0);
    assert_eq!(emulator.requests(), 8);
}
