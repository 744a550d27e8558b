//! The harness itself: the server starts on loopback, serves discovery, and
//! the login and consent of the authorization code flow can be driven over
//! HTTP to a code that the token endpoint accepts with its PKCE verifier.

use super::browser::{AuthRequest, Pkce, authorize};
use super::server::{InteropServer, clients};

/// RFC 7636 appendix B.
const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[test]
fn pkce_s256_matches_rfc7636_appendix_b() {
    let pkce = Pkce::s256(RFC7636_VERIFIER);
    assert_eq!(pkce.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

#[tokio::test]
async fn login_and_consent_yield_a_code_the_token_endpoint_accepts() {
    let server = InteropServer::start();
    let pkce = Pkce::s256(RFC7636_VERIFIER);
    let code = authorize(
        &server,
        &AuthRequest {
            client_id: clients::APP_PUBLIC,
            redirect_uri: clients::APP_REDIRECT_URI,
            scope: "openid offline_access",
            state: "harness-state",
            pkce: &pkce,
            login: "alice",
        },
    )
    .await;

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
        .expect("token request");
    let status = resp.status();
    let body = resp.text().await.expect("token response body");
    let body: serde_json::Value = serde_json::from_str(&body).expect("token response is JSON");
    assert!(status.is_success(), "HTTP {status}: {body}\n{}", server.stderr());
    let access = body["access_token"].as_str().expect("access_token");
    assert!(body["refresh_token"].is_string(), "offline_access yields a refresh token");
    let info = server.assert_active(access).await;
    assert_eq!(info["client_id"], clients::APP_PUBLIC);
    assert_eq!(info["sub"], "alice");
}
