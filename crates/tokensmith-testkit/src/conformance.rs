//! A conformance suite any adapter crate runs against its vendor's emulator:
//! [`run`].
//!
//! It builds the adapter's provider from the emulator's
//! [`config_snippet`](crate::Emulator::config_snippet) through the adapter's
//! own [`AdapterFactory`] (the testkit depends on no adapter: the caller
//! passes its factory in), uncached so that every call is one request, with
//! a [`ManualClock`] driving both the provider and the emulator. Then it
//! checks what every adapter must do whatever its vendor:
//!
//! | check | expected |
//! |---|---|
//! | success | one request, one token, `expires_at` = now + the emulator's lifetime |
//! | `expires_in` | each lifetime the emulator sends (in the vendor's own JSON form) becomes `expires_at` |
//! | bad client credentials | [`TokenError::Rejected`] with a 400, 401 or 403 |
//! | 400, 401, 403 with the vendor's error body | [`TokenError::Rejected`] with that status |
//! | 429 with `Retry-After` | [`TokenError::Rejected`] with status 429 and its `retry_after` |
//! | 500, 503, a 502 HTML page | [`TokenError::Server`] with that status |
//! | malformed, empty or oversized body | [`TokenError::InvalidResponse`] |
//! | a redirect | a transport error, never followed |
//! | a dropped connection | a transport error |
//! | no answer | a timeout (`timeout` is set to 300 ms for this check) |
//! | every case | exactly one request (adapters never retry), no secret in any error's `Display` or `Debug`, nor in the provider's `Debug` |
//!
//! ```no_run
//! // In the adapter crate's tests/it/conformance.rs:
//! #[tokio::test]
//! async fn conforms() {
//!     tokensmith_testkit::conformance::run(&tokensmith_deyel::Deyel, tokensmith_testkit::Vendor::Deyel)
//!         .await;
//! }
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{
    AdapterFactory, Clock as _, ManualClock, ProviderContext, SharedTokenProvider, TokenError,
    TransportErrorKind,
};

use crate::{Emulator, Fault, Vendor};

/// The provider name the suite uses.
const NAME: &str = "conformance";

/// A client secret the emulator refuses (and that must never be shown).
const WRONG_SECRET: &str = "wrong-conformance-secret-7f3a";

/// Runs the conformance suite of `factory` against an emulator of `vendor`
/// and panics with every failed check listed.
///
/// Must be called inside a Tokio runtime with the IO and time drivers
/// enabled (as `#[tokio::test]` provides). Takes about half a second (the
/// timeout check waits for a real 300 ms timeout).
///
/// # Panics
///
/// When `factory` does not build the snippet's provider, or when any check
/// fails.
pub async fn run(factory: &dyn AdapterFactory, vendor: Vendor) {
    let mut suite = Suite::start(factory, vendor).await;
    suite.run().await;
    let failures = std::mem::take(&mut suite.failures);
    suite.emulator.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} conformance failures for kind {:?} against the {} emulator:\n{}",
        failures.len(),
        factory.kind(),
        vendor.display_name(),
        failures.join("\n")
    );
}

/// One run: the emulator, the clock, the factory and what failed so far.
struct Suite<'a> {
    factory: &'a dyn AdapterFactory,
    emulator: Emulator,
    clock: ManualClock,
    failures: Vec<String>,
    /// Every secret the provider knows or was given.
    secrets: Vec<String>,
}

/// What a faulted request must fail with.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Rejected(u16),
    Server(u16),
    InvalidResponse,
    Transport(TransportErrorKind),
    /// Any transport error (a dropped connection may read as an IO or a
    /// connect error, depending on timing).
    AnyTransport,
}

impl<'a> Suite<'a> {
    async fn start(factory: &'a dyn AdapterFactory, vendor: Vendor) -> Suite<'a> {
        let emulator = Emulator::start(vendor).await.expect("start the emulator on 127.0.0.1");
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let emulator_clock = clock.clone();
        emulator.set_clock(move || emulator_clock.now());
        let creds = vendor.credentials();
        let mut secrets: Vec<String> =
            [creds.client_secret(), creds.password(), Some(WRONG_SECRET)]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
        // Also as form-encoded (Basic per RFC 6749 §2.3.1, or a form body).
        let encoded: Vec<String> = secrets
            .iter()
            .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect())
            .collect();
        secrets.extend(encoded);
        secrets.retain(|s| s.len() >= 4);
        Suite { factory, emulator, clock, failures: Vec::new(), secrets }
    }

    /// The uncached provider of the emulator's snippet, with `edit` applied
    /// to its table.
    fn provider(&self, edit: impl FnOnce(&mut toml::Table)) -> SharedTokenProvider {
        let snippet = self.emulator.config_snippet(NAME);
        let mut document: toml::Table = snippet.parse().expect("the snippet is TOML");
        let mut table = document
            .remove("providers")
            .and_then(|p| p.as_table().and_then(|p| p.get(NAME)).cloned())
            .and_then(|t| t.as_table().cloned())
            .expect("the snippet has [providers.conformance]");
        edit(&mut table);
        let ctx = ProviderContext::new(NAME, table, Arc::new(self.clock.clone()))
            .unwrap_or_else(|e| panic!("the snippet of the emulator is not a valid provider: {e}"));
        self.factory
            .build(ctx)
            .unwrap_or_else(|e| panic!("the adapter refuses its emulator's snippet: {e}"))
    }

    fn fail(&mut self, check: &str, what: impl std::fmt::Display) {
        self.failures.push(format!("- {check}: {what}"));
    }

    /// Every secret that shows up in `text`.
    fn leaks(&self, text: &str) -> Vec<&str> {
        self.secrets.iter().filter(|s| text.contains(s.as_str())).map(String::as_str).collect()
    }

    async fn run(&mut self) {
        if self.factory.kind() != self.emulator.vendor().kind() {
            let kind = self.factory.kind();
            self.fail("kind", format!("the factory's kind {kind:?} is not the vendor's"));
        }
        let provider = self.provider(|_| {});
        let debug = format!("{provider:?}");
        if !self.leaks(&debug).is_empty() {
            self.fail("provider Debug", format!("shows a secret: {:?}", self.leaks(&debug)));
        }
        self.success(&provider).await;
        for lifetime in [60, 1, 3599, 86_400] {
            self.emulator.set_token_lifetime(Duration::from_secs(lifetime));
            self.lifetime(&provider, lifetime).await;
        }
        self.emulator.set_token_lifetime(self.emulator.vendor().default_token_lifetime());
        let wrong = self.provider(|t| {
            t.insert("client_secret".into(), WRONG_SECRET.into());
        });
        self.expect_error("bad client credentials", &wrong, None, &[400, 401, 403]).await;
        let faults = [
            ("400 with the vendor's body", Fault::Status(400), Expect::Rejected(400)),
            ("401 with the vendor's body", Fault::Status(401), Expect::Rejected(401)),
            ("403 with the vendor's body", Fault::Status(403), Expect::Rejected(403)),
            (
                "429 with Retry-After",
                Fault::TooManyRequests { retry_after_secs: 7 },
                Expect::Rejected(429),
            ),
            ("500 with the vendor's body", Fault::Status(500), Expect::Server(500)),
            ("503 with the vendor's body", Fault::Status(503), Expect::Server(503)),
            ("502 HTML page", Fault::HtmlErrorPage, Expect::Server(502)),
            ("malformed JSON", Fault::MalformedBody, Expect::InvalidResponse),
            ("empty body", Fault::EmptyBody, Expect::InvalidResponse),
            ("oversized body", Fault::OversizedBody, Expect::InvalidResponse),
            ("redirect", Fault::Redirect, Expect::Transport(TransportErrorKind::Redirect)),
            ("dropped connection", Fault::DropConnection, Expect::AnyTransport),
        ];
        for (check, fault, expect) in faults {
            self.emulator.set_fault_next(1, fault);
            self.expect_error(check, &provider, Some(expect), &[]).await;
        }
        if self.emulator.redirect_follows() != 0 {
            self.fail("redirect", "the adapter followed the redirect");
        }
        let slow = self.provider(|t| {
            t.insert("timeout".into(), "300ms".into());
        });
        self.emulator.set_fault_next(1, Fault::NeverAnswer);
        let timeout = Expect::Transport(TransportErrorKind::Timeout);
        self.expect_error("no answer", &slow, Some(timeout), &[]).await;
    }

    async fn success(&mut self, provider: &SharedTokenProvider) {
        self.emulator.reset_counters();
        match provider.token().await {
            Ok(token) => {
                if token.secret().expose_secret().is_empty() {
                    self.fail("success", "the access token is empty");
                }
                let debug = format!("{token:?}");
                if debug.contains(token.secret().expose_secret()) {
                    self.fail("success", "the token's Debug shows the access token");
                }
            }
            Err(e) => self.fail("success", format!("failed: {e}")),
        }
        let (requests, issued) = (self.emulator.requests(), self.emulator.tokens_issued());
        if (requests, issued) != (1, 1) {
            self.fail("success", format!("{requests} requests and {issued} tokens, not 1 and 1"));
        }
    }

    async fn lifetime(&mut self, provider: &SharedTokenProvider, secs: u64) {
        let check = format!("expires_in {secs}");
        self.clock.advance(Duration::from_secs(1));
        match provider.token().await {
            Ok(token) => {
                let want = self.clock.now() + Duration::from_secs(secs);
                if token.expires_at() != Some(want) {
                    let got = token.expires_at();
                    self.fail(&check, format!("expires_at {got:?}, not now + {secs} s"));
                }
            }
            Err(e) => self.fail(&check, format!("failed: {e}")),
        }
    }

    /// One call of `provider` must fail as `expect` (or, without one, be a
    /// refusal with one of `statuses`), with one request and no secret shown.
    async fn expect_error(
        &mut self,
        check: &str,
        provider: &SharedTokenProvider,
        expect: Option<Expect>,
        statuses: &[u16],
    ) {
        self.emulator.reset_counters();
        let Err(err) = provider.token().await else {
            return self.fail(check, "succeeded");
        };
        let mut problems = String::new();
        let ok = match (expect, &err) {
            (None, TokenError::Rejected { status, .. }) => statuses.contains(status),
            (Some(Expect::Rejected(want)), TokenError::Rejected { status, .. })
            | (Some(Expect::Server(want)), TokenError::Server { status, .. }) => *status == want,
            (Some(Expect::InvalidResponse), TokenError::InvalidResponse { .. })
            | (Some(Expect::AnyTransport), TokenError::Transport { .. }) => true,
            (Some(Expect::Transport(want)), TokenError::Transport { kind, .. }) => *kind == want,
            _ => false,
        };
        if !ok {
            let want = expect
                .map_or_else(|| format!("Rejected with one of {statuses:?}"), |e| format!("{e:?}"));
            let _ = write!(problems, "expected {want}, got {err:?}; ");
        }
        if matches!(expect, Some(Expect::Rejected(429)))
            && err.retry_after() != Some(Duration::from_secs(7))
        {
            let _ = write!(problems, "retry_after {:?}, not 7 s; ", err.retry_after());
        }
        let requests = self.emulator.requests();
        if requests != 1 {
            let _ = write!(problems, "{requests} requests, not 1; ");
        }
        let text = format!("{err}\n{err:?}");
        let leaks = self.leaks(&text);
        if !leaks.is_empty() {
            let _ = write!(problems, "the error shows secrets {leaks:?}; ");
        }
        if !problems.is_empty() {
            self.fail(check, problems.trim_end_matches("; "));
        }
    }
}
