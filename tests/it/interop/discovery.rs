//! Discovery against oidc-provider: `issuer` instead of `token_url`. The
//! server has no RFC 8414 document (a 404), so this also takes the fallback
//! to OIDC discovery.

use secrecy::ExposeSecret;

use super::scenarios::{assert_rejected, provider};
use super::server::{InteropServer, clients};

#[tokio::test]
async fn issuer_discovery_finds_the_token_endpoint_and_a_default_auth_method() {
    let server = InteropServer::start();
    let (basic_id, basic_secret) = clients::CC_BASIC;
    let (post_id, post_secret) = clients::CC_POST;
    let toml = format!(
        r#"
        # No auth_method: the server lists client_secret_basic first, so it is used.
        [providers.basic]
        kind = "oauth2"
        issuer = "{issuer}"
        client_id = "{basic_id}"
        client_secret = "{basic_secret}"
        scope = "api:read"

        [providers.post]
        kind = "oauth2"
        issuer = "{issuer}"
        client_id = "{post_id}"
        client_secret = "{post_secret}"
        auth_method = "client_secret_post"
        scope = "api:write"
        "#,
        issuer = server.issuer(),
    );
    let providers = super::scenarios::providers(&toml);
    for (name, id, scope) in [("basic", basic_id, "api:read"), ("post", post_id, "api:write")] {
        let p = providers.get(name).expect("configured");
        let token = p.token().await.unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.stderr()));
        let info = server.assert_active(token.secret().expose_secret()).await;
        assert_eq!(info["client_id"], id);
        assert_eq!(info["scope"], scope);
        // Discovered once; later fetches reuse the endpoint.
        p.invalidate(&token);
        let again = p.token().await.expect("second token");
        assert!(!again.same_token(&token), "a fresh token");
        server.assert_active(again.secret().expose_secret()).await;
    }
}

#[tokio::test]
async fn loading_an_issuer_needs_no_network_and_a_wrong_issuer_fails_on_first_use() {
    let server = InteropServer::start();
    let (id, secret) = clients::CC_BASIC;
    // Port 9 (discard) on loopback: nothing listens; loading must not care.
    let offline = r#"
        [providers.later]
        kind = "oauth2"
        issuer = "http://127.0.0.1:9/tenant"
        client_id = "x"
        client_secret = "y"
    "#;
    let later = provider(offline, "later");
    let err = later.token().await.expect_err("nothing listens on port 9");
    assert!(err.is_retryable(), "a transport error: {err}");

    // The issuer must be the one the document names (RFC 8414 §3.3).
    let toml = format!(
        r#"
        [providers.wrong]
        kind = "oauth2"
        issuer = "{issuer}/other"
        client_id = "{id}"
        client_secret = "{secret}"
        "#,
        issuer = server.issuer(),
    );
    let err = provider(&toml, "wrong").token().await.expect_err("no such issuer");
    assert!(err.to_string().contains("discovery"), "{err}");

    // And a wrong secret through discovery is still the server's invalid_client.
    let toml = format!(
        r#"
        [providers.bad]
        kind = "oauth2"
        issuer = "{issuer}"
        client_id = "{id}"
        client_secret = "wrong"
        "#,
        issuer = server.issuer(),
    );
    assert_rejected(provider(&toml, "bad").token().await, "invalid_client");
}
