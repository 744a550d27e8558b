//! The ready-to-use `[providers.NAME]` TOML table of an emulator.

use std::fmt::Write as _;

use crate::server::json_string;
use crate::vendor::Vendor;

/// The `[providers.NAME]` table (contract §3) for `vendor` at `token_url`.
pub(crate) fn config_snippet(vendor: Vendor, name: &str, token_url: &str) -> String {
    let creds = vendor.credentials();
    let mut out = String::new();
    let mut field = |key: &str, value: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{key} = {}", toml_string(value));
    };
    field("kind", vendor.kind());
    field("token_url", token_url);
    field("client_id", creds.client_id());
    if let Some(secret) = creds.client_secret() {
        field("client_secret", secret);
    }
    match vendor {
        Vendor::SotiConnect => {
            field("grant", "password");
            field("username", creds.username().unwrap_or_default());
            field("password", creds.password().unwrap_or_default());
        }
        Vendor::ConfigApi => field("scope", creds.scope().unwrap_or_default()),
        Vendor::OAuth2 => {
            field("grant", "client_credentials");
            field("scope", creds.scope().unwrap_or_default());
        }
        Vendor::Deyel => {}
    }
    format!("[providers.{}]\n{out}", toml_key(name))
}

/// A TOML basic string (JSON's escapes are a subset of TOML's; TOML also
/// forbids a raw DEL).
fn toml_string(s: &str) -> String {
    json_string(s).replace('\u{7f}', "\\u007F")
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    let bare =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { name.to_owned() } else { toml_string(name) }
}
