//! The `custom` kind over real HTTP against the testkit's emulators.

mod config;
mod emulator;
mod guide;
mod seeds;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokensmith_core::{ManualClock, ProviderContext, TokenError};
use tokensmith_custom::CustomProvider;

/// A fixed wall clock shared by the provider and the emulator.
fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// `description` (one provider's table) with its `token_url` line replaced
/// by `url`.
fn with_url(description: &str, url: &str) -> String {
    let mut out = format!("token_url = \"{url}\"\n");
    for line in description.lines().filter(|l| !l.trim_start().starts_with("token_url")) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The uncached provider `description` builds, or its config error.
fn build(description: &str, clock: &ManualClock) -> Result<CustomProvider, TokenError> {
    let table: toml::Table = toml::from_str(description).expect("test TOML");
    let ctx = ProviderContext::new("acme", table, Arc::new(clock.clone()))?;
    CustomProvider::from_context(&ctx)
}
