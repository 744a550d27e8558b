//! The secret-leak scanner: the one way tokensmith's tests search real
//! output (logs, errors, CLI output, agent responses, store keys and values)
//! for secrets, in every spelling a secret travels in.
//!
//! A test registers each secret it configured with a label ([`Scanner::secret`],
//! [`Scanner::basic`], [`Scanner::exact`]), feeds every text it captured to
//! [`Scanner::check`], and ends with [`Scanner::assert_clean`], which fails
//! with every finding (where, which secret, in which spelling, with the text
//! around it). Secrets made by [`distinctive`] appear nowhere by chance.
//!
//! ```
//! use tokensmith_testkit::leak::{Scanner, distinctive};
//!
//! let secret = distinctive("S3cr3t");
//! let scanner = Scanner::new();
//! scanner.secret("client secret", &secret);
//! scanner.check("an error", "provider \"api\": the token endpoint refused the client");
//! assert!(scanner.findings().is_empty());
//! // Form-encoded, JSON-escaped or base64, it is still found.
//! let form = tokensmith_testkit::leak::form_encoded(&secret);
//! scanner.check("a log line", &format!("sent client_secret={form}"));
//! assert_eq!(scanner.findings().len(), 1);
//! ```

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// A value no other test uses: `prefix`, 64 random bits, and characters
/// that form encoding and JSON escaping change (`+ / & = "`), e.g.
/// `S3cr3t-5f0c…+/&="`.
pub fn distinctive(prefix: &str) -> String {
    let random = RandomState::new().hash_one(prefix);
    format!("{prefix}-{random:016x}+/&=\"")
}

/// `value` form-urlencoded (`application/x-www-form-urlencoded`).
pub fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `value` as it appears inside a JSON string (without the quotes).
pub fn json_escaped(value: &str) -> String {
    let quoted = serde_json::Value::from(value).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Every spelling of `value` the scanner searches for: raw, form-encoded,
/// JSON-escaped (with and without `\/`), base64 and base64url.
pub fn spellings(value: &str) -> Vec<String> {
    let mut all = vec![
        value.to_owned(),
        form_encoded(value),
        json_escaped(value),
        json_escaped(value).replace('/', "\\/"),
        STANDARD.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ];
    all.sort();
    all.dedup();
    all
}

/// The secrets to look for, each with a label, and what was found.
///
/// Shared between threads (`&self` everywhere): a test's tasks feed it
/// concurrently.
#[derive(Debug, Default)]
pub struct Scanner {
    needles: Mutex<Vec<(String, String)>>,
    findings: Mutex<Vec<String>>,
    checked: AtomicUsize,
}

impl Scanner {
    /// A scanner looking for nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks for `value` in every [spelling](spellings).
    ///
    /// # Panics
    ///
    /// When `value` is shorter than 8 characters (it would be found by
    /// chance), or a lock was poisoned.
    pub fn secret(&self, label: &str, value: &str) {
        assert!(value.len() >= 8, "{label}: {value:?} is too short to search for");
        let mut needles = self.needles.lock().unwrap();
        for spelling in spellings(value) {
            needles.push((label.to_owned(), spelling));
        }
    }

    /// Looks for the HTTP Basic credentials of `id:secret` (raw and
    /// form-encoded halves, RFC 6749 §2.3.1), and for `secret` itself in
    /// every spelling.
    ///
    /// # Panics
    ///
    /// As [`secret`](Self::secret).
    pub fn basic(&self, label: &str, id: &str, secret: &str) {
        self.secret(label, secret);
        let mut needles = self.needles.lock().unwrap();
        for pair in
            [format!("{id}:{secret}"), format!("{}:{}", form_encoded(id), form_encoded(secret))]
        {
            needles.push((format!("{label} (Basic)"), STANDARD.encode(pair)));
        }
    }

    /// Looks for exactly `value` (a token the test did not choose, a PEM
    /// line, a key in hex), no other spelling.
    ///
    /// # Panics
    ///
    /// As [`secret`](Self::secret).
    pub fn exact(&self, label: &str, value: &str) {
        assert!(value.len() >= 8, "{label}: {value:?} is too short to search for");
        self.needles.lock().unwrap().push((label.to_owned(), value.to_owned()));
    }

    /// One line per secret `text` shows (`what` names the text), without
    /// recording anything.
    ///
    /// # Panics
    ///
    /// When a lock was poisoned.
    pub fn scan(&self, what: &str, text: &str) -> Vec<String> {
        self.scan_except(what, text, &[])
    }

    /// As [`scan`](Self::scan), ignoring the secrets labelled one of
    /// `allowed` (an access token on the stdout of the command that prints
    /// it).
    ///
    /// # Panics
    ///
    /// When a lock was poisoned.
    pub fn scan_except(&self, what: &str, text: &str, allowed: &[&str]) -> Vec<String> {
        self.needles
            .lock()
            .unwrap()
            .iter()
            .filter(|(label, _)| !allowed.contains(&label.as_str()))
            .filter(|(_, needle)| text.contains(needle.as_str()))
            .map(|(label, needle)| {
                let at = text.find(needle.as_str()).unwrap_or(0);
                let from = at.saturating_sub(60);
                let to = (at + needle.len() + 60).min(text.len());
                let around = String::from_utf8_lossy(&text.as_bytes()[from..to]);
                format!("{what}: shows the {label} as {needle:?} in …{around}…")
            })
            .collect()
    }

    /// Scans `text` (shown as `what`) and records what it shows.
    ///
    /// # Panics
    ///
    /// When a lock was poisoned.
    pub fn check(&self, what: &str, text: &str) {
        self.check_except(what, text, &[]);
    }

    /// As [`check`](Self::check), ignoring the secrets labelled one of
    /// `allowed`.
    ///
    /// # Panics
    ///
    /// When a lock was poisoned.
    pub fn check_except(&self, what: &str, text: &str, allowed: &[&str]) {
        self.checked.fetch_add(1, Ordering::Relaxed);
        let found = self.scan_except(what, text, allowed);
        self.findings.lock().unwrap().extend(found);
    }

    /// Scans bytes (a file, a Redis key or value), read as UTF-8 where they
    /// are, and records what they show.
    ///
    /// # Panics
    ///
    /// When a lock was poisoned.
    pub fn check_bytes(&self, what: &str, bytes: &[u8]) {
        self.check(what, &String::from_utf8_lossy(bytes));
    }

    /// How many texts were checked.
    pub fn checked(&self) -> usize {
        self.checked.load(Ordering::Relaxed)
    }

    /// Every finding recorded so far.
    ///
    /// # Panics
    ///
    /// When a lock was poisoned.
    pub fn findings(&self) -> Vec<String> {
        self.findings.lock().unwrap().clone()
    }

    /// Fails with every finding, or when fewer than `min_checks` texts were
    /// checked (a test that scanned nothing proves nothing). The message
    /// starts with the number of findings: `3 leaks:` and one per line.
    ///
    /// # Panics
    ///
    /// As said: that is its purpose.
    #[track_caller]
    pub fn assert_clean(&self, min_checks: usize) {
        let checked = self.checked();
        assert!(checked >= min_checks, "only {checked} texts checked, expected {min_checks}");
        let findings = self.findings();
        assert!(findings.is_empty(), "{} leaks:\n{}", findings.len(), findings.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_found_and_clean_text_is_not() {
        let secret = distinctive("S3cr3t");
        let scanner = Scanner::new();
        scanner.basic("client secret", "app", &secret);
        for text in [
            format!("raw {secret}"),
            format!("form {}", form_encoded(&secret)),
            format!("json \"{}\"", json_escaped(&secret)),
            format!("json \"{}\"", json_escaped(&secret).replace('/', "\\/")),
            STANDARD.encode(&secret),
            URL_SAFE_NO_PAD.encode(&secret),
            format!("Basic {}", STANDARD.encode(format!("app:{secret}"))),
            format!("Basic {}", STANDARD.encode(format!("app:{}", form_encoded(&secret)))),
        ] {
            assert!(!scanner.scan("planted", &text).is_empty(), "missed {text}");
        }
        assert!(scanner.scan("clean", "provider \"p\": refused (HTTP 401)").is_empty());
        assert!(scanner.scan_except("allowed", &secret, &["client secret"]).is_empty());
    }

    #[test]
    fn assert_clean_fails_with_every_finding_and_on_too_few_checks() {
        let scanner = Scanner::new();
        scanner.exact("token", "tok-123456789");
        scanner.check("stdout", "tok-123456789");
        let report = std::panic::catch_unwind(|| scanner.assert_clean(1)).unwrap_err();
        let report = report.downcast_ref::<String>().unwrap();
        assert!(report.starts_with("1 leaks:\nstdout: shows the token"), "{report}");
        let empty = Scanner::new();
        assert!(std::panic::catch_unwind(|| empty.assert_clean(1)).is_err());
        empty.assert_clean(0);
    }
}
