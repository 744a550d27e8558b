//! `private_key_jwt` client authentication (RFC 7523 §2.2) against
//! oidc-provider, with RS256 and ES256 keys from `tests/interop/keys/`.

use secrecy::ExposeSecret;

use super::scenarios::{assert_rejected, providers};
use super::server::{InteropServer, clients, interop_dir};

fn key(name: &str) -> String {
    interop_dir().join("keys").join(name).display().to_string()
}

#[tokio::test]
async fn private_key_jwt_with_rs256_and_es256() {
    let server = InteropServer::start();
    let toml = format!(
        r#"
        [providers.rs256]
        kind = "oauth2"
        token_url = "{token_url}"
        client_id = "{rs_id}"
        auth_method = "private_key_jwt"
        private_key = {{ file = "{rs_key}" }}
        scope = "api:read"

        # Through discovery, the key type alone implying the method, the
        # issuer as the assertion's audience, and a key id.
        [providers.es256]
        kind = "oauth2"
        issuer = "{issuer}"
        client_id = "{es_id}"
        private_key = {{ file = "{es_key}" }}
        private_key_id = "es256"
        assertion_audience = "issuer"
        scope = "api:write"
        "#,
        token_url = server.token_url(),
        issuer = server.issuer(),
        rs_id = clients::PKJWT_RS256,
        es_id = clients::PKJWT_ES256,
        rs_key = key("rs256.pem"),
        es_key = key("es256.pem"),
    );
    let providers = providers(&toml);
    for (name, id, scope) in
        [("rs256", clients::PKJWT_RS256, "api:read"), ("es256", clients::PKJWT_ES256, "api:write")]
    {
        let p = providers.get(name).expect("configured");
        let debug = format!("{p:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let first = p.token().await.unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.stderr()));
        let info = server.assert_active(first.secret().expose_secret()).await;
        assert_eq!(info["client_id"], id);
        assert_eq!(info["scope"], scope);
        // The server refuses a replayed assertion: a second token proves a fresh jti.
        p.invalidate(&first);
        let second = p.token().await.unwrap_or_else(|e| panic!("{name} again: {e}"));
        assert!(!second.same_token(&first));
        server.assert_active(second.secret().expose_secret()).await;
    }
}

#[tokio::test]
async fn private_key_jwt_with_the_wrong_key_is_rejected_with_invalid_client() {
    let server = InteropServer::start();
    let toml = format!(
        r#"
        [providers.wrong]
        kind = "oauth2"
        token_url = "{token_url}"
        client_id = "{id}"
        auth_method = "private_key_jwt"
        private_key = {{ file = "{key}" }}
        "#,
        token_url = server.token_url(),
        id = clients::PKJWT_RS256,
        key = key("es256.pem"),
    );
    let wrong = providers(&toml).get("wrong").expect("configured");
    let text = assert_rejected(wrong.token().await, "invalid_client");
    assert!(!text.contains("eyJ"), "no assertion in the error: {text}");
}
