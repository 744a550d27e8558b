//! Config validation: no network.

use tokensmith_core::{Registry, TokenError};

const BASE: &str = r#"
[providers.bpm]
kind = "deyel"
token_url = "https://deyel.example.com/token"
client_id = "rest-api-user"
"#;

fn load(rest: &str) -> Result<tokensmith_core::Providers, TokenError> {
    Registry::new().with(tokensmith_deyel::Deyel).load_str(&format!("{BASE}{rest}"))
}

/// Loading `rest` fails with a config error on `field` whose message contains `needle`.
#[track_caller]
fn check_error(rest: &str, field: Option<&str>, needle: &str) {
    let err = load(rest).unwrap_err();
    let TokenError::Config { provider, field: got, message, .. } = &err else {
        panic!("not a config error: {err}");
    };
    assert_eq!(provider.as_deref(), Some("bpm"), "{err}");
    assert_eq!(got.as_deref(), field, "{err}");
    assert!(message.contains(needle), "{err}");
}

#[test]
fn a_valid_config_loads() {
    load("client_secret = \"s\"").unwrap();
}

#[test]
fn invalid_configs_name_the_field() {
    check_error("", Some("client_secret"), "requires a client_secret");
    check_error("client_secret = \"s\"\ngrant = \"password\"", Some("grant"), "unknown field");
    check_error("client_secret = \"s\"\nscope = \"x\"", Some("scope"), "unknown field");
}

#[test]
fn a_colon_in_the_client_id_is_refused() {
    // Basic credentials split at the first ':', so Deyel would read `rest`
    // as the id: every request would fail as invalid_client.
    let err = Registry::new()
        .with(tokensmith_deyel::Deyel)
        .load_str(&format!("{}client_secret = \"s\"", BASE.replace("rest-api-user", "rest:api")))
        .unwrap_err();
    let TokenError::Config { field, message, .. } = &err else { panic!("{err}") };
    assert_eq!(field.as_deref(), Some("client_id"), "{err}");
    assert!(message.contains("':'"), "{err}");
    // A colon in the secret is fine: everything after the first one is the secret.
    load("client_secret = \"s:1\"").unwrap();
}

#[test]
fn debug_shows_no_secret() {
    let providers = load("client_secret = \"secret-1\"").unwrap();
    let shown = format!("{providers:?}");
    assert!(shown.contains("DeyelProvider") && !shown.contains("secret-1"), "{shown}");
}
