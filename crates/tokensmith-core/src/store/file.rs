//! [`FileTokenStore`]: tokens in a private directory, one file per provider.
//!
//! - **Where:** any directory; [`FileTokenStore::default_dir`] is the
//!   per-user cache directory (`$XDG_CACHE_HOME/tokensmith`, else
//!   `~/.cache/tokensmith`, `%LOCALAPPDATA%\tokensmith` on Windows), which
//!   the CLI uses. Created with mode 0700.
//! - **Names:** `<ProviderKey>.json` (64 hex digits), under a random
//!   per-user naming key: 32 bytes in the file `key` (mode 0600), created
//!   atomically on first use; a key file that is not a 0600 regular file of
//!   this user of the right size is replaced (its entries are then simply not
//!   found).
//! - **Contents:** [`encode_token`](crate::encode_token)'s document (the
//!   access token and its metadata, never a client secret, password, code,
//!   refresh token or id token), mode 0600.
//! - **Writes** go to a temporary file in the same directory (mode 0600),
//!   then renamed over the entry: a reader sees the old entry or the new
//!   one, never half of one.
//! - **Trust (Unix):** the directory must be a directory (not a symbolic
//!   link to one) of this user; a looser mode than 0700 is tightened before
//!   use, and a directory of another user is not used at all. An entry, key
//!   or lock file is used only if it is a regular file of this user, never
//!   through a symbolic link: it is opened `O_NOFOLLOW | O_NONBLOCK` and what
//!   was opened is checked (`fstat`), so nothing can be swapped in between
//!   the check and the use, and a FIFO at the name cannot hold the open.
//!   A corrupt or implausible entry is a miss.
//!   [`clear`](FileTokenStore::clear) runs the same checks and deletes only
//!   the names the store writes.
//! - **Lease:** an exclusive `flock` on `<ProviderKey>.lock`, tried without
//!   waiting; the kernel frees it when its holder exits, however it exits.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;

use super::{
    NamingKey, ProviderKey, StoreError, StoreErrorKind, StoreLease, TokenStore, decode_token,
    encode_token,
};
use crate::AccessToken;

/// The file holding the per-user naming key.
const KEY_FILE: &str = "key";

/// The length of that key, in bytes.
const KEY_LEN: usize = 32;

/// The prefix of temporary files.
const TMP_PREFIX: &str = ".tmp-";

/// The largest entry read (a bound before [`decode_token`]'s own).
const MAX_ENTRY_BYTES: u64 = super::MAX_ENCODED_TOKEN_LEN as u64;

/// Tokens in a private directory: the CLI's per-user token cache, and a
/// store for any program that should keep its tokens across restarts or
/// share them with other processes of the same user. See the module notes
/// in `docs/cache.md` for every rule it keeps.
///
/// ```
/// use std::sync::Arc;
/// use tokensmith_core::{FileTokenStore, SharedTokenStore};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store: SharedTokenStore = Arc::new(FileTokenStore::new(dir.path().join("tokens")));
/// # let _ = store;
/// ```
#[derive(Clone, Debug)]
pub struct FileTokenStore {
    dir: PathBuf,
}

impl FileTokenStore {
    /// The store in `dir` (created, mode 0700, on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The per-user cache directory of this environment:
    /// `$XDG_CACHE_HOME/tokensmith` (an absolute path, as the XDG spec
    /// requires), else `%LOCALAPPDATA%\tokensmith` on Windows, else
    /// `$HOME/.cache/tokensmith`; `None` when none is set.
    pub fn default_dir() -> Option<PathBuf> {
        default_dir(
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
            std::env::var_os("LOCALAPPDATA"),
        )
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &ProviderKey) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn lock_path(&self, key: &ProviderKey) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }

    /// Deletes every entry, lock file, temporary file and the naming key;
    /// returns how many tokens were removed. The directory passes the same
    /// checks as for a read, and only the names the store writes are
    /// deleted: anything else in the directory stays.
    pub fn clear(&self) -> io::Result<usize> {
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

    /// The entry under `key`: `Ok(None)` when there is none.
    fn read(&self, key: &ProviderKey) -> io::Result<Option<Vec<u8>>> {
        match self.check_dir() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        }
        match open_own_file(&self.entry_path(key)) {
            Ok((file, meta)) => read_capped(file, meta.len(), MAX_ENTRY_BYTES).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, key: &ProviderKey, bytes: &[u8]) -> io::Result<()> {
        self.create_dir()?;
        // `NamedTempFile` creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        // A rename replaces whatever is at the entry's name (a link too),
        // never what a link points to.
        tmp.persist(self.entry_path(key)).map_err(|e| e.error)?;
        Ok(())
    }

    fn delete(&self, key: &ProviderKey) -> io::Result<bool> {
        match self.check_dir() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            other => other?,
        }
        // Removing a link removes the link, never its target.
        match fs::remove_file(self.entry_path(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn lock(&self, key: &ProviderKey) -> io::Result<Option<File>> {
        self.create_dir()?;
        let path = self.lock_path(key);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600).custom_flags(NO_FOLLOW_NO_WAIT.bits().cast_signed());
        }
        #[cfg(not(unix))]
        match check_own_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
        let file = options.open(&path).map_err(link_refused)?;
        check_own(&file.metadata()?)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// The per-user naming key: read from [`KEY_FILE`], or created there
    /// (atomically, mode 0600) when missing or unusable.
    fn naming_key_blocking(&self) -> io::Result<NamingKey> {
        self.create_dir()?;
        let path = self.dir.join(KEY_FILE);
        // Two rounds: a racing process may create the file between our read
        // and our create.
        for _ in 0..2 {
            let replace = match read_key(&path) {
                Ok(Some(bytes)) => return Ok(NamingKey::new(&bytes)),
                Ok(None) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            let mut bytes = [0_u8; KEY_LEN];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| io::Error::other("no system randomness for the naming key"))?;
            let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(&self.dir)?;
            tmp.write_all(&bytes)?;
            tmp.as_file().sync_all()?;
            let persisted = if replace {
                tracing::debug!(dir = %self.dir.display(), "token store key unusable; replaced");
                tmp.persist(&path).map(drop)
            } else {
                tmp.persist_noclobber(&path).map(drop)
            };
            match persisted {
                Ok(()) => return Ok(NamingKey::new(&bytes)),
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.error),
            }
        }
        Err(io::Error::other("the naming key keeps changing"))
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

    fn error(&self, what: &str, err: io::Error) -> StoreError {
        StoreError::io(format!("{what} in {}", self.dir.display()), err)
    }
}

/// Runs `f` (a few small reads or writes of this store's files, and a
/// `flock` that never waits) off the async workers of a multi-thread
/// runtime. On a current-thread runtime (a CLI, a small agent) or without
/// one it runs inline: there, handing it to the blocking pool would start a
/// thread and cost more than the I/O (a CLI cache hit spent most of its own
/// time creating and tearing down that thread).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread => {
            runtime.spawn_blocking(f).await.unwrap_or_else(|e| {
                Err(StoreError::new(StoreErrorKind::Unavailable, "file store task failed")
                    .with_source(e))
            })
        }
        Ok(_) | Err(_) => f(),
    }
}

#[async_trait]
impl TokenStore for FileTokenStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn naming_key(&self) -> Result<NamingKey, StoreError> {
        let this = self.clone();
        blocking(move || this.naming_key_blocking().map_err(|e| this.error("naming key", e))).await
    }

    async fn load(&self, key: &ProviderKey) -> Result<Option<AccessToken>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        let bytes = blocking(move || this.read(&key).map_err(|e| this.error("entry", e))).await?;
        match bytes {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode_token(&bytes)?)),
        }
    }

    async fn store(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
        _ttl: Duration,
    ) -> Result<(), StoreError> {
        // The expiry is inside the entry; the ttl adds nothing on disk.
        let (this, key) = (self.clone(), key.clone());
        let encoded = encode_token(token);
        blocking(move || {
            this.write(&key, encoded.expose_secret().as_bytes()).map_err(|e| this.error("write", e))
        })
        .await
    }

    async fn remove_if_same(
        &self,
        key: &ProviderKey,
        token: &AccessToken,
    ) -> Result<bool, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        let value = token.secret().clone();
        blocking(move || {
            let Some(bytes) = this.read(&key).map_err(|e| this.error("entry", e))? else {
                return Ok(false);
            };
            match decode_token(&bytes) {
                Ok(stored) if stored.secret().expose_secret() != value.expose_secret() => {
                    return Ok(false);
                }
                // The same token, or garbage: either way it goes.
                Ok(_) | Err(_) => {}
            }
            // A newer token renamed in between is deleted too: one extra
            // fetch, never a wrong token.
            this.delete(&key).map_err(|e| this.error("remove", e))
        })
        .await
    }

    async fn remove(&self, key: &ProviderKey) -> Result<bool, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || this.delete(&key).map_err(|e| this.error("remove", e))).await
    }

    async fn try_lock(
        &self,
        key: &ProviderKey,
        _ttl: Duration,
    ) -> Result<Option<Box<dyn StoreLease>>, StoreError> {
        // A `flock` dies with its process: no ttl needed.
        let (this, key) = (self.clone(), key.clone());
        let file = blocking(move || this.lock(&key).map_err(|e| this.error("lock", e))).await?;
        Ok(file.map(|file| Box::new(FileLease { _file: file }) as Box<dyn StoreLease>))
    }
}

/// A held `flock`: released when the file is closed.
#[derive(Debug)]
struct FileLease {
    _file: File,
}

#[async_trait]
impl StoreLease for FileLease {
    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        // Closing the descriptor releases this holder's lock only.
        drop(self);
        Ok(())
    }
}

/// The names the store writes, and so the only ones `clear` deletes.
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
    let (file, meta) = match open_own_file(path) {
        Ok(opened) => opened,
        // Not a file this store can trust (a link, not a regular file,
        // another user's): replaced. Any other failure (no file descriptor
        // left, an I/O error) is the caller's: replacing the key would
        // orphan every entry.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            return Ok(None);
        }
    }
    let bytes = read_capped(file, meta.len(), KEY_LEN as u64)?;
    Ok(<[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok())
}

/// `open` flags for the store's files on Unix: a link at the name is not
/// followed (`ELOOP`), a FIFO cannot hold the open, a terminal is not taken
/// as the controlling one.
#[cfg(unix)]
const NO_FOLLOW_NO_WAIT: rustix::fs::OFlags = rustix::fs::OFlags::NOFOLLOW
    .union(rustix::fs::OFlags::NONBLOCK)
    .union(rustix::fs::OFlags::NOCTTY);

/// Opens `path` for reading when it is a regular file of this user, not a
/// link to one, and gives its metadata. On Unix the checks are made on what
/// was opened ([`NO_FOLLOW_NO_WAIT`], then `fstat`): nothing can be swapped
/// in between the check and the read. An untrusted file is
/// `PermissionDenied`.
fn open_own_file(path: &Path) -> io::Result<(File, fs::Metadata)> {
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        OpenOptions::new()
            .read(true)
            .custom_flags(NO_FOLLOW_NO_WAIT.bits().cast_signed())
            .open(path)
            .map_err(link_refused)?
    };
    #[cfg(not(unix))]
    let file = {
        if fs::symlink_metadata(path)?.file_type().is_symlink() {
            return Err(not_a_regular_file());
        }
        File::open(path)?
    };
    let meta = file.metadata()?;
    check_own(&meta)?;
    Ok((file, meta))
}

/// An `open` refused because the name is a symbolic link (`ELOOP` under
/// `O_NOFOLLOW`) is an untrusted file; any other error is itself.
fn link_refused(err: io::Error) -> io::Error {
    #[cfg(unix)]
    if rustix::io::Errno::from_io_error(&err) == Some(rustix::io::Errno::LOOP) {
        return not_a_regular_file();
    }
    err
}

/// At most `cap + 1` bytes of `file` (`len` long when it was opened): one
/// more than `cap` tells the caller it was too long.
fn read_capped(file: File, len: u64, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let capacity = usize::try_from(len.min(cap) + 1).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Fails unless `path` is a regular file of this user (not a link to one).
#[cfg(not(unix))]
fn check_own_file(path: &Path) -> io::Result<()> {
    check_own(&fs::symlink_metadata(path)?)
}

/// Fails unless `meta` (from `lstat` or `fstat`) is a regular file of this
/// user.
fn check_own(meta: &fs::Metadata) -> io::Result<()> {
    if !meta.file_type().is_file() {
        return Err(not_a_regular_file());
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

fn not_a_regular_file() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "not a regular file")
}

/// The cache directory from the environment (see
/// [`FileTokenStore::default_dir`]).
fn default_dir(
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
