//! The adapter against the scoped OAuth 2.0 emulator, over real HTTP: every
//! grant and auth method, refresh-token rotation, and the `meta`/`errors`
//! error body.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokensmith_core::secrecy::ExposeSecret;
use tokensmith_core::{
    AdapterFactory, Clock, ManualClock, ProviderContext, SharedTokenProvider, TokenError, TokenType,
};
use tokensmith_oauth2::OAuth2;
use tokensmith_testkit::{BasicEncoding, CodeRequest, Emulator, Vendor};

const ID: &str = "tokensmith-app";
const SECRET: &str = "s3cr3t+key/==";
const PUBLIC_ID: &str = "tokensmith-public";
const REDIRECT_URI: &str = "http://127.0.0.1:8080/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// The uncached adapter for `emulator` with the fields in `rest` (client
/// id and secret included).
fn provider(emulator: &Emulator, rest: &str) -> SharedTokenProvider {
    provider_with_clock(emulator, rest, &clock())
}

fn provider_with_clock(
    emulator: &Emulator,
    rest: &str,
    clock: &ManualClock,
) -> SharedTokenProvider {
    let text = format!("kind = \"oauth2\"\ntoken_url = \"{}\"\n{rest}", emulator.token_url());
    let ctx = ProviderContext::new("api", text.parse().unwrap(), Arc::new(clock.clone())).unwrap();
    OAuth2.build(ctx).unwrap()
}

fn confidential(rest: &str) -> String {
    format!("client_id = \"{ID}\"\nclient_secret = \"{SECRET}\"\n{rest}")
}

/// `err` is a refusal with `status` and the vendor's `message` (the
/// `meta`/`errors` body carries no OAuth error code).
#[track_caller]
fn check_rejected(err: &TokenError, status: u16, message: &str) {
    assert!(matches!(err, TokenError::Rejected { .. }), "{err}");
    assert_eq!(err.status(), Some(status), "{err}");
    assert_eq!(err.oauth_error_code(), None, "{err}");
    let got = err.detail().and_then(|d| d.description.as_deref()).unwrap_or_default();
    assert!(got.contains(message), "{err}");
}

#[tokio::test]
async fn client_secret_basic_form_encodes_id_and_secret() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let clock = clock();
    let rest = confidential("scope = [\"read\", \"write\"]");
    let token = provider_with_clock(&emulator, &rest, &clock).token().await.unwrap();

    assert_eq!(token.token_type(), &TokenType::Bearer); // sent as lowercase `bearer`
    assert_eq!(token.scope().map(tokensmith_core::Scope::as_str), Some("read write"));
    assert_eq!(token.expires_at(), Some(clock.now() + emulator.token_lifetime()));
    assert!(token.refresh_token().is_none());
    let request = emulator.last_request().unwrap();
    // RFC 6749 §2.3.1: `+`, `/` and `=` are form-encoded before Base64.
    let expected = format!("Basic {}", STANDARD.encode(format!("{ID}:s3cr3t%2Bkey%2F%3D%3D")));
    assert_eq!(request.header("authorization"), Some(expected.as_str()));
    assert_eq!(request.body(), b"grant_type=client_credentials&scope=read+write");
}

#[tokio::test]
async fn scope_lists_are_sent_space_delimited_without_empty_entries() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let rest = confidential("scope = [\" read\", \"\", \"write \"]");
    provider(&emulator, &rest).token().await.unwrap();
    let request = emulator.last_request().unwrap();
    assert_eq!(request.form_value("scope").as_deref(), Some("read write"));
}

#[tokio::test]
async fn raw_basic_encoding_for_servers_that_never_decode() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let rest = confidential("basic_encoding = \"raw\"");
    // The emulator decodes per RFC 6749 by default, so raw credentials fail.
    let err = provider(&emulator, &rest).token().await.unwrap_err();
    check_rejected(&err, 403, "Invalid client credentials");

    emulator.set_basic_encoding(BasicEncoding::Raw);
    provider(&emulator, &rest).token().await.unwrap();
    let expected = format!("Basic {}", STANDARD.encode(format!("{ID}:{SECRET}")));
    assert_eq!(emulator.last_request().unwrap().header("authorization"), Some(expected.as_str()));
}

#[tokio::test]
async fn client_secret_post_and_extra_params_go_in_the_body() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let rest = confidential(
        "auth_method = \"client_secret_post\"\nscope = \"read\"\nextra_params = { audience = \"https://api.example.com\" }",
    );
    provider(&emulator, &rest).token().await.unwrap();
    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.form_value("client_id").as_deref(), Some(ID));
    assert_eq!(request.form_value("client_secret").as_deref(), Some(SECRET));
    assert_eq!(request.form_value("scope").as_deref(), Some("read"));
    assert_eq!(request.form_value("audience").as_deref(), Some("https://api.example.com"));
}

#[tokio::test]
async fn public_client_code_with_pkce_then_rotated_refresh_tokens() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let code =
        emulator.issue_code_with(CodeRequest::new().client_id(PUBLIC_ID).pkce_verifier(VERIFIER));
    let provider = provider(
        &emulator,
        &format!(
            "client_id = \"{PUBLIC_ID}\"\ngrant = \"authorization_code\"\ncode = \"{code}\"\nredirect_uri = \"{REDIRECT_URI}\"\ncode_verifier = \"{VERIFIER}\"\nscope = \"read\""
        ),
    );

    let token = provider.token().await.unwrap();
    let refresh_1 = token.refresh_token().unwrap().expose_secret().to_owned();
    let request = emulator.last_request().unwrap();
    assert_eq!(request.header("authorization"), None);
    let expected_form = [
        ("client_id", PUBLIC_ID),
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER), // RFC 7636 §4.5; no code_challenge here
    ];
    let expected_form: Vec<(String, String)> =
        expected_form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    assert_eq!(request.form(), expected_form);

    // Renewals use the refresh token, which rotates.
    let token = provider.token().await.unwrap();
    let refresh_2 = token.refresh_token().unwrap().expose_secret().to_owned();
    assert_ne!(refresh_1, refresh_2);
    let request = emulator.last_request().unwrap();
    assert_eq!(request.form_value("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(request.form_value("refresh_token"), Some(refresh_1));
    assert_eq!(request.form_value("scope").as_deref(), Some("read"));
    assert_eq!(request.form_value("code"), None);
    provider.token().await.unwrap();
    assert_eq!(emulator.last_request().unwrap().form_value("refresh_token"), Some(refresh_2));
    assert_eq!(emulator.grant_requests("authorization_code"), 1);
    assert_eq!(emulator.grant_requests("refresh_token"), 2);
}

/// The vendor's page requires `client_id` in the body of the code exchange
/// whatever the client authentication: with Basic it is sent in both.
#[tokio::test]
async fn authorization_code_sends_client_id_in_the_body_with_every_auth_method() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    for auth_method in ["client_secret_basic", "client_secret_post"] {
        let code = emulator.issue_code();
        let rest = confidential(&format!(
            "auth_method = \"{auth_method}\"\ngrant = \"authorization_code\"\ncode = \"{code}\"\nredirect_uri = \"{REDIRECT_URI}\""
        ));
        provider(&emulator, &rest).token().await.unwrap();
        let request = emulator.last_request().unwrap();
        assert_eq!(request.form_value("client_id").as_deref(), Some(ID), "{auth_method}");
        let pairs = request.form();
        assert_eq!(
            pairs.iter().filter(|(k, _)| k == "client_id").count(),
            1,
            "{auth_method}: {pairs:?}"
        );
        assert_eq!(
            request.header("authorization").is_some(),
            auth_method == "client_secret_basic",
            "{auth_method}"
        );
    }
    // The client_credentials grant keeps Basic alone (the page lists no
    // client_id for it).
    provider(&emulator, &confidential("")).token().await.unwrap();
    assert_eq!(emulator.last_request().unwrap().form_value("client_id"), None);
    assert_eq!(emulator.grant_requests("authorization_code"), 2);
}

#[tokio::test]
async fn refresh_token_grant_rotates_and_the_store_survives_a_restart() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("api.refresh");
    let original = emulator.issue_refresh_token();
    let rest = |store: &str| {
        confidential(&format!(
            "grant = \"refresh_token\"\nrefresh_token = \"{original}\"\nrefresh_token_store = {store}"
        ))
    };
    let with_file = rest(&format!("{{ file = {:?} }}", store.display().to_string()));
    let stored = || std::fs::read_to_string(&store).unwrap().trim().to_owned();

    let first = provider(&emulator, &with_file);
    let token = first.token().await.unwrap();
    assert_eq!(
        emulator.last_request().unwrap().form_value("refresh_token"),
        Some(original.clone())
    );
    let rotated = token.refresh_token().unwrap().expose_secret().to_owned();
    assert_eq!(stored(), rotated);

    // The server now refuses the configured (rotated-away) token...
    let err = provider(&emulator, &rest("\"memory\"")).token().await.unwrap_err();
    check_rejected(&err, 400, "already rotated");

    // ...but a restarted provider resumes from the store.
    let restarted = provider(&emulator, &with_file);
    restarted.token().await.unwrap();
    assert_eq!(emulator.last_request().unwrap().form_value("refresh_token"), Some(rotated.clone()));
    assert_ne!(stored(), rotated);
    assert_eq!(emulator.grant_requests("refresh_token"), 3);
}

#[tokio::test]
async fn a_used_code_without_refresh_token_needs_reauthorization() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    emulator.set_issue_refresh_tokens(false);
    let code = emulator.issue_code();
    let provider = provider(
        &emulator,
        &confidential(&format!(
            "grant = \"authorization_code\"\ncode = \"{code}\"\nredirect_uri = \"{REDIRECT_URI}\""
        )),
    );
    provider.token().await.unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, TokenError::ReauthorizationRequired { .. }), "{err}");
    assert!(!err.to_string().contains(&code), "{err}");
    assert_eq!(emulator.requests(), 1);
}

#[tokio::test]
async fn refusals_map_the_meta_errors_body() {
    let emulator = Emulator::start(Vendor::OAuth2).await.unwrap();
    let wrong = format!("client_id = \"{ID}\"\nclient_secret = \"wrong-secret\"");
    let err = provider(&emulator, &wrong).token().await.unwrap_err();
    check_rejected(&err, 403, "Invalid client credentials");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");

    let err = provider(&emulator, &confidential("scope = \"admin\"")).token().await.unwrap_err();
    check_rejected(&err, 400, "Invalid scope `admin`");

    let err =
        provider(&emulator, &format!("client_id = \"{PUBLIC_ID}\"")).token().await.unwrap_err();
    check_rejected(&err, 403, "public client cannot use the client_credentials grant");

    let code_config = |code: &str, extra: &str| {
        confidential(&format!("grant = \"authorization_code\"\ncode = \"{code}\"\n{extra}"))
    };
    let code = emulator.issue_code();
    let err = provider(&emulator, &code_config(&code, "redirect_uri = \"https://elsewhere/cb\""))
        .token()
        .await
        .unwrap_err();
    check_rejected(&err, 400, "redirect_uri does not match");

    let code = emulator.issue_code_with(CodeRequest::new().pkce_verifier(VERIFIER));
    let err =
        provider(&emulator, &code_config(&code, &format!("redirect_uri = \"{REDIRECT_URI}\"")))
            .token()
            .await
            .unwrap_err();
    check_rejected(&err, 400, "Missing code_verifier");

    let other_verifier = "x".repeat(43);
    let extra = format!("redirect_uri = \"{REDIRECT_URI}\"\ncode_verifier = \"{other_verifier}\"");
    let err = provider(&emulator, &code_config(&code, &extra)).token().await.unwrap_err();
    check_rejected(&err, 400, "does not match the code_challenge");
}
