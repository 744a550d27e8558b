//! Exit codes (contract §4) and the one stderr line for a failure.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 2 | usage or config error (also: a local problem such as an unusable cache directory) |
//! | 3 | the token endpoint refused the request and said why ([`TokenError::is_rejected`]) |
//! | 4 | transport or server failure: connection, timeout, redirect, 5xx, unparseable or oversized response; a 4xx nobody explains ([`TokenError::Endpoint`]: check `token_url`) |

use std::fmt;

use tokensmith_core::{TokenError, error_line};

/// Success.
pub(crate) const SUCCESS: u8 = 0;
/// Usage or config error (clap's usage errors exit 2 as well).
pub(crate) const USAGE: u8 = 2;
/// The token endpoint refused the request.
pub(crate) const REFUSED: u8 = 3;
/// Transport or server failure.
pub(crate) const FAILURE: u8 = 4;

/// The exit code for a token error.
pub(crate) fn for_token_error(err: &TokenError) -> u8 {
    if err.is_config() {
        USAGE
    } else if err.is_rejected() {
        REFUSED
    } else {
        FAILURE
    }
}

/// The exit code for any error the commands return: the first
/// [`TokenError`] or [`Exit`] in its chain decides; anything else is a local
/// problem (a file, a port) and exits [`USAGE`].
pub(crate) fn for_error(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(token_err) = cause.downcast_ref::<TokenError>() {
            return for_token_error(token_err);
        }
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
    }
    USAGE
}

/// The one line printed on stderr for `err`.
///
/// A [`TokenError`] is printed by its own `Display` (provider, HTTP status,
/// vendor error code and message; never a secret), without the chain of
/// underlying transport errors, which `--verbose` logs instead; anything
/// else by core's [`error_line`].
pub(crate) fn message(err: &anyhow::Error) -> String {
    match err.chain().find_map(|c| c.downcast_ref::<TokenError>()) {
        // One line by core's `Display`.
        Some(token_err) => token_err.to_string(),
        None => error_line(err.as_ref()),
    }
}

/// What a `--json` command writes on stderr for a failure: contract §10's
/// error object.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ErrorReport {
    /// `config`, `unknown_provider`, `rejected` (exit 3), `unavailable`
    /// (exit 4), or `error` for any other failure.
    pub(crate) error: &'static str,
    /// The provider, when the error belongs to one.
    pub(crate) provider: Option<String>,
    /// The HTTP status, when a response arrived.
    pub(crate) status: Option<u16>,
    /// The vendor's error code (`invalid_client`), when it sent one.
    pub(crate) vendor_error: Option<String>,
    /// The same text as the plain stderr line, without `tokensmith: `.
    pub(crate) message: String,
}

/// Marks a [`TokenError`] raised because no provider has the name asked for.
#[derive(Debug)]
pub(crate) struct UnknownProvider;

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown provider")
    }
}

/// The `--json` description of `err`; its `error` follows the exit code.
pub(crate) fn describe(err: &anyhow::Error) -> ErrorReport {
    let token_err = err.chain().find_map(|c| c.downcast_ref::<TokenError>());
    let error = match for_error(err) {
        USAGE if err.downcast_ref::<UnknownProvider>().is_some() => "unknown_provider",
        USAGE => "config",
        REFUSED => "rejected",
        FAILURE => "unavailable",
        _ => "error",
    };
    ErrorReport {
        error,
        provider: token_err.and_then(TokenError::provider).map(str::to_owned),
        status: token_err.and_then(TokenError::status),
        vendor_error: token_err.and_then(TokenError::oauth_error_code).map(str::to_owned),
        message: message(err),
    }
}

/// A failure with an explicit exit code (for example: the demo, when an
/// adapter failed after the table was printed).
#[derive(Debug)]
pub(crate) struct Exit {
    /// The exit code.
    pub(crate) code: u8,
    /// What failed.
    pub(crate) message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;
    use tokensmith_core::TransportErrorKind;

    use super::*;

    #[test]
    fn token_errors_map_to_the_contract_codes() {
        // Refusals by a real endpoint (exit 3) are covered end to end in tests/it.
        let config = TokenError::config(Some("mdm"), Some("kind"), "unknown kind");
        assert_eq!(for_token_error(&config), USAGE);
        let reauth = TokenError::reauthorization_required("mdm", "new code needed");
        assert_eq!(for_token_error(&reauth), REFUSED);
        let timeout = TokenError::transport("mdm", TransportErrorKind::Timeout, "", None);
        assert_eq!(for_token_error(&timeout), FAILURE);
        let invalid = TokenError::invalid_response("mdm", 200, "no access_token", b"{}");
        assert_eq!(for_token_error(&invalid), FAILURE);
    }

    #[test]
    fn the_chain_decides_and_the_line_is_the_token_error() {
        let err = anyhow::Error::new(TokenError::transport(
            "mdm",
            TransportErrorKind::Redirect,
            "HTTP 302 to elsewhere.example not followed",
            None,
        ))
        .context("getting a token");
        assert_eq!(for_error(&err), FAILURE);
        assert_eq!(
            message(&err),
            "provider \"mdm\": redirect refused: HTTP 302 to elsewhere.example not followed"
        );
        let local: anyhow::Result<()> =
            Err(std::io::Error::other("disk full")).context("cannot write");
        let local = local.unwrap_err();
        assert_eq!(for_error(&local), USAGE);
        assert_eq!(message(&local), "cannot write: disk full");
        // Core's one line: a layer that restates its cause says it once,
        // and no text breaks the line.
        let restated: anyhow::Result<()> =
            Err(std::io::Error::other("disk\nfull")).context("cannot write /tmp/x: disk full");
        assert_eq!(message(&restated.unwrap_err()), "cannot write /tmp/x: disk full");
        let restated: anyhow::Result<()> =
            Err(std::io::Error::other("disk full")).context("cannot write\n/tmp/x: disk full");
        assert_eq!(message(&restated.unwrap_err()), "cannot write /tmp/x: disk full");
        let token = anyhow::Error::new(TokenError::config(Some("p"), None, "bad\nvalue"));
        assert_eq!(message(&token), "config error: provider \"p\": bad value");
        let exit = anyhow::Error::new(Exit { code: FAILURE, message: "2 of 4 failed".into() });
        assert_eq!(for_error(&exit), FAILURE);
    }

    #[test]
    fn json_errors_follow_the_exit_code_and_carry_the_token_error_s_fields() {
        let timeout = anyhow::Error::new(TokenError::transport(
            "mdm",
            TransportErrorKind::Timeout,
            "no complete response within 1s",
            None,
        ));
        let report = describe(&timeout);
        assert_eq!(report.error, "unavailable");
        assert_eq!(report.provider.as_deref(), Some("mdm"));
        assert_eq!((report.status, report.vendor_error), (None, None));
        assert_eq!(report.message, message(&timeout));
        let unknown = anyhow::Error::new(TokenError::config(Some("x"), None, "no such provider"))
            .context(UnknownProvider);
        assert_eq!(describe(&unknown).error, "unknown_provider");
        assert_eq!(describe(&unknown).message, "config error: provider \"x\": no such provider");
        let config = anyhow::Error::new(TokenError::config(None, None, "invalid TOML"));
        assert_eq!((describe(&config).error, describe(&config).provider), ("config", None));
        let reauth = anyhow::Error::new(TokenError::reauthorization_required("p", "code spent"));
        assert_eq!(describe(&reauth).error, "rejected");
    }
}
