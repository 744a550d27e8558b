//! The scoped OAuth 2.0 emulator's discovery document (RFC 8414, OIDC
//! Discovery): where it is served, what it says, and the ways a test bends it.

use tokensmith_testkit::{Discovery, Vendor};

use crate::{client, json, read, start};

const RFC8414: &str = "/.well-known/oauth-authorization-server";
const OPENID: &str = "/.well-known/openid-configuration";

#[tokio::test]
async fn the_document_names_the_emulator_at_both_locations() {
    let emulator = start(Vendor::OAuth2).await;
    for path in [RFC8414, OPENID] {
        let response = client().get(format!("{}{path}", emulator.issuer())).send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        let (status, body) = read(response).await;
        assert_eq!(status, 200, "{path}: {body}");
        let document = json(&body);
        assert_eq!(document["issuer"], emulator.issuer().as_str());
        assert_eq!(document["token_endpoint"], emulator.token_url().as_str());
        assert_eq!(
            document["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
        );
        assert_eq!(document["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    }
    assert_eq!(emulator.discovery_requests(), [RFC8414, OPENID]);
    assert_eq!(emulator.requests(), 0, "discovery is not a token request");
}

#[tokio::test]
async fn a_test_bends_the_document() {
    let emulator = start(Vendor::OAuth2).await;
    let get = |path: &str| {
        let url = format!("{}{path}", emulator.issuer());
        async move { read(client().get(url).send().await.unwrap()).await }
    };
    emulator.set_discovery(
        Discovery::new()
            .openid_only()
            .issuer("https://evil.example")
            .token_endpoint("http://as.example/token")
            .auth_methods(None),
    );
    assert_eq!(get(RFC8414).await.0, 404);
    let (status, body) = get(OPENID).await;
    assert_eq!(status, 200);
    let document = json(&body);
    assert_eq!(document["issuer"], "https://evil.example");
    assert_eq!(document["token_endpoint"], "http://as.example/token");
    assert!(document.get("token_endpoint_auth_methods_supported").is_none(), "{body}");

    emulator.set_discovery(Discovery::new().rfc8414_only());
    assert_eq!((get(RFC8414).await.0, get(OPENID).await.0), (200, 404));
    emulator.set_discovery(Discovery::none());
    assert_eq!((get(RFC8414).await.0, get(OPENID).await.0), (404, 404));
    // A path-bearing issuer's locations are recorded too (and not served).
    assert_eq!(get(&format!("{RFC8414}/tenant")).await.0, 404);
    assert_eq!(emulator.discovery_requests().len(), 7);
    let (status, _) =
        read(client().post(format!("{}{OPENID}", emulator.issuer())).send().await.unwrap()).await;
    assert_eq!(status, 404, "served nowhere now");
    emulator.set_discovery(Discovery::new());
    let (status, _) =
        read(client().post(format!("{}{OPENID}", emulator.issuer())).send().await.unwrap()).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn other_vendors_serve_no_document() {
    for vendor in [Vendor::SotiConnect, Vendor::ConfigApi, Vendor::Deyel] {
        let emulator = start(vendor).await;
        let response =
            client().get(format!("{}{OPENID}", emulator.base_url())).send().await.unwrap();
        assert_eq!(read(response).await.0, 404, "{vendor}");
        assert!(emulator.discovery_requests().is_empty(), "{vendor}");
    }
}
