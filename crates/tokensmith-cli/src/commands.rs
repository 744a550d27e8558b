//! The commands that work on the config file: `token`, `header`, `check`,
//! `list`, and `cache clear`.

use std::path::PathBuf;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use tokensmith_core::{
    AccessToken, CacheConfig, Clock, Providers, SharedTokenProvider, SystemClock, TokenError,
    error_line,
};
use tokio::runtime::Runtime;

use crate::config;
use crate::disk_cache::{self, DiskCache};
use crate::exit::{self, Exit};
use crate::output;

/// What every config command needs.
#[derive(Debug)]
pub(crate) struct Context {
    /// The config file.
    pub(crate) config_path: PathBuf,
}

/// How `token` and `header` use the on-disk cache.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CacheUse {
    /// Reuse a fresh cached token; store a fetched one.
    ReadWrite,
    /// `--no-cache`: always ask the token endpoint; leave the cache alone.
    Bypass,
}

/// `tokensmith token NAME [--json]`
pub(crate) fn token(
    ctx: &Context,
    rt: &Runtime,
    name: &str,
    json: bool,
    cache: CacheUse,
) -> anyhow::Result<()> {
    let (token, kind, unsaved) = obtain(ctx, rt, name, cache)?;
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
pub(crate) fn header(
    ctx: &Context,
    rt: &Runtime,
    name: &str,
    line: bool,
    cache: CacheUse,
) -> anyhow::Result<()> {
    let (token, _, unsaved) = obtain(ctx, rt, name, cache)?;
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

/// `tokensmith cache clear`
pub(crate) fn cache_clear() -> anyhow::Result<()> {
    let cache = DiskCache::from_env()
        .context("no cache directory: neither XDG_CACHE_HOME nor HOME is set")?;
    let removed = cache
        .clear()
        .with_context(|| format!("cannot clear the token cache {}", cache.dir().display()))?;
    let plural = if removed == 1 { "" } else { "s" };
    output::stdout(&format!(
        "removed {removed} cached token{plural} from {}",
        cache.dir().display()
    ))
}

/// The token of provider `name` (from the on-disk cache when it holds a
/// fresh one), the provider's kind, and why the refresh token the server
/// rotated in could not be saved, if it could not.
fn obtain(
    ctx: &Context,
    rt: &Runtime,
    name: &str,
    cache_use: CacheUse,
) -> anyhow::Result<(AccessToken, &'static str, Option<TokenError>)> {
    let (token, kind, providers) = obtain_from(ctx, rt, name, cache_use)?;
    Ok((token, kind, providers.refresh_token_save_error(name)))
}

fn obtain_from(
    ctx: &Context,
    rt: &Runtime,
    name: &str,
    cache_use: CacheUse,
) -> anyhow::Result<(AccessToken, &'static str, Providers)> {
    // Read once: the cache key must describe the very config that was
    // loaded, and a pipe (`--config <(…)`) cannot be read twice.
    let text = config::read(&ctx.config_path)?;
    // Only this provider must load: the others may need secrets this host
    // does not hold.
    let providers = config::load_for(&ctx.config_path, &text, name)?;
    let provider =
        providers.get(name).map_err(|e| anyhow::Error::new(e).context(exit::UnknownProvider))?;
    refuse_single_use_in_memory(&providers, name)?;
    let kind = providers.info(name).map_or("", |info| info.kind);
    if cache_use == CacheUse::Bypass {
        tracing::debug!(provider = name, "--no-cache: asking the token endpoint");
        return Ok((fetch(rt, name, &provider)?, kind, providers));
    }
    let Some(cache) = DiskCache::from_env() else {
        output::stderr(
            "tokensmith: warning: no cache directory (set XDG_CACHE_HOME or HOME); token not cached",
        );
        return Ok((fetch(rt, name, &provider)?, kind, providers));
    };
    let cache = match disk_cache::lock_timeout_env() {
        Ok(Some(timeout)) => cache.with_lock_timeout(timeout),
        Ok(None) => cache,
        Err(message) => return Err(TokenError::config(None, None, message).into()),
    };
    let table = config::provider_table(&text, name)?;
    let secret_fields = providers.info(name).map_or(&[][..], |info| &info.secret_fields);
    let key = match cache.key_for(&table, secret_fields) {
        Ok(key) => key,
        Err(e) => {
            warn_cache(&cache, &e);
            return Ok((fetch(rt, name, &provider)?, kind, providers));
        }
    };
    let timing = cache_config(name, &table)?;
    if let Some(token) = cache.load(&key, SystemClock.now(), &timing) {
        tracing::debug!(provider = name, dir = %cache.dir().display(), "token cache hit");
        return Ok((token, kind, providers));
    }
    // Serialise concurrent invocations for this provider, then look again:
    // whoever held the lock may have just stored a fresh token.
    let lock = match cache.lock(&key) {
        Ok(lock) => Some(lock),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            output::stderr(&format!(
                "tokensmith: warning: token cache: {e}; going on without the cache"
            ));
            None
        }
        Err(e) => {
            warn_cache(&cache, &e);
            None
        }
    };
    if lock.is_some()
        && let Some(token) = cache.load(&key, SystemClock.now(), &timing)
    {
        tracing::debug!(provider = name, "token cache hit after waiting for another invocation");
        return Ok((token, kind, providers));
    }
    tracing::debug!(provider = name, "token cache miss");
    let token = fetch(rt, name, &provider)?;
    if lock.is_some()
        && let Err(e) = cache.store(&key, name, kind, &token)
    {
        warn_cache(&cache, &e);
    }
    drop(lock);
    Ok((token, kind, providers))
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

fn warn_cache(cache: &DiskCache, err: &std::io::Error) {
    output::stderr(&format!(
        "tokensmith: warning: token cache {} unusable ({err}); token not cached",
        cache.dir().display()
    ));
}

/// The on-disk cache's staleness rule for this provider: its
/// `expiry_margin`, else core's default ([`CacheConfig::margin_for`] scales it
/// for short-lived tokens), exactly as the library's cache.
fn cache_config(name: &str, table: &toml::Table) -> Result<CacheConfig, TokenError> {
    match table.get("expiry_margin").and_then(toml::Value::as_str) {
        Some(text) => tokensmith_core::parse_duration(text)
            .map(|margin| CacheConfig::default().with_expiry_margin(margin))
            .map_err(|e| TokenError::config(Some(name), Some("expiry_margin"), e)),
        None => Ok(CacheConfig::default()),
    }
}
