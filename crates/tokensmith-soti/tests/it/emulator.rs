//! The adapter against the SOTI Connect emulator, over real HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::secrecy::ExposeSecret;
use tokensmith_core::{
    AdapterFactory, Clock, ManualClock, ProviderContext, SharedTokenProvider, TokenError, TokenType,
};
use tokensmith_soti::SotiConnect;
use tokensmith_testkit::{Emulator, Vendor, fixtures};

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// The uncached adapter for `emulator` with the seed's client credentials
/// and the grant fields in `rest`.
fn provider(emulator: &Emulator, rest: &str, clock: &ManualClock) -> SharedTokenProvider {
    let text = format!(
        "kind = \"soti-connect\"\ntoken_url = \"{}\"\nclient_id = \"Application1\"\nclient_secret = \"Application1Password\"\n{rest}",
        emulator.token_url()
    );
    let ctx = ProviderContext::new("mdm", text.parse().unwrap(), Arc::new(clock.clone())).unwrap();
    SotiConnect.build(ctx).unwrap()
}

const PASSWORD: &str = "grant = \"password\"\nusername = \"Administrator\"\npassword = \"1\"";

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
async fn password_grant_sends_the_documented_request() {
    let emulator = Emulator::start(Vendor::SotiConnect).await.unwrap();
    let clock = clock();
    let token = provider(&emulator, PASSWORD, &clock).token().await.unwrap();

    assert!(!token.secret().expose_secret().is_empty());
    assert_eq!(token.token_type(), &TokenType::Bearer); // SOTI sends lowercase `bearer`
    assert_eq!(token.expires_at(), Some(clock.now() + Duration::from_hours(1))); // expires_in 3600
    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("authorization"), Some(fixtures::SOTI_AUTHORIZATION_HEADER));
    assert_eq!(
        request.header("authorization"),
        Some("Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk")
    );
    assert_eq!(request.body(), fixtures::SOTI_PASSWORD_REQUEST_BODY.as_bytes());
    assert_eq!(emulator.requests(), 1);
}

#[tokio::test]
async fn every_call_is_one_request() {
    let emulator = Emulator::start(Vendor::SotiConnect).await.unwrap();
    let provider = provider(&emulator, PASSWORD, &clock());
    let first = provider.token().await.unwrap();
    let second = provider.token().await.unwrap();
    assert_ne!(first.secret().expose_secret(), second.secret().expose_secret());
    assert_eq!(emulator.grant_requests("password"), 2);
}

#[tokio::test]
async fn authorization_code_is_sent_once() {
    let emulator = Emulator::start(Vendor::SotiConnect).await.unwrap();
    let code = emulator.issue_code();
    let provider = provider(
        &emulator,
        &format!("grant = \"authorization_code\"\ncode = \"{code}\""),
        &clock(),
    );

    provider.token().await.unwrap();
    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("authorization"), Some(fixtures::SOTI_AUTHORIZATION_HEADER));
    assert_eq!(request.body(), format!("grant_type=authorization_code&code={code}").as_bytes());

    // No refresh token came back: renewing needs a new code, and the used
    // one is never sent again.
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, TokenError::ReauthorizationRequired { .. }), "{err}");
    assert!(err.to_string().contains("new authorization code"), "{err}");
    assert!(!err.to_string().contains(&code), "{err}");
    assert_eq!(emulator.requests(), 1);
}

#[tokio::test]
async fn authorization_code_then_rotated_refresh_tokens_survive_a_restart() {
    let emulator = Emulator::start(Vendor::SotiConnect).await.unwrap();
    emulator.set_issue_refresh_tokens(true);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("mdm.refresh");
    let code = emulator.issue_code();
    let rest = format!(
        "grant = \"authorization_code\"\ncode = \"{code}\"\nrefresh_token_store = {{ file = {:?} }}",
        store.display().to_string()
    );
    let stored = || std::fs::read_to_string(&store).unwrap().trim().to_owned();

    let first = provider(&emulator, &rest, &clock());
    let token = first.token().await.unwrap();
    let refresh_1 = token.refresh_token().unwrap().expose_secret().to_owned();
    assert_eq!(stored(), refresh_1);

    first.token().await.unwrap();
    let request = emulator.last_request().unwrap();
    assert_eq!(request.form_value("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(request.form_value("refresh_token"), Some(refresh_1.clone()));
    assert_eq!(request.header("authorization"), Some(fixtures::SOTI_AUTHORIZATION_HEADER));
    let refresh_2 = stored();
    assert_ne!(refresh_2, refresh_1);

    // A restart with the same (used) code resumes from the stored token.
    let restarted = provider(&emulator, &rest, &clock());
    restarted.token().await.unwrap();
    assert_eq!(emulator.last_request().unwrap().form_value("refresh_token"), Some(refresh_2));
    assert_eq!(emulator.grant_requests("authorization_code"), 1);
    assert_eq!(emulator.grant_requests("refresh_token"), 2);
}

#[tokio::test]
async fn a_refused_stored_refresh_token_gives_way_to_a_new_code() {
    let emulator = Emulator::start(Vendor::SotiConnect).await.unwrap();
    emulator.set_issue_refresh_tokens(true);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("mdm.refresh");
    // Left by an earlier run; revoked (or expired) since.
    std::fs::write(&store, "revoked-refresh-token\n").unwrap();
    let code = emulator.issue_code();
    let rest = format!(
        "grant = \"authorization_code\"\ncode = \"{code}\"\nrefresh_token_store = {{ file = {:?} }}",
        store.display().to_string()
    );
    let provider = provider(&emulator, &rest, &clock());

    let err = provider.token().await.unwrap_err();
    assert_eq!(err.oauth_error_code(), Some("invalid_grant"), "{err}");
    // The refused token is not sent again: the new code is.
    let token = provider.token().await.unwrap();
    let refresh = token.refresh_token().unwrap().expose_secret().to_owned();
    assert_eq!(std::fs::read_to_string(&store).unwrap().trim(), refresh);
    assert_eq!(emulator.grant_requests("refresh_token"), 1);
    assert_eq!(emulator.grant_requests("authorization_code"), 1);
}

#[tokio::test]
async fn refusals_carry_the_vendor_error() {
    let emulator = Emulator::start(Vendor::SotiConnect).await.unwrap();
    let clock = clock();

    let wrong_password = "grant = \"password\"\nusername = \"Administrator\"\npassword = \"2\"";
    let err = provider(&emulator, wrong_password, &clock).token().await.unwrap_err();
    check_rejected(&err, 400, "invalid_grant", "user name or password");

    let text = format!(
        "kind = \"soti-connect\"\ntoken_url = \"{}\"\nclient_id = \"Application1\"\nclient_secret = \"wrong\"\n{PASSWORD}",
        emulator.token_url()
    );
    let ctx = ProviderContext::new("mdm", text.parse().unwrap(), Arc::new(clock.clone())).unwrap();
    let err = SotiConnect.build(ctx).unwrap().token().await.unwrap_err();
    check_rejected(&err, 401, "invalid_client", "incorrect");
    assert!(!err.to_string().contains("wrong"), "{err}");

    // A code the server already saw (used by another client process).
    let code = emulator.issue_code();
    let rest = format!("grant = \"authorization_code\"\ncode = \"{code}\"");
    provider(&emulator, &rest, &clock).token().await.unwrap();
    let err = provider(&emulator, &rest, &clock).token().await.unwrap_err();
    check_rejected(&err, 400, "invalid_grant", "already been used");

    let err = provider(&emulator, "grant = \"authorization_code\"\ncode = \"made-up\"", &clock)
        .token()
        .await
        .unwrap_err();
    check_rejected(&err, 400, "invalid_grant", "invalid");
}
