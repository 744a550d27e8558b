//! The per-user on-disk token cache, so that a script calling
//! `tokensmith token NAME` once per request hits the vendor once per token
//! lifetime (as `gcloud` and `az` do).
//!
//! - **Where:** `$XDG_CACHE_HOME/tokensmith`, else `~/.cache/tokensmith`
//!   (`%LOCALAPPDATA%\tokensmith` on Windows). The directory is created with
//!   mode 0700.
//! - **Key:** one file per provider *identity*: an HMAC-SHA-256, under a
//!   random per-user key, of the provider's table (kind, `token_url`,
//!   `client_id` and every other non-secret field, canonicalised) together
//!   with a SHA-256 of its secrets as resolved (literal, `env` or `file`), so
//!   a changed secret or URL misses. Neither the secrets nor their hash are
//!   stored, and without the key a file name says nothing about the secrets
//!   (a leaked name cannot be used to guess a weak secret offline). The key
//!   is 32 random bytes in the file `key` (mode 0600), created atomically on
//!   first use; a key file that is not a 0600 regular file of this user of
//!   the right size is replaced (its entries are then simply not found). The
//!   name of the provider is not part of the key, and neither are the fields
//!   that only steer caching (`timeout`, `expiry_margin`, `refresh_ahead`).
//! - **Contents:** a small JSON document with the access token (needed to
//!   reuse it), its type, receipt and expiry times and scope. Never a client
//!   secret, password, code, refresh token or id token. Mode 0600.
//! - **Writes** go to a temporary file in the same directory (mode 0600),
//!   which is then renamed over the entry: a reader sees the old entry or the
//!   new one, never half of one.
//! - **Trust (Unix):** the directory must be a directory (not a symbolic link
//!   to one) of this user; a looser mode than 0700 is tightened before use,
//!   and a directory of another user is not used at all (anyone who can write
//!   to it could plant a token). An entry or lock file is used only if it is a
//!   regular file of this user, never through a symbolic link. A corrupt or
//!   implausible entry is a miss. `clear` runs the same checks and deletes
//!   only the names the cache itself writes.
//! - **Races:** a miss takes an exclusive lock on the entry's `.lock` file,
//!   looks again, and only then asks the token endpoint; concurrent
//!   invocations for the same provider therefore make one upstream request.
//!   The wait for the lock is bounded ([`DEFAULT_LOCK_TIMEOUT`], or
//!   `$TOKENSMITH_CACHE_LOCK_TIMEOUT`): a stopped peer delays an invocation,
//!   it never blocks it.
//! - **Freshness:** an entry is used until it goes stale by the library's own
//!   rule: `expires_at - margin`, the margin from
//!   [`CacheConfig::margin_for`] (the provider's `expiry_margin`, else
//!   core's default, scaled down for short-lived tokens).

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use tokensmith_core::{
    AccessToken, CacheConfig, ConfigSecret, DEFAULT_LIFETIME, MAX_EXPIRES_IN, Presentation, Scope,
    TokenType,
};

/// The version of the entry format; entries of another version are misses.
const FORMAT_VERSION: u32 = 1;

/// How long an invocation waits for another one holding an entry's lock
/// before it goes on without the cache.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable that overrides [`DEFAULT_LOCK_TIMEOUT`] (a
/// duration such as `"500ms"` or `"0s"`).
pub(crate) const LOCK_TIMEOUT_ENV: &str = "TOKENSMITH_CACHE_LOCK_TIMEOUT";

/// The file holding the per-user HMAC key that names the entries.
const KEY_FILE: &str = "key";

/// The length of that key, in bytes.
const KEY_LEN: usize = 32;

/// The prefix of temporary files.
const TMP_PREFIX: &str = ".tmp-";

/// Fields that only steer caching or timing and so do not change which token
/// the provider gets.
const NOT_IDENTITY: &[&str] = &["timeout", "expiry_margin", "refresh_ahead"];

/// The per-user token cache directory.
#[derive(Clone, Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl DiskCache {
    /// The cache under `dir` (created on first write).
    pub(crate) fn at(dir: PathBuf) -> Self {
        Self { dir, lock_timeout: DEFAULT_LOCK_TIMEOUT }
    }

    /// Waits at most `timeout` for another invocation's lock.
    #[must_use]
    pub(crate) fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The per-user cache of this environment, or `None` when no cache
    /// directory can be found (no `XDG_CACHE_HOME` and no `HOME`).
    pub(crate) fn from_env() -> Option<Self> {
        default_dir(
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
            std::env::var_os("LOCALAPPDATA"),
        )
        .map(Self::at)
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.0))
    }

    /// The cached token for `key`, when there is one that is not stale at
    /// `now` under `config`'s margin. A missing, unreadable, corrupt or stale
    /// entry is a miss.
    pub(crate) fn load(
        &self,
        key: &CacheKey,
        now: SystemTime,
        config: &CacheConfig,
    ) -> Option<AccessToken> {
        // The entry's name hashes the provider's secrets: logs show the
        // directory only.
        let bytes = match self.read_entry(&self.entry_path(key)) {
            Ok(bytes) => bytes,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::debug!(dir = %self.dir.display(), error = %e, "token cache entry not used");
                }
                return None;
            }
        };
        let Some(token) = serde_json::from_slice::<Entry>(&bytes).ok().and_then(Entry::into_token)
        else {
            tracing::debug!(dir = %self.dir.display(), "token cache entry corrupt; ignored");
            return None;
        };
        if is_fresh(&token, now, config) {
            Some(token)
        } else {
            tracing::debug!(dir = %self.dir.display(), "cached token expired or within the margin");
            None
        }
    }

    /// The contents of the entry at `path`, when the directory and the entry
    /// pass [`check_dir`](Self::check_dir) and [`check_own_file`].
    fn read_entry(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check_dir()?;
        // Only this user can change the directory from here on: what `lstat`
        // saw is what `open` gets.
        check_own_file(path)?;
        fs::read(path)
    }

    /// The key of the provider whose config table is `table`, under this
    /// user's HMAC key (created on first use).
    pub(crate) fn key_for(
        &self,
        table: &toml::Table,
        secret_fields: &[String],
    ) -> io::Result<CacheKey> {
        Ok(CacheKey::for_provider(table, secret_fields, &self.hmac_key()?))
    }

    /// The per-user HMAC key: read from [`KEY_FILE`], or created there
    /// (atomically, mode 0600) when missing or unusable.
    fn hmac_key(&self) -> io::Result<hmac::Key> {
        self.create_dir()?;
        let path = self.dir.join(KEY_FILE);
        // Two rounds: a racing invocation may create the file between our
        // read and our create.
        for _ in 0..2 {
            let replace = match read_key(&path) {
                Ok(Some(bytes)) => return Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes)),
                Ok(None) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            let mut bytes = [0_u8; KEY_LEN];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| io::Error::other("no system randomness for the cache key"))?;
            // `NamedTempFile` creates the file with mode 0600 on Unix.
            let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(&self.dir)?;
            tmp.write_all(&bytes)?;
            tmp.as_file().sync_all()?;
            let persisted = if replace {
                tracing::debug!(dir = %self.dir.display(), "token cache key unusable; replaced");
                tmp.persist(&path).map(drop)
            } else {
                tmp.persist_noclobber(&path).map(drop)
            };
            match persisted {
                Ok(()) => return Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes)),
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.error),
            }
        }
        Err(io::Error::other("the cache key keeps changing"))
    }

    /// Takes the exclusive lock for `key`, waiting at most the lock timeout
    /// ([`with_lock_timeout`](Self::with_lock_timeout)) while another invocation holds
    /// it (then fails with [`io::ErrorKind::TimedOut`]); released when the
    /// returned guard is dropped.
    pub(crate) fn lock(&self, key: &CacheKey) -> io::Result<CacheLock> {
        self.create_dir()?;
        let path = self.dir.join(format!("{}.lock", key.0));
        match check_own_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        wait_for_lock(&file, self.lock_timeout)?;
        Ok(CacheLock { _file: file })
    }

    /// Stores `token` under `key`, atomically, mode 0600.
    pub(crate) fn store(
        &self,
        key: &CacheKey,
        provider: &str,
        kind: &str,
        token: &AccessToken,
    ) -> io::Result<()> {
        self.create_dir()?;
        let entry = Entry::from_token(provider, kind, token);
        let json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        // `NamedTempFile` creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(&self.dir)?;
        tmp.write_all(&json)?;
        tmp.as_file().sync_all()?;
        // A rename replaces whatever is at the entry's name (a link too),
        // never what a link points to.
        tmp.persist(self.entry_path(key)).map_err(|e| e.error)?;
        tracing::debug!(dir = %self.dir.display(), "token cached");
        Ok(())
    }

    /// Deletes every cached token (and lock file, temporary file and the
    /// key); returns how many tokens were removed. The directory passes the
    /// same checks as for a read, and only the names the cache writes are
    /// deleted: anything else in the directory stays.
    pub(crate) fn clear(&self) -> io::Result<usize> {
        match self.check_dir() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            other => other?,
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut tokens = 0;
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().and_then(OwnName::of) else { continue };
            // `DirEntry::file_type` does not follow links: a link is removed
            // itself, its target never touched.
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            if name == OwnName::Entry && file_type.is_file() {
                tokens += 1;
            }
        }
        Ok(tokens)
    }

    /// Creates the directory (mode 0700) unless it exists, then
    /// [`check_dir`](Self::check_dir)s it.
    fn create_dir(&self) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(&self.dir)?;
        self.check_dir()
    }

    /// Fails unless the directory is a directory (not a link to one) of
    /// this user; tightens a looser mode to 0700 (so nobody else can add,
    /// replace or link files in it).
    #[cfg(unix)]
    fn check_dir(&self) -> io::Result<()> {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        // `lstat`: a link to a directory is not the directory (its target
        // may be anyone's, and may change).
        let meta = fs::symlink_metadata(&self.dir)?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::other("a symbolic link, not a directory"));
        }
        if !meta.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the directory belongs to another user",
            ));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn check_dir(&self) -> io::Result<()> {
        let meta = fs::symlink_metadata(&self.dir)?;
        if meta.is_dir() { Ok(()) } else { Err(io::Error::other("not a directory")) }
    }
}

/// The names the cache writes, and so the only ones `clear` deletes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OwnName {
    /// `<64 hex>.json`: a token.
    Entry,
    /// `<64 hex>.lock`.
    Lock,
    /// `.tmp-…`: a write in progress (or a crashed one).
    Temporary,
    /// [`KEY_FILE`].
    Key,
}

impl OwnName {
    fn of(name: &str) -> Option<Self> {
        let hex_name = |stem: &str| {
            stem.len() == 64
                && stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if name == KEY_FILE {
            Some(Self::Key)
        } else if name.starts_with(TMP_PREFIX) {
            Some(Self::Temporary)
        } else if name.strip_suffix(".json").is_some_and(hex_name) {
            Some(Self::Entry)
        } else if name.strip_suffix(".lock").is_some_and(hex_name) {
            Some(Self::Lock)
        } else {
            None
        }
    }
}

/// The key in the file at `path`: `Ok(None)` when the file is there but is
/// not a 0600 regular file of this user holding exactly [`KEY_LEN`] bytes.
fn read_key(path: &Path) -> io::Result<Option<[u8; KEY_LEN]>> {
    use std::io::Read as _;
    match check_own_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
        Err(_) => return Ok(None),
    }
    let file = File::open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            return Ok(None);
        }
    }
    let mut bytes = Vec::with_capacity(KEY_LEN + 1);
    file.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes)?;
    Ok(<[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok())
}

/// Takes `file`'s exclusive lock, trying again for up to `timeout` while
/// another process holds it. Counts its own sleeps rather than reading the
/// clock (time is injected elsewhere; here a rough bound is all that is
/// promised).
fn wait_for_lock(file: &File, timeout: Duration) -> io::Result<()> {
    const STEP: Duration = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        if waited >= timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "another tokensmith process has held its lock for {}",
                    humantime::format_duration(timeout)
                ),
            ));
        }
        let step = STEP.min(timeout.saturating_sub(waited));
        std::thread::sleep(step);
        waited += step;
    }
}

/// The lock wait set by [`LOCK_TIMEOUT_ENV`], if any.
pub(crate) fn lock_timeout_env() -> Result<Option<Duration>, String> {
    lock_timeout_from(std::env::var_os(LOCK_TIMEOUT_ENV))
}

/// The lock wait from the value of [`LOCK_TIMEOUT_ENV`] (`None` when unset
/// or empty).
pub(crate) fn lock_timeout_from(
    value: Option<std::ffi::OsString>,
) -> Result<Option<Duration>, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let text = value.to_str().ok_or_else(|| format!("{LOCK_TIMEOUT_ENV} is not UTF-8"))?;
    tokensmith_core::parse_duration(text).map(Some).map_err(|e| format!("{LOCK_TIMEOUT_ENV}: {e}"))
}

/// Fails unless `path` is a regular file of this user (not a link to one).
fn check_own_file(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file belongs to another user",
            ));
        }
    }
    Ok(())
}

/// Holds a cache entry's lock while alive.
#[derive(Debug)]
pub(crate) struct CacheLock {
    _file: File,
}

/// The cache directory from the environment: `$XDG_CACHE_HOME/tokensmith`
/// (an absolute path, as the XDG spec requires), else
/// `%LOCALAPPDATA%\tokensmith` on Windows, else `$HOME/.cache/tokensmith`.
pub(crate) fn default_dir(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
    local_app_data: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(xdg) = absolute(xdg_cache_home) {
        return Some(xdg.join("tokensmith"));
    }
    if cfg!(windows)
        && let Some(local) = absolute(local_app_data)
    {
        return Some(local.join("tokensmith"));
    }
    absolute(home).map(|h| h.join(".cache").join("tokensmith"))
}

/// Whether `token` is not yet stale at `now`: the library cache's rule,
/// `now < expires_at - margin` with the margin [`CacheConfig::margin_for`]
/// the token's lifetime (a token without an expiry lives the library's
/// default lifetime from its receipt).
pub(crate) fn is_fresh(token: &AccessToken, now: SystemTime, config: &CacheConfig) -> bool {
    let expires = token.effective_expires_at();
    let lifetime = expires.duration_since(token.received_at()).unwrap_or_default();
    expires.checked_sub(config.margin_for(lifetime)).is_some_and(|stale_at| now < stale_at)
}

/// What identifies one provider's token: a hex HMAC-SHA-256, safe in a file
/// name.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct CacheKey(String);

impl CacheKey {
    /// The key of the provider whose config table is `table`, under the
    /// per-user HMAC key `salt`.
    ///
    /// Secret values (of `secret_fields`, the dotted paths of the fields
    /// its config types as `ConfigSecret`: core's
    /// `ProviderInfo::secret_fields`; their `{ env = … }` / `{ file = … }`
    /// references resolved) are hashed separately; the identity text holds
    /// only a placeholder for them.
    pub(crate) fn for_provider(
        table: &toml::Table,
        secret_fields: &[String],
        salt: &hmac::Key,
    ) -> Self {
        let mut canon = Canonical {
            identity: String::new(),
            secrets: digest::Context::new(&digest::SHA256),
            secret_fields,
        };
        let fields = table.iter().filter(|(k, _)| !NOT_IDENTITY.contains(&k.as_str()));
        canon.table(fields, "", Field::Plain);
        let mut key = hmac::Context::with_key(salt);
        key.update(b"tokensmith token cache v2\0");
        key.update(canon.identity.as_bytes());
        key.update(b"\0");
        key.update(canon.secrets.finish().as_ref());
        Self(hex(key.sign().as_ref()))
    }
}

/// How a config value enters the key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Identity, taken as written.
    Plain,
    /// A secret: only its hash enters the key; an `{ env }` / `{ file }`
    /// reference is resolved.
    Secret,
    /// Taken as written, references not resolved (`refresh_token_store`
    /// names a file whose contents rotate).
    Verbatim,
}

/// The canonical identity text (sorted keys, secrets as a placeholder) and
/// the hash of the secrets.
struct Canonical<'s> {
    identity: String,
    secrets: digest::Context,
    /// The dotted paths of the secret fields.
    secret_fields: &'s [String],
}

impl Canonical<'_> {
    fn table<'a>(
        &mut self,
        fields: impl Iterator<Item = (&'a String, &'a toml::Value)>,
        path: &str,
        mode: Field,
    ) {
        let mut fields: Vec<_> = fields.collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        self.identity.push('{');
        for (i, (key, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                self.identity.push(',');
            }
            push_json_str(&mut self.identity, key);
            self.identity.push(':');
            let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            let mode = match key.as_str() {
                _ if mode != Field::Plain => mode,
                "refresh_token_store" => Field::Verbatim,
                _ if self.secret_fields.contains(&path) => Field::Secret,
                _ => Field::Plain,
            };
            if path == "kind" {
                let kind = value.as_str().unwrap_or_default().to_ascii_lowercase();
                push_json_str(&mut self.identity, &kind);
            } else {
                self.value(value, &path, mode);
            }
        }
        self.identity.push('}');
    }

    fn value(&mut self, value: &toml::Value, path: &str, mode: Field) {
        // Only secret fields take references (as in core): elsewhere, e.g.
        // in `extra_params`, `{ file = "x" }` is a form field named `file`.
        if mode == Field::Secret
            && let Some(reference) = secret_reference(value)
        {
            match value.clone().try_into::<ConfigSecret>() {
                Ok(secret) => self.secret(path, secret.expose_secret()),
                // Unresolvable here (the config was validated at load anyway):
                // key on the reference itself.
                Err(_) => self.secret(path, &reference),
            }
            return;
        }
        match value {
            toml::Value::String(s) if mode == Field::Secret => self.secret(path, s),
            toml::Value::String(s) => push_json_str(&mut self.identity, s),
            toml::Value::Integer(i) => {
                let _ = write!(self.identity, "{i}");
            }
            toml::Value::Float(f) => {
                let _ = write!(self.identity, "{f:?}");
            }
            toml::Value::Boolean(b) => {
                let _ = write!(self.identity, "{b}");
            }
            toml::Value::Datetime(d) => push_json_str(&mut self.identity, &d.to_string()),
            toml::Value::Array(items) => {
                self.identity.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.identity.push(',');
                    }
                    self.value(item, &format!("{path}[{i}]"), mode);
                }
                self.identity.push(']');
            }
            toml::Value::Table(table) => self.table(table.iter(), path, mode),
        }
    }

    fn secret(&mut self, path: &str, value: &str) {
        self.secrets.update(path.as_bytes());
        self.secrets.update(b"\0");
        self.secrets.update(&(value.len() as u64).to_le_bytes());
        self.secrets.update(value.as_bytes());
        self.identity.push_str("\"<secret>\"");
    }
}

/// `{ env = "VAR" }` or `{ file = "PATH" }`: the reference, as text.
fn secret_reference(value: &toml::Value) -> Option<String> {
    let table = value.as_table()?;
    if table.len() != 1 {
        return None;
    }
    let (key, target) = table.iter().next()?;
    let target = target.as_str()?;
    matches!(key.as_str(), "env" | "file").then(|| format!("{key}={target}"))
}

fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// One cache entry on disk. Holds the access token; no `Debug`, so it is
/// never printed.
#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    /// The provider name that wrote it (for a person looking at the file).
    provider: String,
    kind: String,
    token_type: String,
    access_token: String,
    /// Seconds since the Unix epoch.
    received_at: u64,
    /// Seconds since the Unix epoch.
    expires_at: Option<u64>,
    scope: Option<String>,
    /// How the token is presented (contract §7): absent in entries written
    /// before presentations, which were all the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header_template: Option<String>,
}

impl Entry {
    fn from_token(provider: &str, kind: &str, token: &AccessToken) -> Self {
        Self {
            version: FORMAT_VERSION,
            provider: provider.to_owned(),
            kind: kind.to_owned(),
            token_type: token.token_type().as_str().to_owned(),
            access_token: token.secret().expose_secret().to_owned(),
            received_at: unix_secs(token.received_at()),
            expires_at: token.expires_at().map(unix_secs),
            scope: token.scope().map(|s| s.as_str().to_owned()),
            header_name: Some(token.header_name().to_owned()),
            header_template: Some(token.presentation().template().to_owned()),
        }
    }

    /// The token, unless the entry is of another format or holds what no
    /// token the library returns can hold: an empty value, a control
    /// character (a second output line, a forged header), a time past what
    /// `SystemTime` can represent, or a lifetime longer than the parser's
    /// [`MAX_EXPIRES_IN`].
    fn into_token(self) -> Option<AccessToken> {
        let printable = |s: &str| !s.chars().any(char::is_control);
        if self.version != FORMAT_VERSION
            || self.access_token.is_empty()
            || !printable(&self.access_token)
            || !printable(&self.token_type)
            || self.scope.as_deref().is_some_and(|s| !printable(s))
        {
            return None;
        }
        let at = |secs: u64| UNIX_EPOCH.checked_add(Duration::from_secs(secs));
        let received_at = at(self.received_at)?;
        // Whole seconds on disk: a lifetime may read one second longer.
        let longest = MAX_EXPIRES_IN.as_secs() + 1;
        let expires_at = match self.expires_at {
            Some(secs) if secs.saturating_sub(self.received_at) > longest => return None,
            Some(secs) => Some(at(secs)?),
            None => None,
        };
        // `effective_expires_at` adds the default lifetime.
        received_at.checked_add(DEFAULT_LIFETIME)?;
        // A name or template a header cannot carry makes the entry invalid.
        let presentation = match (self.header_name, self.header_template) {
            (None, None) => Presentation::default(),
            (Some(name), Some(template)) => Presentation::new(&name, &template).ok()?,
            _ => return None,
        };
        Some(
            AccessToken::builder(self.access_token, received_at)
                .token_type(TokenType::parse(Some(&self.token_type)))
                .expires_at(expires_at)
                .scope(self.scope.as_deref().map(Scope::parse))
                .presentation(presentation)
                .build(),
        )
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    const BASE: &str = r#"
        kind = "deyel"
        token_url = "https://deyel.example.com/token"
        client_id = "app"
        client_secret = "s3cret"
    "#;

    /// A fixed per-user key, for tests of what enters the name.
    fn salt() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[7; KEY_LEN])
    }

    /// The secret fields of the provider `text` describes, as the CLI
    /// finds them: by loading it (none when it does not load).
    fn secret_fields(text: &str) -> Vec<String> {
        let text = format!("[providers.p]\n{text}");
        let report = crate::config::registry().load_str_lenient(&text).unwrap();
        report.providers().info("p").map(|info| info.secret_fields.clone()).unwrap_or_default()
    }

    fn key(text: &str) -> CacheKey {
        CacheKey::for_provider(&table(text), &secret_fields(text), &salt())
    }

    /// The timing fields left out of the key are common fields, read from
    /// core's `CommonConfig`, so a renamed one cannot slip into the key.
    #[test]
    fn the_fields_left_out_of_the_key_are_common_fields() {
        for field in NOT_IDENTITY {
            assert!(tokensmith_core::CommonConfig::field_names().contains(field), "{field}");
        }
    }

    /// Secret-ness comes from the config types: every `ConfigSecret` field
    /// of every kind is hashed (the values here are the test's own).
    #[test]
    fn the_secret_fields_are_those_typed_as_secrets() {
        let soti = "kind = \"soti-connect\"\ntoken_url = \"https://mdm.example.com/token\"\nclient_id = \"a\"\nclient_secret = \"s\"\ngrant = \"password\"\nusername = \"u\"\npassword = \"p\"";
        let mut fields = secret_fields(soti);
        fields.sort();
        assert_eq!(fields, ["client_secret", "code", "password"]);
        assert_eq!(secret_fields(BASE), ["client_secret"]);
        assert_ne!(key(soti), key(&soti.replace("\"p\"", "\"q\"")), "a changed password misses");
    }

    #[test]
    fn the_key_follows_identity_and_secrets_but_not_timing() {
        let base = key(BASE);
        assert_eq!(base.0.len(), 64);
        assert_eq!(base, key(BASE), "deterministic");
        assert_eq!(base, key(&BASE.replace("deyel\"", "DEYEL\"")), "kind is case-insensitive");
        assert_eq!(base, key(&format!("{BASE}\ntimeout = \"5s\"\nexpiry_margin = \"1m\"")));
        assert_ne!(base, key(&BASE.replace("s3cret", "other")), "a changed secret misses");
        assert_ne!(base, key(&BASE.replace("app", "app2")));
        assert_ne!(base, key(&BASE.replace("/token", "/token2")));
        assert_ne!(base, key(&format!("{BASE}\nscope = \"a\"")));
        let other_user = hmac::Key::new(hmac::HMAC_SHA256, &[8; KEY_LEN]);
        assert_ne!(
            base,
            CacheKey::for_provider(&table(BASE), &secret_fields(BASE), &other_user),
            "salted per user"
        );
    }

    #[test]
    fn every_field_that_shapes_the_request_is_in_the_key_and_layout_is_not() {
        let oauth2 = r#"
            kind = "oauth2"
            token_url = "https://idp.example.com/token"
            client_id = "app"
            client_secret = "s3cret"
            grant = "client_credentials"
            scope = "read"
            extra_params = { audience = "api", resource = "r1" }
        "#;
        let base = key(oauth2);
        for (from, to) in [
            ("\"client_credentials\"", "\"refresh_token\""),
            ("\"read\"", "\"read write\""),
            ("audience = \"api\"", "audience = \"api2\""),
            ("resource = \"r1\"", "resource = \"r1\", x = \"\""),
            (
                "token_url = \"https://idp.example.com/token\"",
                "issuer = \"https://idp.example.com\"",
            ),
        ] {
            assert!(oauth2.contains(from), "{from}");
            assert_ne!(base, key(&oauth2.replace(from, to)), "{from} -> {to}");
        }
        let soti = r#"
            kind = "soti-connect"
            token_url = "https://mdm.example.com/Connect/api/token"
            client_id = "app"
            client_secret = "s3cret"
            grant = "password"
            username = "admin"
            password = "pw"
        "#;
        assert_ne!(key(soti), key(&soti.replace("\"admin\"", "\"admin2\"")));
        // Field order, comments and dotted keys do not matter.
        let reordered = r#"
            # the same provider
            extra_params.resource = "r1"
            extra_params.audience = "api"
            scope = "read"
            grant = "client_credentials"
            client_secret = "s3cret"
            client_id = "app"
            token_url = "https://idp.example.com/token"
            kind = "oauth2"
        "#;
        assert_eq!(base, key(reordered));
    }

    /// `extra_params` are sent as written: a table that looks like a secret
    /// reference there is not one (core does not resolve it either).
    #[test]
    fn only_secret_fields_resolve_references() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "same").unwrap();
        fs::write(&b, "same").unwrap();
        let with = |path: &Path| {
            key(&format!("{BASE}\nextra_params = {{ file = {:?} }}", path.display().to_string()))
        };
        assert_ne!(with(&a), with(&b), "two different form fields `file`");
        let before = with(&a);
        fs::write(&a, "changed").unwrap();
        assert_eq!(before, with(&a), "the file is not read");
    }

    #[test]
    fn secret_references_are_resolved_into_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        fs::write(&file, "s3cret\n").unwrap();
        let by_file = BASE.replace(
            "client_secret = \"s3cret\"",
            &format!("client_secret = {{ file = {:?} }}", file.display().to_string()),
        );
        let before = key(&by_file);
        fs::write(&file, "rotated\n").unwrap();
        assert_ne!(before, key(&by_file), "a changed secret file misses");
        // `refresh_token_store` names a path; its contents are not part of the key.
        let store = dir.path().join("rt");
        let with_store =
            format!("{BASE}\nrefresh_token_store = {{ file = {:?} }}", store.display().to_string());
        let k1 = key(&with_store);
        fs::write(&store, "rt-2").unwrap();
        assert_eq!(k1, key(&with_store));
    }

    fn token(expires_in: Option<u64>, now: SystemTime) -> AccessToken {
        let b = AccessToken::builder("tok-123", now)
            .token_type(TokenType::parse(Some("bearer")))
            .scope(Some(Scope::parse("a b")));
        match expires_in {
            Some(s) => b.expires_in(Duration::from_secs(s)).build(),
            None => b.build(),
        }
    }

    #[test]
    fn round_trips_with_mode_0600_and_no_client_secret() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::at(dir.path().join("tokensmith"));
        let key = key(BASE);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let defaults = CacheConfig::default();
        let margin = |secs| CacheConfig::default().with_expiry_margin(Duration::from_secs(secs));
        assert!(cache.load(&key, now, &defaults).is_none());
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        let hit = cache.load(&key, now, &defaults).unwrap();
        assert_eq!(hit.secret().expose_secret(), "tok-123");
        assert_eq!(hit.token_type(), &TokenType::Bearer);
        assert_eq!(hit.expires_at(), Some(now + Duration::from_hours(1)));
        assert_eq!(hit.scope().unwrap().as_str(), "a b");
        let path = cache.entry_path(&key);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(cache.dir()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Within the margin of expiry (default 60 s for an hour's token): a miss.
        let later = now + Duration::from_secs(3600 - 30);
        assert!(cache.load(&key, later, &defaults).is_none());
        assert!(cache.load(&key, later, &margin(10)).is_some());
        assert!(cache.load(&key, now + Duration::from_secs(3600 - 61), &defaults).is_some());
        // No expiry: the default lifetime applies.
        cache.store(&key, "d", "deyel", &token(None, now)).unwrap();
        assert!(cache.load(&key, now + Duration::from_mins(50), &defaults).is_some());
        assert!(cache.load(&key, now + Duration::from_secs(3590), &margin(0)).is_some());
        assert!(cache.load(&key, now + Duration::from_hours(1), &margin(0)).is_none());
        // Corrupt: a miss.
        fs::write(&path, "{not json").unwrap();
        assert!(cache.load(&key, now, &defaults).is_none());
        // Clear.
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        drop(cache.lock(&key).unwrap());
        assert_eq!(cache.clear().unwrap(), 1);
        assert!(cache.load(&key, now, &defaults).is_none());
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 0);
        assert_eq!(DiskCache::at(dir.path().join("none")).clear().unwrap(), 0);
    }

    #[test]
    fn the_presentation_round_trips_and_old_entries_read_as_the_default() {
        let (_dir, cache, key, now) = scratch();
        let defaults = CacheConfig::default();
        let cws = Presentation::new("Authorization", "CwsAuth Bearer={token}").unwrap();
        cache
            .store(&key, "d", "deyel", &token(Some(3600), now).with_presentation(cws.clone()))
            .unwrap();
        let hit = cache.load(&key, now, &defaults).unwrap();
        assert_eq!(hit.presentation(), &cws);
        assert_eq!(hit.header_value().unwrap(), "CwsAuth Bearer=tok-123");

        // An entry written before presentations: no header fields.
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        let path = cache.entry_path(&key);
        let mut entry: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(entry["header_name"], "Authorization");
        let object = entry.as_object_mut().unwrap();
        object.remove("header_name");
        object.remove("header_template");
        fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
        let hit = cache.load(&key, now, &defaults).unwrap();
        assert!(hit.presentation().is_default());
        assert_eq!(hit.header_value().unwrap(), "Bearer tok-123");
    }

    /// A cache under a fresh temporary directory, its key for [`BASE`], and
    /// an instant to read it at.
    fn scratch() -> (tempfile::TempDir, DiskCache, CacheKey, SystemTime) {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::at(dir.path().join("tokensmith"));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        (dir, cache, key(BASE), now)
    }

    #[test]
    fn a_hostile_or_corrupt_entry_is_a_miss_not_a_panic_nor_a_wrong_token() {
        let (_dir, cache, key, now) = scratch();
        let defaults = CacheConfig::default();
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        let path = cache.entry_path(&key);
        let good: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let max = u64::MAX;
        let edits: [(&str, serde_json::Value); 10] = [
            ("received_at", max.into()),
            ("expires_at", max.into()),
            // Far beyond any lifetime the library accepts from a server.
            ("expires_at", (1_700_000_000_u64 + 100 * 365 * 86_400).into()),
            ("access_token", "".into()),
            ("access_token", "tok\nsecond line".into()),
            ("token_type", "Bearer\r\nX-Injected: 1".into()),
            ("version", 2.into()),
            ("header_name", "X-Auth\r\nX-Injected".into()),
            ("header_template", "{token}\r\nX-Injected: 1".into()),
            // One without the other.
            ("header_template", serde_json::Value::Null),
        ];
        for (field, value) in edits {
            let mut entry = good.clone();
            entry[field] = value.clone();
            fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
            assert!(cache.load(&key, now, &defaults).is_none(), "{field} = {value}");
        }
        fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
        assert!(cache.load(&key, now, &defaults).is_some(), "the unedited entry is a hit");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_in_the_cache_are_never_followed() {
        let (dir, cache, key, now) = scratch();
        let defaults = CacheConfig::default();
        // A valid entry elsewhere (e.g. someone else's token), linked in.
        let elsewhere = DiskCache::at(dir.path().join("elsewhere"));
        elsewhere.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        fs::create_dir_all(cache.dir()).unwrap();
        std::os::unix::fs::symlink(elsewhere.entry_path(&key), cache.entry_path(&key)).unwrap();
        assert!(cache.load(&key, now, &defaults).is_none(), "a linked entry is a miss");
        // A linked lock file neither creates nor opens its target.
        let target = dir.path().join("victim");
        std::os::unix::fs::symlink(&target, cache.dir().join(format!("{}.lock", key.0))).unwrap();
        assert!(cache.lock(&key).is_err());
        assert!(!target.exists(), "the lock's link target was created");
        // Storing replaces the link itself, not its target.
        let other =
            AccessToken::builder("tok-other", now).expires_in(Duration::from_hours(1)).build();
        cache.store(&key, "d", "deyel", &other).unwrap();
        assert_eq!(cache.load(&key, now, &defaults).unwrap().secret().expose_secret(), "tok-other");
        let theirs = elsewhere.load(&key, now, &defaults).unwrap();
        assert_eq!(theirs.secret().expose_secret(), "tok-123");
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_directory_open_to_others_is_made_private_before_use() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, cache, key, now) = scratch();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        fs::create_dir_all(cache.dir()).unwrap();
        fs::set_permissions(cache.dir(), fs::Permissions::from_mode(0o777)).unwrap();
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        assert_eq!(mode(cache.dir()), 0o700);
        fs::set_permissions(cache.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(cache.load(&key, now, &CacheConfig::default()).is_some());
        assert_eq!(mode(cache.dir()), 0o700);
    }

    /// Only root can hand a directory to another user; elsewhere this test
    /// checks the same rule through the entry file owned by this user.
    #[cfg(unix)]
    #[test]
    fn a_cache_directory_or_entry_of_another_user_is_not_used() {
        let (_dir, cache, key, now) = scratch();
        let defaults = CacheConfig::default();
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        assert!(cache.load(&key, now, &defaults).is_some());
        let nobody = 65_534;
        let path = cache.entry_path(&key);
        if std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).is_ok() {
            assert!(cache.load(&key, now, &defaults).is_none(), "an entry of another user");
            fs::remove_file(&path).unwrap();
            cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
            std::os::unix::fs::chown(cache.dir(), Some(nobody), Some(nobody)).unwrap();
            assert!(cache.load(&key, now, &defaults).is_none(), "a directory of another user");
            assert!(cache.lock(&key).is_err());
            assert!(cache.store(&key, "d", "deyel", &token(Some(3600), now)).is_err());
        }
    }

    #[test]
    fn the_per_user_key_is_created_once_private_and_kept() {
        let (_dir, cache, _, _) = scratch();
        let key = cache.key_for(&table(BASE), &[]).unwrap();
        assert_eq!(key, cache.key_for(&table(BASE), &[]).unwrap(), "the same key file");
        let path = cache.dir().join(KEY_FILE);
        assert_eq!(fs::read(&path).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Another user's cache: another key, another name.
        let (_other_dir, other, _, _) = scratch();
        assert_ne!(key, other.key_for(&table(BASE), &[]).unwrap());
    }

    #[test]
    fn a_garbled_or_hostile_key_file_is_replaced_never_trusted_nor_followed() {
        let (dir, cache, _, _) = scratch();
        let path = cache.dir().join(KEY_FILE);
        fs::create_dir_all(cache.dir()).unwrap();
        // Too short, too long, empty.
        for garbled in [&b"short"[..], &[1; KEY_LEN + 1][..], b""] {
            fs::write(&path, garbled).unwrap();
            cache.key_for(&table(BASE), &[]).unwrap();
            assert_eq!(fs::read(&path).unwrap().len(), KEY_LEN);
            assert_ne!(fs::read(&path).unwrap(), garbled);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Readable by others: someone may know it.
            let known = [9; KEY_LEN];
            fs::write(&path, known).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let with_known = CacheKey::for_provider(
                &table(BASE),
                &[],
                &hmac::Key::new(hmac::HMAC_SHA256, &known),
            );
            assert_ne!(cache.key_for(&table(BASE), &[]).unwrap(), with_known);
            assert_ne!(fs::read(&path).unwrap(), known);
            // A link to a key elsewhere: replaced, its target untouched.
            let target = dir.path().join("planted");
            fs::write(&target, known).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
            fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(&target, &path).unwrap();
            assert_ne!(cache.key_for(&table(BASE), &[]).unwrap(), with_known);
            assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
            assert_eq!(fs::read(&target).unwrap(), known);
        }
    }

    #[test]
    fn a_held_lock_is_waited_for_a_bounded_time() {
        let (_dir, cache, key, _) = scratch();
        let held = cache.lock(&key).unwrap();
        let impatient = cache.clone().with_lock_timeout(Duration::from_millis(50));
        let err = impatient.lock(&key).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(cache.clone().with_lock_timeout(Duration::ZERO).lock(&key).is_err());
        drop(held);
        drop(impatient.lock(&key).unwrap());
        assert_eq!(DEFAULT_LOCK_TIMEOUT, Duration::from_secs(10));
        assert_eq!(lock_timeout_from(None), Ok(None));
        assert_eq!(lock_timeout_from(Some("".into())), Ok(None));
        assert_eq!(lock_timeout_from(Some("250ms".into())), Ok(Some(Duration::from_millis(250))));
        assert!(lock_timeout_from(Some("soon".into())).unwrap_err().contains(LOCK_TIMEOUT_ENV));
    }

    #[test]
    fn clear_deletes_only_the_cache_s_own_names() {
        let (_dir, cache, key, now) = scratch();
        cache.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        drop(cache.lock(&key).unwrap());
        cache.key_for(&table(BASE), &[]).unwrap();
        fs::write(cache.dir().join(".tmp-crashed"), "x").unwrap();
        let foreign = ["notes.json", "key.bak", "0123.lock"];
        for name in foreign {
            fs::write(cache.dir().join(name), "x").unwrap();
        }
        assert_eq!(cache.clear().unwrap(), 1);
        let mut left: Vec<String> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort_unstable();
        assert_eq!(left, ["0123.lock", "key.bak", "notes.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_cache_directory_is_neither_used_nor_cleared() {
        let (dir, cache, key, now) = scratch();
        let real = DiskCache::at(dir.path().join("real"));
        real.store(&key, "d", "deyel", &token(Some(3600), now)).unwrap();
        std::os::unix::fs::symlink(real.dir(), cache.dir()).unwrap();
        let defaults = CacheConfig::default();
        assert!(cache.load(&key, now, &defaults).is_none());
        assert!(cache.store(&key, "d", "deyel", &token(Some(3600), now)).is_err());
        assert!(cache.lock(&key).is_err());
        assert!(cache.key_for(&table(BASE), &[]).is_err());
        let err = cache.clear().unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(real.load(&key, now, &defaults).is_some(), "the target is untouched");
    }

    #[test]
    fn the_directory_follows_xdg_then_home() {
        let xdg = Some("/xdg".into());
        let home = Some("/home/u".into());
        assert_eq!(default_dir(xdg, home.clone(), None), Some(PathBuf::from("/xdg/tokensmith")));
        if !cfg!(windows) {
            assert_eq!(
                default_dir(Some("relative".into()), home.clone(), None),
                Some(PathBuf::from("/home/u/.cache/tokensmith"))
            );
        }
        assert_eq!(default_dir(None, None, None), None);
    }
}
