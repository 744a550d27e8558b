//! Generality: each of the four seed vendors, described as `kind = "custom"`,
//! gets tokens from that vendor's own emulator (its adapter crate stays the
//! recommended way).

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{Registry, TokenType};
use tokensmith_custom::Custom;
use tokensmith_testkit::{Emulator, Vendor};

/// The description of `vendor` as `kind = "custom"`, for its emulator.
fn description(vendor: Vendor, emulator: &Emulator) -> String {
    let creds = emulator.credentials();
    let url = emulator.token_url();
    let id = creds.client_id();
    let secret = creds.client_secret().unwrap();
    match vendor {
        // SOTI Connect: Basic id:secret, the password grant, lowercase bearer.
        Vendor::SotiConnect => format!(
            r#"
[providers.seed]
kind = "custom"
token_url = "{url}"
client_id = "{id}"
client_secret = "{secret}"
username = "{user}"
password = "{password}"
[providers.seed.request]
auth = "basic"
fields = {{ grant_type = "password", username = "{{username}}", password = "{{password}}" }}
[providers.seed.response]
token = "/access_token"
token_type = "/token_type"
expires_in = "/expires_in"
error_code = "/error"
error_message = "/error_description"
"#,
            user = creds.username().unwrap(),
            password = creds.password().unwrap(),
        ),
        // configapi: everything in the form, expires_in as a string.
        Vendor::ConfigApi => format!(
            r#"
[providers.seed]
kind = "custom"
token_url = "{url}"
client_id = "{id}"
client_secret = "{secret}"
[providers.seed.request]
auth = "body"
fields = {{ grant_type = "client_credentials", scope = "{scope}" }}
[providers.seed.response]
token = "/access_token"
token_type = "/token_type"
expires_in = "/expires_in"
"#,
            scope = creds.scope().unwrap(),
        ),
        // The scoped OAuth 2.0 vendor: client_secret_post, a scope, errors in
        // `errors[0].message`.
        Vendor::OAuth2 => format!(
            r#"
[providers.seed]
kind = "custom"
token_url = "{url}"
client_id = "{id}"
client_secret = "{secret}"
[providers.seed.request]
auth = {{ type = "body" }}
fields = {{ grant_type = "client_credentials", scope = "{scope}" }}
[providers.seed.response]
token = "/access_token"
scope = "/scope"
token_type = "/token_type"
expires_in = "/expires_in"
error_message = "/errors/0/message"
"#,
            scope = creds.scope().unwrap(),
        ),
        // Deyel: Basic id:secret, client_credentials, a day-long JWT.
        _ => format!(
            r#"
[providers.seed]
kind = "custom"
token_url = "{url}"
client_id = "{id}"
client_secret = "{secret}"
[providers.seed.request]
auth = {{ type = "basic", user = "client_id", password = "client_secret" }}
fields = {{ grant_type = "client_credentials" }}
[providers.seed.response]
token = "/access_token"
expires_in = "/expires_in"
error_code = "/error"
error_message = "/error_description"
"#
        ),
    }
}

#[tokio::test]
async fn each_seed_vendor_described_as_custom_gets_a_token_from_its_own_emulator() {
    for vendor in Vendor::ALL {
        let emulator = Emulator::start(vendor).await.unwrap();
        let text = description(vendor, &emulator);
        let providers = Registry::new().with(Custom).load_str(&text).unwrap();
        let provider = providers.get("seed").unwrap();
        let token = provider.token().await.unwrap_or_else(|e| panic!("{vendor}: {e}"));
        assert!(!token.secret().expose_secret().is_empty(), "{vendor}");
        assert_eq!(token.token_type(), &TokenType::Bearer, "{vendor}");
        let lifetime = token.expires_at().unwrap().duration_since(token.received_at()).unwrap();
        assert_eq!(lifetime, vendor.default_token_lifetime(), "{vendor}");
        assert_eq!(emulator.tokens_issued(), 1, "{vendor}");
        // Cached: a second call makes no request.
        provider.token().await.unwrap();
        assert_eq!(emulator.requests(), 1, "{vendor}");
    }
}

#[tokio::test]
async fn each_seed_vendor_s_refusal_reads_as_a_rejection_without_the_secret() {
    for vendor in Vendor::ALL {
        let emulator = Emulator::start(vendor).await.unwrap();
        let secret = emulator.credentials().client_secret().unwrap();
        let text = description(vendor, &emulator).replace(secret, "Wrong-Secret-9");
        let providers = Registry::new().with(Custom).load_str(&text).unwrap();
        let err = providers.get("seed").unwrap().token().await.unwrap_err();
        assert!(err.is_rejected(), "{vendor}: {err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("Wrong-Secret-9"), "{vendor}: {shown}");
        assert!(!shown.contains(secret), "{vendor}: {shown}");
    }
}
