//! The conformance suite catches a broken adapter: every failed check is
//! named (a passing run is each adapter crate's own test).

use std::sync::Arc;

use tokensmith_core::{
    AccessToken, AdapterFactory, ProviderContext, SharedTokenProvider, TokenError, TokenProvider,
    async_trait,
};
use tokensmith_testkit::{Vendor, conformance};

/// A "deyel" adapter that never sends a request and puts its secret in
/// the error.
#[derive(Debug)]
struct Leaky;

#[derive(Debug)]
struct LeakyProvider(String);

#[async_trait]
impl TokenProvider for LeakyProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        Err(TokenError::config(Some("conformance"), None, format!("secret is {}", self.0)))
    }
}

impl AdapterFactory for Leaky {
    fn kind(&self) -> &'static str {
        "deyel"
    }

    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
        let secret = ctx.require_client_secret()?;
        Ok(Arc::new(LeakyProvider(
            tokensmith_core::secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
        )))
    }
}

static LEAKY: Leaky = Leaky;

#[tokio::test]
async fn a_broken_adapter_fails_with_every_check_named() {
    let outcome = tokio::spawn(conformance::run(&LEAKY, Vendor::Deyel)).await;
    let panic = outcome.expect_err("the suite passed a broken adapter").into_panic();
    let message =
        panic.downcast_ref::<String>().cloned().unwrap_or_else(|| panic!("not a String panic"));
    for needle in [
        "conformance failures for kind \"deyel\" against the Deyel emulator",
        "- provider Debug: shows a secret",
        "- success: failed",
        "- success: 0 requests and 0 tokens, not 1 and 1",
        "- expires_in 60: failed",
        "- 503 with the vendor's body: expected Server(503)",
        "0 requests, not 1",
        "the error shows secrets [\"Deyel-API-user-key-8.7\"",
        "- no answer: expected Transport(Timeout)",
    ] {
        assert!(message.contains(needle), "{needle:?} not in:\n{message}");
    }
}
