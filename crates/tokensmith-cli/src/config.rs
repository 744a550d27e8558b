//! Where the config file is, and loading it through the [`Registry`] of every
//! built-in adapter.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::time::Duration;

use tokensmith_core::{FileTokenStore, LoadReport, Providers, Registry, StoreConfig, TokenError};

use crate::commands::CacheUse;
use crate::output;

/// The environment variable naming the config file.
pub(crate) const CONFIG_ENV: &str = "TOKENSMITH_CONFIG";

/// The config file used when neither `--config` nor [`CONFIG_ENV`] is given.
pub(crate) const DEFAULT_CONFIG: &str = "tokensmith.toml";

/// The config file: `--config FILE`, else `$TOKENSMITH_CONFIG` (when set and
/// not empty), else `./tokensmith.toml`.
pub(crate) fn resolve_path(flag: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (flag, env) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
        (None, _) => PathBuf::from(DEFAULT_CONFIG),
    }
}

/// The registry of every adapter this binary links (all five) and the
/// Redis token store (`[store] kind = "redis"`).
pub(crate) fn registry() -> Registry {
    Registry::new()
        .with(tokensmith_soti::SotiConnect)
        .with(tokensmith_configapi::ConfigApi)
        .with(tokensmith_oauth2::OAuth2)
        .with(tokensmith_deyel::Deyel)
        .with(tokensmith_custom::Custom)
        .with_store_factory(tokensmith_redis::RedisStoreFactory)
}

/// The environment variable that sets the lock wait of the per-user cache
/// (a duration such as `"500ms"` or `"0s"`).
pub(crate) const LOCK_TIMEOUT_ENV: &str = "TOKENSMITH_CACHE_LOCK_TIMEOUT";

/// The per-user token cache directory of this environment.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    FileTokenStore::default_dir()
}

/// The registry `token` and `header` load with: a config's `[store]`, else
/// the per-user file cache; no store at all with `--no-cache`.
fn token_registry(cache_use: CacheUse) -> Result<Registry, TokenError> {
    if cache_use == CacheUse::Bypass {
        return Ok(registry().without_store());
    }
    let Some(dir) = default_cache_dir() else {
        output::stderr(
            "tokensmith: warning: no cache directory (set XDG_CACHE_HOME or HOME); token not cached",
        );
        return Ok(registry());
    };
    let mut store = StoreConfig::file(dir);
    if let Some(timeout) = lock_timeout_from(std::env::var_os(LOCK_TIMEOUT_ENV))
        .map_err(|message| TokenError::config(None, None, message))?
    {
        store = store.with_lock_timeout(timeout);
    }
    Ok(registry().with_default_store(store))
}

/// The lock wait from the value of [`LOCK_TIMEOUT_ENV`] (`None` when unset
/// or empty).
pub(crate) fn lock_timeout_from(value: Option<OsString>) -> Result<Option<Duration>, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let text = value.to_str().ok_or_else(|| format!("{LOCK_TIMEOUT_ENV} is not UTF-8"))?;
    tokensmith_core::parse_duration(text).map(Some).map_err(|e| format!("{LOCK_TIMEOUT_ENV}: {e}"))
}

/// The config's `[store]` table, if it has one (its kind's own fields are
/// validated by the registry when the providers load). A file-wide error
/// names the file.
pub(crate) fn store_config(path: &Path, text: &str) -> Result<Option<StoreConfig>, TokenError> {
    StoreConfig::from_config_text(text).map_err(|e| naming_the_file(path, e))
}

/// Loads and validates the config file (no network).
pub(crate) fn load(path: &Path) -> Result<Providers, TokenError> {
    load_text(path, &read(path)?)
}

/// The largest config file read: far more than any real one, small enough
/// that `--config /dev/zero` fails instead of eating the memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The text of the config file. Anything readable will do, a pipe too
/// (`--config /dev/stdin`, `--config <(…)`).
pub(crate) fn read(path: &Path) -> Result<String, TokenError> {
    use std::io::Read as _;
    let error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(path),
        _ => TokenError::config(
            None,
            None,
            format!("cannot read config file {}: {e}", path.display()),
        ),
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| {
            // A regular file's length sizes the buffer (two reads, not five:
            // the second sees the end); a pipe's is 0.
            let len = file.metadata().map_or(0, |meta| meta.len()).min(MAX_CONFIG_BYTES) + 1;
            text.reserve(usize::try_from(len).unwrap_or_default());
            file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)
        })
        .map_err(error)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(TokenError::config(
            None,
            None,
            format!("config file {} is larger than 1 MiB", path.display()),
        ));
    }
    Ok(text)
}

/// Validates `text`, the contents of the config file `path` (no network):
/// every provider must load.
pub(crate) fn load_text(path: &Path, text: &str) -> Result<Providers, TokenError> {
    let providers = load_lenient(path, text)?.into_strict()?;
    tracing::debug!(path = %path.display(), providers = providers.len(), "config loaded");
    Ok(providers)
}

/// The provider `name` of `text`, alone, for a command that uses only it:
/// the others are not built and their secrets not read (they may be
/// invalid on this host, a secret it does not hold), and a hit costs the
/// same however many providers the config has. `name`'s own error is
/// returned; an unknown `name` is reported by `Providers::get`.
pub(crate) fn load_for_tokens(
    path: &Path,
    text: &str,
    name: &str,
    cache_use: CacheUse,
) -> Result<Providers, TokenError> {
    let providers = token_registry(cache_use)?
        .load_str_one(text, name)
        .map_err(|e| naming_the_file(path, e))?;
    tracing::debug!(path = %path.display(), provider = name, "config loaded");
    Ok(providers)
}

/// The providers of `text` that load, with the token store `token` uses.
pub(crate) fn load_lenient_for_tokens(
    path: &Path,
    text: &str,
    cache_use: CacheUse,
) -> Result<Providers, TokenError> {
    Ok(lenient(&token_registry(cache_use)?, path, text)?.into_providers())
}

/// Every provider of `text`, strictly (as `check`), with the token store the
/// `token` command uses: the agent's providers (`tokensmith serve`).
pub(crate) fn load_with_store(path: &Path, text: &str) -> Result<Providers, TokenError> {
    let providers = lenient(&token_registry(CacheUse::ReadWrite)?, path, text)?.into_strict()?;
    tracing::debug!(path = %path.display(), providers = providers.len(), "config loaded");
    Ok(providers)
}

/// The raw `[providers.NAME]` table of the config `text`, as written (secret
/// references not resolved): the agent keeps a provider whose table is
/// unchanged across a reload.
pub(crate) fn provider_table(text: &str, name: &str) -> Result<toml::Table, TokenError> {
    let mut doc: toml::Table =
        text.parse().map_err(|_| TokenError::config(None, None, "invalid TOML"))?;
    match doc.remove("providers") {
        Some(toml::Value::Table(mut providers)) => match providers.remove(name) {
            Some(toml::Value::Table(table)) => Ok(table),
            _ => Err(TokenError::config(Some(name), None, "no such provider")),
        },
        _ => Err(TokenError::config(Some(name), None, "no such provider")),
    }
}

/// The `[store]` table of the config `text` (empty when there is none or
/// the text is not TOML: loading it reports that).
pub(crate) fn store_table(text: &str) -> toml::Table {
    let doc: Result<toml::Table, _> = text.parse();
    match doc.ok().and_then(|mut doc| doc.remove("store")) {
        Some(toml::Value::Table(table)) => table,
        _ => toml::Table::new(),
    }
}

fn load_lenient(path: &Path, text: &str) -> Result<LoadReport, TokenError> {
    lenient(&registry(), path, text)
}

fn lenient(registry: &Registry, path: &Path, text: &str) -> Result<LoadReport, TokenError> {
    registry.load_str_lenient(text).map_err(|e| naming_the_file(path, e))
}

/// As `Registry::load_file`: a file-wide problem names the file.
fn naming_the_file(path: &Path, err: TokenError) -> TokenError {
    match err {
        TokenError::Config { provider: None, field, message, .. } => {
            TokenError::config(None, field.as_deref(), format!("{}: {message}", path.display()))
        }
        other => other,
    }
}

fn not_found(path: &Path) -> TokenError {
    TokenError::config(
        None,
        None,
        format!(
            "config file {} not found (pass --config FILE or set {CONFIG_ENV})",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI links every adapter core knows of, and no other.
    #[test]
    fn the_registry_has_every_known_kind() {
        let mut known: Vec<&str> =
            tokensmith_core::KNOWN_KINDS.iter().map(|(kind, _, _)| *kind).collect();
        known.sort_unstable();
        assert_eq!(registry().kinds().collect::<Vec<_>>(), known);
    }

    #[test]
    fn the_lock_timeout_comes_from_the_environment() {
        assert_eq!(lock_timeout_from(None), Ok(None));
        assert_eq!(lock_timeout_from(Some("".into())), Ok(None));
        assert_eq!(lock_timeout_from(Some("250ms".into())), Ok(Some(Duration::from_millis(250))));
        assert!(lock_timeout_from(Some("soon".into())).unwrap_err().contains(LOCK_TIMEOUT_ENV));
    }

    #[test]
    fn the_flag_wins_then_the_environment_then_the_default() {
        let flag = Path::new("flag.toml");
        assert_eq!(resolve_path(Some(flag), Some("env.toml".into())), flag);
        assert_eq!(resolve_path(None, Some("env.toml".into())), Path::new("env.toml"));
        assert_eq!(resolve_path(None, Some(OsString::new())), Path::new(DEFAULT_CONFIG));
        assert_eq!(resolve_path(None, None), Path::new(DEFAULT_CONFIG));
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_config_file_is_refused_not_read_to_the_end() {
        let err = load(Path::new("/dev/zero")).unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    }

    #[test]
    fn a_missing_file_is_a_config_error_that_says_what_to_do() {
        let err = load(Path::new("/nonexistent/tokensmith.toml")).unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("TOKENSMITH_CONFIG"), "{err}");
    }
}
