//! `tokensmith mock-server --vendor KIND [--port N]`: one vendor's emulator
//! (from `tokensmith-testkit`) on 127.0.0.1 until Ctrl-C.
//!
//! Prints the token URL, the emulator's fixed test credentials (public test
//! values, not anyone's secrets) and a ready `tokensmith.toml` snippet. With
//! `--vendor custom --describe FILE`, the emulator of the vendor FILE's first
//! `kind = "custom"` provider describes (the description's own credentials,
//! never printed).

use std::path::Path;

use anyhow::Context as _;
use tokensmith_core::TokenError;
use tokensmith_testkit::{CustomEmulator, Emulator, Vendor};
use tokio::runtime::Runtime;

use crate::{cli, config, demo, output};

/// Runs the emulator of `vendor` until interrupted.
pub(crate) fn run(
    rt: &Runtime,
    vendor: cli::Vendor,
    port: Option<u16>,
    describe: Option<&Path>,
) -> anyhow::Result<()> {
    let vendor = match (vendor, describe) {
        (cli::Vendor::Custom, Some(path)) => return run_custom(rt, port, path),
        (cli::Vendor::Custom, None) => {
            return Err(
                TokenError::config(None, None, "--vendor custom needs --describe FILE").into()
            );
        }
        (_, Some(_)) => {
            return Err(TokenError::config(
                None,
                None,
                "--describe is only used with --vendor custom",
            )
            .into());
        }
        (cli::Vendor::SotiConnect, None) => Vendor::SotiConnect,
        (cli::Vendor::ConfigApi, None) => Vendor::ConfigApi,
        (cli::Vendor::OAuth2, None) => Vendor::OAuth2,
        (cli::Vendor::Deyel, None) => Vendor::Deyel,
    };
    rt.block_on(async {
        let port = port.unwrap_or(0);
        let emulator = Emulator::start_on(vendor, port)
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        // Listen for the signal before telling anyone the server is up.
        let interrupted = interrupted()?;
        for line in banner(&emulator) {
            output::stdout(&line)?;
        }
        interrupted.await;
        let requests = emulator.requests();
        let issued = emulator.tokens_issued();
        emulator.shutdown().await;
        output::stdout(&format!(
            "stopped: {requests} token request{}, {issued} token{} issued",
            plural(requests),
            plural(issued)
        ))
    })
}

/// The emulator of the vendor described in `path` until interrupted.
fn run_custom(rt: &Runtime, port: Option<u16>, path: &Path) -> anyhow::Result<()> {
    let text = config::read(path)?;
    // The description must load as the adapter reads it (no network).
    config::load_text(path, &text)?;
    let name = first_custom(&text).ok_or_else(|| {
        TokenError::config(
            None,
            None,
            format!("{}: no provider with kind = \"custom\"", path.display()),
        )
    })?;
    rt.block_on(async {
        let port = port.unwrap_or(0);
        let emulator = CustomEmulator::start_on(&text, port).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => {
                anyhow::Error::from(TokenError::config(Some(&name), None, e.to_string()))
            }
            _ => anyhow::Error::from(e).context(format!("cannot listen on 127.0.0.1:{port}")),
        })?;
        let interrupted = interrupted()?;
        for line in [
            format!(
                "tokensmith mock-server: emulator of provider {name:?} described in {} on {}",
                path.display(),
                emulator.base_url()
            ),
            String::new(),
            format!("token URL      {}", emulator.token_url()),
            String::new(),
            format!("Set token_url = \"{}\" in [providers.{name}], then:", emulator.token_url()),
            format!("Try: tokensmith --config {} token {name}", path.display()),
            "Press Ctrl-C to stop.".to_owned(),
        ] {
            output::stdout(&line)?;
        }
        interrupted.await;
        let requests = emulator.requests();
        let issued = emulator.tokens_issued();
        emulator.shutdown().await;
        output::stdout(&format!(
            "stopped: {requests} token request{}, {issued} token{} issued",
            plural(requests),
            plural(issued)
        ))
    })
}

/// The name of the first `kind = "custom"` provider of a config.
fn first_custom(text: &str) -> Option<String> {
    let doc: toml::Table = toml::from_str(text).ok()?;
    doc.get("providers")?.as_table()?.iter().find_map(|(name, table)| {
        let kind = table.as_table()?.get("kind")?.as_str()?;
        kind.eq_ignore_ascii_case("custom").then(|| name.clone())
    })
}

/// Resolves on Ctrl-C (SIGINT), or SIGTERM on Unix. The handlers are
/// installed before this returns.
#[cfg(unix)]
fn interrupted() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn interrupted() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn banner(emulator: &Emulator) -> Vec<String> {
    let vendor = emulator.vendor();
    let creds = emulator.credentials();
    let name = demo::provider_name(vendor);
    let mut lines = vec![
        format!(
            "tokensmith mock-server: {} emulator ({}) on {}",
            vendor.display_name(),
            vendor.kind(),
            emulator.base_url()
        ),
        String::new(),
        format!("token URL      {}", emulator.token_url()),
        format!("client_id      {}", creds.client_id()),
    ];
    let optional = [
        ("client_secret", creds.client_secret()),
        ("username", creds.username()),
        ("password", creds.password()),
        ("scope", creds.scope()),
        ("redirect_uri", creds.redirect_uri()),
        ("public client", creds.public_client_id()),
    ];
    for (label, value) in optional {
        if let Some(value) = value {
            lines.push(format!("{label:<15}{value}"));
        }
    }
    lines.push(String::new());
    lines.push("# tokensmith.toml".to_owned());
    lines.extend(emulator.config_snippet(name).lines().map(str::to_owned));
    lines.push(String::new());
    lines.push(format!("Try: tokensmith --config tokensmith.toml token {name}"));
    lines.push("Press Ctrl-C to stop.".to_owned());
    lines
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
