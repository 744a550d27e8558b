//! `tokensmith demo`: every adapter, end to end, offline.
//!
//! Starts the `tokensmith-testkit` emulator of each vendor on 127.0.0.1,
//! builds one provider per adapter through the [`Registry`](tokensmith_core::Registry)
//! from a config filled in with the emulators' URLs and test credentials,
//! obtains a token through each, asks each provider again to show the cached
//! hit, and prints a table. Touches neither the network beyond loopback nor
//! the on-disk cache.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, TokenError};
use tokensmith_testkit::{Emulator, Vendor};
use tokio::runtime::Runtime;

use crate::exit::{self, Exit};
use crate::{config, output};

/// The provider name the demo (and `mock-server`'s config snippet) gives
/// each vendor.
pub(crate) fn provider_name(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::SotiConnect => "mdm",
        Vendor::ConfigApi => "tenant",
        Vendor::OAuth2 => "saas",
        Vendor::Deyel => "lowcode",
        _ => vendor.kind(),
    }
}

/// What happened for one provider.
struct Outcome {
    name: &'static str,
    vendor: Vendor,
    result: Result<Fetched, TokenError>,
    upstream_requests: u64,
}

struct Fetched {
    token: AccessToken,
    first: Duration,
    cached: Duration,
    /// Whether the second call returned the very token of the first.
    same_token: bool,
}

/// Runs the demo; fails (with the exit code of the first failure) unless
/// every adapter obtained a token.
pub(crate) fn run(rt: &Runtime) -> anyhow::Result<()> {
    let outcomes = rt.block_on(run_all())?;
    output::stdout(&format!(
        "tokensmith demo: {} vendor emulators on 127.0.0.1, one provider per adapter, from one config.\n\
         Each provider is asked twice: the first call fetches a token, the second is a cache hit.\n",
        Vendor::ALL.len()
    ))?;
    let header = [
        "provider",
        "kind",
        "token_type",
        "expires_in",
        "scope",
        "token",
        "first fetch",
        "cached hit",
        "upstream requests",
    ];
    let rows: Vec<Vec<String>> = outcomes.iter().map(row).collect();
    for line in output::table(Some(&header), &rows) {
        output::stdout(&line)?;
    }
    let failures: Vec<&TokenError> =
        outcomes.iter().filter_map(|o| o.result.as_ref().err()).collect();
    if let Some(first) = failures.first() {
        for err in &failures {
            output::stderr(&format!("tokensmith: {err}"));
        }
        return Err(Exit {
            code: exit::for_token_error(first),
            message: format!("demo: {} of {} adapters failed", failures.len(), outcomes.len()),
        }
        .into());
    }
    let all_cached = outcomes
        .iter()
        .all(|o| o.upstream_requests == 1 && o.result.as_ref().is_ok_and(|f| f.same_token));
    output::stdout(&format!(
        "\nAll {} adapters obtained a token.{}",
        outcomes.len(),
        if all_cached {
            " Each second call was served from the cache: one upstream request per provider."
        } else {
            ""
        }
    ))
}

async fn run_all() -> anyhow::Result<Vec<Outcome>> {
    use anyhow::Context as _;
    let mut emulators = Vec::with_capacity(Vendor::ALL.len());
    for vendor in Vendor::ALL {
        let emulator = Emulator::start(vendor)
            .await
            .with_context(|| format!("cannot start the {vendor} emulator on 127.0.0.1"))?;
        emulators.push(emulator);
    }
    let config_text: String = emulators
        .iter()
        .map(|e| e.config_snippet(provider_name(e.vendor())))
        .collect::<Vec<_>>()
        .join("\n");
    let providers = config::registry().load_str(&config_text)?;
    let mut outcomes = Vec::with_capacity(emulators.len());
    for emulator in &emulators {
        let vendor = emulator.vendor();
        let name = provider_name(vendor);
        let provider = providers.get(name)?;
        let started = stopwatch();
        let result = match provider.token().await {
            Ok(token) => {
                let first = started.elapsed();
                let started = stopwatch();
                let again = provider.token().await;
                let cached = started.elapsed();
                again.map(|second| Fetched {
                    same_token: second.same_token(&token),
                    token,
                    first,
                    cached,
                })
            }
            Err(e) => Err(e),
        };
        outcomes.push(Outcome { name, vendor, result, upstream_requests: emulator.requests() });
    }
    for emulator in emulators {
        emulator.shutdown().await;
    }
    Ok(outcomes)
}

fn row(outcome: &Outcome) -> Vec<String> {
    let mut cells = vec![outcome.name.to_owned(), outcome.vendor.kind().to_owned()];
    match &outcome.result {
        Ok(f) => cells.extend([
            f.token.token_type().to_string(),
            lifetime(&f.token),
            f.token.scope().map_or_else(|| "-".to_owned(), ToString::to_string),
            output::mask(f.token.secret().expose_secret()),
            latency(f.first),
            latency(f.cached),
        ]),
        Err(_) => cells.extend(["FAILED", "-", "-", "-", "-", "-"].map(str::to_owned)),
    }
    cells.push(outcome.upstream_requests.to_string());
    cells
}

/// The lifetime the server granted (its `expires_in`), in seconds.
fn lifetime(token: &AccessToken) -> String {
    token
        .expires_at()
        .and_then(|at| at.duration_since(token.received_at()).ok())
        .map_or_else(|| "-".to_owned(), |d| d.as_secs().to_string())
}

/// A latency for people: microseconds below a millisecond, else
/// milliseconds with one decimal.
fn latency(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

/// The start of a latency measurement.
#[allow(
    clippy::disallowed_methods,
    reason = "the demo shows wall-clock latency to people; no behaviour depends on it"
)]
fn stopwatch() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_well() {
        assert_eq!(latency(Duration::from_micros(3)), "3 µs");
        assert_eq!(latency(Duration::from_micros(12_345)), "12.3 ms");
    }

    #[test]
    fn every_vendor_has_a_distinct_provider_name() {
        let mut names: Vec<_> = Vendor::ALL.iter().map(|v| provider_name(*v)).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Vendor::ALL.len());
    }
}
