//! The adapter against the configapi emulator, over real HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_configapi::ConfigApi;
use tokensmith_core::secrecy::ExposeSecret;
use tokensmith_core::{
    AdapterFactory, Clock, ManualClock, ProviderContext, Registry, SharedTokenProvider, TokenError,
    TokenType,
};
use tokensmith_testkit::{Emulator, Vendor};

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// The uncached adapter for `emulator` with this secret and scope.
fn provider(emulator: &Emulator, secret: &str, scope: &str) -> SharedTokenProvider {
    let text = format!(
        "kind = \"configapi\"\ntoken_url = \"{}\"\nclient_id = \"sheila.thomas\"\nclient_secret = \"{secret}\"\nscope = \"{scope}\"",
        emulator.token_url()
    );
    let ctx = ProviderContext::new("cfg", text.parse().unwrap(), Arc::new(clock())).unwrap();
    ConfigApi.build(ctx).unwrap()
}

const SECRET: &str = "qkDwDJlDfig2IpeuUZYKH1Wb8q1V0ju6sILxQQqhJ";

/// `err` is a refusal with `status`, the OAuth `code` and a description containing `description`.
#[track_caller]
fn check_rejected(err: &TokenError, status: u16, code: &str, description: &str) {
    assert!(matches!(err, TokenError::Rejected { .. }), "{err}");
    assert_eq!(err.status(), Some(status), "{err}");
    assert_eq!(err.oauth_error_code(), Some(code), "{err}");
    let got = err.detail().and_then(|d| d.description.as_deref()).unwrap_or_default();
    assert!(got.contains(description), "{err}");
}

#[tokio::test]
async fn credentials_and_tenant_go_in_the_body_never_a_header() {
    let emulator = Emulator::start(Vendor::ConfigApi).await.unwrap();
    let token = provider(&emulator, SECRET, "example.com").token().await.unwrap();
    assert!(!token.secret().expose_secret().is_empty());
    assert_eq!(token.token_type(), &TokenType::Bearer);

    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = request.form();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(field("grant_type"), Some("client_credentials"));
    assert_eq!(field("client_id"), Some("sheila.thomas"));
    assert_eq!(field("client_secret"), Some(SECRET));
    assert_eq!(field("scope"), Some("example.com"));
    assert_eq!(form.len(), 4);
}

/// The documented `"expires_in":"3599",` (a string, then a trailing comma)
/// means 3599 seconds after the response arrived, through the registry too.
#[tokio::test]
async fn string_expires_in_means_exactly_3599_seconds() {
    let emulator = Emulator::start(Vendor::ConfigApi).await.unwrap();
    let clock = clock();
    let providers = Registry::new()
        .with(ConfigApi)
        .with_clock(Arc::new(clock.clone()))
        .load_str(&emulator.config_snippet("cfg"))
        .unwrap();
    let received = clock.now();
    let token = providers.get("cfg").unwrap().token().await.unwrap();
    assert_eq!(token.received_at(), received);
    assert_eq!(token.expires_at(), Some(received + Duration::from_secs(3599)));
    assert_eq!(token.expires_in(received), Some(Duration::from_secs(3599)));
}

#[tokio::test]
async fn refusals_carry_the_vendor_error() {
    let emulator = Emulator::start(Vendor::ConfigApi).await.unwrap();
    let err = provider(&emulator, "wrong-secret", "example.com").token().await.unwrap_err();
    check_rejected(&err, 401, "invalid_client", "incorrect");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");

    let err = provider(&emulator, SECRET, "other.example").token().await.unwrap_err();
    check_rejected(&err, 400, "invalid_scope", "other.example");
    assert_eq!(emulator.requests(), 2);
}
