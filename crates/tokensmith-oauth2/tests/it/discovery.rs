//! Discovery (`issuer` instead of `token_url`) against the scoped OAuth 2.0
//! emulator's metadata document, over real HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::{
    AdapterFactory, ManualClock, ProviderContext, SharedTokenProvider, TokenError,
};
use tokensmith_oauth2::OAuth2;
use tokensmith_testkit::{Discovery, Emulator, Vendor};

const ID: &str = "tokensmith-app";
const SECRET: &str = "s3cr3t+key/==";
const RFC8414: &str = "/.well-known/oauth-authorization-server";
const OPENID: &str = "/.well-known/openid-configuration";

/// The uncached adapter with `issuer` = the emulator (plus `path`), the
/// confidential client, and `extra` fields.
fn provider(emulator: &Emulator, path: &str, extra: &str) -> SharedTokenProvider {
    let text = format!(
        "kind = \"oauth2\"\nissuer = \"{}{path}\"\nclient_id = \"{ID}\"\nclient_secret = \"{SECRET}\"\n{extra}",
        emulator.issuer()
    );
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let ctx = ProviderContext::new("p", text.parse().unwrap(), Arc::new(clock)).unwrap();
    OAuth2.build(ctx).unwrap()
}

#[tokio::test]
async fn rfc8414_document_is_fetched_once_and_basic_is_the_default() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator.set_discovery(
        Discovery::new().auth_methods(Some(&["private_key_jwt", "client_secret_basic"])),
    );
    let p = provider(&emulator, "", "");
    assert!(emulator.discovery_requests().is_empty(), "loading is network-free");
    p.token().await.unwrap();
    p.token().await.unwrap();
    assert_eq!(emulator.discovery_requests(), [RFC8414]);
    assert_eq!(emulator.tokens_issued(), 2);
    let requests = emulator.recorded_requests();
    assert!(requests.iter().all(|r| r.header("authorization").is_some()), "client_secret_basic");
}

#[tokio::test]
async fn openid_configuration_is_the_fallback_and_post_is_picked_when_basic_is_not_listed() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator
        .set_discovery(Discovery::new().openid_only().auth_methods(Some(&["client_secret_post"])));
    provider(&emulator, "", "").token().await.unwrap();
    assert_eq!(emulator.discovery_requests(), [RFC8414, OPENID]);
    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("authorization"), None, "client_secret_post");
    assert_eq!(request.form_value("client_secret").as_deref(), Some(SECRET));
}

#[tokio::test]
async fn a_configured_auth_method_wins_over_the_document() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator.set_discovery(Discovery::new().auth_methods(Some(&["client_secret_post"])));
    for extra in ["auth_method = \"client_secret_basic\"", "basic_encoding = \"form\""] {
        provider(&emulator, "", extra).token().await.unwrap();
        assert!(emulator.last_request().unwrap().header("authorization").is_some(), "{extra}");
    }
}

#[tokio::test]
async fn a_document_for_another_issuer_is_refused_and_discovery_is_retried() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator.set_discovery(Discovery::new().issuer("https://evil.example"));
    let p = provider(&emulator, "", "");
    for _ in 0..2 {
        let err = p.token().await.unwrap_err();
        assert!(matches!(err, TokenError::InvalidResponse { .. }), "{err}");
        assert!(err.to_string().contains("RFC 8414 §3.3"), "{err}");
    }
    assert_eq!(
        emulator.discovery_requests(),
        [RFC8414, RFC8414],
        "a failed discovery is not cached"
    );
    assert_eq!(emulator.requests(), 0);
}

#[tokio::test]
async fn a_discovered_plain_http_endpoint_off_loopback_is_refused() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator.set_discovery(Discovery::new().token_endpoint("http://as.example/token"));
    let err = provider(&emulator, "", "").token().await.unwrap_err();
    let TokenError::Config { field, message, .. } = &err else { panic!("{err}") };
    assert_eq!(field.as_deref(), Some("issuer"));
    assert!(message.contains("discovered token_endpoint"), "{err}");
    assert_eq!(emulator.requests(), 0);
}

#[tokio::test]
async fn no_document_at_either_location_names_both() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator.set_discovery(Discovery::none());
    let err = provider(&emulator, "/tenant", "").token().await.unwrap_err();
    assert_eq!(
        emulator.discovery_requests(),
        [format!("{RFC8414}/tenant"), format!("/tenant{OPENID}")]
    );
    assert!(err.to_string().contains("no discovery document"), "{err}");
}
