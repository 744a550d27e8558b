//! The registry end to end: the contract's example config, grown to all four
//! kinds with secrets from the environment and from a file, pointing at the
//! four vendor emulators, serves a token for every kind.
//!
//! Secrets from `{ env = "VAR" }` are read when the config loads. Setting a
//! variable in this process would need `unsafe` (edition 2024), which the
//! workspace forbids, so the test re-runs itself in a child process of this
//! test binary with the variables set; the child does the work.

use std::process::Command;

use tokensmith_core::secrecy::ExposeSecret;
use tokensmith_core::{Registry, TokenError};
use tokensmith_testkit::{Emulator, Vendor};

/// Set in the child process only.
const CHILD: &str = "TOKENSMITH_E2E_CHILD";

/// The secrets the config reads from the environment (unique names), with
/// the emulators' test values.
const ENV_SECRETS: [(&str, &str); 4] = [
    ("TOKENSMITH_E2E_SOTI_CLIENT_SECRET", "Application1Password"),
    ("TOKENSMITH_E2E_CONFIGAPI_SECRET", "qkDwDJlDfig2IpeuUZYKH1Wb8q1V0ju6sILxQQqhJ"),
    ("TOKENSMITH_E2E_OAUTH2_SECRET", "s3cr3t+key/=="),
    ("TOKENSMITH_E2E_DEYEL_SECRET", "Deyel-API-user-key-8.7"),
];

fn registry() -> Registry {
    Registry::new()
        .with(tokensmith_soti::SotiConnect)
        .with(tokensmith_configapi::ConfigApi)
        .with(tokensmith_oauth2::OAuth2)
        .with(tokensmith_deyel::Deyel)
}

/// Contract §3's example, for every kind.
fn config(
    soti: &Emulator,
    configapi: &Emulator,
    oauth2: &Emulator,
    deyel: &Emulator,
    password_file: &str,
) -> String {
    format!(
        r#"
[providers.mdm]
kind = "soti-connect"
token_url = "{soti}"
client_id = "Application1"
client_secret = {{ env = "TOKENSMITH_E2E_SOTI_CLIENT_SECRET" }}
grant = "password"
username = "Administrator"
password = {{ file = {password_file:?} }}

[providers.config]
kind = "configapi"
token_url = "{configapi}"
client_id = "sheila.thomas"
client_secret = {{ env = "TOKENSMITH_E2E_CONFIGAPI_SECRET" }}
scope = "example.com"

[providers.api]
kind = "oauth2"
token_url = "{oauth2}"
client_id = "tokensmith-app"
client_secret = {{ env = "TOKENSMITH_E2E_OAUTH2_SECRET" }}
scope = ["read", "write"]

[providers.bpm]
kind = "DEYEL"
token_url = "{deyel}"
client_id = "APIUSER"
client_secret = {{ env = "TOKENSMITH_E2E_DEYEL_SECRET" }}
timeout = "10s"
"#,
        soti = soti.token_url(),
        configapi = configapi.token_url(),
        oauth2 = oauth2.token_url(),
        deyel = deyel.token_url(),
    )
}

#[test]
fn the_contract_example_serves_every_kind() {
    if std::env::var_os(CHILD).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(serve_every_kind());
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["registry_e2e::the_contract_example_serves_every_kind", "--exact", "--nocapture"])
        .env(CHILD, "1")
        .envs(ENV_SECRETS)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}\n{stderr}");
}

async fn serve_every_kind() {
    let soti = Emulator::start(Vendor::SotiConnect).await.unwrap();
    let configapi = Emulator::start(Vendor::ConfigApi).await.unwrap();
    let oauth2 = Emulator::start(Vendor::OAuth2).await.unwrap();
    let deyel = Emulator::start(Vendor::Deyel).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("soti-password");
    std::fs::write(&password_file, "1\n").unwrap(); // the trailing newline is trimmed
    let text = config(&soti, &configapi, &oauth2, &deyel, &password_file.display().to_string());

    let providers = registry().load_str(&text).unwrap();
    assert_eq!(providers.names().collect::<Vec<_>>(), ["api", "bpm", "config", "mdm"]);
    for (name, kind, emulator) in [
        ("mdm", "soti-connect", &soti),
        ("config", "configapi", &configapi),
        ("api", "oauth2", &oauth2),
        ("bpm", "deyel", &deyel),
    ] {
        let info = providers.info(name).unwrap();
        assert_eq!(info.kind, kind);
        assert_eq!(info.token_url.as_deref(), Some(emulator.token_url().as_str()));
        let token = providers.get(name).unwrap().token().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!token.secret().expose_secret().is_empty(), "{name}");
        assert!(token.expires_at().is_some(), "{name}");
        assert_eq!(emulator.tokens_issued(), 1, "{name}");
    }
    let shown = format!("{providers:?}");
    for (_, secret) in ENV_SECRETS {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn a_missing_variable_is_a_config_error_naming_it() {
    let err = registry()
        .load_str(
            r#"
            [providers.bpm]
            kind = "deyel"
            token_url = "https://deyel.example.com/token"
            client_id = "APIUSER"
            client_secret = { env = "TOKENSMITH_E2E_SURELY_UNSET_VARIABLE" }
            "#,
        )
        .unwrap_err();
    let TokenError::Config { provider, message, .. } = &err else {
        panic!("not a config error: {err}");
    };
    assert_eq!(provider.as_deref(), Some("bpm"));
    assert!(message.contains("TOKENSMITH_E2E_SURELY_UNSET_VARIABLE"), "{err}");
}
