//! `tokensmith`: get OAuth 2.0 access tokens from enterprise vendors on the
//! command line.
//!
//! ```text
//! tokensmith [--config FILE] [-v|-vv|-vvv] <command>
//!
//!   token NAME [--json] [--no-cache]   the access token alone, or a JSON object
//!   header NAME [--line] [--no-cache]  the header value, `Bearer …` (`--line`: `Name: value`)
//!   check                              validate the config (no network)
//!   list                               name and kind of every provider
//!   cache clear                        empty the per-user token cache
//!   demo                               every adapter against built-in emulators
//!   mock-server --vendor KIND [--port N]
//!   serve [--socket PATH | --listen 127.0.0.1:PORT]   the token agent
//! ```
//!
//! Exit codes: 0 success, 2 usage or config error, 3 refused by the token
//! endpoint, 4 transport or server failure. See `docs/cli.md`.
//!
//! Module map: `cli` (clap types), `config` (the config file), `commands`,
//! `demo`, `mock_server`, `serve` (the token agent), `exit`
//! (exit codes), `output` (the one module that prints).

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod config;
mod demo;
mod exit;
mod mock_server;
mod output;
#[cfg(unix)]
mod serve;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{CacheAction, CacheFlags, Cli, Command};
use crate::commands::{CacheUse, Context};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap writes the help, version or usage error itself; usage
            // errors exit 2 like every other usage or config error.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { exit::USAGE } else { exit::SUCCESS });
        }
    };
    if cli.verbose > 0 {
        init_tracing(cli.verbose);
    } else {
        init_store_warnings();
    }
    let json = matches!(cli.command, Command::Token { json: true, .. });
    match run(cli) {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(err) if json => {
            // `--json`: the error is one JSON object too (contract §10's shape).
            output::stderr(&output::error_json(&exit::describe(&err)));
            ExitCode::from(exit::for_error(&err))
        }
        Err(err) => {
            output::stderr(&format!("tokensmith: {}", exit::message(&err)));
            ExitCode::from(exit::for_error(&err))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config_path =
        config::resolve_path(cli.config.as_deref(), std::env::var_os(config::CONFIG_ENV));
    let ctx = Context { config_path };
    let cache_use =
        |flags: CacheFlags| if flags.no_cache { CacheUse::Bypass } else { CacheUse::ReadWrite };
    match cli.command {
        Command::Token { name, json, cache } => {
            commands::token(&ctx, &name, json, cache_use(cache))
        }
        Command::Header { name, line, cache } => {
            commands::header(&ctx, &name, line, cache_use(cache))
        }
        Command::Check => commands::check(&ctx),
        Command::List => commands::list(&ctx),
        Command::Cache { action: CacheAction::Clear } => commands::cache_clear(&ctx, &runtime()?),
        Command::Demo => demo::run(&runtime()?),
        Command::MockServer { vendor, port, describe } => {
            mock_server::run(&runtime()?, vendor, port, describe.as_deref())
        }
        #[cfg(unix)]
        Command::Serve { socket, listen } => serve::run(&ctx, socket, listen),
        #[cfg(not(unix))]
        Command::Serve { .. } => Err(exit::Exit {
            code: exit::USAGE,
            message: "serve needs a Unix system (Unix sockets and signals)".to_owned(),
        }
        .into()),
    }
}

/// One runtime per invocation: a single thread drives the request (and, for
/// `demo` and `mock-server`, the emulators).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Without `--verbose`: the token store's warnings (a cache directory not
/// used, a lock held too long), one `tokensmith: warning:` line each, so a
/// script sees why its tokens are not cached. Nothing else is logged.
fn init_store_warnings() {
    let _ = tracing::subscriber::set_global_default(output::StoreWarnings);
}

/// `--verbose`: tokensmith's debug events on stderr (every `tokensmith*`
/// crate), and only warnings from the libraries below it (not hyper's
/// connection-pool chatter). `-vv`: tokensmith's trace events and the
/// libraries' info; `-vvv`: every event of every library. Nothing logged by
/// tokensmith carries a secret, at any level (a house rule the secret-leak
/// audit checks at `-vvv`).
fn init_tracing(verbosity: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    let (ours, libraries) = match verbosity {
        0 | 1 => (LevelFilter::DEBUG, LevelFilter::WARN),
        2 => (LevelFilter::TRACE, LevelFilter::INFO),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    // A prefix: `tokensmith` (this binary), `tokensmith_core`, the adapters.
    let targets = Targets::new().with_default(libraries).with_target("tokensmith", ours);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(LevelFilter::TRACE)
        .with_target(verbosity >= 3)
        .without_time()
        .finish()
        .with(targets);
    let _ = tracing::subscriber::set_global_default(subscriber);
}
