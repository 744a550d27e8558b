//! Config validation: no network.

use tokensmith_core::{Registry, TokenError};

const BASE: &str = r#"
[providers.mdm]
kind = "soti-connect"
token_url = "https://mdm.example.com/Connect/api/token"
"#;

fn load(rest: &str) -> Result<(), TokenError> {
    Registry::new().with(tokensmith_soti::SotiConnect).load_str(&format!("{BASE}{rest}")).map(drop)
}

/// Loading `rest` fails with a config error on `field` whose message contains `needle`.
#[track_caller]
fn check_error(rest: &str, field: Option<&str>, needle: &str) {
    let err = load(rest).unwrap_err();
    let TokenError::Config { provider, field: got, message, .. } = &err else {
        panic!("not a config error: {err}");
    };
    assert_eq!(provider.as_deref(), Some("mdm"), "{err}");
    assert_eq!(got.as_deref(), field, "{err}");
    assert!(message.contains(needle), "{err}");
}

#[test]
fn valid_configs_load() {
    load(
        r#"client_id = "Application1"
        client_secret = "Application1Password"
        grant = "password"
        username = "Administrator"
        password = "1""#,
    )
    .unwrap();
    load(
        r#"client_id = "Application1"
        client_secret = "Application1Password"
        grant = "authorization_code"
        code = "abc"
        refresh_token_store = { file = "/tmp/does-not-matter" }"#,
    )
    .unwrap();
}

#[test]
fn invalid_configs_name_the_field() {
    let creds = "client_id = \"A\"\nclient_secret = \"S\"\n";
    check_error(
        "client_id = \"App:1\"\nclient_secret = \"S\"\ngrant = \"authorization_code\"\ncode = \"c\"",
        Some("client_id"),
        "':'",
    );
    check_error(
        "client_id = \"A\"\nclient_secret = \"S:1\"\ngrant = \"authorization_code\"\ncode = \"c\"",
        Some("client_secret"),
        "':'",
    );
    check_error(
        "client_id = \"A\"\ngrant = \"authorization_code\"\ncode = \"c\"",
        Some("client_secret"),
        "requires a client_secret",
    );
    check_error(
        &format!("{creds}grant = \"password\"\nusername = \"u\""),
        Some("password"),
        "required",
    );
    check_error(
        &format!("{creds}grant = \"password\"\npassword = \"p\""),
        Some("username"),
        "required",
    );
    check_error(&format!("{creds}grant = \"authorization_code\""), Some("code"), "required");
    check_error(
        &format!("{creds}grant = \"password\"\nusername = \"u\"\npassword = \"p\"\ncode = \"c\""),
        Some("code"),
        "only used with grant = \"authorization_code\"",
    );
    check_error(
        &format!("{creds}grant = \"password\"\nusername = \"u\"\npassword = \"p\"\nscope = \"x\""),
        Some("scope"),
        "unknown field",
    );
    check_error(&format!("{creds}username = \"u\"\npassword = \"p\""), Some("grant"), "missing");
    check_error(
        &format!("{creds}grant = \"client_credentials\""),
        Some("grant"),
        "client_credentials",
    );
    check_error(
        &format!("{creds}grant = \"authorization_code\"\ncode = \"c\"\nusername = \"u\""),
        Some("username"),
        "only used with grant = \"password\"",
    );
    check_error(
        &format!(
            "{creds}grant = \"password\"\nusername = \"u\"\npassword = {{ env = \"TOKENSMITH_SOTI_TEST_UNSET_VAR\" }}"
        ),
        Some("password"),
        "TOKENSMITH_SOTI_TEST_UNSET_VAR",
    );
}

#[test]
fn empty_fields_are_refused_at_load() {
    let creds = "client_id = \"A\"\nclient_secret = \"S\"\n";
    check_error(
        &format!("{creds}grant = \"password\"\nusername = \" \"\npassword = \"p\""),
        Some("username"),
        "empty",
    );
    check_error(
        &format!("{creds}grant = \"password\"\nusername = \"u\"\npassword = \"\""),
        Some("password"),
        "empty",
    );
    check_error(
        "client_id = \"\"\nclient_secret = \"S\"\ngrant = \"authorization_code\"\ncode = \"c\"",
        Some("client_id"),
        "empty",
    );
}

#[test]
fn a_numeric_password_is_refused_without_quoting_it() {
    let err = load("client_id = \"A\"\nclient_secret = \"S\"\ngrant = \"password\"\nusername = \"u\"\npassword = 73914682").unwrap_err();
    let TokenError::Config { field, .. } = &err else { panic!("{err}") };
    assert_eq!(field.as_deref(), Some("password"), "{err}");
    assert!(!format!("{err} {err:?}").contains("73914682"), "{err}");
}

#[test]
fn debug_shows_no_secret() {
    let providers = Registry::new()
        .with(tokensmith_soti::SotiConnect)
        .load_str(&format!(
            "{BASE}client_id = \"A\"\nclient_secret = \"secret-1\"\ngrant = \"password\"\nusername = \"u\"\npassword = \"secret-2\""
        ))
        .unwrap();
    let shown = format!("{providers:?}");
    assert!(shown.contains("SotiProvider") && !shown.contains("secret-"), "{shown}");
}
