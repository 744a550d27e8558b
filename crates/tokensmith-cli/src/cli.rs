//! The command line, as clap types: every command, flag and help example.
//!
//! The doc comments of the clap types are the `--help` text people read in a
//! terminal, so they name fields and paths without Markdown backticks.

#![allow(clippy::doc_markdown, reason = "doc comments here are plain --help text")]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `tokensmith [--config FILE] [--verbose] <command>`
#[derive(Debug, Parser)]
#[command(
    name = "tokensmith",
    version,
    about = "Get OAuth 2.0 access tokens from enterprise vendors (SOTI Connect, configapi, OAuth 2.0, Deyel)",
    long_about = "Get OAuth 2.0 access tokens from enterprise vendors (SOTI Connect, configapi, \
                  OAuth 2.0, Deyel) through one config file.\n\n\
                  The config file is --config FILE, else $TOKENSMITH_CONFIG, else ./tokensmith.toml.\n\
                  Tokens are cached per user (under $XDG_CACHE_HOME/tokensmith) while they are valid, \
                  so scripts may call `token` or `header` once per request.",
    after_help = EXAMPLES,
    arg_required_else_help = true,
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    /// The config file [default: $TOKENSMITH_CONFIG, else ./tokensmith.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Log what happens to stderr (never a secret); -vv adds tokensmith's
    /// trace events, -vvv every library's too
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

const EXAMPLES: &str = "\
Examples:
  tokensmith demo                              # try every adapter against built-in emulators
  tokensmith token mdm                         # print the access token of provider `mdm`
  tokensmith token mdm --json                  # the token with its type, expiry and scope
  curl -H \"Authorization: $(tokensmith header mdm)\" https://mdm.example.com/api/devices
  tokensmith check                             # validate ./tokensmith.toml without network

Exit codes: 0 success, 2 usage or config error, 3 refused by the token endpoint,
4 transport or server failure.";

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the access token of a provider, alone on one line
    #[command(after_help = "\
Examples:
  tokensmith token mdm
  tokensmith token mdm --json | jq -r .expires_in
  TOKEN=$(tokensmith --config /etc/tokensmith.toml token crm) || exit $?")]
    Token {
        /// The provider's name (its [providers.NAME] table)
        name: String,
        /// Print one JSON object: provider, kind, token_type, access_token,
        /// expires_in, expires_at, scope
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheFlags,
    },

    /// Print the header value a provider's API takes (`Bearer …`), or with
    /// --line the whole header (`Authorization: Bearer …`)
    #[command(after_help = "\
Examples:
  tokensmith header mdm
  curl -H \"$(tokensmith header mdm --line)\" https://mdm.example.com/MobiControl/api/devices
  curl -H \"Authorization: $(tokensmith header mdm)\" https://mdm.example.com/MobiControl/api/devices")]
    Header {
        /// The provider's name (its [providers.NAME] table)
        name: String,
        /// Print `Name: value`, the header's name too (most vendors:
        /// `Authorization`; some want `X-Auth-Token` or another)
        #[arg(long)]
        line: bool,
        #[command(flatten)]
        cache: CacheFlags,
    },

    /// Validate the whole config file without network; one line per provider
    #[command(after_help = "\
Examples:
  tokensmith check
  tokensmith --config deploy/tokensmith.toml check && echo config ok")]
    Check,

    /// List the configured providers: name and kind
    #[command(after_help = "\
Examples:
  tokensmith list
  for p in $(tokensmith list | awk '{print $1}'); do tokensmith header \"$p\" >/dev/null; done")]
    List,

    /// Manage the per-user token cache
    #[command(after_help = "\
Examples:
  tokensmith cache clear")]
    Cache {
        /// What to do with the cache.
        #[command(subcommand)]
        action: CacheAction,
    },

    /// Run the token agent: keep every provider's token warm and hand tokens
    /// to local processes over a Unix socket (HTTP/1.1, see docs/agent.md)
    #[command(after_help = "\
Examples:
  tokensmith serve                             # on $XDG_RUNTIME_DIR/tokensmith.sock
  tokensmith serve --socket /run/tokensmith/agent.sock
  tokensmith serve --listen 127.0.0.1:8787
  curl -s --unix-socket $XDG_RUNTIME_DIR/tokensmith.sock -H 'Tokensmith-Request: 1' http://agent/v1/header/mdm

SIGHUP reloads the config (unchanged providers keep their tokens); SIGTERM drains and exits 0.")]
    Serve {
        /// The Unix socket to create (mode 0600) [default: $XDG_RUNTIME_DIR/tokensmith.sock]
        #[arg(long, value_name = "PATH", conflicts_with = "listen")]
        socket: Option<PathBuf>,
        /// Listen on this loopback TCP address instead (127.0.0.1:PORT or [::1]:PORT)
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },

    /// Start built-in emulators of every vendor on 127.0.0.1 and get a token
    /// through each adapter (offline)
    #[command(after_help = "\
Examples:
  tokensmith demo
  cargo run -p tokensmith-cli -- demo")]
    Demo,

    /// Run one vendor's emulator on 127.0.0.1 until interrupted, printing its
    /// token URL, test credentials and a tokensmith.toml snippet
    #[command(after_help = "\
Examples:
  tokensmith mock-server --vendor deyel
  tokensmith mock-server --vendor soti-connect --port 8085
  tokensmith mock-server --vendor custom --describe tokensmith.toml")]
    MockServer {
        /// The vendor to emulate
        #[arg(long, value_name = "KIND")]
        vendor: Vendor,
        /// The port to listen on [default: any free port]
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// With `--vendor custom`: the config file whose first `kind = "custom"`
        /// provider describes the vendor to emulate
        #[arg(long, value_name = "FILE", required_if_eq("vendor", "custom"))]
        describe: Option<PathBuf>,
    },
}

/// Flags of the commands that obtain a token.
#[derive(Debug, Args)]
pub(crate) struct CacheFlags {
    /// Ignore the per-user token cache: always ask the token endpoint (and
    /// leave the cache untouched)
    #[arg(long)]
    pub(crate) no_cache: bool,
}

/// `tokensmith cache …`
#[derive(Debug, Subcommand)]
pub(crate) enum CacheAction {
    /// Delete every cached token
    Clear,
}

/// A vendor `mock-server` can emulate: one per adapter kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Vendor {
    /// SOTI Connect (`soti-connect`)
    #[value(name = "soti-connect")]
    SotiConnect,
    /// configapi (`configapi`)
    #[value(name = "configapi")]
    ConfigApi,
    /// A scoped OAuth 2.0 server (`oauth2`)
    #[value(name = "oauth2")]
    OAuth2,
    /// Deyel (`deyel`)
    #[value(name = "deyel")]
    Deyel,
    /// A vendor described in config (`custom`; needs `--describe FILE`)
    #[value(name = "custom")]
    Custom,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_contract_commands() {
        let cli =
            Cli::try_parse_from(["tokensmith", "--config", "x.toml", "token", "mdm", "--json"])
                .unwrap();
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("x.toml")));
        assert!(matches!(cli.command, Command::Token { json: true, .. }));
        let cli = Cli::try_parse_from(["tokensmith", "header", "mdm", "--no-cache", "-v"]).unwrap();
        assert_eq!(cli.verbose, 1);
        assert!(matches!(
            cli.command,
            Command::Header { cache: CacheFlags { no_cache: true }, .. }
        ));
        let cli = Cli::try_parse_from(["tokensmith", "-vvv", "list"]).unwrap();
        assert_eq!(cli.verbose, 3);
        let cli = Cli::try_parse_from(["tokensmith", "list"]).unwrap();
        assert_eq!(cli.verbose, 0);
        let cli =
            Cli::try_parse_from(["tokensmith", "mock-server", "--vendor", "soti-connect"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::MockServer { vendor: Vendor::SotiConnect, port: None, describe: None }
        ));
        let cli = Cli::try_parse_from([
            "tokensmith",
            "mock-server",
            "--vendor",
            "custom",
            "--describe",
            "v.toml",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::MockServer { vendor: Vendor::Custom, describe: Some(_), .. }
        ));
        assert!(Cli::try_parse_from(["tokensmith", "mock-server", "--vendor", "custom"]).is_err());
        assert!(Cli::try_parse_from(["tokensmith", "mock-server", "--vendor", "nope"]).is_err());
        assert!(Cli::try_parse_from(["tokensmith", "cache", "clear"]).is_ok());
        let cli = Cli::try_parse_from(["tokensmith", "serve", "--listen", "127.0.0.1:1"]).unwrap();
        assert!(matches!(cli.command, Command::Serve { socket: None, listen: Some(_) }));
        assert!(
            Cli::try_parse_from([
                "tokensmith",
                "serve",
                "--socket",
                "s",
                "--listen",
                "127.0.0.1:1"
            ])
            .is_err()
        );
    }
}
