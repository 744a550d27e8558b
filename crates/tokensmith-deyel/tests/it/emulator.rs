//! The adapter against the Deyel emulator, over real HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokensmith_core::secrecy::ExposeSecret;
use tokensmith_core::{
    AdapterFactory, Clock, ManualClock, ProviderContext, SharedTokenProvider, TokenError, TokenType,
};
use tokensmith_deyel::Deyel;
use tokensmith_testkit::{Emulator, Vendor};

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// The uncached adapter for `emulator` with this client id and secret.
fn provider(
    emulator: &Emulator,
    id: &str,
    secret: &str,
    clock: &ManualClock,
) -> SharedTokenProvider {
    let text = format!(
        "kind = \"deyel\"\ntoken_url = \"{}\"\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"",
        emulator.token_url()
    );
    let ctx = ProviderContext::new("bpm", text.parse().unwrap(), Arc::new(clock.clone())).unwrap();
    Deyel.build(ctx).unwrap()
}

#[tokio::test]
async fn basic_client_credentials_yield_a_day_long_jwt() {
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let creds = emulator.credentials();
    let clock = clock();
    let (id, secret) = (creds.client_id(), creds.client_secret().unwrap());
    let token = provider(&emulator, id, secret, &clock).token().await.unwrap();

    assert_eq!(token.secret().expose_secret().split('.').count(), 3, "a JWT");
    assert_eq!(token.token_type(), &TokenType::Bearer);
    assert_eq!(token.expires_at(), Some(clock.now() + Duration::from_hours(24))); // 86400 s
    let request = emulator.last_request().unwrap();
    let expected = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    assert_eq!(request.header("authorization"), Some(expected.as_str()));
    assert_eq!(request.body(), b"grant_type=client_credentials");
}

/// `{"error_description": "Invalid client_id", "error": "Invalid_request"}`
/// with its capitalised code reads as `invalid_request`.
#[tokio::test]
async fn a_wrong_client_gets_deyels_invalid_request() {
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let creds = emulator.credentials();
    for (id, secret) in
        [(creds.client_id(), "wrong-secret"), ("nobody", creds.client_secret().unwrap())]
    {
        let err = provider(&emulator, id, secret, &clock()).token().await.unwrap_err();
        assert!(matches!(err, TokenError::Rejected { .. }), "{err}");
        assert_eq!(err.status(), Some(401), "{err}");
        assert_eq!(err.oauth_error_code(), Some("invalid_request"), "{err}");
        let description = err.detail().and_then(|d| d.description.as_deref());
        assert_eq!(description, Some("Invalid client_id"), "{err}");
        assert!(!err.to_string().contains("wrong-secret"), "{err}");
    }
    assert_eq!(emulator.requests(), 2);
}
