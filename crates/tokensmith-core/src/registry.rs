//! The [`Registry`] of adapter factories, and [`Providers`] loaded from config.
//!
//! A `kind` string selects a factory (opendal's shape). Loading a config
//! validates every provider (or, with [`Registry::load_str_one`], the one
//! asked for) without touching the network and wraps each one built in the
//! cache ([`CachedProvider`]) exactly once.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::config::{
    CommonConfig, RefreshTokenStoreConfig, StoreConfig, backticked, closest, from_table,
    parse_toml, secret_fields, store_from_value,
};
use crate::http::{ClientAuth, HttpSettings, TokenEndpoint};
use crate::refresh_store::{
    FileRefreshTokenStore, MemoryRefreshTokenStore, SharedRefreshTokenStore,
};
use crate::store::{FileTokenStore, ProviderIdentity, SharedTokenStore};
use crate::{
    CacheConfig, CacheStats, CachedProvider, ConfigSecret, Renewal, SharedClock,
    SharedTokenProvider, SystemClock, TokenError,
};

/// The built-in kinds and the crate (and facade feature) that provides each,
/// so an unknown kind can say what to add.
pub const KNOWN_KINDS: &[(&str, &str, &str)] = &[
    ("soti-connect", "tokensmith-soti", "soti"),
    ("configapi", "tokensmith-configapi", "configapi"),
    ("oauth2", "tokensmith-oauth2", "oauth2"),
    ("deyel", "tokensmith-deyel", "deyel"),
    ("custom", "tokensmith-custom", "custom"),
];

/// The store kinds that live in their own crate, so a `[store]` of that
/// kind can say what to add.
pub const KNOWN_STORE_KINDS: &[(&str, &str)] = &[("redis", "tokensmith-redis")];

/// Builds the token store a `[store]` table of one `kind` describes
/// ([`Registry::with_store_factory`]); `tokensmith-redis` exports one.
/// Core builds `"memory"` (no store) and `"file"` itself.
pub trait StoreFactory: Send + Sync + fmt::Debug + 'static {
    /// The `kind` this factory builds, lowercase (`"redis"`).
    fn kind(&self) -> &'static str;

    /// Validates `config` and builds the store; errors name the field
    /// ([`StoreConfig::error`], [`StoreConfig::refuse_fields`]). Must not
    /// touch the network (connect lazily).
    fn build(&self, config: &StoreConfig) -> Result<SharedTokenStore, TokenError>;
}

/// The token store a registry puts under its providers' caches.
#[derive(Clone, Debug)]
enum StoreChoice {
    /// The config's `[store]`, else this one (`None`: no store).
    FromConfig(Option<Box<StoreConfig>>),
    /// No store whatever the config says (`tokensmith token --no-cache`).
    Off,
}

/// A built store and its lock timeout.
#[derive(Clone, Debug)]
struct BuiltStore {
    store: SharedTokenStore,
    lock_timeout: std::time::Duration,
}

/// Builds providers of one `kind` from config. Each adapter crate exports one.
///
/// ```
/// use tokensmith_core::{AdapterFactory, ProviderContext, SharedTokenProvider, TokenError};
///
/// #[derive(Debug)]
/// struct Static;
///
/// impl AdapterFactory for Static {
///     fn kind(&self) -> &'static str { "static" }
///     fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
///         #[derive(serde::Deserialize)]
///         #[serde(deny_unknown_fields)]
///         struct Config { value: String }
///         let config: Config = ctx.parse()?;
///         let token = tokensmith_core::AccessToken::builder(config.value, ctx.clock().now()).build();
///         Ok(std::sync::Arc::new(token))
///     }
/// }
///
/// let providers = tokensmith_core::Registry::new().with(Static).load_str(r#"
///     [providers.fixed]
///     kind = "static"
///     token_url = "https://example.com/token"
///     client_id = "me"
///     value = "abc"
/// "#).unwrap();
/// assert!(providers.get("fixed").is_ok());
/// ```
pub trait AdapterFactory: Send + Sync + fmt::Debug + 'static {
    /// The `kind` this factory builds, lowercase (`"soti-connect"`).
    fn kind(&self) -> &'static str;

    /// Validates the provider's config and builds the (uncached) provider.
    /// Must not touch the network.
    fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError>;

    /// What `check` and `list` show of a provider beyond its name, kind,
    /// `token_url` and client id ([`ProviderInfo::details`]): label and
    /// value pairs, never a secret. Called before [`build`](Self::build);
    /// none by default.
    fn details(&self, ctx: &ProviderContext) -> Vec<(&'static str, String)> {
        let _ = ctx;
        Vec::new()
    }
}

/// A provider of one kind described in code: what a `[providers.NAME]`
/// table says, typed. Each adapter crate exports one (`DeyelConfig`, …),
/// with a builder.
///
/// A config goes through the same validation and the same single cache
/// wrapping as a table: [`Registry::build`] for one provider,
/// [`Providers::builder`] for several. The factory receives it as it
/// receives a table: [`ProviderContext::parse`] returns the typed
/// [`Fields`](Self::Fields) given here.
///
/// ```
/// use tokensmith_core::{
///     AdapterConfig, AdapterFactory, CommonConfig, ProviderContext, Registry, SharedTokenProvider,
///     TokenError,
/// };
///
/// /// The kind's own fields: what its factory parses from a table.
/// #[derive(Clone, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Fields { value: String }
///
/// #[derive(Debug, Default)]
/// struct Static;
///
/// impl AdapterFactory for Static {
///     fn kind(&self) -> &'static str { "static" }
///     fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
///         let Fields { value } = ctx.parse()?;
///         if value.is_empty() {
///             return Err(ctx.error("value", "is empty"));
///         }
///         Ok(std::sync::Arc::new(tokensmith_core::AccessToken::builder(value, ctx.clock().now()).build()))
///     }
/// }
///
/// struct StaticConfig { common: CommonConfig, fields: Fields }
///
/// impl AdapterConfig for StaticConfig {
///     type Factory = Static;
///     type Fields = Fields;
///     fn into_parts(self) -> (CommonConfig, Fields) { (self.common, self.fields) }
/// }
///
/// let config = |value: &str| StaticConfig {
///     common: CommonConfig::new("static", "me"),
///     fields: Fields { value: value.to_owned() },
/// };
/// let provider = Registry::new().build("fixed", config("abc"))?; // cached once
/// assert_eq!(provider.stats().fetches, 0);
/// let err = Registry::new().build("fixed", config("")).unwrap_err();
/// assert_eq!(err.to_string(), r#"config error: provider "fixed", field "value": is empty"#);
/// # Ok::<(), TokenError>(())
/// ```
pub trait AdapterConfig: Send + 'static {
    /// The factory that builds the provider, from this config or a table.
    type Factory: AdapterFactory + Default;
    /// The kind's own fields, as its factory parses them from a table.
    type Fields: Clone + Send + Sync + 'static;

    /// The common fields and the kind's own.
    fn into_parts(self) -> (CommonConfig, Self::Fields);
}

/// What a factory gets to build one provider: its name, the common fields,
/// the rest of its table, and the shared clock.
pub struct ProviderContext {
    name: Arc<str>,
    common: CommonConfig,
    rest: Rest,
    clock: SharedClock,
    /// What the factory took for single-use credentials, read by the
    /// registry once the factory is done with the context.
    renewal: Arc<Mutex<RenewalUse>>,
    /// The secret fields of what [`parse`](Self::parse) read, for
    /// [`ProviderInfo::secret_fields`].
    secrets: Arc<Mutex<Vec<String>>>,
    /// The whole table as written, for the provider's store identity
    /// (`None` for a provider built in code).
    table: Option<toml::Table>,
}

/// Whether a factory asked for a refresh-token store or a [`Renewal`].
#[derive(Debug, Default)]
struct RenewalUse {
    single_use: bool,
    renewal: Option<Arc<Renewal>>,
}

/// The kind-specific fields: the rest of a table, or typed fields given in
/// code (cloned out by each [`ProviderContext::parse`]).
enum Rest {
    Table(toml::Table),
    Typed { type_name: &'static str, fields: Arc<dyn Fn() -> Box<dyn Any> + Send + Sync> },
}

impl ProviderContext {
    /// A context for the provider `name` (used by the registry; public so
    /// adapters can be tested without a config file).
    pub fn new(name: &str, table: toml::Table, clock: SharedClock) -> Result<Self, TokenError> {
        let whole = table.clone();
        let mut common_table = toml::Table::new();
        let mut rest = toml::Table::new();
        for (key, value) in table {
            if CommonConfig::field_names().contains(&key.as_str()) {
                common_table.insert(key, value);
            } else {
                rest.insert(key, value);
            }
        }
        let common: CommonConfig =
            from_table(name, common_table).map_err(|e| with_common_typo(e, rest.keys()))?;
        let mut ctx = Self::validated(name, common, Rest::Table(rest), clock)?;
        ctx.table = Some(whole);
        Ok(ctx)
    }

    /// A context for the provider `name` described in code: the common
    /// fields and the kind's own, typed (what [`parse`](Self::parse) then
    /// returns). The common fields are validated as a table's are. Used by
    /// [`Registry::build`]; public so adapters can be tested.
    pub fn from_parts<F: Clone + Send + Sync + 'static>(
        name: &str,
        common: CommonConfig,
        fields: F,
        clock: SharedClock,
    ) -> Result<Self, TokenError> {
        let rest = Rest::Typed {
            type_name: std::any::type_name::<F>(),
            fields: Arc::new(move || Box::new(fields.clone())),
        };
        Self::validated(name, common, rest, clock)
    }

    /// The load-time rules of the common fields, for a table or a config
    /// built in code alike (a table's secrets and store path were checked
    /// as they were read; checking again costs nothing).
    fn validated(
        name: &str,
        mut common: CommonConfig,
        rest: Rest,
        clock: SharedClock,
    ) -> Result<Self, TokenError> {
        let error =
            |field: &str, message: &str| TokenError::config(Some(name), Some(field), message);
        common.kind = common.kind.to_ascii_lowercase();
        if common.client_id.trim().is_empty() {
            return Err(error("client_id", "is empty"));
        }
        if common.client_secret.as_ref().is_some_and(ConfigSecret::is_empty) {
            return Err(error("client_secret", "the secret is empty"));
        }
        if let Some(RefreshTokenStoreConfig::File(path)) = &common.refresh_token_store
            && path.as_os_str().is_empty()
        {
            return Err(error("refresh_token_store", "the file path is empty"));
        }
        if let Some(url) = &common.token_url {
            check_token_url(name, url)?;
        }
        let secrets = Arc::new(Mutex::new(secret_fields::<CommonConfig>()));
        Ok(Self {
            name: name.into(),
            common,
            rest,
            clock,
            renewal: Arc::default(),
            secrets,
            table: None,
        })
    }

    /// The provider's name (its `[providers.NAME]` key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fields common to every kind.
    pub fn common(&self) -> &CommonConfig {
        &self.common
    }

    /// The clock every token's receipt time is read from.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Deserializes the kind-specific fields into the adapter's config type.
    /// Use `#[serde(deny_unknown_fields)]` on it so typos are errors.
    ///
    /// An unknown field's error names it, suggests the closest field of the
    /// kind or the common ones, and lists them all.
    ///
    /// For a provider built in code ([`from_parts`](Self::from_parts)),
    /// returns a copy of the typed fields given, when `T` is their type.
    pub fn parse<T: DeserializeOwned + 'static>(&self) -> Result<T, TokenError> {
        let parsed = match &self.rest {
            Rest::Table(table) => {
                from_table(&self.name, table.clone()).map_err(|e| self.explain_unknown_field(e))
            }
            Rest::Typed { type_name, fields } => {
                fields().downcast::<T>().map(|fields| *fields).map_err(|_| {
                    TokenError::config(
                        Some(&self.name),
                        None,
                        format!(
                            "the adapter reads its fields as {}, but they were given as {type_name}",
                            std::any::type_name::<T>()
                        ),
                    )
                })
            }
        }?;
        let mut secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        for field in secret_fields::<T>() {
            if !secrets.contains(&field) {
                secrets.push(field);
            }
        }
        Ok(parsed)
    }

    /// The names of the kind-specific fields written in the table (none for
    /// a provider built in code).
    fn field_names(&self) -> Vec<String> {
        match &self.rest {
            Rest::Table(table) => table.keys().cloned().collect(),
            Rest::Typed { .. } => Vec::new(),
        }
    }

    /// serde's "unknown field `x`, expected …" lists the kind's own fields
    /// only (the common ones were taken out before): name the closest field
    /// of either list, and list both.
    fn explain_unknown_field(&self, err: TokenError) -> TokenError {
        let TokenError::Config { field: Some(path), message, .. } = &err else { return err };
        if !message.starts_with("unknown field `") {
            return err;
        }
        let common = CommonConfig::field_names();
        let names = backticked(message);
        let Some((unknown, own)) = names.split_first() else { return err };
        let list =
            |names: &[&str]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let top_level = !path.contains('.');
        let candidates =
            own.iter().copied().chain(top_level.then_some(common).into_iter().flatten().copied());
        let hint = closest(unknown, candidates)
            .map(|meant| format!(" (did you mean `{meant}`?)"))
            .unwrap_or_default();
        let kind = &self.common.kind;
        let fields = match (top_level, own.is_empty()) {
            (true, true) => {
                format!("; kind {kind:?} takes only the common fields {}", list(common))
            }
            (true, false) => format!(
                "; kind {kind:?} takes {} and the common fields {}",
                list(own),
                list(common)
            ),
            (false, false) => format!("; expected {}", list(own)),
            (false, true) => String::new(),
        };
        let text = format!("unknown field `{unknown}`{hint}{fields}");
        TokenError::config(Some(&self.name), Some(path), text)
    }

    /// A config error for `field` of this provider.
    pub fn error(&self, field: &str, message: impl Into<String>) -> TokenError {
        TokenError::config(Some(&self.name), Some(field), message)
    }

    /// Checks a field that belongs to one grant: it must be set when
    /// `in_use` (the configured grant is `grant`) and absent otherwise.
    /// Returns the value, which is `Some` exactly when `in_use`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tokensmith_core::{ProviderContext, SystemClock};
    /// # let table: toml::Table = toml::from_str(r#"kind = "x"
    /// # client_id = "me"
    /// # code = "c""#).unwrap();
    /// # let ctx = ProviderContext::new("p", table, Arc::new(SystemClock)).unwrap();
    /// let err = ctx.grant_field("code", Some("c"), false, "authorization_code").unwrap_err();
    /// assert!(err.to_string().contains("only used with grant = \"authorization_code\""));
    /// let err = ctx.grant_field::<&str>("code", None, true, "authorization_code").unwrap_err();
    /// assert!(err.to_string().contains("required with grant"));
    /// ```
    pub fn grant_field<T>(
        &self,
        field: &str,
        value: Option<T>,
        in_use: bool,
        grant: &str,
    ) -> Result<Option<T>, TokenError> {
        match (value.is_some(), in_use) {
            (true, false) => Err(self.error(field, format!("only used with grant = {grant:?}"))),
            (false, true) => Err(self.error(field, format!("required with grant = {grant:?}"))),
            _ => Ok(value),
        }
    }

    /// The client secret, or an error saying this kind needs one.
    pub fn require_client_secret(&self) -> Result<SecretString, TokenError> {
        self.common.client_secret.as_ref().map(|s| s.as_secret().clone()).ok_or_else(|| {
            self.error(
                "client_secret",
                format!("kind {:?} requires a client_secret", self.common.kind),
            )
        })
    }

    /// Refuses a client id that `auth` cannot carry: with
    /// [`ClientAuth::BasicRaw`] the id is sent as is in Basic credentials,
    /// which split at the first `:` (RFC 7617 §2), so an id with a `:` would
    /// reach the server cut short. (The secret may hold a `:`: everything
    /// after the first one is the secret.) Other styles carry any id.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tokensmith_core::{ClientAuth, CommonConfig, ProviderContext, SystemClock};
    /// let common = CommonConfig::new("x", "rest:api");
    /// let ctx = ProviderContext::from_parts("p", common, (), Arc::new(SystemClock)).unwrap();
    /// let err = ctx.check_client_auth(ClientAuth::BasicRaw).unwrap_err();
    /// assert!(err.to_string().contains("field \"client_id\": must not contain ':'"), "{err}");
    /// assert!(ctx.check_client_auth(ClientAuth::BasicFormEncoded).is_ok());
    /// ```
    pub fn check_client_auth(&self, auth: ClientAuth) -> Result<(), TokenError> {
        if auth == ClientAuth::BasicRaw && self.common.client_id.contains(':') {
            return Err(self.error(
                "client_id",
                "must not contain ':' (sent as Basic credentials as is, which split at the first ':')",
            ));
        }
        Ok(())
    }

    /// The token endpoint built from `token_url` and the HTTP settings
    /// (https rule, timeout, CA file), or an error if `token_url` is missing.
    pub fn endpoint(&self) -> Result<TokenEndpoint, TokenError> {
        let url = self
            .common
            .token_url
            .clone()
            .ok_or_else(|| self.error("token_url", "missing field `token_url`"))?;
        self.endpoint_for(url)
    }

    /// A token endpoint for `url` with this provider's HTTP settings.
    pub fn endpoint_for(&self, url: url::Url) -> Result<TokenEndpoint, TokenError> {
        TokenEndpoint::new(&self.name, url, &self.http_settings(), self.clock.clone())
    }

    /// The provider's HTTP settings.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            timeout: self.common.timeout,
            allow_insecure_http: self.common.allow_insecure_http,
            ca_file: self.common.ca_file.clone(),
            ..HttpSettings::default()
        }
    }

    /// The renewal state of a provider whose grant spends single-use
    /// credentials (an authorization `code`, a `refresh_token` the server may
    /// rotate): a [`Renewal`] with this provider's
    /// [store](Self::refresh_token_store). Marks the provider as using
    /// single-use credentials ([`ProviderInfo::single_use_credentials`]) and
    /// lets [`Providers::refresh_token_save_error`] report a rotated refresh
    /// token that could not be saved.
    pub fn renewal(
        &self,
        code: Option<SecretString>,
        refresh_token: Option<SecretString>,
    ) -> Arc<Renewal> {
        let renewal =
            Arc::new(Renewal::new(&self.name, code, refresh_token, self.refresh_token_store()));
        self.renewal.lock().unwrap_or_else(PoisonError::into_inner).renewal =
            Some(Arc::clone(&renewal));
        renewal
    }

    /// The store for rotated refresh tokens: the configured one, or an
    /// in-memory store. Asking for it marks the provider as using
    /// single-use credentials ([`ProviderInfo::single_use_credentials`]).
    pub fn refresh_token_store(&self) -> SharedRefreshTokenStore {
        self.renewal.lock().unwrap_or_else(PoisonError::into_inner).single_use = true;
        match &self.common.refresh_token_store {
            Some(RefreshTokenStoreConfig::File(path)) => {
                Arc::new(FileRefreshTokenStore::new(&self.name, path.clone()))
            }
            Some(RefreshTokenStoreConfig::Memory) | None => {
                Arc::new(MemoryRefreshTokenStore::default())
            }
        }
    }
}

impl fmt::Debug for ProviderContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderContext")
            .field("name", &self.name)
            .field("common", &self.common)
            .field(
                "fields",
                &match &self.rest {
                    Rest::Table(table) => format!("{:?}", table.keys().collect::<Vec<_>>()),
                    Rest::Typed { type_name, .. } => (*type_name).to_owned(),
                },
            )
            .finish_non_exhaustive()
    }
}

/// Query parameters a `token_url` must not carry: credentials, which belong
/// in the request body or header (a URL is shown by `check`, `Debug` and
/// logs). Compared without regard to case.
const CREDENTIAL_QUERY_PARAMS: &[&str] = &[
    "client_secret",
    "password",
    "refresh_token",
    "code_verifier",
    "client_assertion",
    "access_token",
    "id_token",
];

/// A token URL has no fragment (never sent, so a sign of a mangled URL) and
/// no credential in its query. No network.
fn check_token_url(provider: &str, url: &url::Url) -> Result<(), TokenError> {
    let error = |message: String| TokenError::config(Some(provider), Some("token_url"), message);
    if url.fragment().is_some() {
        return Err(error("a token URL has no fragment (`#…`)".to_owned()));
    }
    if let Some((name, _)) = url
        .query_pairs()
        .find(|(name, _)| CREDENTIAL_QUERY_PARAMS.iter().any(|c| c.eq_ignore_ascii_case(name)))
    {
        return Err(error(format!(
            "the query carries `{name}`: credentials never go in the URL; use the provider's own fields"
        )));
    }
    Ok(())
}

/// `err` (about a common field: a missing `client_id`, a `client_secret` the
/// kind requires), or, when the table has an unknown field that reads as a
/// misspelling of that very field, an error naming the unknown field first.
fn with_common_typo<'a>(
    err: TokenError,
    fields: impl IntoIterator<Item = &'a String>,
) -> TokenError {
    let TokenError::Config { provider, field: Some(field), message } = &err else { return err };
    let common = CommonConfig::field_names();
    if !common.contains(&field.as_str()) {
        return err;
    }
    let typo = fields.into_iter().find(|key| {
        !common.contains(&key.as_str())
            && closest(key, common.iter().copied()) == Some(field.as_str())
    });
    match typo {
        Some(key) => TokenError::config(
            provider.as_deref(),
            Some(key),
            format!("unknown field `{key}` (did you mean `{field}`?); {message}"),
        ),
        None => err,
    }
}

/// Adapter factories by `kind`.
///
/// ```
/// let registry = tokensmith_core::Registry::new();
/// let err = registry.load_str(r#"
///     [providers.mdm]
///     kind = "soti-connect"
///     token_url = "https://mdm.example.com/Connect/api/token"
///     client_id = "Application1"
/// "#).unwrap_err();
/// assert!(err.to_string().contains("tokensmith-soti"));
/// ```
#[derive(Clone, Debug)]
pub struct Registry {
    factories: BTreeMap<&'static str, Arc<dyn AdapterFactory>>,
    stores: BTreeMap<&'static str, Arc<dyn StoreFactory>>,
    store: StoreChoice,
    clock: SharedClock,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry using the system clock.
    pub fn new() -> Self {
        Self {
            factories: BTreeMap::new(),
            stores: BTreeMap::new(),
            store: StoreChoice::FromConfig(None),
            clock: Arc::new(SystemClock),
        }
    }

    /// Registers a token store factory (replacing one of the same kind), so
    /// a `[store]` of its kind can be loaded.
    #[must_use]
    pub fn with_store_factory(mut self, factory: impl StoreFactory) -> Self {
        self.stores.insert(factory.kind(), Arc::new(factory));
        self
    }

    /// The store used when a config has no `[store]` table (by default
    /// none: each process caches for itself). The CLI passes
    /// `StoreConfig::file(…)`, its per-user cache.
    #[must_use]
    pub fn with_default_store(mut self, config: StoreConfig) -> Self {
        self.store = StoreChoice::FromConfig(Some(Box::new(config)));
        self
    }

    /// No token store, whatever a config's `[store]` says (it is still
    /// validated).
    #[must_use]
    pub fn without_store(mut self) -> Self {
        self.store = StoreChoice::Off;
        self
    }

    /// Builds the store `config` describes: `"memory"` is none.
    fn build_store(&self, config: &StoreConfig) -> Result<Option<BuiltStore>, TokenError> {
        let lock_timeout = config.lock_timeout();
        let store: SharedTokenStore = match config.kind.as_str() {
            "memory" => {
                config.refuse_fields(&[
                    "path",
                    "prefix",
                    "lock_timeout",
                    "url",
                    "encryption_key",
                    "encrypt",
                    "call_timeout",
                ])?;
                return Ok(None);
            }
            "file" => {
                config.refuse_fields(&[
                    "prefix",
                    "url",
                    "encryption_key",
                    "encrypt",
                    "call_timeout",
                ])?;
                let dir = match &config.path {
                    Some(path) if path.as_os_str().is_empty() => {
                        return Err(StoreConfig::error("path", "the directory path is empty"));
                    }
                    Some(path) => path.clone(),
                    None => FileTokenStore::default_dir().ok_or_else(|| {
                        StoreConfig::error(
                            "path",
                            "no per-user cache directory (neither XDG_CACHE_HOME nor HOME is set): set `path`",
                        )
                    })?,
                };
                Arc::new(FileTokenStore::new(dir))
            }
            kind => match self.stores.get(kind) {
                Some(factory) => factory.build(config)?,
                None => return Err(self.unknown_store_kind(kind)),
            },
        };
        Ok(Some(BuiltStore { store, lock_timeout }))
    }

    fn unknown_store_kind(&self, kind: &str) -> TokenError {
        let available: Vec<&str> =
            ["memory", "file"].into_iter().chain(self.stores.keys().copied()).collect();
        let message = if let Some((_, krate)) = KNOWN_STORE_KINDS.iter().find(|(k, _)| *k == kind) {
            format!(
                "store kind {kind:?} is not linked into this program: add the `{krate}` crate and register its factory (`Registry::with_store_factory`); available kinds: {}",
                available.join(", ")
            )
        } else {
            let known = available.iter().copied().chain(KNOWN_STORE_KINDS.iter().map(|(k, _)| *k));
            let hint = closest(kind, known).map(|k| format!(" (did you mean {k:?}?)"));
            format!(
                "unknown store kind {kind:?}{}; available kinds: {}",
                hint.unwrap_or_default(),
                available.join(", ")
            )
        };
        StoreConfig::error("kind", message)
    }

    /// The store for a load: the config's `[store]` (always validated),
    /// else the default, unless stores are off.
    fn store_for(&self, config: Option<StoreConfig>) -> Result<Option<BuiltStore>, TokenError> {
        let built = match &config {
            Some(config) => self.build_store(config)?,
            None => None,
        };
        match (&self.store, config) {
            (StoreChoice::FromConfig(_), Some(_)) => Ok(built),
            (StoreChoice::FromConfig(Some(default)), None) => self.build_store(default),
            (StoreChoice::Off | StoreChoice::FromConfig(None), _) => Ok(None),
        }
    }

    /// Registers a factory (replacing one of the same kind).
    #[must_use]
    pub fn with(mut self, factory: impl AdapterFactory) -> Self {
        self.factories.insert(factory.kind(), Arc::new(factory));
        self
    }

    /// Uses `clock` for every provider and cache built from now on (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    /// Loads and validates a config file (no network). Any invalid provider
    /// fails the whole load; see [`load_file_lenient`](Self::load_file_lenient)
    /// to keep the valid ones.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Providers, TokenError> {
        self.load_file_lenient(path)?.into_strict()
    }

    /// Loads and validates config text (no network). Any invalid provider
    /// fails the whole load; see [`load_str_lenient`](Self::load_str_lenient)
    /// to keep the valid ones.
    pub fn load_str(&self, text: &str) -> Result<Providers, TokenError> {
        self.load_str_lenient(text)?.into_strict()
    }

    /// Loads a config file as [`load_str_lenient`](Self::load_str_lenient)
    /// does: the valid providers, and the error of each invalid one.
    pub fn load_file_lenient(&self, path: impl AsRef<Path>) -> Result<LoadReport, TokenError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            TokenError::config(
                None,
                None,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        let name_file = |e: TokenError| match e {
            TokenError::Config { provider: None, field, message } => TokenError::Config {
                provider: None,
                field,
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        };
        self.load_str_lenient(&text).map_err(name_file)
    }

    /// Loads config text keeping every valid provider: a provider whose
    /// table is invalid (a secret whose variable is not set on this host, a
    /// typo in its `kind`, …) is left out and its error reported in the
    /// [`LoadReport`], so that one config can be shared by hosts that hold
    /// only some of the secrets. Fails only on what concerns the whole file
    /// (invalid TOML, an unknown top-level key). No network.
    ///
    /// ```
    /// # #[derive(Debug)]
    /// # struct Static;
    /// # impl tokensmith_core::AdapterFactory for Static {
    /// #     fn kind(&self) -> &'static str { "static" }
    /// #     fn build(&self, ctx: tokensmith_core::ProviderContext)
    /// #         -> Result<tokensmith_core::SharedTokenProvider, tokensmith_core::TokenError> {
    /// #         Ok(std::sync::Arc::new(tokensmith_core::AccessToken::builder("t", ctx.clock().now()).build()))
    /// #     }
    /// # }
    /// let report = tokensmith_core::Registry::new().with(Static).load_str_lenient(r#"
    ///     [providers.here]
    ///     kind = "static"
    ///     client_id = "me"
    ///
    ///     [providers.elsewhere]
    ///     kind = "static"
    ///     client_id = "me"
    ///     client_secret = { env = "SECRET_OF_ANOTHER_HOST" }
    /// "#)?;
    /// for (name, err) in report.errors() {
    ///     eprintln!("provider {name} not available: {err}");
    /// }
    /// assert!(report.error("elsewhere").unwrap().is_config());
    /// let providers = report.into_providers();
    /// assert!(providers.get("here").is_ok());
    /// # Ok::<(), tokensmith_core::TokenError>(())
    /// ```
    pub fn load_str_lenient(&self, text: &str) -> Result<LoadReport, TokenError> {
        let (providers, store) = self.document(text)?;
        let mut map = BTreeMap::new();
        let mut errors = Vec::new();
        let mut stores = BTreeMap::new();
        // Sorted by name: the strict load reports the first error of that order.
        for (name, value) in providers {
            let built = match value {
                toml::Value::Table(table) => {
                    self.build_one(&name, table, &mut stores, store.as_ref())
                }
                _ => Err(TokenError::config(Some(&name), None, "must be a table")),
            };
            match built {
                Ok(entry) => {
                    map.insert(name, entry);
                }
                Err(e) => errors.push((name, e)),
            }
        }
        Ok(LoadReport { providers: Providers { map, unloaded: Vec::new() }, errors })
    }

    /// Loads only the provider `name` of a config, for a program that uses
    /// one (the CLI's `token` and `header`): the others are not built and
    /// their secrets not read, so one that cannot load on this host (a
    /// secret file it may not read) costs nothing and says nothing. The
    /// document is still checked as a whole (TOML, top-level keys,
    /// `[store]`), and a `refresh_token_store` file that a provider before
    /// `name` (in name order) also names is refused as
    /// [`load_str`](Self::load_str) refuses it, even when that provider
    /// could not load on this host (its secrets are not read to find out).
    ///
    /// `name`'s own error is returned. An unknown `name` is not an error
    /// here: [`Providers::get`] reports it, listing the configured names.
    ///
    /// ```
    /// # #[derive(Debug)]
    /// # struct Static;
    /// # impl tokensmith_core::AdapterFactory for Static {
    /// #     fn kind(&self) -> &'static str { "static" }
    /// #     fn build(&self, ctx: tokensmith_core::ProviderContext)
    /// #         -> Result<tokensmith_core::SharedTokenProvider, tokensmith_core::TokenError> {
    /// #         Ok(std::sync::Arc::new(tokensmith_core::AccessToken::builder("t", ctx.clock().now()).build()))
    /// #     }
    /// # }
    /// let config = r#"
    ///     [providers.here]
    ///     kind = "static"
    ///     client_id = "me"
    ///
    ///     [providers.elsewhere]
    ///     kind = "static"
    ///     client_id = "me"
    ///     client_secret = { env = "SECRET_OF_ANOTHER_HOST" }
    /// "#;
    /// let registry = tokensmith_core::Registry::new().with(Static);
    /// let providers = registry.load_str_one(config, "here")?;
    /// assert!(providers.get("here").is_ok());
    /// assert_eq!(providers.len(), 1); // `elsewhere` was never built
    /// let err = registry.load_str_one(config, "nowhere")?.get("nowhere").unwrap_err();
    /// assert!(err.to_string().contains("configured: elsewhere, here"));
    /// # Ok::<(), tokensmith_core::TokenError>(())
    /// ```
    pub fn load_str_one(&self, text: &str, name: &str) -> Result<Providers, TokenError> {
        let (mut providers, store) = self.document(text)?;
        let unloaded = providers.keys().filter(|other| *other != name).cloned().collect();
        let Some(value) = providers.remove(name) else {
            return Ok(Providers { map: BTreeMap::new(), unloaded });
        };
        // The refresh-token files of the providers a full load builds first,
        // read from their tables (building them would read their secrets): an
        // earlier provider reserves its file even where it cannot load. Only
        // needed when this one names a file.
        let file_of = |table: &toml::Value| {
            table
                .get("refresh_token_store")
                .and_then(|store| store.get("file"))
                .and_then(toml::Value::as_str)
                .filter(|path| !path.is_empty())
                .map(|path| store_key(Path::new(path)))
        };
        let mut stores = BTreeMap::new();
        if value.get("refresh_token_store").is_some_and(|store| store.get("file").is_some()) {
            for (other, table) in providers.iter().filter(|(other, _)| other.as_str() < name) {
                if let Some(file) = file_of(table) {
                    stores.insert(file, other.clone());
                }
            }
        }
        let entry = match value {
            toml::Value::Table(table) => self.build_one(name, table, &mut stores, store.as_ref()),
            _ => Err(TokenError::config(Some(name), None, "must be a table")),
        }?;
        let map = BTreeMap::from([(name.to_owned(), entry)]);
        Ok(Providers { map, unloaded })
    }

    /// A config document's `[providers]` table and its `[store]`, built;
    /// any other top-level key is an error.
    fn document(&self, text: &str) -> Result<(toml::Table, Option<BuiltStore>), TokenError> {
        let mut doc = parse_toml(text)?;
        let providers = match doc.remove("providers") {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(TokenError::config(None, Some("providers"), "must be a table")),
            None => toml::Table::new(),
        };
        let store = doc.remove("store").map(store_from_value).transpose()?;
        if let Some(key) = doc.keys().next() {
            return Err(TokenError::config(
                None,
                Some(key),
                "unknown top-level key; providers go under [providers.NAME], the token store under [store]",
            ));
        }
        Ok((providers, self.store_for(store)?))
    }

    /// Builds one provider described in code (an adapter's typed config),
    /// with the same validation as a `[providers.NAME]` table and wrapped in
    /// the cache exactly once, using this registry's clock. The config's
    /// factory need not be registered. No network.
    ///
    /// See [`AdapterConfig`] for an example, and [`Providers::builder`] for
    /// several providers looked up by name.
    pub fn build<C: AdapterConfig>(
        &self,
        name: &str,
        config: C,
    ) -> Result<Arc<CachedProvider>, TokenError> {
        Ok(self.build_config(name, config, &mut BTreeMap::new(), None)?.cache)
    }

    /// [`build`](Self::build), with the store files of the providers built
    /// so far (see [`build_one`](Self::build_one)).
    fn build_config<C: AdapterConfig>(
        &self,
        name: &str,
        config: C,
        stores: &mut BTreeMap<PathBuf, String>,
        store: Option<&BuiltStore>,
    ) -> Result<ProviderEntry, TokenError> {
        let (mut common, fields) = config.into_parts();
        let factory = C::Factory::default();
        // The config's type decides its kind.
        factory.kind().clone_into(&mut common.kind);
        let ctx = ProviderContext::from_parts(name, common, fields, self.clock.clone())?;
        check_store(&ctx, stores)?;
        self.build_entry(ctx, &factory, store)
    }

    /// Builds one provider from its table; `stores` maps the refresh-token
    /// store files of the providers built so far to their names, since two
    /// providers sharing one file would overwrite (and then send) each
    /// other's tokens.
    fn build_one(
        &self,
        name: &str,
        table: toml::Table,
        stores: &mut BTreeMap<PathBuf, String>,
        store: Option<&BuiltStore>,
    ) -> Result<ProviderEntry, TokenError> {
        let ctx = ProviderContext::new(name, table, self.clock.clone())?;
        check_store(&ctx, stores)?;
        let kind = ctx.common().kind.clone();
        let Some(factory) = self.factories.get(kind.as_str()) else {
            return Err(self.unknown_kind(name, &kind));
        };
        self.build_entry(ctx, factory.as_ref(), store)
    }

    /// The one path from a validated context to a cached provider, for a
    /// table and a config built in code alike: the factory's details, its
    /// build, the cache around it once.
    fn build_entry(
        &self,
        ctx: ProviderContext,
        factory: &dyn AdapterFactory,
        store: Option<&BuiltStore>,
    ) -> Result<ProviderEntry, TokenError> {
        let name = ctx.name().to_owned();
        let mut info = ProviderInfo {
            name: name.clone(),
            kind: factory.kind(),
            token_url: ctx.common().token_url.as_ref().map(ToString::to_string),
            client_id: ctx.common().client_id.clone(),
            details: factory.details(&ctx),
            secret_fields: Vec::new(),
            single_use_credentials: false,
            refresh_token_file: match &ctx.common().refresh_token_store {
                Some(RefreshTokenStoreConfig::File(path)) => Some(path.clone()),
                _ => None,
            },
        };
        let cache_config = CacheConfig::from_common(ctx.common());
        let shared = ctx.common().shared;
        let table = ctx.table.clone();
        let client_secret = ctx.common().client_secret.clone();
        let fields = ctx.field_names();
        let secrets = Arc::clone(&ctx.secrets);
        let renewal_use = Arc::clone(&ctx.renewal);
        let inner = factory.build(ctx).map_err(|e| with_common_typo(e, &fields))?;
        info.secret_fields =
            std::mem::take(&mut *secrets.lock().unwrap_or_else(PoisonError::into_inner));
        let RenewalUse { single_use, renewal } =
            std::mem::take(&mut *renewal_use.lock().unwrap_or_else(PoisonError::into_inner));
        info.single_use_credentials = single_use || renewal.is_some();
        let mut cache = CachedProvider::new(&name, inner, cache_config, self.clock.clone())
            .with_kind(factory.kind());
        if let Some(store) = store.filter(|_| shared) {
            if let Some(table) = &table {
                let identity = identity_of(table, &info.secret_fields, client_secret.as_ref());
                cache = cache.with_store(Arc::clone(&store.store), identity, store.lock_timeout);
            } else {
                tracing::debug!(
                    provider = %name,
                    "built in code: its kind's fields are not known to core, so it stays out of the token store"
                );
            }
        }
        let cache = Arc::new(cache);
        let provider: SharedTokenProvider = cache.clone();
        Ok(ProviderEntry { info, provider, cache, renewal })
    }

    fn unknown_kind(&self, name: &str, kind: &str) -> TokenError {
        let available: Vec<&str> = self.kinds().collect();
        let available = if available.is_empty() { "none".to_owned() } else { available.join(", ") };
        let message = if let Some((_, krate, feature)) =
            KNOWN_KINDS.iter().find(|(k, _, _)| *k == kind)
        {
            format!(
                "kind {kind:?} is not linked into this program: add the `{krate}` crate and register its factory (or enable the `{feature}` feature of `tokensmith`); available kinds: {available}"
            )
        } else {
            let known = self.kinds().chain(KNOWN_KINDS.iter().map(|(k, _, _)| *k));
            let hint = closest(kind, known).map(|k| format!(" (did you mean {k:?}?)"));
            format!(
                "unknown kind {kind:?}{}; available kinds: {available}",
                hint.unwrap_or_default()
            )
        };
        TokenError::config(Some(name), Some("kind"), message)
    }
}

/// Fields that only steer caching, timing or sharing, and so do not change
/// which token a provider gets: left out of its store identity.
const NOT_IDENTITY: &[&str] = &["timeout", "expiry_margin", "refresh_ahead", "shared"];

/// The store identity of the provider whose table is `table`: every field
/// as written (canonical JSON, sorted keys) except [`NOT_IDENTITY`], the
/// `kind` lowercased, and the fields typed [`ConfigSecret`] (dotted paths
/// `secret_fields`) only as their resolved values, bound in by the keyed
/// hash. `client_secret` is the one already resolved at load.
fn identity_of(
    table: &toml::Table,
    secret_fields: &[String],
    client_secret: Option<&ConfigSecret>,
) -> ProviderIdentity {
    let kind = table.get("kind").and_then(toml::Value::as_str).unwrap_or_default();
    let mut canon =
        Canonical { identity: ProviderIdentity::new(kind), secret_fields, client_secret };
    for (key, value) in table {
        if key == "kind" || NOT_IDENTITY.contains(&key.as_str()) {
            continue;
        }
        let mut text = String::new();
        canon.value(&mut text, value, key, false);
        canon.identity =
            std::mem::replace(&mut canon.identity, ProviderIdentity::new(kind)).field(key, text);
    }
    canon.identity
}

/// Builds a [`ProviderIdentity`] from a table.
struct Canonical<'a> {
    identity: ProviderIdentity,
    secret_fields: &'a [String],
    client_secret: Option<&'a ConfigSecret>,
}

impl Canonical<'_> {
    /// Appends `value` (at dotted `path`) to `out` as canonical JSON; a
    /// secret is written as `"<secret>"` and bound in by value. `verbatim`:
    /// inside a secret reference that could not be resolved (`{ env }`,
    /// `{ file }`: names, not secrets), written as is.
    fn value(&mut self, out: &mut String, value: &toml::Value, path: &str, verbatim: bool) {
        use std::fmt::Write as _;
        if !verbatim && self.secret_fields.iter().any(|f| f == path) {
            // A `ConfigSecret`: its resolved value, never the reference.
            let resolved = if let ("client_secret", Some(known)) = (path, self.client_secret) {
                Some(known.as_secret().clone())
            } else {
                let (parsed, _loose) =
                    crate::secret::collect_loose_files(|| value.clone().try_into::<ConfigSecret>());
                parsed.ok().map(|s| s.as_secret().clone())
            };
            match resolved {
                Some(secret) => {
                    self.identity =
                        std::mem::replace(&mut self.identity, ProviderIdentity::new(""))
                            .secret(path, secret);
                }
                // Unreadable now (it loaded a moment ago): key on the
                // reference itself, a miss at worst.
                None => {
                    if let toml::Value::Table(_) = value {
                        self.value(out, value, path, true);
                    }
                }
            }
            out.push_str("\"<secret>\"");
            return;
        }
        match value {
            toml::Value::String(s) => {
                out.push_str(&serde_json::Value::from(s.as_str()).to_string());
            }
            toml::Value::Integer(i) => {
                let _ = write!(out, "{i}");
            }
            toml::Value::Float(f) => {
                let _ = write!(out, "{f:?}");
            }
            toml::Value::Boolean(b) => {
                let _ = write!(out, "{b}");
            }
            toml::Value::Datetime(d) => {
                out.push_str(&serde_json::Value::from(d.to_string()).to_string());
            }
            toml::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.value(out, item, &format!("{path}[{i}]"), verbatim);
                }
                out.push(']');
            }
            toml::Value::Table(table) => {
                out.push('{');
                // `toml::Table` iterates sorted.
                for (i, (key, item)) in table.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    out.push(':');
                    self.value(out, item, &format!("{path}.{key}"), verbatim);
                }
                out.push('}');
            }
        }
    }
}

/// Refuses a refresh-token store file that a provider built before uses
/// too, and records this provider's.
fn check_store(
    ctx: &ProviderContext,
    stores: &mut BTreeMap<PathBuf, String>,
) -> Result<(), TokenError> {
    if let Some(RefreshTokenStoreConfig::File(path)) = &ctx.common().refresh_token_store
        && let Some(other) = stores.insert(store_key(path), ctx.name().to_owned())
    {
        return Err(ctx.error(
            "refresh_token_store",
            format!(
                "{} is also used by provider {other:?}; each provider needs its own file",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The file `path` names, as comparably as possible without touching it:
/// absolute, with its directory's symbolic links resolved when it exists.
fn store_key(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(file)) => dir.canonicalize().map_or(path.clone(), |dir| dir.join(file)),
        _ => path,
    }
}

/// The outcome of a lenient load ([`Registry::load_str_lenient`]): the
/// providers that loaded, and the error of each one that did not.
#[derive(Debug)]
pub struct LoadReport {
    providers: Providers,
    errors: Vec<(String, TokenError)>,
}

impl LoadReport {
    /// The providers that loaded.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The providers that did not load, each with its error, sorted by name.
    pub fn errors(&self) -> &[(String, TokenError)] {
        &self.errors
    }

    /// The error of the provider called `name`, if it did not load.
    pub fn error(&self, name: &str) -> Option<&TokenError> {
        self.errors.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    /// Whether every provider loaded.
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// The providers that loaded, the errors dropped.
    pub fn into_providers(self) -> Providers {
        self.providers
    }

    /// The providers that loaded and the errors of the others.
    pub fn into_parts(self) -> (Providers, Vec<(String, TokenError)>) {
        (self.providers, self.errors)
    }

    /// The providers, or the first error (in name order) if any provider did
    /// not load: what the strict [`Registry::load_str`] returns.
    pub fn into_strict(self) -> Result<Providers, TokenError> {
        match self.errors.into_iter().next() {
            Some((_, err)) => Err(err),
            None => Ok(self.providers),
        }
    }
}

/// What `tokensmith list` and `check` show of a provider: no secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderInfo {
    /// The provider's name.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its token endpoint, when configured directly.
    pub token_url: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// What its adapter adds ([`AdapterFactory::details`]), as label and
    /// value pairs: `("issuer", "https://…")` when the `oauth2` adapter finds
    /// the token endpoint by discovery instead of `token_url`.
    pub details: Vec<(&'static str, String)>,
    /// The fields of its config that hold secrets (typed
    /// [`ConfigSecret`]), as dotted paths: `client_secret`, `password`, …
    /// The names only, never a value.
    pub secret_fields: Vec<String>,
    /// Whether its renewals spend single-use credentials: an authorization
    /// code, refresh tokens the server may rotate (set when its factory used
    /// [`ProviderContext::renewal`] or
    /// [`refresh_token_store`](ProviderContext::refresh_token_store)).
    pub single_use_credentials: bool,
    /// Its `refresh_token_store = { file = … }`, when it has one.
    pub refresh_token_file: Option<PathBuf>,
}

impl ProviderInfo {
    /// The value of the detail `label`, if the adapter gave one.
    pub fn detail(&self, label: &str) -> Option<&str> {
        self.details.iter().find(|(l, _)| *l == label).map(|(_, v)| v.as_str())
    }

    /// Whether its single-use credentials live only in this process's
    /// memory (no `refresh_token_store` file): fine for a long-running
    /// process, but a short-lived one (a CLI run) loses the refresh token the
    /// server rotates in when it exits, and the next one re-sends a spent
    /// code or refresh token.
    pub fn keeps_single_use_credentials_in_memory(&self) -> bool {
        self.single_use_credentials && self.refresh_token_file.is_none()
    }
}

#[derive(Debug)]
struct ProviderEntry {
    info: ProviderInfo,
    provider: SharedTokenProvider,
    /// The same provider, typed, for its counters.
    cache: Arc<CachedProvider>,
    /// Its renewal state, when it spends single-use credentials.
    renewal: Option<Arc<Renewal>>,
}

/// The providers of a loaded config, each already wrapped in the cache.
#[derive(Debug)]
pub struct Providers {
    map: BTreeMap<String, ProviderEntry>,
    /// The providers of the config that were not built
    /// ([`Registry::load_str_one`]), for [`get`](Self::get)'s error.
    unloaded: Vec<String>,
}

impl Providers {
    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Result<SharedTokenProvider, TokenError> {
        self.map.get(name).map(|e| e.provider.clone()).ok_or_else(|| {
            if self.unloaded.iter().any(|other| other == name) {
                return TokenError::config(
                    Some(name),
                    None,
                    "configured, but not loaded: these providers were loaded for another one only (`Registry::load_str_one`)",
                );
            }
            let mut names: Vec<&str> =
                self.map.keys().chain(&self.unloaded).map(String::as_str).collect();
            names.sort_unstable();
            TokenError::config(
                Some(name),
                None,
                format!(
                    "no such provider; configured: {}",
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                ),
            )
        })
    }

    /// The cache of the provider called `name`, typed (the same provider
    /// [`get`](Self::get) returns): its counters, its store,
    /// [`CachedProvider::current`] and [`CachedProvider::spawn_refresher`].
    pub fn cache(&self, name: &str) -> Option<&Arc<CachedProvider>> {
        self.map.get(name).map(|e| &e.cache)
    }

    /// The cache counters of the provider called `name`.
    pub fn cache_stats(&self, name: &str) -> Option<CacheStats> {
        self.map.get(name).map(|e| e.cache.stats())
    }

    /// Why the newest refresh token of the provider called `name` lives
    /// only in this process's memory ([`Renewal::save_error`]): saving it to
    /// its store failed. `None` when it was saved, or the provider has none.
    pub fn refresh_token_save_error(&self, name: &str) -> Option<TokenError> {
        self.map.get(name)?.renewal.as_ref()?.save_error()
    }

    /// What is known about the provider called `name`.
    pub fn info(&self, name: &str) -> Option<&ProviderInfo> {
        self.map.get(name).map(|e| &e.info)
    }

    /// Every provider, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&ProviderInfo, &SharedTokenProvider)> {
        self.map.values().map(|e| (&e.info, &e.provider))
    }

    /// The provider names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// How many providers were built (after
    /// [`Registry::load_str_one`]: one at most).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Providers described in code, each an adapter's typed config (see
    /// [`AdapterConfig`]), validated as a config file's and each wrapped in
    /// the cache once.
    ///
    /// ```
    /// # use tokensmith_core::{AdapterConfig, AdapterFactory, CommonConfig, ProviderContext, SharedTokenProvider, TokenError};
    /// # #[derive(Debug, Default)]
    /// # struct Static;
    /// # impl AdapterFactory for Static {
    /// #     fn kind(&self) -> &'static str { "static" }
    /// #     fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
    /// #         let () = ctx.parse()?;
    /// #         Ok(std::sync::Arc::new(tokensmith_core::AccessToken::builder("t", ctx.clock().now()).build()))
    /// #     }
    /// # }
    /// # struct StaticConfig(CommonConfig);
    /// # impl AdapterConfig for StaticConfig {
    /// #     type Factory = Static;
    /// #     type Fields = ();
    /// #     fn into_parts(self) -> (CommonConfig, ()) { (self.0, ()) }
    /// # }
    /// let providers = tokensmith_core::Providers::builder()
    ///     .add("a", StaticConfig(CommonConfig::new("static", "me")))
    ///     .add("b", StaticConfig(CommonConfig::new("static", "you")))
    ///     .build()?;
    /// assert_eq!(providers.names().collect::<Vec<_>>(), ["a", "b"]);
    /// assert_eq!(providers.info("b").unwrap().client_id, "you");
    /// # Ok::<(), TokenError>(())
    /// ```
    pub fn builder() -> ProvidersBuilder {
        ProvidersBuilder { registry: Registry::new(), pending: Vec::new() }
    }
}

/// One provider added to a [`ProvidersBuilder`], built when it is.
type PendingProvider = Box<
    dyn FnOnce(&Registry, &str, &mut BTreeMap<PathBuf, String>) -> Result<ProviderEntry, TokenError>
        + Send,
>;

/// Builds [`Providers`] from configs written in code: [`Providers::builder`].
#[must_use]
pub struct ProvidersBuilder {
    /// Only its clock is used: each config names its own factory.
    registry: Registry,
    pending: Vec<(String, PendingProvider)>,
}

impl fmt::Debug for ProvidersBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidersBuilder")
            .field("names", &self.pending.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProvidersBuilder {
    /// Uses `clock` for every provider and cache (tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.registry = self.registry.with_clock(clock);
        self
    }

    /// Adds the provider `name` described by `config` (an adapter's typed
    /// config). Validated by [`build`](Self::build).
    pub fn add<C: AdapterConfig>(mut self, name: impl Into<String>, config: C) -> Self {
        let pending: PendingProvider = Box::new(move |registry, name, stores| {
            registry.build_config(name, config, stores, None)
        });
        self.pending.push((name.into(), pending));
        self
    }

    /// Validates and builds every provider (no network): as
    /// [`Registry::load_str`], any invalid one fails the whole, with the
    /// first error in name order.
    pub fn build(self) -> Result<Providers, TokenError> {
        self.build_lenient().into_strict()
    }

    /// Validates and builds every provider (no network), keeping the valid
    /// ones, as [`Registry::load_str_lenient`].
    pub fn build_lenient(self) -> LoadReport {
        let mut pending = self.pending;
        // Stable: of two providers of one name, the first added is built.
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        let (mut map, mut errors, mut stores) = (BTreeMap::new(), Vec::new(), BTreeMap::new());
        for (name, build) in pending {
            if map.contains_key(&name) || errors.iter().any(|(n, _)| *n == name) {
                let err = TokenError::config(Some(&name), None, "added twice");
                errors.push((name, err));
                continue;
            }
            match build(&self.registry, &name, &mut stores) {
                Ok(entry) => {
                    map.insert(name, entry);
                }
                Err(e) => errors.push((name, e)),
            }
        }
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        LoadReport { providers: Providers { map, unloaded: Vec::new() }, errors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A factory that builds an endpoint from `token_url` and a fixed token.
    #[derive(Debug)]
    struct Fixed;

    impl AdapterFactory for Fixed {
        fn kind(&self) -> &'static str {
            "fixed"
        }

        fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Config {}
            let Config {} = ctx.parse()?;
            ctx.endpoint()?;
            Ok(Arc::new(crate::AccessToken::builder("t", ctx.clock().now()).build()))
        }
    }

    /// A factory with one field of its own, `scope`, that needs a client
    /// secret (and asks for it before parsing its fields, as adapters do).
    #[derive(Debug)]
    struct Scoped;

    impl AdapterFactory for Scoped {
        fn kind(&self) -> &'static str {
            "scoped"
        }

        fn build(&self, ctx: ProviderContext) -> Result<SharedTokenProvider, TokenError> {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Config {
                #[expect(dead_code, reason = "only its name matters here")]
                scope: String,
            }
            ctx.require_client_secret()?;
            let _: Config = ctx.parse()?;
            Ok(Arc::new(crate::AccessToken::builder("t", ctx.clock().now()).build()))
        }
    }

    fn load(providers: &str) -> Result<Providers, TokenError> {
        Registry::new().with(Fixed).with(Scoped).load_str(providers)
    }

    fn provider(fields: &str) -> String {
        format!(
            "[providers.p]\nkind = \"fixed\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\n{fields}\n"
        )
    }

    /// Loading fails with a config error of provider `p` on `field`, whose
    /// text contains `needle` and none of `hidden`.
    #[track_caller]
    fn check_error(text: &str, field: &str, needle: &str, hidden: &[&str]) {
        let err = load(text).unwrap_err();
        let TokenError::Config { provider, field: got, message } = &err else { panic!("{err}") };
        assert_eq!((provider.as_deref(), got.as_deref()), (Some("p"), Some(field)), "{err}");
        assert!(message.contains(needle), "{err}");
        let shown = format!("{err} {err:?}");
        for secret in hidden {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_secret_pasted_into_refresh_token_store_is_not_quoted() {
        check_error(
            &provider("refresh_token_store = \"rt-SECRET-1\""),
            "refresh_token_store",
            "{ file = \"PATH\" }",
            &["rt-SECRET-1"],
        );
        check_error(
            &provider("refresh_token_store = { memory = \"rt-SECRET-2\" }"),
            "refresh_token_store",
            "{ file = \"PATH\" }",
            &["rt-SECRET-2"],
        );
        load(&provider("refresh_token_store = \"memory\"")).unwrap();
    }

    #[test]
    fn a_secret_given_as_a_number_is_not_quoted() {
        check_error(
            &provider("client_secret = 8675309"),
            "client_secret",
            "a number",
            &["8675309"],
        );
    }

    #[test]
    fn an_empty_store_path_is_refused() {
        check_error(
            &provider("refresh_token_store = { file = \"\" }"),
            "refresh_token_store",
            "empty",
            &[],
        );
    }

    #[test]
    fn two_providers_cannot_share_a_refresh_token_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("rt");
        let text = format!(
            "{}refresh_token_store = {{ file = {store:?} }}\n[providers.q]\nkind = \"fixed\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\nrefresh_token_store = {{ file = {:?} }}\n",
            provider(""),
            dir.path().join(".").join("rt"),
        );
        let err = load(&text).unwrap_err();
        let TokenError::Config { provider, field, message } = &err else { panic!("{err}") };
        assert_eq!(
            (provider.as_deref(), field.as_deref()),
            (Some("q"), Some("refresh_token_store"))
        );
        assert!(message.contains("also used by provider \"p\""), "{err}");
    }

    /// `load_str_one` builds the one provider asked for: another that could
    /// not load (a secret file that is not there) costs nothing; the
    /// document is still checked whole; the refresh-token file rule holds
    /// as a full load applies it (the later provider by name is refused).
    #[test]
    fn load_str_one_builds_only_the_provider_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("rt");
        let missing = dir.path().join("no-such-secret");
        let registry = Registry::new().with(Fixed).with(Scoped);
        let text = format!(
            "{}\n[providers.broken]\nkind = \"scoped\"\nclient_id = \"id\"\nclient_secret = {{ file = {missing:?} }}\nscope = \"x\"\n",
            provider(""),
        );
        assert!(registry.load_str(&text).unwrap_err().to_string().contains("no-such-secret"));
        let one = registry.load_str_one(&text, "p").unwrap();
        assert_eq!(one.names().collect::<Vec<_>>(), ["p"]);
        assert!(one.get("p").is_ok());
        let err = one.get("broken").unwrap_err();
        assert!(err.to_string().contains("not loaded"), "{err}");
        // The one asked for: its own error.
        let err = registry.load_str_one(&text, "broken").unwrap_err();
        assert_eq!(err.provider(), Some("broken"), "{err}");
        // An unknown name: `get` says so, listing every configured name.
        let none = registry.load_str_one(&text, "nowhere").unwrap();
        assert!(none.is_empty());
        let err = none.get("nowhere").unwrap_err();
        assert!(err.to_string().contains("no such provider; configured: broken, p"), "{err}");
        // The whole document is still checked.
        let unknown_key = format!("colour = 1\n{}", provider(""));
        let err = registry.load_str_one(&unknown_key, "p").unwrap_err();
        assert!(
            matches!(&err, TokenError::Config { field: Some(f), .. } if f == "colour"),
            "{err}"
        );
        assert!(registry.load_str_one("[providers.p", "p").unwrap_err().is_config());
        // Two providers naming one refresh-token file: the later one (by
        // name) is refused, as a full load refuses it; the earlier loads.
        let shared = format!(
            "{}refresh_token_store = {{ file = {store:?} }}\n[providers.q]\nkind = \"fixed\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\nrefresh_token_store = {{ file = {:?} }}\n",
            provider(""),
            dir.path().join(".").join("rt"),
        );
        registry.load_str_one(&shared, "p").unwrap();
        // `p` reserves its file even where it cannot load (a secret this
        // host does not hold): its secrets are not read to find out.
        let p_cannot_load = shared.replacen(
            "client_id = \"id\"",
            "client_id = \"id\"\nclient_secret = { env = \"TOKENSMITH_TEST_UNSET_VAR\" }",
            1,
        );
        assert!(registry.load_str_one(&p_cannot_load, "p").is_err());
        for text in [&shared, &p_cannot_load] {
            let err = registry.load_str_one(text, "q").unwrap_err();
            assert!(err.to_string().contains("also used by provider \"p\""), "{err}");
        }
        let err = registry.load_str_one(&shared, "q").unwrap_err();
        let TokenError::Config { provider, field, .. } = &err else { panic!("{err}") };
        assert_eq!(
            (provider.as_deref(), field.as_deref()),
            (Some("q"), Some("refresh_token_store"))
        );
        assert!(err.to_string().contains("also used by provider \"p\""), "{err}");
    }

    #[test]
    fn a_provider_defined_twice_or_not_as_a_table_is_refused() {
        let twice = format!("{}client_secret = \"S3CRET\"\n{}", provider(""), provider(""));
        let err = load(&twice).unwrap_err();
        let text = err.to_string();
        assert!(err.is_config() && text.contains("duplicate") && text.contains("line 7"), "{text}");
        assert!(!text.contains("S3CRET"), "{text}");
        let err = load("[providers]\np = \"S3CRET\"").unwrap_err();
        let TokenError::Config { provider, message, .. } = &err else { panic!("{err}") };
        assert_eq!((provider.as_deref(), message.as_str()), (Some("p"), "must be a table"));
    }

    /// The query parameters refused in a `token_url` are secret wire fields
    /// (redacted wherever they appear): one list ties to the other.
    #[test]
    fn credential_query_params_are_secret_fields() {
        for name in CREDENTIAL_QUERY_PARAMS {
            assert!(crate::BodySnippet::is_secret_field(name), "{name}");
        }
    }

    #[test]
    fn an_empty_client_id_is_refused() {
        for id in ["", "  "] {
            let text = provider("").replace("client_id = \"id\"", &format!("client_id = {id:?}"));
            check_error(&text, "client_id", "empty", &[]);
        }
    }

    #[test]
    fn token_url_may_carry_neither_a_fragment_nor_credentials_in_its_query() {
        for (url, needle) in [
            ("https://as.example/token#x", "fragment"),
            ("https://as.example/token?client_secret=S3CRET", "`client_secret`"),
            ("https://as.example/token?a=1&Password=S3CRET", "`Password`"),
            ("https://as.example/token?refresh_token=S3CRET", "`refresh_token`"),
        ] {
            let text = provider("").replace("https://as.example/token", url);
            check_error(&text, "token_url", needle, &["S3CRET"]);
        }
        let text = provider("").replace("/token", "/token?api-version=2&p=B2C_1_signin");
        load(&text).unwrap();
    }

    #[test]
    fn typos_name_the_field_written_list_every_field_and_suggest_the_closest() {
        let table = |kind: &str, extra: &str| {
            format!(
                "[providers.p]\nkind = {kind:?}\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\n{extra}\n"
            )
        };
        let cases: [(&str, String, &str, &[&str]); 7] = [
            (
                "a common field, on a kind with no fields of its own",
                table("fixed", "timout = \"5s\""),
                "timout",
                &[
                    "unknown field `timout`",
                    "did you mean `timeout`?",
                    "`expiry_margin`",
                    "`ca_file`",
                ],
            ),
            (
                "a common field, on a kind with fields",
                table("scoped", "client_secret = \"s\"\nscope = \"a\"\ntimout = \"5s\""),
                "timout",
                &["did you mean `timeout`?", "`scope`", "`refresh_ahead`"],
            ),
            (
                "another kind's field",
                table("fixed", "scope = \"a\""),
                "scope",
                &["unknown field `scope`", "`client_secret`", "`timeout`"],
            ),
            (
                "a kind field",
                table("scoped", "client_secret = \"s\"\nscop = \"a\""),
                "scop",
                &["did you mean `scope`?"],
            ),
            (
                "a misspelt secret the kind requires",
                table("scoped", "client_secre = \"s\"\nscope = \"a\""),
                "client_secre",
                &["unknown field `client_secre`", "did you mean `client_secret`?"],
            ),
            (
                "a misspelt required common field",
                table("fixed", "").replace("client_id", "client_i"),
                "client_i",
                &["unknown field `client_i`", "did you mean `client_id`?"],
            ),
            ("a misspelt kind", table("fxed", ""), "kind", &["did you mean \"fixed\"?", "scoped"]),
        ];
        for (what, text, field, needles) in cases {
            let err = load(&text).unwrap_err();
            let TokenError::Config { provider, field: got, message } = &err else {
                panic!("{err}")
            };
            assert_eq!(
                (provider.as_deref(), got.as_deref()),
                (Some("p"), Some(field)),
                "{what}: {err}"
            );
            for needle in needles {
                assert!(message.contains(needle), "{what}: {message:?} lacks {needle:?}");
            }
            assert!(!message.contains("there are no fields"), "{what}: {message}");
        }
    }

    #[test]
    fn a_lenient_load_keeps_the_valid_providers_and_reports_each_invalid_one() {
        let text = format!(
            "{}[providers.unset]\nkind = \"fixed\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\nclient_secret = {{ env = \"TOKENSMITH_CORE_SURELY_UNSET\" }}\n\
             [providers.typo]\nkind = \"fxed\"\nclient_id = \"id\"\n[providers.flat]\nx = 1\n",
            provider(""),
        );
        let registry = Registry::new().with(Fixed);
        let report = registry.load_str_lenient(&text).unwrap();
        assert_eq!(report.providers().names().collect::<Vec<_>>(), ["p"]);
        let failed: Vec<(&str, Option<&str>)> =
            report.errors().iter().map(|(n, e)| (n.as_str(), e.provider())).collect();
        assert_eq!(
            failed,
            [("flat", Some("flat")), ("typo", Some("typo")), ("unset", Some("unset"))]
        );
        assert!(report.errors().iter().all(|(_, e)| e.is_config()));
        assert!(
            report.error("unset").unwrap().to_string().contains("TOKENSMITH_CORE_SURELY_UNSET")
        );
        assert!(report.error("p").is_none() && !report.is_complete());
        assert!(report.into_providers().get("p").is_ok());
        // Strict loading stays the default: the first error, by name.
        let err = registry.load_str(&text).unwrap_err();
        assert_eq!(err.provider(), Some("flat"));
        // A problem of the whole file is no partial success.
        assert!(registry.load_str_lenient("stray = 1").is_err());
        assert!(registry.load_str_lenient("[providers").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &text).unwrap();
        let (providers, errors) = registry.load_file_lenient(&path).unwrap().into_parts();
        assert_eq!((providers.len(), errors.len()), (1, 3));
        assert_eq!(registry.load_file(&path).unwrap_err().provider(), Some("flat"));
    }

    /// The key of the provider `p` of `text` under a fixed naming key, and
    /// its identity's `Debug`.
    fn key_of(text: &str) -> (String, String) {
        let mut doc: toml::Table = text.parse().unwrap();
        let providers = doc.remove("providers").unwrap();
        let table = providers.as_table().unwrap()["p"].as_table().unwrap().clone();
        let loaded = Registry::new().with(Fixed).with(Scoped).load_str(text).unwrap();
        let info = loaded.info("p").unwrap();
        let identity = identity_of(&table, &info.secret_fields, None);
        let naming = crate::NamingKey::new(&[7; 32]);
        (identity.key(&naming).as_str().to_owned(), format!("{identity:?}"))
    }

    fn scoped(extra: &str) -> String {
        format!(
            "[providers.p]\nkind = \"scoped\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\nclient_secret = \"S3CRET\"\nscope = \"a b\"\n{extra}"
        )
    }

    #[test]
    fn the_provider_key_follows_every_identity_field_and_secret_and_holds_none() {
        let (base, debug) = key_of(&scoped(""));
        assert_eq!(base.len(), 64);
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!debug.contains("S3CRET"), "{debug}");
        assert_eq!(base, key_of(&scoped("")).0, "deterministic");
        // Timing and sharing do not change which token comes back.
        assert_eq!(
            base,
            key_of(&scoped(
                "timeout = \"5s\"\nexpiry_margin = \"1m\"\nrefresh_ahead = \"2m\"\nshared = true"
            ))
            .0
        );
        assert_eq!(base, key_of(&scoped("").replace("\"scoped\"", "\"SCOPED\"")).0, "kind's case");
        for (what, changed) in [
            ("token_url", scoped("").replace("/token", "/token2")),
            ("client_id", scoped("").replace("\"id\"", "\"id2\"")),
            ("scope", scoped("").replace("a b", "a")),
            ("secret", scoped("").replace("S3CRET", "OTHER")),
            ("ca_file", scoped("ca_file = \"/x.pem\"")),
        ] {
            assert_ne!(base, key_of(&changed).0, "{what}");
        }
        // A secret from a file: its value, not the reference.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "S3CRET\n").unwrap();
        let by_file = scoped("")
            .replace("\"S3CRET\"", &format!("{{ file = {:?} }}", path.display().to_string()));
        let (from_file, debug) = key_of(&by_file);
        assert_eq!(from_file, base, "the resolved value, as the literal");
        assert!(!debug.contains("S3CRET"));
        std::fs::write(&path, "ROTATED\n").unwrap();
        assert_ne!(key_of(&by_file).0, base, "a changed secret is another key");
    }

    #[test]
    fn the_store_table_is_validated_and_errors_name_the_field() {
        let registry = Registry::new().with(Fixed);
        let with_store = |store: &str| format!("[store]\n{store}\n{}", provider(""));
        let err = registry.load_str(&with_store("kind = \"redis\"")).unwrap_err();
        let TokenError::Config { field, message, .. } = &err else { panic!("{err}") };
        assert_eq!(field.as_deref(), Some("store.kind"));
        assert!(
            message.contains("tokensmith-redis") && message.contains("with_store_factory"),
            "{err}"
        );
        let err = registry.load_str(&with_store("kind = \"fiel\"")).unwrap_err();
        assert!(err.to_string().contains("did you mean \"file\""), "{err}");
        let field = |err: &TokenError| match err {
            TokenError::Config { field, .. } => field.clone(),
            _ => None,
        };
        let err =
            registry.load_str(&with_store("kind = \"file\"\nurl = \"redis://x\"")).unwrap_err();
        assert_eq!(field(&err).as_deref(), Some("store.url"), "{err}");
        let err = registry.load_str(&with_store("kind = \"memory\"\npath = \"/x\"")).unwrap_err();
        assert_eq!(field(&err).as_deref(), Some("store.path"), "{err}");
        for kind in ["file", "memory"] {
            let err = registry
                .load_str(&with_store(&format!("kind = \"{kind}\"\ncall_timeout = \"1s\"")))
                .unwrap_err();
            assert_eq!(field(&err).as_deref(), Some("store.call_timeout"), "{err}");
        }
        let err =
            registry.load_str(&with_store("kind = \"file\"\nlock_timout = \"1s\"")).unwrap_err();
        assert!(field(&err).is_some_and(|f| f.starts_with("store")), "{err}");
        assert!(err.to_string().contains("lock_timout"), "{err}");
        let err =
            registry.load_str(&with_store("kind = \"file\"\nlock_timeout = \"soon\"")).unwrap_err();
        assert_eq!(field(&err).as_deref(), Some("store.lock_timeout"), "{err}");
        // Memory: no store. File: the store under every shared provider.
        let dir = tempfile::tempdir().unwrap();
        let file = format!("kind = \"file\"\npath = {:?}", dir.path().display().to_string());
        let loaded = registry.load_str(&with_store("kind = \"memory\"")).unwrap();
        assert_eq!(loaded.cache("p").unwrap().store_kind(), None);
        let loaded = registry.load_str(&with_store(&file)).unwrap();
        assert_eq!(loaded.cache("p").unwrap().store_kind(), Some("file"));
        let loaded = registry.load_str(&format!("{}shared = false\n", with_store(&file))).unwrap();
        assert_eq!(loaded.cache("p").unwrap().store_kind(), None, "shared = false");
        // The library's default is no store; `without_store` overrides a config's.
        assert_eq!(
            registry.load_str(&provider("")).unwrap().cache("p").unwrap().store_kind(),
            None
        );
        let off = registry.clone().without_store().load_str(&with_store(&file)).unwrap();
        assert_eq!(off.cache("p").unwrap().store_kind(), None);
        let default = registry.with_default_store(StoreConfig::file(dir.path()));
        assert_eq!(
            default.load_str(&provider("")).unwrap().cache("p").unwrap().store_kind(),
            Some("file")
        );
    }
}
