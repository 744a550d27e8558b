//! The commands that work on the config file: `token`, `header`, `check`,
//! `list`, and `cache clear`.

use std::path::PathBuf;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, Clock, FileTokenStore, Providers, SharedTokenProvider, SystemClock, TokenError,
    error_line,
};
use tokio::runtime::Runtime;

use crate::config;
use crate::exit::{self, Exit};
use crate::output;

/// What every config command needs.
#[derive(Debug)]
pub(crate) struct Context {
    /// The config file.
    pub(crate) config_path: PathBuf,
}

/// How `token` and `header` use the token store.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CacheUse {
    /// Reuse a fresh stored token; store a fetched one.
    ReadWrite,
    /// `--no-cache`: always ask the token endpoint; leave every store alone.
    Bypass,
}

/// `tokensmith token NAME [--json]`
pub(crate) fn token(ctx: &Context, name: &str, json: bool, cache: CacheUse) -> anyhow::Result<()> {
    let (token, kind, unsaved) = obtain(ctx, name, cache)?;
    if json {
        output::stdout(&output::token_json(name, kind, &token, SystemClock.now()))?;
    } else {
        output::stdout(token.secret().expose_secret())?;
    }
    unsaved_refresh_token(name, unsaved)
}

/// `tokensmith header NAME [--line]`: the value of the header the token
/// goes in (its presentation, contract §7), or with `--line` the whole
/// `Name: value` line.
pub(crate) fn header(ctx: &Context, name: &str, line: bool, cache: CacheUse) -> anyhow::Result<()> {
    let (token, _, unsaved) = obtain(ctx, name, cache)?;
    let value = token.header_value().map_err(|_| {
        TokenError::invalid_response(
            name,
            200,
            "the access token holds bytes an HTTP header cannot carry",
            b"",
        )
    })?;
    // Built from `str`s, so UTF-8; `to_str` would refuse non-ASCII.
    let value = String::from_utf8_lossy(value.as_bytes());
    if line {
        output::stdout(&format!("{}: {value}", token.header_name()))?;
    } else {
        output::stdout(&value)?;
    }
    unsaved_refresh_token(name, unsaved)
}

/// After the token is printed: a failure (exit 4) when the refresh token
/// the server rotated in could not be saved to the provider's store, since
/// it dies with this process (the one it replaced is revoked).
fn unsaved_refresh_token(name: &str, save_error: Option<TokenError>) -> anyhow::Result<()> {
    match save_error {
        None => Ok(()),
        Some(err) => Err(Exit {
            code: exit::FAILURE,
            message: format!(
                "provider {name:?}: the token was printed, but the new refresh token could not be saved and is lost when this run ends (the next run needs a new `code` or `refresh_token`): {err}"
            ),
        }
        .into()),
    }
}

/// Refuses a provider whose single-use credentials (an authorization code,
/// rotating refresh tokens) only memory would keep: each run is a new
/// process, so the refresh token the server rotates in would die with it
/// and the next run would re-send a spent one.
pub(crate) fn refuse_single_use_in_memory(
    providers: &Providers,
    name: &str,
) -> Result<(), TokenError> {
    match providers.info(name) {
        Some(info) if info.keeps_single_use_credentials_in_memory() => Err(TokenError::config(
            Some(name),
            Some("refresh_token_store"),
            "this grant spends single-use credentials (an authorization code, refresh tokens the server rotates), and each tokensmith run is a new process: without a file store the refresh token a run receives is lost when it ends, and the next run re-sends a spent one; add `refresh_token_store = { file = \"PATH\" }`",
        )),
        _ => Ok(()),
    }
}

/// `tokensmith check`: loads and validates every provider (no network).
pub(crate) fn check(ctx: &Context) -> anyhow::Result<()> {
    let providers = config::load(&ctx.config_path)?;
    let rows: Vec<Vec<String>> = providers
        .iter()
        .map(|(info, _)| {
            // An adapter's details (`AdapterFactory::details`): an `issuer`
            // stands for the endpoint it is discovered from; any other is
            // shown after it as `label=value`.
            let endpoint = match (&info.token_url, info.detail("issuer")) {
                (Some(url), _) => url.clone(),
                (None, Some(issuer)) => format!("{issuer} (discovery)"),
                (None, None) => "-".to_owned(),
            };
            let details = info
                .details
                .iter()
                .filter(|(label, _)| *label != "issuer")
                .map(|(label, value)| format!("{label}={value}"));
            [info.name.clone(), info.kind.to_owned(), endpoint].into_iter().chain(details).collect()
        })
        .collect();
    for line in output::table(None, &rows) {
        output::stdout(&line)?;
    }
    Ok(())
}

/// `tokensmith list`
pub(crate) fn list(ctx: &Context) -> anyhow::Result<()> {
    let providers = config::load(&ctx.config_path)?;
    let rows: Vec<Vec<&str>> =
        providers.iter().map(|(info, _)| vec![info.name.as_str(), info.kind]).collect();
    for line in output::table(None, &rows) {
        output::stdout(&line)?;
    }
    Ok(())
}

/// `tokensmith cache clear`: empties the config's token store of its
/// providers' tokens. The file store (the default, and `[store] kind =
/// "file"`) is this user's private cache: every entry, lock and key file in
/// it goes (nothing else in the directory). Without a config file, the
/// default per-user cache is cleared.
pub(crate) fn cache_clear(ctx: &Context, rt: &Runtime) -> anyhow::Result<()> {
    let text = match config::read(&ctx.config_path) {
        Ok(text) => Some(text),
        Err(_) if !ctx.config_path.exists() => None,
        Err(e) => return Err(e.into()),
    };
    let store = text
        .as_deref()
        .map(|text| config::store_config(&ctx.config_path, text))
        .transpose()?
        .flatten();
    let dir = match &store {
        None => config::default_cache_dir()
            .context("no cache directory: neither XDG_CACHE_HOME nor HOME is set")?,
        Some(store) if store.kind == "file" => match &store.path {
            Some(path) => path.clone(),
            None => config::default_cache_dir()
                .context("no cache directory: neither XDG_CACHE_HOME nor HOME is set")?,
        },
        Some(store) => {
            // Another store: this config's providers' entries, one by one.
            let text = text.as_deref().unwrap_or_default();
            let providers =
                config::load_lenient_for_tokens(&ctx.config_path, text, CacheUse::ReadWrite)?;
            let mut removed = 0;
            for name in providers.names() {
                if let Some(cache) = providers.cache(name) {
                    let gone = rt
                        .block_on(cache.remove_stored())
                        .with_context(|| format!("cannot clear the {} token store", store.kind))?;
                    removed += usize::from(gone);
                }
            }
            let plural = if removed == 1 { "" } else { "s" };
            return output::stdout(&format!(
                "removed {removed} cached token{plural} from the {} store",
                store.kind
            ));
        }
    };
    let store = FileTokenStore::new(dir);
    let removed = store
        .clear()
        .with_context(|| format!("cannot clear the token cache {}", store.dir().display()))?;
    let plural = if removed == 1 { "" } else { "s" };
    output::stdout(&format!(
        "removed {removed} cached token{plural} from {}",
        store.dir().display()
    ))
}

/// The token of provider `name` (from the token store, the per-user cache
/// by default, when it holds a fresh one), the provider's kind, and why the
/// refresh token the server rotated in could not be saved, if it could not.
fn obtain(
    ctx: &Context,
    name: &str,
    cache_use: CacheUse,
) -> anyhow::Result<(AccessToken, &'static str, Option<TokenError>)> {
    let text = config::read(&ctx.config_path)?;
    // Only this provider must load: the others may need secrets this host
    // does not hold.
    let providers = config::load_for_tokens(&ctx.config_path, &text, name, cache_use)?;
    let provider =
        providers.get(name).map_err(|e| anyhow::Error::new(e).context(exit::UnknownProvider))?;
    refuse_single_use_in_memory(&providers, name)?;
    let kind = providers.info(name).map_or("", |info| info.kind);
    if cache_use == CacheUse::Bypass {
        tracing::debug!(provider = name, "--no-cache: asking the token endpoint");
    } else if let Some(token) = from_file_store(&providers, name)? {
        return Ok((token, kind, None));
    }
    let token = fetch(&crate::runtime()?, name, &provider)?;
    Ok((token, kind, providers.refresh_token_save_error(name)))
}

/// The file store's token for `name` when the cache may use it, read on a
/// runtime with a timer only: a cache hit builds no I/O driver (its epoll,
/// signal pipe and signal tables were a tenth of the hit's own work). Other
/// stores (Redis) need the full runtime: `None`. A miss reads the store
/// again when it fetches (under the lease), a file read next to a request.
fn from_file_store(providers: &Providers, name: &str) -> anyhow::Result<Option<AccessToken>> {
    let Some(cache) = providers.cache(name).filter(|cache| cache.store_kind() == Some("file"))
    else {
        return Ok(None);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    let token = rt.block_on(cache.peek());
    if let Some(token) = &token {
        tracing::debug!(
            provider = name,
            token_type = %token.token_type(),
            expires_in_s = token.expires_in(SystemClock.now()).map(|d| d.as_secs()),
            "token received from the file store"
        );
    }
    Ok(token)
}

fn fetch(
    rt: &Runtime,
    name: &str,
    provider: &SharedTokenProvider,
) -> Result<AccessToken, TokenError> {
    tracing::debug!(provider = name, "requesting a token");
    let result = rt.block_on(provider.token());
    match &result {
        Ok(token) => tracing::debug!(
            provider = name,
            token_type = %token.token_type(),
            expires_in_s = token.expires_in(SystemClock.now()).map(|d| d.as_secs()),
            "token received"
        ),
        Err(e) => tracing::debug!(provider = name, error = %error_line(e), "token request failed"),
    }
    result
}
