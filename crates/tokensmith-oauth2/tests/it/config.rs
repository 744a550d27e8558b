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

#[test]
fn details_read_only_the_issuer() {
    use std::sync::Arc;
    use tokensmith_core::{AdapterFactory, ProviderContext, SystemClock};
    let table: toml::Table = toml::from_str(
        r#"
        kind = "oauth2"
        issuer = "https://login.example.com"
        client_id = "my-client"
        grant = "refresh_token"
        refresh_token = { file = "/nonexistent/tokensmith-details-test" }
        "#,
    )
    .unwrap();
    let ctx = ProviderContext::new("api", table, Arc::new(SystemClock)).unwrap();
    // The file is not read (it does not exist): only `build` reads it.
    let details = tokensmith_oauth2::OAuth2.details(&ctx);
    assert_eq!(details, [("issuer", "https://login.example.com".to_owned())]);
    let err = tokensmith_oauth2::OAuth2.build(ctx).unwrap_err();
    assert!(err.to_string().contains("refresh_token"), "{err}");
    // An issuer of the wrong type shows nothing, and `build` says why.
    let table: toml::Table =
        toml::from_str("kind = \"oauth2\"\nissuer = 5\nclient_id = \"c\"").unwrap();
    let ctx = ProviderContext::new("api", table, Arc::new(SystemClock)).unwrap();
    assert_eq!(tokensmith_oauth2::OAuth2.details(&ctx), []);
    assert!(tokensmith_oauth2::OAuth2.build(ctx).unwrap_err().to_string().contains("issuer"));
}

#[test]
fn a_config_built_in_code_is_validated_as_a_table_is() {
    use tokensmith_core::{ConfigSecret, Url};
    use tokensmith_oauth2::{AuthMethod, BasicEncoding, Endpoint, OAuth2Config};
    let url = Url::parse("https://auth.example.com/oauth2/token").unwrap();
    let secret = || ConfigSecret::literal("s");
    let cases = [
        (
            "a secret with a public client",
            OAuth2Config::client_credentials(url.clone(), "c")
                .with_client_secret(secret())
                .with_auth_method(AuthMethod::None),
            "client_secret",
            "a public client",
        ),
        (
            "a colon in a raw Basic client id",
            OAuth2Config::client_credentials(url.clone(), "a:b")
                .with_client_secret(secret())
                .with_basic_encoding(BasicEncoding::Raw),
            "client_id",
            "':'",
        ),
        (
            "a redirect_uri the server would refuse after the code is spent",
            OAuth2Config::authorization_code(url.clone(), "c", secret(), "cb"),
            "redirect_uri",
            "absolute URI",
        ),
        (
            "a code verifier too short",
            OAuth2Config::authorization_code(url.clone(), "c", secret(), "https://app/cb")
                .with_code_verifier(ConfigSecret::literal("short")),
            "code_verifier",
            "43 to 128",
        ),
        (
            "an extra param tokensmith sets",
            OAuth2Config::client_credentials(url.clone(), "c").with_extra_param("Scope", "x"),
            "extra_params.Scope",
            "set by tokensmith",
        ),
        (
            "an unreadable key",
            OAuth2Config::client_credentials(url.clone(), "c")
                .with_private_key(ConfigSecret::literal("not a key")),
            "private_key",
            "PEM",
        ),
        (
            "a key id without a key",
            OAuth2Config::client_credentials(url.clone(), "c").with_private_key_id("k1"),
            "private_key_id",
            "only used with private_key",
        ),
        (
            "a token URL and an issuer",
            OAuth2Config::client_credentials(
                Endpoint::Issuer("https://login.example.com".to_owned()),
                "c",
            )
            .with_common(|common| common.with_token_url(url.clone())),
            "issuer",
            "not both",
        ),
        (
            "an issuer with a query",
            OAuth2Config::client_credentials(
                Endpoint::Issuer("https://login.example.com/?tenant=1".to_owned()),
                "c",
            ),
            "issuer",
            "no query",
        ),
    ];
    for (what, config, field, needle) in cases {
        let err = Registry::new().build("api", config).unwrap_err();
        let TokenError::Config { provider, field: got, message, .. } = &err else {
            panic!("{what}: {err}")
        };
        assert_eq!((provider.as_deref(), got.as_deref()), (Some("api"), Some(field)), "{what}");
        assert!(message.contains(needle), "{what}: {err}");
    }
}

#[test]
fn a_config_built_in_code_shows_no_secret() {
    use tokensmith_core::{ConfigSecret, Url};
    use tokensmith_oauth2::OAuth2Config;
    let url = Url::parse("https://auth.example.com/oauth2/token").unwrap();
    let config = OAuth2Config::authorization_code(
        url,
        "c",
        ConfigSecret::literal("secret-1"),
        "https://app/cb",
    )
    .with_client_secret(ConfigSecret::literal("secret-2"))
    .with_code_verifier(ConfigSecret::literal("secret-3-and-enough-characters-for-rfc-7636-pkce"))
    .with_extra_param("audience", "secret-4");
    let shown = format!("{config:?}");
    assert!(shown.contains("OAuth2Fields") && !shown.contains("secret-"), "{shown}");
    let provider = Registry::new().build("api", config).unwrap();
    let shown = format!("{provider:?}");
    assert!(!shown.contains("secret-"), "{shown}");
}
