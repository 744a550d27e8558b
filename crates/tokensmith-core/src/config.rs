//! The config model: the TOML file's `[providers.NAME]` tables and the fields
//! common to every kind ([`CommonConfig`]).
//!
//! Core parses and validates the common fields; whatever is left of a
//! provider's table is handed to its adapter, which deserializes its own typed
//! config with [`ProviderContext::parse`](crate::ProviderContext::parse)
//! (unknown fields rejected, errors naming the provider and the field).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use url::Url;

use crate::{ConfigSecret, TokenError};

/// Default whole-request timeout (`timeout`): 30 seconds.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The fields every provider table may have, whatever its `kind`.
///
/// Read from a `[providers.NAME]` table by the registry, or built in code
/// with [`new`](Self::new) and the `with_*` methods (an adapter's typed
/// config does this for you):
///
/// ```
/// use std::time::Duration;
/// use tokensmith_core::{CommonConfig, ConfigSecret, Url};
///
/// let common = CommonConfig::new("deyel", "APIUSER")
///     .with_token_url(Url::parse("https://deyel.example.com/token").unwrap())
///     .with_client_secret(ConfigSecret::literal("from-the-vault"))
///     .with_timeout(Duration::from_secs(10));
/// assert_eq!(common.timeout, Duration::from_secs(10));
/// assert!(CommonConfig::field_names().contains(&"client_secret"));
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommonConfig {
    /// The adapter kind (`soti-connect`, `configapi`, `oauth2`, `deyel`), lowercased.
    pub kind: String,
    /// The token endpoint. Required by every built-in kind except `oauth2`
    /// with `issuer` (discovery). It may not carry a fragment, nor a
    /// credential (`client_secret`, `password`, …) in its query.
    #[serde(default)]
    pub token_url: Option<Url>,
    /// The client identifier (not empty).
    pub client_id: String,
    /// The client secret (required or forbidden per kind).
    #[serde(default)]
    pub client_secret: Option<ConfigSecret>,
    /// Whole-request timeout (default 30 s).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Treat a token as expired this long before it expires (default: the
    /// cache's, see [`CacheConfig`](crate::CacheConfig)).
    #[serde(default, deserialize_with = "opt_duration")]
    pub expiry_margin: Option<Duration>,
    /// Start a background refresh this long before expiry (default: the
    /// cache's, see [`CacheConfig`](crate::CacheConfig)).
    #[serde(default, deserialize_with = "opt_duration")]
    pub refresh_ahead: Option<Duration>,
    /// Where rotated refresh tokens persist.
    #[serde(default)]
    pub refresh_token_store: Option<RefreshTokenStoreConfig>,
    /// Allow plain `http://` to a non-loopback host (default `false`).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Extra trusted CA certificates (PEM) for a private PKI.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether this provider's tokens go to the config's `[store]`
    /// (default `true`); `false` keeps them in this process's memory only.
    #[serde(default = "yes")]
    pub shared: bool,
}

fn yes() -> bool {
    true
}

impl CommonConfig {
    /// The common fields of a provider of `kind` with the client id
    /// `client_id`, every other field unset (its default). Validated when the
    /// provider is built, as a table's are.
    pub fn new(kind: &str, client_id: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            token_url: None,
            client_id: client_id.into(),
            client_secret: None,
            timeout: DEFAULT_TIMEOUT,
            expiry_margin: None,
            refresh_ahead: None,
            refresh_token_store: None,
            allow_insecure_http: false,
            ca_file: None,
            shared: true,
        }
    }

    /// The names of the common fields, as a table spells them: read from
    /// this type itself, so there is no second list to keep in step.
    pub fn field_names() -> &'static [&'static str] {
        static NAMES: std::sync::LazyLock<&'static [&'static str]> =
            std::sync::LazyLock::new(field_names::<CommonConfig>);
        &NAMES
    }

    /// Sets `token_url`.
    #[must_use]
    pub fn with_token_url(mut self, url: Url) -> Self {
        self.token_url = Some(url);
        self
    }

    /// Sets `client_secret` (fetched from a vault at run time, say:
    /// `ConfigSecret::from(secret_string)`).
    #[must_use]
    pub fn with_client_secret(mut self, secret: impl Into<ConfigSecret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Sets `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `expiry_margin`.
    #[must_use]
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = Some(margin);
        self
    }

    /// Sets `refresh_ahead` (`Duration::ZERO` turns background refresh off).
    #[must_use]
    pub fn with_refresh_ahead(mut self, ahead: Duration) -> Self {
        self.refresh_ahead = Some(ahead);
        self
    }

    /// Sets `refresh_token_store`.
    #[must_use]
    pub fn with_refresh_token_store(mut self, store: RefreshTokenStoreConfig) -> Self {
        self.refresh_token_store = Some(store);
        self
    }

    /// Sets `allow_insecure_http`.
    #[must_use]
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sets `shared` (`false` keeps the provider out of the token store).
    #[must_use]
    pub fn with_shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Sets `ca_file`.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
}

/// The `refresh_token_store` field.
///
/// Read by hand rather than derived: serde's "unknown variant" error would
/// quote whatever string was given, and the refresh token itself pasted here
/// (instead of into `refresh_token`) must never reach an error message.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RefreshTokenStoreConfig {
    /// `{ file = "PATH" }`: a file, mode 0600, replaced atomically.
    File(PathBuf),
    /// `"memory"`: kept in memory only (lost on restart; the default).
    Memory,
}

const STORE_EXPECTED: &str = "{ file = \"PATH\" } or \"memory\"";

impl<'de> Deserialize<'de> for RefreshTokenStoreConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = RefreshTokenStoreConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(STORE_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                if value == "memory" {
                    return Ok(RefreshTokenStoreConfig::Memory);
                }
                Err(E::custom(format!(
                    "expected {STORE_EXPECTED}, found another string (a refresh token goes in \
                     `refresh_token`, not here)"
                )))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut file: Option<PathBuf> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "file" || file.is_some() {
                        return Err(de::Error::custom(format!(
                            "expected {STORE_EXPECTED}, found the key `{key}`"
                        )));
                    }
                    file = Some(map.next_value()?);
                }
                match file {
                    Some(path) if path.as_os_str().is_empty() => {
                        Err(de::Error::custom("the file path is empty"))
                    }
                    Some(path) => Ok(RefreshTokenStoreConfig::File(path)),
                    None => Err(de::Error::custom(format!("expected {STORE_EXPECTED}"))),
                }
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// The top-level `[store]` table: where cached tokens live beyond one
/// process (contract §6; `docs/configuration.md`).
///
/// | `kind` | fields |
/// |---|---|
/// | `"memory"` | none: no store, each process caches for itself (the library's default) |
/// | `"file"` | `path` (default: the per-user cache directory, [`FileTokenStore::default_dir`](crate::FileTokenStore::default_dir)), `lock_timeout` |
/// | `"redis"` (the `tokensmith-redis` crate) | `url`, `encryption_key` (or `encrypt = false`), `prefix`, `lock_timeout` |
///
/// ```
/// use tokensmith_core::StoreConfig;
///
/// let config: StoreConfig = toml::from_str(r#"
///     kind = "file"
///     path = "/var/cache/myapp/tokens"
///     lock_timeout = "5s"
/// "#).unwrap();
/// assert_eq!(config.kind, "file");
/// assert_eq!(config.lock_timeout(), std::time::Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `"memory"`, `"file"` or `"redis"` (or a kind a registered
    /// [`StoreFactory`](crate::StoreFactory) builds).
    pub kind: String,
    /// The file store's directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The key namespace of a shared store (Redis: default `"tokensmith"`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// The longest wait for another process's fetch (default 10 s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub lock_timeout: Option<Duration>,
    /// Redis: the server's URL (`redis://` or `rediss://`), a secret.
    #[serde(default)]
    pub url: Option<ConfigSecret>,
    /// Redis: 32 random bytes, base64, that encrypt and authenticate the
    /// stored tokens, a secret.
    #[serde(default)]
    pub encryption_key: Option<ConfigSecret>,
    /// Redis: `false` stores tokens unencrypted (must be written to go
    /// without `encryption_key`).
    #[serde(default)]
    pub encrypt: Option<bool>,
    /// Redis: the bound on one call to the server, connecting included
    /// (default 1 s). A call that takes longer counts as the store being
    /// down: the caller fetches for itself.
    #[serde(default, deserialize_with = "opt_duration")]
    pub call_timeout: Option<Duration>,
}

impl StoreConfig {
    /// A store of `kind`, every other field unset.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            path: None,
            prefix: None,
            lock_timeout: None,
            url: None,
            encryption_key: None,
            encrypt: None,
            call_timeout: None,
        }
    }

    /// The file store in `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self { path: Some(path.into()), ..Self::new("file") }
    }

    /// Sets `lock_timeout`.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Sets `call_timeout` (a store that talks to a server bounds each call
    /// with it).
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// `lock_timeout`, or its default
    /// ([`DEFAULT_TOKEN_STORE_LOCK_TIMEOUT`](crate::DEFAULT_TOKEN_STORE_LOCK_TIMEOUT)).
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout.unwrap_or(crate::store::DEFAULT_TOKEN_STORE_LOCK_TIMEOUT)
    }

    /// The `[store]` table of a whole config file's `text` (`None` when it
    /// has none), with the errors [`Registry::load_str`](crate::Registry::load_str)
    /// gives for it (invalid TOML with its line and column, the field named);
    /// providers are not read. The store is not built: a kind's own fields
    /// are checked when a registry builds it.
    ///
    /// ```
    /// use tokensmith_core::StoreConfig;
    ///
    /// let text = "[store]\nkind = \"file\"\npath = \"/var/cache/app\"\n\n[providers.a]\nkind = \"x\"\n";
    /// let store = StoreConfig::from_config_text(text).unwrap().unwrap();
    /// assert_eq!(store.kind, "file");
    /// assert!(StoreConfig::from_config_text("[providers]\n").unwrap().is_none());
    /// let err = StoreConfig::from_config_text("[store\nkind = 1").unwrap_err();
    /// assert!(err.to_string().contains("line 1"), "{err}");
    /// ```
    pub fn from_config_text(text: &str) -> Result<Option<Self>, TokenError> {
        let mut doc = parse_toml(text)?;
        doc.remove("store").map(store_from_value).transpose()
    }

    /// A config error about the field `field` of `[store]`.
    pub fn error(field: &str, message: impl Into<String>) -> TokenError {
        TokenError::config(None, Some(&format!("store.{field}")), message)
    }

    /// Refuses every field in `fields` that is set: a store kind that does
    /// not use them says so (naming the field) rather than ignoring it.
    pub fn refuse_fields(&self, fields: &[&str]) -> Result<(), TokenError> {
        let set = |field: &str| match field {
            "path" => self.path.is_some(),
            "prefix" => self.prefix.is_some(),
            "lock_timeout" => self.lock_timeout.is_some(),
            "url" => self.url.is_some(),
            "encryption_key" => self.encryption_key.is_some(),
            "encrypt" => self.encrypt.is_some(),
            "call_timeout" => self.call_timeout.is_some(),
            _ => false,
        };
        match fields.iter().find(|f| set(f)) {
            Some(field) => {
                Err(Self::error(field, format!("not used by a store of kind {:?}", self.kind)))
            }
            None => Ok(()),
        }
    }
}

/// Parses a whole config file's text. An error gives the position and
/// toml's message only: toml's `Display` quotes the offending line, which
/// may hold a secret.
pub(crate) fn parse_toml(text: &str) -> Result<toml::Table, TokenError> {
    text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|span| {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        TokenError::config(
            None,
            None,
            format!("invalid TOML{at}: {}", crate::redact::one_line(e.message(), usize::MAX)),
        )
    })
}

/// Reads the `[store]` table.
pub(crate) fn store_from_value(value: toml::Value) -> Result<StoreConfig, TokenError> {
    let toml::Value::Table(table) = value else {
        return Err(TokenError::config(None, Some("store"), "must be a table"));
    };
    let value = toml::Value::Table(table);
    let mut config: StoreConfig = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().message().to_owned();
        let field = if path == "." {
            field_from_message(&message).map(|f| format!("store.{f}"))
        } else {
            Some(format!("store.{path}"))
        };
        TokenError::config(None, Some(field.as_deref().unwrap_or("store")), message)
    })?;
    config.kind = config.kind.to_ascii_lowercase();
    Ok(config)
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// Parses a duration as every config field writes one (`timeout`,
/// `expiry_margin`, `refresh_ahead`): a humane string such as `"30s"`,
/// `"2m 30s"` or `"500ms"`. For adapters' own duration fields and tools
/// that read a provider table themselves.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(tokensmith_core::parse_duration("2m 30s"), Ok(Duration::from_secs(150)));
/// assert!(tokensmith_core::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. \"30s\", \"5m\", \"500ms\""))
}

/// `deserialize_with` for a humane duration string.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(de::Error::custom)
}

/// `deserialize_with` for an optional humane duration string.
pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Deserializes `table` into `T`, turning errors into a [`TokenError::Config`]
/// that names the provider and the dotted field path.
pub(crate) fn from_table<T: DeserializeOwned>(
    provider: &str,
    table: toml::Table,
) -> Result<T, TokenError> {
    // Secret files group or others may read load, with a warning naming
    // the field (known here, not where the file is read).
    let fields = table.clone();
    let value = toml::Value::Table(table);
    let (result, loose) =
        crate::secret::collect_loose_files(|| serde_path_to_error::deserialize(value));
    for path in loose {
        let names = crate::secret::fields_naming_file(&fields, &path);
        let field = (!names.is_empty()).then(|| names.join(", "));
        crate::secret::warn_loose_file(Some(provider), field.as_deref(), &path);
    }
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.message().to_owned();
        let field = if path == "." { None } else { Some(path.as_str()) };
        let field = field.or_else(|| field_from_message(&message));
        TokenError::config(Some(provider), field, message.clone())
    })
}

/// The fields of the config type `T`, as serde names them (empty when `T`
/// is not a plain struct, e.g. one with `#[serde(flatten)]`). Read from `T`'s
/// `Deserialize` without any value.
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    match probe::run::<T>(&[]) {
        probe::Found::Struct(fields) => fields,
        probe::Found::Secret | probe::Found::Other => &[],
    }
}

/// The fields of the config type `T` whose values are secrets: those typed
/// [`ConfigSecret`] (also inside an `Option` or a nested struct), as dotted
/// paths. Secret-ness comes from the type, never from a list of names.
pub(crate) fn secret_fields<T: DeserializeOwned>() -> Vec<String> {
    fn walk<T: DeserializeOwned>(path: &mut Vec<&'static str>, out: &mut Vec<String>) {
        match probe::run::<T>(path) {
            probe::Found::Secret => out.push(path.join(".")),
            // Bounded, for a type that contains itself.
            probe::Found::Struct(fields) if path.len() < 4 => {
                for field in fields {
                    path.push(field);
                    walk::<T>(path, out);
                    path.pop();
                }
            }
            probe::Found::Struct(_) | probe::Found::Other => {}
        }
    }
    let mut out = Vec::new();
    walk::<T>(&mut Vec::new(), &mut out);
    out
}

/// A `Deserializer` that holds no value: it walks a config type's derived
/// `Deserialize` down a path of field names and reports what it finds there
/// (a struct and its fields, a [`ConfigSecret`], or anything else), then
/// stops with an error.
mod probe {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{
        self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, MapAccess, Visitor,
    };

    /// What is at the probed path.
    #[derive(Clone, Copy)]
    pub(super) enum Found {
        /// A struct with these fields.
        Struct(&'static [&'static str]),
        /// A [`ConfigSecret`](crate::ConfigSecret).
        Secret,
        /// Anything else.
        Other,
    }

    /// Probes `T` at `path`.
    pub(super) fn run<T: DeserializeOwned>(path: &[&'static str]) -> Found {
        let found = Cell::new(Found::Other);
        let _ = T::deserialize(Probe { path, found: &found });
        found.get()
    }

    /// Ends every probe.
    #[derive(Debug)]
    pub(super) struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("probe")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    struct Probe<'a> {
        path: &'a [&'static str],
        found: &'a Cell<Found>,
    }

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            // A secret's visitor is recognised by what it expects.
            let expected = (&visitor as &dyn Expected).to_string();
            if self.path.is_empty() && expected == crate::secret::EXPECTED {
                self.found.set(Found::Secret);
            }
            Err(Stop)
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            visitor: V,
        ) -> Result<V::Value, Stop> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Stop> {
            match self.path.split_first() {
                None => {
                    self.found.set(Found::Struct(fields));
                    Err(Stop)
                }
                Some((field, rest)) => visitor.visit_map(OneField {
                    key: Some(field),
                    value: Some(Probe { path: rest, found: self.found }),
                }),
            }
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf unit unit_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    /// A map of one field, whose value is probed further.
    struct OneField<'a> {
        key: Option<&'static str>,
        value: Option<Probe<'a>>,
    }

    impl<'de> MapAccess<'de> for OneField<'_> {
        type Error = Stop;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Stop> {
            self.key.take().map(|key| seed.deserialize(key.into_deserializer())).transpose()
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
            seed.deserialize(self.value.take().ok_or(Stop)?)
        }
    }
}

/// serde's "unknown field `x`" / "missing field `x`" messages name the field in backticks.
fn field_from_message(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// The candidate closest to `word`, when it is close enough to be what was
/// meant: an edit distance (insertions, deletions, substitutions and swaps
/// of neighbours, ignoring case) of at most a third of `word`'s length (at
/// least one, at most three). `word` itself is not a suggestion.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|&(d, c)| c != word && d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The optimal-string-alignment distance between `a` and `b`: Levenshtein
/// plus swaps of neighbouring characters (`tiemout`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // rows[i][j]: the distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// The names in backticks in a serde message, in order: for "unknown field
/// `x`, expected one of `a`, `b`", `["x", "a", "b"]`.
pub(crate) fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[expect(dead_code, reason = "only the types matter")]
    struct Kind {
        grant: String,
        password: Option<ConfigSecret>,
        code: ConfigSecret,
        timeout: Option<u32>,
        nested: Option<Nested>,
        extra_params: std::collections::BTreeMap<String, String>,
    }

    #[derive(Deserialize)]
    #[expect(dead_code, reason = "only the types matter")]
    struct Nested {
        private_key: ConfigSecret,
        key_id: String,
    }

    #[test]
    fn fields_and_secrets_are_read_from_the_types() {
        assert_eq!(
            field_names::<Kind>(),
            ["grant", "password", "code", "timeout", "nested", "extra_params"]
        );
        assert_eq!(secret_fields::<Kind>(), ["password", "code", "nested.private_key"]);
        assert_eq!(secret_fields::<CommonConfig>(), ["client_secret"]);
        assert_eq!(field_names::<std::collections::BTreeMap<String, String>>(), [""; 0]);
        assert!(secret_fields::<RefreshTokenStoreConfig>().is_empty());
    }

    #[test]
    fn the_common_fields_are_the_struct_s() {
        assert_eq!(
            CommonConfig::field_names(),
            [
                "kind",
                "token_url",
                "client_id",
                "client_secret",
                "timeout",
                "expiry_margin",
                "refresh_ahead",
                "refresh_token_store",
                "allow_insecure_http",
                "ca_file",
                "shared",
            ]
        );
    }

    #[test]
    fn edit_distance_counts_typos() {
        for (a, b, d) in [
            ("timeout", "timeout", 0),
            ("timout", "timeout", 1),
            ("tiemout", "timeout", 1),
            ("client_secre", "client_secret", 1),
            ("deyal", "deyel", 1),
            ("", "abc", 3),
            ("scope", "kind", 5),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn closest_suggests_only_plausible_names() {
        let fields = ["timeout", "token_url", "client_id", "scope"];
        assert_eq!(closest("timout", fields), Some("timeout"));
        assert_eq!(closest("Token_URL", fields), Some("token_url"));
        assert_eq!(closest("scop", fields), Some("scope"));
        assert_eq!(closest("scope", fields), None, "an exact name is no typo");
        assert_eq!(closest("audience", fields), None);
        assert_eq!(closest("x", fields), None);
        assert_eq!(backticked("unknown field `x`, expected one of `a`, `b`"), ["x", "a", "b"]);
        assert_eq!(backticked("unknown field `x`, there are no fields"), ["x"]);
    }
}
