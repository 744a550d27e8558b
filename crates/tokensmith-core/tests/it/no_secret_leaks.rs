//! No secret ever shows in `Debug` (`{:?}`, `{:#?}`) or `Display` of a token,
//! a config secret or an error, however the server echoed it.
//!
//! Every value below is built from the known secrets in [`SECRETS`]; each
//! formatting is searched for every one of them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    AccessToken, BodySnippet, ConfigSecret, ManualClock, ProviderContext, Registry, SharedClock,
    TokenError, TokenType, TransportErrorKind,
};
use tokensmith_core::{RawResponse, parse_response};

const ACCESS: &str = "acc3ss-T0KEN-value.with/odd+chars=";
const REFRESH: &str = "refr3sh-T0KEN-value";
const ID: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJpZC1zZWNyZXQifQ.id-s1gnature";
const CLIENT_SECRET: &str = "cl1ent-S3CRET-value";
const PASSWORD: &str = "pa55word-S3CRET";

/// Every secret no formatting may show.
const SECRETS: [&str; 5] = [ACCESS, REFRESH, ID, CLIENT_SECRET, PASSWORD];

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Asserts that `{:?}` and `{:#?}` of `value` show no secret.
#[track_caller]
fn check_debug(what: &str, value: &dyn fmt::Debug) {
    for shown in [format!("{value:?}"), format!("{value:#?}")] {
        for secret in SECRETS {
            assert!(!shown.contains(secret), "{what} shows {secret:?}: {shown}");
        }
    }
}

/// Asserts that `{}`, `{:?}` and `{:#?}` of `value` show no secret.
#[track_caller]
fn check_all<T: fmt::Debug + fmt::Display>(what: &str, value: &T) {
    check_debug(what, value);
    let shown = value.to_string();
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{what} shows {secret:?}: {shown}");
    }
}

/// Checks an error, its clone, its parts and its source chain.
#[track_caller]
fn check_error(what: &str, error: &TokenError) {
    check_all(what, error);
    check_all(what, &error.clone());
    if let Some(body) = error.body() {
        check_all(what, body);
    }
    if let Some(detail) = error.detail() {
        check_all(what, detail);
    }
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        check_all(what, &s.to_string());
        source = s.source();
    }
}

#[test]
fn tokens() {
    let built = AccessToken::builder(ACCESS, now())
        .token_type(TokenType::parse(Some("bearer")))
        .expires_in(Duration::from_mins(1))
        .refresh_token(Some(SecretString::from(REFRESH)))
        .id_token(Some(SecretString::from(ID)))
        .build();
    assert_eq!(built.secret().expose_secret(), ACCESS);
    check_debug("built token", &built);
    check_debug("builder", &AccessToken::builder(ACCESS, now()));
    check_debug("secret()", built.secret());
    check_debug("refresh_token()", &built.refresh_token());
    check_debug("id_token()", &built.id_token());
    let header = built.authorization_header().unwrap();
    assert!(header.is_sensitive());
    check_debug("authorization header", &header);

    let json = format!(
        r#"{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}","id_token":"{ID}","token_type":"bearer","expires_in":"3599","scope":"a b",}}"#
    );
    let form = format!(
        "access_token={}&refresh_token={REFRESH}&id_token={ID}&token_type=Bearer&expires_in=3600",
        ACCESS.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
    );
    for (content_type, body) in [(Some("application/json"), &json), (None, &form)] {
        let token =
            parse_response("p", &RawResponse::new(200, content_type, body.as_bytes()), now())
                .unwrap();
        assert_eq!(token.secret().expose_secret(), ACCESS, "{body}");
        assert_eq!(token.refresh_token().unwrap().expose_secret(), REFRESH);
        assert_eq!(token.id_token().unwrap().expose_secret(), ID);
        check_debug(body, &token);
        let provider: Arc<dyn tokensmith_core::TokenProvider> = Arc::new(token);
        check_debug(body, &provider);
    }
}

#[test]
fn config_secrets() {
    check_debug("literal", &ConfigSecret::literal(CLIENT_SECRET));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    let from_file = ConfigSecret::from_file(&path).unwrap();
    assert_eq!(from_file.expose_secret(), PASSWORD);
    check_debug("file", &from_file);

    // An environment variable every process has, holding no secret of ours,
    // keeps this test free of `set_var`; the value's formatting is what counts.
    let from_env = ConfigSecret::from_env("PATH").unwrap();
    check_debug("env", &from_env);

    // Deserialized, and inside the common config an adapter sees.
    let table: toml::Table = format!(
        r#"
        kind = "x"
        token_url = "https://id.example.com/token"
        client_id = "app"
        client_secret = "{CLIENT_SECRET}"
        "#
    )
    .parse()
    .unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(now()));
    let ctx = ProviderContext::new("p", table, clock).unwrap();
    check_debug("provider context", &ctx);
    check_debug("common config", ctx.common());
}

#[test]
fn config_errors() {
    let registry = Registry::new();
    let cases = [
        // A TOML syntax error on the line holding the secret.
        format!("[providers.p]\nkind = \"x\"\nclient_secret = \"{CLIENT_SECRET}"),
        format!("[providers.p]\nkind = \"x\"\nclient_secret = \"{CLIENT_SECRET}\" oops\n"),
        // Valid TOML that fails validation.
        format!(
            "[providers.p]\nkind = \"nope\"\nclient_id = \"a\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
        ),
        format!(
            "[providers.p]\nkind = \"nope\"\nclient_id = \"a\"\nclient_secret = \"{CLIENT_SECRET}\"\npassword = \"{PASSWORD}\"\nbogus = 1\n"
        ),
        format!(
            "[providers.p]\nkind = \"x\"\nclient_id = \"a\"\nclient_secret = {{ literal = \"{CLIENT_SECRET}\" }}\n"
        ),
        format!(
            "[providers.p]\nkind = \"x\"\nclient_id = 7\nclient_secret = \"{CLIENT_SECRET}\"\n"
        ),
    ];
    for text in &cases {
        let error = registry.load_str(text).unwrap_err();
        assert!(error.is_config(), "{error}");
        check_error(text, &error);
    }
}

#[test]
fn errors_of_every_variant() {
    check_error("config", &TokenError::config(Some("p"), Some("client_secret"), "is empty"));
    check_error(
        "transport",
        &TokenError::transport(
            "p",
            TransportErrorKind::Timeout,
            "after 30s",
            Some("operation timed out".into()),
        ),
    );
    check_error("reauthorization", &TokenError::reauthorization_required("p", "run login"));
    check_all("snippet", &BodySnippet::new(format!("access_token={ACCESS}").as_bytes()));
}

/// Bodies that carry (or echo) secrets, each answered with several statuses.
fn leaky_bodies() -> Vec<(Option<&'static str>, String)> {
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    vec![
        // 2xx carrying an error next to real tokens, echoing them in the description.
        (
            json,
            format!(
                r#"{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}","id_token":"{ID}","error":"invalid_grant","error_description":"token {ACCESS} / {REFRESH} / {ID}"}}"#
            ),
        ),
        (json, format!("{{ \"access_token\" : \"{ACCESS}\" , \"error\" : \"x\" , }}")),
        (json, format!("{{\n  \"Access_Token\":\n    \"{ACCESS}\",\n  \"error\": \"x\"\n}}")),
        (json, format!(r#"{{"access\u005ftoken":"{ACCESS}","error":"x"}}"#)),
        (
            json,
            format!(
                r#"{{"data":{{"access_token":"{ACCESS}"}},"errors":[{{"message":"{ACCESS}"}}]}}"#
            ),
        ),
        (
            json,
            format!(
                r#"{{"echo":"{{\"access_token\":\"{ACCESS}\",\"password\":\"{PASSWORD}\"}}"}}"#
            ),
        ),
        (
            json,
            format!(
                r#"{{"error":"invalid_client","client_secret":"{CLIENT_SECRET}","password":"{PASSWORD}"}}"#
            ),
        ),
        // 2xx invalid responses echoing an access token.
        (json, format!(r#"{{"access_token":["{ACCESS}","{REFRESH}"]}}"#)),
        (json, format!(r#"{{"access_token":{{"value":"{ACCESS}"}}}}"#)),
        (json, format!(r#"{{"access_token":"{ACCESS}", "refresh_token":"{REFRESH}" broken"#)),
        (json, format!(r#"{{"access_token":"{ACCESS}","x":[1,2"#)),
        (
            Some("text/html"),
            format!("<html><pre>access_token={ACCESS}&refresh_token={REFRESH}</pre></html>"),
        ),
        (Some("text/plain"), format!("access_token: {ACCESS}\nclient_secret: {CLIENT_SECRET}\n")),
        // Form bodies.
        (
            form,
            format!(
                "access_token={}&error=access_denied&error_description={}",
                enc(ACCESS),
                enc(ACCESS)
            ),
        ),
        (None, format!("access_token={}&refresh_token={REFRESH}&error=x", enc(ACCESS))),
        (None, format!("ACCESS%5FTOKEN={}&error=x", enc(ACCESS))),
        (form, format!("refresh_token={REFRESH}&id_token={ID}")),
        (form, format!("client_secret={CLIENT_SECRET}&password={PASSWORD}&error=invalid_client")),
    ]
}

#[test]
fn parsed_errors() {
    let mut kinds = [0usize; 3];
    for (content_type, body) in leaky_bodies() {
        for status in [200, 201, 400, 401, 403, 429, 500, 503, 302] {
            let raw = RawResponse::new(status, content_type, body.as_bytes())
                .with_retry_after(Some(Duration::from_secs(1)));
            let Err(error) = parse_response("p", &raw, now()) else {
                panic!("a token from HTTP {status} {body:?}");
            };
            match error {
                TokenError::Rejected { .. } => kinds[0] += 1,
                TokenError::Server { .. } => kinds[1] += 1,
                TokenError::InvalidResponse { .. } => kinds[2] += 1,
                _ => {}
            }
            check_error(&format!("HTTP {status} {body:?}"), &error);
        }
    }
    assert!(kinds.iter().all(|&n| n > 0), "every error variant produced: {kinds:?}");
}
