//! Every request and response option against the custom-vendor emulator.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, Clock as _, ManualClock, TokenError, TokenType};
use tokensmith_testkit::{CustomEmulator, TimeStyle};

use crate::{build, clock, with_url};

/// Starts the emulator of `description`, builds the provider against it
/// and fetches one token.
async fn fetch(
    description: &str,
    setup: impl FnOnce(&CustomEmulator),
) -> (CustomEmulator, Result<AccessToken, TokenError>, ManualClock) {
    let clock = clock();
    let emulator = CustomEmulator::start(description).await.unwrap();
    let now = clock.now();
    emulator.set_clock(move || now);
    setup(&emulator);
    let provider = build(&with_url(description, &emulator.token_url()), &clock).unwrap();
    let result = provider.fetch().await;
    (emulator, result, clock)
}

async fn token(
    description: &str,
    setup: impl FnOnce(&CustomEmulator),
) -> (CustomEmulator, AccessToken) {
    let (emulator, result, _) = fetch(description, setup).await;
    match result {
        Ok(token) => (emulator, token),
        Err(e) => panic!("expected a token, got {e}"),
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const FORM_BASIC: &str = r#"
kind = "custom"
token_url = "http://127.0.0.1/oauth/token"
client_id = "svc-1"
client_secret = "form-secret-1"
[request]
auth = "basic"
fields = { grant_type = "client_credentials", audience = "reports", tries = 3 }
[response]
token = "/access_token"
expires_in = "/expires_in"
"#;

#[tokio::test]
async fn post_form_with_basic_client_credentials() {
    let (emulator, token) = token(FORM_BASIC, |_| {}).await;
    assert_eq!(token.secret().expose_secret(), "token-1");
    assert_eq!(token.expires_at(), Some(at(1_700_000_000 + 3600)));
    let request = emulator.last_request().unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {}", STANDARD.encode("svc-1:form-secret-1")).as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.form_value("audience").as_deref(), Some("reports"));
    assert_eq!(request.form_value("tries").as_deref(), Some("3"));
}

const JSON_NESTED: &str = r#"
kind = "custom"
token_url = "http://127.0.0.1/api/v2/session"
client_id = "svc-2"
client_secret = "json-secret-2"
username = "reporter"
password = "pass-word-2"
secrets = { tenant_key = "tenant-key-2" }
[request]
method = "POST"
body = "json"
auth = { type = "body", id_field = "clientId", secret_field = "clientSecret" }
query = { tenant = "north", sig = "{tenant_key}" }
headers = { X-Tenant = "north", X-Tenant-Key = "Key {tenant_key}" }
[request.fields]
login = { user = "{username}", password = "{password}", remember = false }
scopes = ["read", "write"]
[response]
token = "/data/session/jwt"
refresh_token = "/data/session/renew"
scope = "/data/granted"
token_type = "/data/kind"
expires_in = "/data/ttl"
error_code = "/fault/code"
error_message = "/fault/text"
"#;

#[tokio::test]
async fn post_json_with_nested_fields_query_headers_and_body_credentials() {
    let (emulator, token) = token(JSON_NESTED, |e| e.set_lifetime_as_string(true)).await;
    assert_eq!(token.secret().expose_secret(), "token-1");
    assert_eq!(token.refresh_token().unwrap().expose_secret(), "refresh-1");
    assert_eq!(token.scope().unwrap().as_str(), "read write");
    assert_eq!(token.token_type(), &TokenType::Bearer);
    assert_eq!(token.expires_at(), Some(at(1_700_000_000 + 3600)));
    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-tenant-key"), Some("Key tenant-key-2"));
    assert!(request.target().contains("tenant=north"), "{}", request.target());
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body["clientSecret"], "json-secret-2");
    assert_eq!(body["login"]["password"], "pass-word-2");
    assert_eq!(body["scopes"][1], "write");
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_with_the_described_error() {
    let description = JSON_NESTED.replace("tenant-key-2\" }", "tenant-key-2\" }\n");
    let clock = clock();
    let emulator = CustomEmulator::start(&description).await.unwrap();
    // The provider sends another password than the emulator expects.
    let wrong = with_url(&description, &emulator.token_url()).replace("pass-word-2", "pass-word-X");
    let err = build(&wrong, &clock).unwrap().fetch().await.unwrap_err();
    assert!(err.is_rejected(), "{err}");
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.oauth_error_code(), Some("invalid_client"));
    let detail = err.detail().unwrap();
    assert_eq!(detail.description.as_deref(), Some("wrong credentials in the JSON body"));
    let shown = format!("{err} {err:?}");
    for secret in ["pass-word-X", "json-secret-2", "tenant-key-2"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

const GET_QUERY: &str = r#"
kind = "custom"
token_url = "http://127.0.0.1/auth?app=reports"
client_id = "svc-3"
username = "api-user"
password = "get-pass-3"
secrets = { api_key = "get-key-3" }
[request]
method = "GET"
query = { user = "{username}", pass = "{password}" }
auth = { type = "header", header = "X-Api-Key", value = "Key {api_key}" }
[response]
token = "/token"
expires_at = "/validUntil"
expires_at_format = "rfc3339"
[present]
header = "X-Auth-Token"
value = "{token}"
"#;

#[tokio::test]
async fn get_with_query_credentials_and_a_named_auth_header() {
    let (emulator, result, clock) = fetch(GET_QUERY, |_| {}).await;
    let token = result.unwrap();
    assert_eq!(token.expires_at(), Some(at(1_700_000_000 + 3600)));
    let request = emulator.last_request().unwrap();
    assert_eq!(request.method(), "GET");
    assert!(request.body().is_empty());
    assert_eq!(request.header("content-type"), None);
    assert_eq!(request.header("x-api-key"), Some("Key get-key-3"));
    assert_eq!(request.target(), "/auth?app=reports&pass=get-pass-3&user=api-user");
    let provider = build(&with_url(GET_QUERY, &emulator.token_url()), &clock).unwrap();
    let (name, value) = provider.present(&token);
    assert_eq!((name.as_str(), value.expose_secret()), ("X-Auth-Token", "token-1"));
}

const BASIC_USER: &str = r#"
kind = "custom"
token_url = "http://127.0.0.1/login"
client_id = "svc-4"
username = "basic-user"
password = "basic-pass-4"
[request]
body = "none"
auth = { type = "basic", user = "username", password = "password" }
[response]
token = ""
"#;

#[tokio::test]
async fn post_without_a_body_with_basic_username_and_password_and_the_whole_body_as_token() {
    // `token = ""`: the whole response is the token (a JSON string).
    let (emulator, token) = token(BASIC_USER, |_| {}).await;
    assert_eq!(token.secret().expose_secret(), "token-1");
    assert_eq!(token.expires_at(), None, "no lifetime described: the cache's default applies");
    let request = emulator.last_request().unwrap();
    assert_eq!(request.method(), "POST");
    assert!(request.body().is_empty());
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {}", STANDARD.encode("basic-user:basic-pass-4")).as_str())
    );
}

const ABSOLUTE: &str = r#"
kind = "custom"
token_url = "http://127.0.0.1/t"
client_id = "svc-5"
[request]
auth = "none"
fields = { id = "{client_id}" }
[response]
token = "/t"
expires_at = "/exp"
default_lifetime = "10m"
[present]
value = "CwsAuth Bearer={token}"
"#;

#[tokio::test]
async fn absolute_expiry_in_every_format() {
    let expected = Some(at(1_700_000_000 + 3600));
    for style in [
        TimeStyle::Described,
        TimeStyle::Rfc3339Fraction,
        TimeStyle::Rfc3339Offset,
        TimeStyle::UnixSeconds,
        TimeStyle::UnixMillis,
    ] {
        let (_, token) = token(ABSOLUTE, |e| e.set_time_style(style)).await;
        assert_eq!(token.expires_at(), expected, "{style:?}");
    }
    for (format, style) in [("unix", TimeStyle::UnixSeconds), ("unix_ms", TimeStyle::UnixMillis)] {
        let description = ABSOLUTE.replace(
            "expires_at = \"/exp\"",
            &format!("expires_at = \"/exp\"\nexpires_at_format = \"{format}\""),
        );
        let (_, token) = token(&description, |e| e.set_time_style(style)).await;
        assert_eq!(token.expires_at(), expected, "{format}");
    }
}

#[tokio::test]
async fn default_lifetime_when_the_vendor_says_nothing_and_presentation_template() {
    let (emulator, result, clock) = fetch(ABSOLUTE, |e| e.set_send_lifetime(false)).await;
    let token = result.unwrap();
    assert_eq!(token.expires_at(), Some(at(1_700_000_000 + 600)));
    let provider = build(&with_url(ABSOLUTE, &emulator.token_url()), &clock).unwrap();
    let (name, value) = provider.present(&token);
    assert_eq!((name.as_str(), value.expose_secret()), ("Authorization", "CwsAuth Bearer=token-1"));
}

#[tokio::test]
async fn a_token_expired_on_arrival_is_refused() {
    let (_, result, _) = fetch(ABSOLUTE, |e| e.set_token_lifetime(Duration::ZERO)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, TokenError::InvalidResponse { .. }), "{err}");
    assert!(err.to_string().contains("expire on arrival"), "{err}");
    assert!(!err.to_string().contains("token-1"), "{err}");
    let (_, result, _) = fetch(FORM_BASIC, |e| e.set_token_lifetime(Duration::ZERO)).await;
    // `expires_in = 0` reads as absent, as the standard parser reads it.
    assert_eq!(result.unwrap().expires_at(), None);
}

#[tokio::test]
async fn wrong_basic_credentials_never_show_in_the_error() {
    let (emulator, result, clock) = fetch(FORM_BASIC, |_| {}).await;
    result.unwrap();
    // The emulator refuses a provider sending a wrong client secret: the
    // Basic credentials never show in the error.
    let wrong = with_url(FORM_BASIC, &emulator.token_url()).replace("form-secret-1", "nope-nope-1");
    let err = build(&wrong, &clock).unwrap().fetch().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("nope-nope-1") && !shown.contains(&STANDARD.encode("svc-1:nope-nope-1"))
    );
}

/// `CustomProvider::render` (what the fuzz target `custom_request` checks)
/// is what `fetch` sends: method, path and query, body, content type and
/// every header, byte for byte, for each request shape.
#[tokio::test]
async fn the_rendered_request_is_the_one_sent() {
    for description in [FORM_BASIC, JSON_NESTED, GET_QUERY, BASIC_USER, ABSOLUTE] {
        let clock = clock();
        let emulator = CustomEmulator::start(description).await.unwrap();
        let now = clock.now();
        emulator.set_clock(move || now);
        let provider = build(&with_url(description, &emulator.token_url()), &clock).unwrap();
        let rendered = provider.render();
        provider.fetch().await.unwrap();
        let sent = emulator.last_request().unwrap();
        assert_eq!(sent.method(), rendered.method, "{description}");
        let url = &rendered.url;
        let target =
            format!("{}{}", url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default());
        assert_eq!(sent.target(), target, "{description}");
        assert_eq!(sent.body(), rendered.body.expose_secret().as_bytes(), "{description}");
        assert_eq!(sent.header("content-type"), rendered.content_type, "{description}");
        for (name, value) in &rendered.headers {
            let got: Vec<&str> = sent
                .headers()
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(got, [value.expose_secret()], "{name} in {description}");
        }
    }
}
