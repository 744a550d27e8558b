//! Config validation: no network.

use tokensmith_core::{Registry, TokenError};

const BASE: &str = r#"
[providers.cfg]
kind = "configapi"
token_url = "https://example.com/configapi/v2/oauth/token"
client_id = "sheila.thomas"
"#;

fn load(rest: &str) -> Result<tokensmith_core::Providers, TokenError> {
    Registry::new().with(tokensmith_configapi::ConfigApi).load_str(&format!("{BASE}{rest}"))
}

/// Loading `rest` fails with a config error on `field` whose message contains `needle`.
#[track_caller]
fn check_error(rest: &str, field: Option<&str>, needle: &str) {
    let err = load(rest).unwrap_err();
    let TokenError::Config { provider, field: got, message, .. } = &err else {
        panic!("not a config error: {err}");
    };
    assert_eq!(provider.as_deref(), Some("cfg"), "{err}");
    assert_eq!(got.as_deref(), field, "{err}");
    assert!(message.contains(needle), "{err}");
}

#[test]
fn a_valid_config_loads() {
    load("client_secret = \"s\"\nscope = \"example.com\"").unwrap();
}

#[test]
fn invalid_configs_name_the_field() {
    check_error("scope = \"example.com\"", Some("client_secret"), "requires a client_secret");
    check_error("client_secret = \"s\"", Some("scope"), "missing field");
    check_error("client_secret = \"s\"\nscope = \" \"", Some("scope"), "tenant");
    check_error(
        "client_secret = \"s\"\nscope = \"example.com\"\ntenant = \"x\"",
        Some("tenant"),
        "unknown field",
    );
    check_error("client_secret = \"s\"\nscope = [\"a\"]", Some("scope"), "invalid type");
}

#[test]
fn debug_shows_no_secret() {
    let providers = load("client_secret = \"secret-1\"\nscope = \"example.com\"").unwrap();
    let shown = format!("{providers:?}");
    assert!(shown.contains("ConfigApiProvider") && !shown.contains("secret-1"), "{shown}");
}
