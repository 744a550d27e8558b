//! Config validation: no network.

use tokensmith_core::{Registry, TokenError};

const BASE: &str = r#"
[providers.api]
kind = "oauth2"
token_url = "https://auth.example.com/oauth2/token"
client_id = "my-client"
"#;

fn load(rest: &str) -> Result<tokensmith_core::Providers, TokenError> {
    Registry::new().with(tokensmith_oauth2::OAuth2).load_str(&format!("{BASE}{rest}"))
}

/// Loading `rest` fails with a config error on `field` whose message contains `needle`.
#[track_caller]
fn check_error(rest: &str, field: Option<&str>, needle: &str) {
    let err = load(rest).unwrap_err();
    let TokenError::Config { provider, field: got, message, .. } = &err else {
        panic!("not a config error: {err}");
    };
    assert_eq!(provider.as_deref(), Some("api"), "{err}");
    assert_eq!(got.as_deref(), field, "{err}");
    assert!(message.contains(needle), "{err}");
}

#[test]
fn valid_configs_load() {
    for rest in [
        "client_secret = \"s\"",
        "client_secret = \"s\"\nscope = \"a b\"\nauth_method = \"client_secret_post\"",
        "client_secret = \"s\"\nscope = [\"a\", \"b\"]\nbasic_encoding = \"raw\"",
        "grant = \"client_credentials\"\nauth_method = \"none\"",
        "grant = \"authorization_code\"\ncode = \"c\"\nredirect_uri = \"https://app/cb\"\ncode_verifier = \"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\"",
        "grant = \"authorization_code\"\ncode = \"c\"\nredirect_uri = \"com.example.app:/cb\"",
        "grant = \"refresh_token\"\nrefresh_token = \"r\"\nclient_secret = \"s\"\nextra_params = { audience = \"api\" }",
    ] {
        load(rest).unwrap_or_else(|e| panic!("{rest:?}: {e}"));
    }
}

#[test]
fn invalid_configs_name_the_field() {
    let secret = "client_secret = \"s\"\n";
    check_error("grant = \"password\"", Some("grant"), "unknown variant");
    check_error(&format!("{secret}typo = 1"), Some("typo"), "unknown field");
    check_error(&format!("{secret}scope = 5"), Some("scope"), "a string or an array of strings");
    check_error(
        &format!("{secret}code = \"c\""),
        Some("code"),
        "only used with grant = \"authorization_code\"",
    );
    check_error(
        &format!("{secret}refresh_token = \"r\""),
        Some("refresh_token"),
        "only used with grant = \"refresh_token\"",
    );
    check_error(
        "grant = \"authorization_code\"\nredirect_uri = \"https://app/cb\"",
        Some("code"),
        "required with grant",
    );
    check_error(
        "grant = \"authorization_code\"\ncode = \"c\"",
        Some("redirect_uri"),
        "required with grant",
    );
    check_error("grant = \"refresh_token\"", Some("refresh_token"), "required with grant");
    check_error(
        "auth_method = \"client_secret_basic\"",
        Some("client_secret"),
        "required unless auth_method",
    );
    check_error(&format!("{secret}auth_method = \"none\""), Some("client_secret"), "public client");
    check_error(
        &format!("{secret}auth_method = \"client_secret_post\"\nbasic_encoding = \"raw\""),
        Some("basic_encoding"),
        "only used with",
    );
    check_error(
        &format!("{secret}auth_method = \"private_key_jwt_typo\""),
        Some("auth_method"),
        "unknown variant",
    );
    check_error(
        &format!("{secret}extra_params = {{ grant_type = \"x\" }}"),
        Some("extra_params.grant_type"),
        "set by tokensmith",
    );
    check_error(
        &format!("{secret}extra_params = {{ n = 1 }}"),
        Some("extra_params.n"),
        "invalid type",
    );
}

#[test]
fn extra_params_may_not_shadow_a_field_under_another_case_or_name_nothing() {
    let secret = "client_secret = \"s\"\n";
    check_error(
        &format!("{secret}extra_params = {{ Client_Secret = \"x\" }}"),
        Some("extra_params.Client_Secret"),
        "set by tokensmith",
    );
    check_error(
        &format!("{secret}extra_params = {{ GRANT_TYPE = \"x\" }}"),
        Some("extra_params.GRANT_TYPE"),
        "set by tokensmith",
    );
    check_error(
        &format!("{secret}extra_params = {{ \"\" = \"x\" }}"),
        Some("extra_params"),
        "empty",
    );
}

#[test]
fn a_secret_given_where_a_table_belongs_is_never_quoted() {
    let err = load("client_secret = \"s\"\nextra_params = \"client_secret=S3CRET\"").unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(!format!("{err} {err:?}").contains("S3CRET"), "{err}");
    assert!(err.to_string().contains("extra_params"), "{err}");
}

#[test]
fn a_code_is_never_spent_on_a_request_that_cannot_succeed() {
    let code = "grant = \"authorization_code\"\ncode = \"c\"\n";
    // RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~].
    for verifier in ["v", &"a".repeat(42), &"a".repeat(129), &format!("{}+", "a".repeat(43))] {
        check_error(
            &format!("{code}redirect_uri = \"https://app/cb\"\ncode_verifier = \"{verifier}\""),
            Some("code_verifier"),
            "RFC 7636",
        );
    }
    for uri in ["", "/cb", "not a uri"] {
        check_error(
            &format!("{code}redirect_uri = \"{uri}\""),
            Some("redirect_uri"),
            "absolute URI",
        );
    }
}

#[test]
fn raw_basic_credentials_cannot_carry_a_colon_in_the_client_id() {
    let err = Registry::new()
        .with(tokensmith_oauth2::OAuth2)
        .load_str(
            "[providers.api]\nkind = \"oauth2\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"a:b\"\nclient_secret = \"s\"\nbasic_encoding = \"raw\"",
        )
        .unwrap_err();
    let TokenError::Config { field, message, .. } = &err else { panic!("{err}") };
    assert_eq!(field.as_deref(), Some("client_id"), "{err}");
    assert!(message.contains("':'"), "{err}");
}

#[test]
fn an_empty_assertion_audience_is_refused() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ec-p256-sec1.pem");
    check_error(
        &format!("private_key = {{ file = {key:?} }}\nassertion_audience = \"\""),
        Some("assertion_audience"),
        "empty",
    );
}

#[test]
fn debug_shows_no_secret() {
    let providers = load(
        "client_secret = \"secret-1\"\ngrant = \"authorization_code\"\ncode = \"secret-2\"\nredirect_uri = \"https://app/cb\"\ncode_verifier = \"secret-3-and-enough-characters-for-rfc-7636-pkce\"",
    )
    .unwrap();
    let shown = format!("{providers:?}");
    assert!(shown.contains("OAuth2Provider") && !shown.contains("secret-"), "{shown}");
}
