//! Everything the CLI writes to stdout and stderr goes through this module,
//! and only this one (house rule: one place prints). It also holds the pure
//! formatting of what is printed: the `--json` object, aligned tables, and a
//! masked token for the demo.

use std::io::{self, Write as _};
use std::time::SystemTime;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use tokensmith_core::AccessToken;

/// Writes `text` and a newline to stdout.
///
/// A closed pipe (`tokensmith list | head -1`) is not an error.
pub(crate) fn stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Writes `text` and a newline to stderr (best effort).
pub(crate) fn stderr(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// The `token NAME --json` object (contract §4), fields in the contract's
/// order.
#[derive(Serialize)]
struct TokenJson<'a> {
    provider: &'a str,
    kind: &'a str,
    token_type: &'a str,
    access_token: &'a str,
    expires_in: Option<u64>,
    expires_at: Option<String>,
    scope: Option<&'a str>,
}

/// The `--json` text of `token` from `provider` of `kind`, as seen at `now`.
pub(crate) fn token_json(
    provider: &str,
    kind: &str,
    token: &AccessToken,
    now: SystemTime,
) -> String {
    let json = TokenJson {
        provider,
        kind,
        token_type: token.token_type().as_str(),
        access_token: token.secret().expose_secret(),
        expires_in: token.expires_in(now).map(|d| d.as_secs()),
        expires_at: token.expires_at().and_then(rfc3339),
        scope: token.scope().map(tokensmith_core::Scope::as_str),
    };
    serde_json::to_string(&json).unwrap_or_default()
}

/// The `--json` error object on stderr (contract §10's fields, in its
/// order): `{"error":…,"provider":…,"status":…,"vendor_error":…,"message":…}`.
pub(crate) fn error_json(report: &crate::exit::ErrorReport) -> String {
    #[derive(Serialize)]
    struct ErrorJson<'a> {
        error: &'a str,
        provider: Option<&'a str>,
        status: Option<u16>,
        vendor_error: Option<&'a str>,
        message: &'a str,
    }
    serde_json::to_string(&ErrorJson {
        error: report.error,
        provider: report.provider.as_deref(),
        status: report.status,
        vendor_error: report.vendor_error.as_deref(),
        message: &report.message,
    })
    .unwrap_or_default()
}

/// `at` in RFC 3339 (UTC, whole seconds); `None` outside the years 1970 to
/// 9999, which humantime cannot write (its `to_string` would panic).
fn rfc3339(at: SystemTime) -> Option<String> {
    use std::fmt::Write as _;
    at.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let mut out = String::new();
    write!(out, "{}", humantime::format_rfc3339_seconds(at)).ok()?;
    Some(out)
}

/// A token shown without giving it away: its first few characters and its
/// length, e.g. `eyJhbG… (311 chars)`.
pub(crate) fn mask(token: &str) -> String {
    const SHOWN: usize = 6;
    let len = token.chars().count();
    let prefix: String = token.chars().take(SHOWN.min(len / 4)).collect();
    format!("{prefix}… ({len} chars)")
}

/// Lines of `rows` under `header`, each column padded to its widest cell and
/// separated by two spaces (trailing spaces trimmed).
pub(crate) fn table<S: AsRef<str>>(header: Option<&[&str]>, rows: &[Vec<S>]) -> Vec<String> {
    let columns = header.map_or(0, <[&str]>::len).max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0; columns];
    let header_cells: Vec<&str> = header.map(<[&str]>::to_vec).unwrap_or_default();
    for (i, cell) in header_cells.iter().enumerate() {
        widths[i] = widths[i].max(cell.chars().count());
    }
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.as_ref().chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.trim_end().to_owned()
    };
    let mut lines = Vec::with_capacity(rows.len() + 1);
    if header.is_some() {
        lines.push(line(&mut header_cells.iter().copied()));
    }
    for row in rows {
        lines.push(line(&mut row.iter().map(AsRef::as_ref)));
    }
    lines
}

/// The subscriber `tokensmith` runs without `--verbose`: it prints each
/// token-store warning (`tracing` target `tokensmith::store`, level `WARN`
/// or `ERROR`) as one `tokensmith: warning:` line on stderr: the message,
/// then the provider and the error. Nothing the store logs holds a secret.
///
/// Every other event and every span is disabled at its callsite, so this
/// needs none of `tracing-subscriber`'s registry, whose span slabs cost a
/// cache hit more start-up work than the rest of its logging setup.
pub(crate) struct StoreWarnings;

/// The `tracing` target of the token store's events.
const STORE_TARGET: &str = "tokensmith::store";

impl StoreWarnings {
    fn wanted(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event()
            && *metadata.level() <= tracing::Level::WARN
            && metadata.target().starts_with(STORE_TARGET)
    }
}

impl tracing::Subscriber for StoreWarnings {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::wanted(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        Self::wanted(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::WARN)
    }

    // Spans are never enabled (`wanted` takes events only); an id is
    // required all the same.
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        stderr(&warning_line(event));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// The one line a store warning is printed as.
fn warning_line(event: &tracing::Event<'_>) -> String {
    #[derive(Default)]
    struct Fields {
        message: String,
        provider: Option<String>,
        error: Option<String>,
    }
    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            let text = format!("{value:?}");
            match field.name() {
                "message" => self.message = text,
                "provider" => self.provider = Some(text),
                "error" => self.error = Some(text),
                _ => {}
            }
        }
    }
    let mut fields = Fields::default();
    event.record(&mut fields);
    let provider = fields.provider.map(|p| format!("provider {p:?}: ")).unwrap_or_default();
    let error = fields.error.map(|e| format!(" ({e})")).unwrap_or_default();
    let line = format!("tokensmith: warning: {provider}{}{error}", fields.message);
    line.replace(char::is_control, " ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokensmith_core::{Scope, TokenType};

    use super::*;

    #[test]
    fn json_has_the_contract_fields_in_order() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = AccessToken::builder("abc", now)
            .token_type(TokenType::parse(Some("bearer")))
            .expires_in(Duration::from_secs(3599))
            .scope(Some(Scope::parse("tenant-a")))
            .build();
        assert_eq!(
            token_json("cfg", "configapi", &token, now + Duration::from_secs(1)),
            r#"{"provider":"cfg","kind":"configapi","token_type":"Bearer","access_token":"abc","expires_in":3598,"expires_at":"2023-11-14T23:13:19Z","scope":"tenant-a"}"#
        );
        let bare = AccessToken::builder("abc", now).build();
        assert_eq!(
            token_json("d", "deyel", &bare, now),
            r#"{"provider":"d","kind":"deyel","token_type":"Bearer","access_token":"abc","expires_in":null,"expires_at":null,"scope":null}"#
        );
    }

    #[test]
    fn json_never_panics_on_an_expiry_rfc_3339_cannot_write() {
        // Past the year 9999: humantime cannot format it.
        let far = SystemTime::UNIX_EPOCH + Duration::from_hours(100_000_000);
        let token = AccessToken::builder("abc", far).expires_in(Duration::from_mins(1)).build();
        let json: serde_json::Value =
            serde_json::from_str(&token_json("p", "deyel", &token, far)).unwrap();
        assert_eq!(json["expires_in"], 60);
        assert!(json["expires_at"].is_null());
    }

    #[test]
    fn masking_shows_a_short_prefix_and_the_length() {
        assert_eq!(mask("eyJhbGciOiJIUzI1NiJ9.payload.sig"), "eyJhbG… (32 chars)");
        assert_eq!(mask("abcdefgh"), "ab… (8 chars)");
        assert_eq!(mask(""), "… (0 chars)");
    }

    #[test]
    fn tables_are_aligned() {
        let rows = vec![vec!["mdm", "soti-connect"], vec!["crm-long", "oauth2"]];
        assert_eq!(table(None, &rows), vec!["mdm       soti-connect", "crm-long  oauth2"]);
        assert_eq!(
            table(Some(&["NAME", "KIND"]), &rows[..1]),
            vec!["NAME  KIND", "mdm   soti-connect"]
        );
    }

    #[test]
    fn json_errors_have_the_contract_fields_in_order() {
        let report = crate::exit::ErrorReport {
            error: "rejected",
            provider: Some("mdm".into()),
            status: Some(400),
            vendor_error: Some("invalid_client".into()),
            message: "provider \"mdm\": refused".into(),
        };
        assert_eq!(
            error_json(&report),
            r#"{"error":"rejected","provider":"mdm","status":400,"vendor_error":"invalid_client","message":"provider \"mdm\": refused"}"#
        );
    }
}
