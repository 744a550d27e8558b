//! A reqwest client that carries a tokensmith token, run offline: the
//! testkit's Deyel emulator is the token endpoint and its `ResourceServer` the
//! API. The API rotates its credentials halfway; the middleware sees the
//! `401`, drops the refused token and retries once with a fresh one.
//!
//! ```sh
//! cargo run -p tokensmith-reqwest --example reqwest
//! ```
//!
//! In a service the registry comes from your config file
//! (`Registry::with_enabled_adapters().load_file(path)` with the `tokensmith`
//! facade) and the URL is your vendor's API; the rest is the same.

use tokensmith_core::Registry;
use tokensmith_reqwest::TokenMiddleware;
use tokensmith_testkit::{Emulator, ResourceServer, Vendor};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // reqwest is built with `rustls-no-provider` in this workspace: give it
    // ring (with reqwest's default features you skip this line).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let token_endpoint = Emulator::start(Vendor::Deyel).await?;
    let api = ResourceServer::start().await?;
    let providers = Registry::new()
        .with(tokensmith_deyel::Deyel)
        .load_str(&token_endpoint.config_snippet("lowcode"))?;

    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::builder().build()?)
        .with(TokenMiddleware::new(providers.get("lowcode")?))
        .build();

    let first = client.get(api.url("/api/processes")).send().await?;
    say(&format!("first request: {}", first.status()));

    api.rotate(); // the API stops accepting the token it has seen
    let second = client.get(api.url("/api/processes")).send().await?;
    say(&format!("after rotation: {} (the API answered {:?})", second.status(), api.statuses()));

    let stats = providers.cache_stats("lowcode").expect("a configured provider");
    say(&format!(
        "tokens fetched: {}, invalidated: {}, cache hits: {}",
        stats.fetches, stats.invalidations, stats.hits
    ));
    assert_eq!(api.statuses(), [200, 401, 200]);
    assert_eq!(token_endpoint.tokens_issued(), 2);
    Ok(())
}

/// Prints one line (an example talks to its user).
#[allow(clippy::print_stdout, reason = "an example's output")]
fn say(line: &str) {
    println!("{line}");
}
