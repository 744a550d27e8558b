//! The agent's state: the providers of the current config, swapped whole on
//! SIGHUP, and the warm-up loop that keeps their tokens fresh without a
//! client asking.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::{AccessToken, CachedProvider, ConfigSecret, SharedTokenProvider, TokenError};

use crate::config;

/// How often the warm-up loop asks every provider for its token. A cached
/// token makes that a memory read; it is what lets the cache's refresh-ahead
/// (which starts only when `token()` is called) run before a client needs
/// the next token.
pub(crate) const WARM_INTERVAL: Duration = Duration::from_secs(5);

/// One served provider.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its kind.
    pub(crate) kind: &'static str,
    /// The provider, wrapped in core's cache.
    pub(crate) provider: SharedTokenProvider,
    /// The same provider's cache, typed: `/metrics` asks it for exact
    /// counters before rendering.
    pub(crate) cache: Option<Arc<CachedProvider>>,
    /// Its `[providers.NAME]` table as written, and what its secret
    /// references held when it was loaded: a reload keeps the provider (and
    /// its token) only when both are the same.
    source: Source,
}

/// A table as written and the values its secret references (`{ env = … }`,
/// `{ file = … }`) held when it was read: a secret rotated in its file or
/// variable behind an unchanged table is a change.
#[derive(Debug, Default)]
struct Source {
    table: toml::Table,
    /// Each reference's dotted path and value (`None`: unreadable).
    resolved: Vec<(String, Option<SecretString>)>,
}

impl Source {
    fn read(table: toml::Table) -> Self {
        let mut resolved = Vec::new();
        references(&table, "", &mut resolved);
        Self { table, resolved }
    }

    fn same(&self, other: &Self) -> bool {
        self.table == other.table
            && self.resolved.len() == other.resolved.len()
            && self.resolved.iter().zip(&other.resolved).all(|((p, a), (q, b))| {
                p == q
                    && match (a, b) {
                        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
                        (None, None) => true,
                        _ => false,
                    }
            })
    }
}

/// Reads every secret reference under `table` (at dotted `prefix`) into
/// `out`. A table with one key, `env` or `file`, naming a string, is a
/// reference; `refresh_token_store = { file = … }` names a store, not a
/// secret, and is left alone (its file changes at every rotation).
fn references(table: &toml::Table, prefix: &str, out: &mut Vec<(String, Option<SecretString>)>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let toml::Value::Table(inner) = value else { continue };
        if path == "refresh_token_store" {
            continue;
        }
        let is_reference = inner.len() == 1
            && inner.iter().all(|(k, v)| (k == "env" || k == "file") && v.is_str());
        if is_reference {
            let secret = value.clone().try_into::<ConfigSecret>().ok();
            out.push((path, secret.map(|s| s.as_secret().clone())));
        } else {
            references(inner, &path, out);
        }
    }
}

/// The providers of one config, by name.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Every provider, sorted by name.
    pub(crate) providers: BTreeMap<String, Entry>,
    /// The `[store]` table and its references: when they change, no
    /// provider is kept (each would go on using the old store).
    store: Source,
}

impl Snapshot {
    /// Loads the config file `path`: every provider must load, and none may
    /// keep single-use credentials in memory only. `old` donates the
    /// providers whose table (and the secrets it refers to, and the
    /// `[store]`) did not change, so their tokens survive.
    pub(crate) fn load(path: &Path, old: Option<&Snapshot>) -> Result<Snapshot, TokenError> {
        let text = config::read(path)?;
        let loaded = config::load_with_store(path, &text)?;
        let store = Source::read(config::store_table(&text));
        let old = old.filter(|old| old.store.same(&store));
        let mut providers = BTreeMap::new();
        for (info, provider) in loaded.iter() {
            crate::commands::refuse_single_use_in_memory(&loaded, &info.name)?;
            let source = Source::read(config::provider_table(&text, &info.name)?);
            let entry = match old.and_then(|old| old.providers.get(&info.name)) {
                Some(kept) if kept.source.same(&source) && kept.kind == info.kind => {
                    tracing::debug!(provider = %info.name, "unchanged: keeping its token");
                    Entry {
                        kind: kept.kind,
                        provider: kept.provider.clone(),
                        cache: kept.cache.clone(),
                        source,
                    }
                }
                _ => Entry {
                    kind: info.kind,
                    provider: provider.clone(),
                    cache: loaded.cache(&info.name).cloned(),
                    source,
                },
            };
            providers.insert(info.name.clone(), entry);
        }
        Ok(Snapshot { providers, store })
    }
}

/// The agent: where its config is, and the providers it serves.
#[derive(Debug)]
pub(crate) struct Agent {
    config_path: PathBuf,
    current: ArcSwap<Snapshot>,
    /// One reload at a time: each builds on the snapshot the previous one
    /// stored.
    reloading: std::sync::Mutex<()>,
}

impl Agent {
    /// An agent serving `snapshot`, loaded from `config_path`.
    pub(crate) fn new(config_path: PathBuf, snapshot: Snapshot) -> Self {
        Self {
            config_path,
            current: ArcSwap::from_pointee(snapshot),
            reloading: std::sync::Mutex::new(()),
        }
    }

    /// The providers served now (a request keeps the snapshot it started
    /// with, even across a reload).
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The token of provider `name` and its kind, when its cache holds one
    /// it can give at once: read without waiting or fetching (the cache's
    /// `current()`, which starts its refresh-ahead when that is due, as
    /// `token()` would). `None`: no such provider, or no token to give now
    /// (ask `token()`).
    pub(crate) fn warm_token(&self, name: &str) -> Option<(AccessToken, &'static str)> {
        let snapshot = self.current.load();
        let entry = snapshot.providers.get(name)?;
        Some((entry.cache.as_ref()?.current()?, entry.kind))
    }

    /// SIGHUP: reads the config again. Providers whose table is unchanged
    /// keep their token, removed ones are dropped; a config that does not
    /// load is refused and the current one kept.
    /// Blocking (it reads files): run it off the async workers.
    pub(crate) fn reload(&self) -> Result<(), TokenError> {
        let _one_at_a_time =
            self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.current.load_full();
        match Snapshot::load(&self.config_path, Some(&old)) {
            Ok(new) => {
                let kept = new
                    .providers
                    .iter()
                    .filter(|(name, entry)| {
                        old.providers
                            .get(*name)
                            .is_some_and(|o| Arc::ptr_eq(&o.provider, &entry.provider))
                    })
                    .count();
                let removed =
                    old.providers.keys().filter(|n| !new.providers.contains_key(*n)).count();
                let providers = new.providers.len();
                self.current.store(Arc::new(new));
                // Logged once the new config answers requests.
                tracing::info!(providers, kept, removed, "config reloaded");
                metrics::counter!("tokensmith_agent_reloads_total", "result" => "ok").increment(1);
                metrics::gauge!("tokensmith_agent_providers").set(count(providers));
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "config reload refused; still serving the previous config");
                metrics::counter!("tokensmith_agent_reloads_total", "result" => "refused")
                    .increment(1);
                Err(err)
            }
        }
    }

    /// Asks every provider for its token once, concurrently; logs each
    /// change between success and failure (never a token).
    pub(crate) async fn warm(&self, last_ok: &mut HashMap<String, bool>) {
        let snapshot = self.snapshot();
        let calls: Vec<_> = snapshot
            .providers
            .iter()
            .map(|(name, entry)| {
                let provider = entry.provider.clone();
                (name, tokio::spawn(async move { provider.token().await }))
            })
            .collect();
        let mut results = Vec::with_capacity(calls.len());
        for (name, call) in calls {
            if let Ok(result) = call.await {
                results.push((name, result));
            }
        }
        last_ok.retain(|name, _| snapshot.providers.contains_key(name));
        for (name, result) in results {
            let ok = result.is_ok();
            let before = last_ok.insert(name.clone(), ok);
            match result {
                Ok(_) if before == Some(false) => {
                    tracing::info!(provider = %name, "token endpoint reachable again");
                }
                Ok(_) => {}
                Err(err) if before != Some(false) => {
                    metrics::counter!("tokensmith_agent_warm_errors_total", "provider" => name.clone())
                        .increment(1);
                    tracing::warn!(provider = %name, error = %err, "keeping the token warm failed");
                }
                Err(err) => {
                    metrics::counter!("tokensmith_agent_warm_errors_total", "provider" => name.clone())
                        .increment(1);
                    tracing::debug!(provider = %name, error = %err, "keeping the token warm failed again");
                }
            }
        }
    }
}

/// `n` as a gauge value.
#[expect(clippy::cast_precision_loss, reason = "a provider count is far below 2^52")]
pub(crate) fn count(n: usize) -> f64 {
    n as f64
}
