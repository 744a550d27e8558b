//! The `oauth2` kind through the registry against oidc-provider:
//! `client_credentials` with `client_secret_basic` and `client_secret_post`
//! (scopes, a resource indicator), `authorization_code` with PKCE (S256),
//! `refresh_token` with rotation, and a wrong secret. Every access token is
//! checked active through the server's introspection endpoint.

use secrecy::ExposeSecret;
use tokensmith_core::{
    FileRefreshTokenStore, RefreshTokenStore, Registry, SharedTokenProvider, TokenError,
};

use super::browser::{AuthRequest, Pkce, authorize};
use super::server::{InteropServer, clients};

/// A registry with the `oauth2` factory loading `toml`.
pub(crate) fn providers(toml: &str) -> tokensmith_core::Providers {
    Registry::new()
        .with(tokensmith_oauth2::OAuth2)
        .load_str(toml)
        .unwrap_or_else(|e| panic!("config rejected: {e}\n{toml}"))
}

/// The provider `name` of `toml`.
pub(crate) fn provider(toml: &str, name: &str) -> SharedTokenProvider {
    providers(toml).get(name).expect("provider is configured")
}

/// Asserts `result` is the server refusing with `code`, and returns its text.
pub(crate) fn assert_rejected(result: Result<impl Sized, TokenError>, code: &str) -> String {
    let Err(err) = result else { panic!("expected a rejection with {code}, got a token") };
    let text = err.to_string();
    match &err {
        TokenError::Rejected { detail, status, .. } => {
            assert_eq!(detail.code.as_deref(), Some(code), "{text}");
            assert!((400..500).contains(status), "{text}");
        }
        other => panic!("expected Rejected with {code}, got {other:?}"),
    }
    text
}

#[tokio::test]
async fn client_credentials_with_client_secret_basic_and_scopes() {
    let server = InteropServer::start();
    let (id, secret) = clients::CC_BASIC;
    let toml = format!(
        r#"
        [providers.api]
        kind = "oauth2"
        token_url = "{token_url}"
        client_id = "{id}"
        client_secret = "{secret}"
        auth_method = "client_secret_basic"
        scope = ["api:read"]
        "#,
        token_url = server.token_url(),
    );
    let api = provider(&toml, "api");
    let token = api.token().await.expect("token");
    assert_eq!(token.token_type().as_str(), "Bearer");
    assert_eq!(token.scope().map(tokensmith_core::Scope::as_str), Some("api:read"));
    assert!(token.expires_at().is_some(), "expires_in is honoured");
    let info = server.assert_active(token.secret().expose_secret()).await;
    assert_eq!(info["client_id"], id);
    assert_eq!(info["scope"], "api:read");
}

#[tokio::test]
async fn client_credentials_with_client_secret_post_and_a_resource_indicator() {
    let server = InteropServer::start();
    let (id, secret) = clients::CC_POST;
    let toml = format!(
        r#"
        [providers.api]
        kind = "oauth2"
        token_url = "{token_url}"
        client_id = "{id}"
        client_secret = "{secret}"
        auth_method = "client_secret_post"
        scope = "api:read api:write"
        extra_params = {{ resource = "{resource}" }}
        "#,
        token_url = server.token_url(),
        resource = clients::RESOURCE,
    );
    let token = provider(&toml, "api").token().await.expect("token");
    assert_eq!(token.scope().map(tokensmith_core::Scope::as_str), Some("api:read api:write"));
    let info = server.assert_active(token.secret().expose_secret()).await;
    assert_eq!(info["client_id"], id);
    assert_eq!(info["aud"], clients::RESOURCE, "the token is for the indicated resource");
    assert_eq!(info["scope"], "api:read api:write");
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_with_invalid_client() {
    let server = InteropServer::start();
    for (id, method) in
        [(clients::CC_BASIC.0, "client_secret_basic"), (clients::CC_POST.0, "client_secret_post")]
    {
        let toml = format!(
            r#"
            [providers.api]
            kind = "oauth2"
            token_url = "{token_url}"
            client_id = "{id}"
            client_secret = "not-the-secret"
            auth_method = "{method}"
            "#,
            token_url = server.token_url(),
        );
        let text = assert_rejected(provider(&toml, "api").token().await, "invalid_client");
        assert!(text.contains("api"), "the error names the provider: {text}");
        assert!(!text.contains("not-the-secret"), "the error never shows the secret: {text}");
    }
}

/// Drives login and consent for `app-public` and returns the code and PKCE pair.
async fn authorization_code(server: &InteropServer, state: &str) -> (String, Pkce) {
    let pkce = Pkce::s256("tokensmith-interop-verifier-0123456789-abcdefghijklmnop");
    let code = authorize(
        server,
        &AuthRequest {
            client_id: clients::APP_PUBLIC,
            redirect_uri: clients::APP_REDIRECT_URI,
            scope: "openid offline_access",
            state,
            pkce: &pkce,
            login: "alice",
        },
    )
    .await;
    (code, pkce)
}

#[tokio::test]
async fn authorization_code_with_pkce_then_rotated_refresh_tokens() {
    let server = InteropServer::start();
    let (code, pkce) = authorization_code(&server, "state-ac").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("app.refresh");
    let toml = format!(
        r#"
        [providers.app]
        kind = "oauth2"
        grant = "authorization_code"
        token_url = "{token_url}"
        client_id = "{client_id}"
        code = "{code}"
        redirect_uri = "{redirect_uri}"
        code_verifier = "{verifier}"
        refresh_token_store = {{ file = "{store}" }}
        "#,
        token_url = server.token_url(),
        client_id = clients::APP_PUBLIC,
        redirect_uri = clients::APP_REDIRECT_URI,
        verifier = pkce.verifier,
        store = store_path.display(),
    );
    let app = provider(&toml, "app");
    let store = FileRefreshTokenStore::new("app", store_path.clone());

    // The code, with its PKCE verifier.
    let first = app.token().await.expect("token from the code");
    let info = server.assert_active(first.secret().expose_secret()).await;
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["client_id"], clients::APP_PUBLIC);
    let refresh_1 = store.load().expect("store").expect("the refresh token is kept");
    server.assert_active(refresh_1.expose_secret()).await;

    // Renewal uses the refresh token (the code is single-use); the server rotates it.
    app.invalidate(&first);
    let second = app.token().await.expect("token from the refresh token");
    assert!(!second.same_token(&first), "a new access token");
    server.assert_active(second.secret().expose_secret()).await;
    let refresh_2 = store.load().expect("store").expect("the rotated refresh token is kept");
    assert_ne!(refresh_2.expose_secret(), refresh_1.expose_secret(), "rotated");
    server.assert_active(refresh_2.expose_secret()).await;
    server.assert_inactive(refresh_1.expose_secret()).await;

    // The old refresh token is no longer accepted.
    let stale = format!(
        r#"
        [providers.stale]
        kind = "oauth2"
        grant = "refresh_token"
        token_url = "{token_url}"
        client_id = "{client_id}"
        refresh_token = "{refresh}"
        "#,
        token_url = server.token_url(),
        client_id = clients::APP_PUBLIC,
        refresh = refresh_1.expose_secret(),
    );
    let text = assert_rejected(provider(&stale, "stale").token().await, "invalid_grant");
    assert!(!text.contains(refresh_1.expose_secret()), "{text}");
}

/// A confidential client's code exchange with `client_secret_basic` also
/// carries `client_id` in the body (the scoped vendor requires it; RFC 6749
/// §4.1.3 allows it): oidc-provider accepts it, as it matches the Basic id.
#[tokio::test]
async fn authorization_code_with_client_secret_basic_sends_client_id_too() {
    let server = InteropServer::start();
    let (id, secret) = clients::APP_BASIC;
    let pkce = Pkce::s256("tokensmith-interop-verifier-basic-0123456789-abcdefghijk");
    let code = authorize(
        &server,
        &AuthRequest {
            client_id: id,
            redirect_uri: clients::APP_REDIRECT_URI,
            scope: "openid",
            state: "state-basic",
            pkce: &pkce,
            login: "bob",
        },
    )
    .await;
    let toml = format!(
        r#"
        [providers.web]
        kind = "oauth2"
        grant = "authorization_code"
        token_url = "{token_url}"
        client_id = "{id}"
        client_secret = "{secret}"
        auth_method = "client_secret_basic"
        code = "{code}"
        redirect_uri = "{redirect_uri}"
        code_verifier = "{verifier}"
        "#,
        token_url = server.token_url(),
        redirect_uri = clients::APP_REDIRECT_URI,
        verifier = pkce.verifier,
    );
    let token = provider(&toml, "web").token().await.expect("token from the code");
    let info = server.assert_active(token.secret().expose_secret()).await;
    assert_eq!(info["sub"], "bob");
    assert_eq!(info["client_id"], id);
}

#[tokio::test]
async fn refresh_token_grant_rotates_and_renews_with_the_newest_token() {
    let server = InteropServer::start();
    // A refresh token to start from: the code exchanged by hand.
    let (code, pkce) = authorization_code(&server, "state-rt").await;
    let resp = server
        .http()
        .post(server.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", clients::APP_PUBLIC),
            ("code", &code),
            ("redirect_uri", clients::APP_REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .expect("code exchange");
    let body: serde_json::Value =
        serde_json::from_str(&resp.text().await.expect("body")).expect("JSON");
    let refresh_0 = body["refresh_token"].as_str().expect("refresh_token").to_owned();

    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("rt.refresh");
    let toml = format!(
        r#"
        [providers.rt]
        kind = "oauth2"
        grant = "refresh_token"
        token_url = "{token_url}"
        client_id = "{client_id}"
        auth_method = "none"
        refresh_token = "{refresh_0}"
        refresh_token_store = {{ file = "{store}" }}
        "#,
        token_url = server.token_url(),
        client_id = clients::APP_PUBLIC,
        store = store_path.display(),
    );
    let rt = provider(&toml, "rt");
    let store = FileRefreshTokenStore::new("rt", store_path);

    let first = rt.token().await.expect("token from the configured refresh token");
    server.assert_active(first.secret().expose_secret()).await;
    let refresh_1 = store.load().expect("store").expect("rotated token kept");
    assert_ne!(refresh_1.expose_secret(), refresh_0);
    server.assert_inactive(&refresh_0).await;

    // The next renewal must use the rotated token: the configured one is spent
    // (and reusing it would make the server revoke the whole grant).
    rt.invalidate(&first);
    let second = rt.token().await.expect("token from the rotated refresh token");
    server.assert_active(second.secret().expose_secret()).await;
    let refresh_2 = store.load().expect("store").expect("rotated again");
    assert_ne!(refresh_2.expose_secret(), refresh_1.expose_secret());
    server.assert_active(refresh_2.expose_secret()).await;
    server.assert_inactive(refresh_1.expose_secret()).await;

    // A restart resumes from the store, not from the (spent) configured token.
    let restarted = provider(&toml, "rt");
    let third = restarted.token().await.expect("token after a restart");
    server.assert_active(third.secret().expose_secret()).await;
}
