//! [`RefreshTokenStore`]: where rotated refresh tokens persist across restarts.

use std::fmt::Debug;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::{ExposeSecret, SecretString};

use crate::TokenError;

/// Persists the latest refresh token of one provider.
///
/// Adapters whose grant yields refresh tokens (SOTI's authorization code,
/// `oauth2`) load from it before renewing and save every rotated token to it,
/// so a restart resumes with the newest one.
pub trait RefreshTokenStore: Send + Sync + Debug {
    /// The stored refresh token, if any.
    fn load(&self) -> Result<Option<SecretString>, TokenError>;
    /// Replaces the stored refresh token.
    fn save(&self, token: &SecretString) -> Result<(), TokenError>;

    /// Takes the store's exclusive lock if it is free: `Ok(Some(lock))`,
    /// held until `lock` is dropped, or `Ok(None)` while another holder
    /// (another process sharing the store) has it. Must not wait.
    ///
    /// [`Renewal::exchange`](crate::Renewal::exchange) holds it from reading
    /// the refresh token to saving its successor, so processes sharing one
    /// store never send the same refresh token twice (a server that detects
    /// reuse revokes the whole grant). It calls this off the async workers
    /// and polls it with a bounded wait.
    ///
    /// The default, for a store no other process can see, has nothing to
    /// lock. A store shared between processes (a file, a database row)
    /// should implement it.
    fn try_lock(&self) -> Result<Option<StoreLock>, TokenError> {
        Ok(Some(StoreLock::unshared()))
    }
}

/// A [`RefreshTokenStore`]'s exclusive lock, released when dropped.
pub struct StoreLock {
    _held: Option<Box<dyn Send + Sync>>,
}

impl StoreLock {
    /// A lock held by keeping `guard` (a locked file, a lease) until this is
    /// dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self { _held: Some(Box::new(guard)) }
    }

    /// The lock of a store no other process can see: nothing to hold.
    pub fn unshared() -> Self {
        Self { _held: None }
    }
}

impl Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock").finish_non_exhaustive()
    }
}

/// A shared store.
pub type SharedRefreshTokenStore = Arc<dyn RefreshTokenStore>;

/// Keeps the refresh token in memory (lost on restart).
#[derive(Default)]
pub struct MemoryRefreshTokenStore {
    token: Mutex<Option<SecretString>>,
}

impl Debug for MemoryRefreshTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRefreshTokenStore").finish_non_exhaustive()
    }
}

impl RefreshTokenStore for MemoryRefreshTokenStore {
    fn load(&self) -> Result<Option<SecretString>, TokenError> {
        Ok(self.token.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    fn save(&self, token: &SecretString) -> Result<(), TokenError> {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(())
    }
}

/// Keeps the refresh token in a file: created with mode 0600 (on Unix) and
/// replaced atomically (write to a freshly created temporary file of a unique
/// name in the same directory, then rename), so a crash never leaves half a
/// token and concurrent saves never mix. When the path is a symbolic link,
/// the file it points to is replaced and the link kept.
///
/// Its [lock](RefreshTokenStore::try_lock) is an advisory lock (`flock` on
/// Unix, `LockFileEx` on Windows) on a sidecar file beside the token file,
/// `<name>.lock` (mode 0600, never deleted: removing it while held would let
/// a second holder in). It is released by the system when its holder exits,
/// however it exits.
#[derive(Debug)]
pub struct FileRefreshTokenStore {
    provider: String,
    path: PathBuf,
}

impl FileRefreshTokenStore {
    /// A store at `path` for the provider `provider` (named in errors).
    pub fn new(provider: &str, path: PathBuf) -> Self {
        Self { provider: provider.to_owned(), path }
    }

    fn error(&self, what: &str, err: &std::io::Error) -> TokenError {
        TokenError::config(
            Some(&self.provider),
            Some("refresh_token_store"),
            format!("cannot {what} {}: {err}", self.path.display()),
        )
    }
}

impl RefreshTokenStore for FileRefreshTokenStore {
    fn load(&self) -> Result<Option<SecretString>, TokenError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let text = text.trim();
                Ok((!text.is_empty()).then(|| SecretString::from(text.to_owned())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("read", &e)),
        }
    }

    fn save(&self, token: &SecretString) -> Result<(), TokenError> {
        static SAVES: AtomicU64 = AtomicU64::new(0);
        let path = self.target();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| self.error("create the directory of", &e))?;
        let file_name = path
            .file_name()
            .map_or_else(|| "refresh-token".into(), |n| n.to_string_lossy().into_owned());
        // A name no other save (of this process or another) picks, created
        // afresh: never a file or link found there.
        let tmp = dir.join(format!(
            ".{file_name}.tmp-{}-{}-{:08x}",
            std::process::id(),
            SAVES.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = || -> std::io::Result<()> {
            let mut file = options.open(&tmp)?;
            file.write_all(token.expose_secret().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.error("write", &e)
        })?;
        // Make the rename itself durable, so a crash cannot bring back the
        // previous (already rotated, so revoked) token. Best effort.
        #[cfg(unix)]
        if let Ok(dir) = std::fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn try_lock(&self) -> Result<Option<StoreLock>, TokenError> {
        let target = self.target();
        let file_name = target
            .file_name()
            .map_or_else(|| "refresh-token".into(), |n| n.to_string_lossy().into_owned());
        let path = target.with_file_name(format!("{file_name}.lock"));
        let cannot = |what: &str, e: &std::io::Error| {
            TokenError::config(
                Some(&self.provider),
                Some("refresh_token_store"),
                format!("cannot {what} the lock file {}: {e}", path.display()),
            )
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| cannot("create the directory of", &e))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|e| cannot("open", &e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(cannot("lock", &e)),
        }
    }
}

impl FileRefreshTokenStore {
    /// The file to replace: the configured path, or when it is a symbolic
    /// link, the file it points to (replacing the link itself would leave
    /// its target, which others may read, with a revoked token).
    fn target(&self) -> PathBuf {
        let is_link =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return self.path.clone();
        }
        std::fs::canonicalize(&self.path).unwrap_or_else(|_| {
            // A dangling link: its target, relative to the link's directory.
            match std::fs::read_link(&self.path) {
                Ok(target) => self.path.parent().map_or(target.clone(), |d| d.join(target)),
                Err(_) => self.path.clone(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rt");
        let store = FileRefreshTokenStore::new("p", path.clone());
        assert!(store.load().unwrap().is_none());
        store.save(&SecretString::from("rt-1")).unwrap();
        store.save(&SecretString::from("rt-2")).unwrap();
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "rt-2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{store:?}").contains("rt-2"));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_planted_at_a_temporary_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // Whatever waits at the names a save could pick (here: the one the
        // pid alone gives) must not be opened, let alone followed.
        let planted = dir.path().join(format!(".rt.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let store = FileRefreshTokenStore::new("p", dir.path().join("rt"));
        store.save(&SecretString::from("rt-1")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "rt-1");
        assert!(!std::fs::symlink_metadata(dir.path().join("rt")).unwrap().is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn a_store_path_that_is_a_symlink_keeps_pointing_at_its_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        let target = dir.path().join("secrets/rt");
        std::fs::write(&target, "rt-0\n").unwrap();
        let link = dir.path().join("rt");
        std::os::unix::fs::symlink("secrets/rt", &link).unwrap();
        let store = FileRefreshTokenStore::new("p", link.clone());
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "rt-0");
        store.save(&SecretString::from("rt-1")).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink(), "the link is kept");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "rt-1\n");
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "rt-1");
    }

    #[test]
    fn concurrent_saves_through_two_stores_of_one_file_never_fail_or_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt");
        let stores = [
            Arc::new(FileRefreshTokenStore::new("p", path.clone())),
            Arc::new(FileRefreshTokenStore::new("p", path.clone())),
        ];
        let tokens: Vec<String> = (0..4).map(|i| format!("rt-{i}-{}", "x".repeat(i * 7))).collect();
        std::thread::scope(|scope| {
            for (i, token) in tokens.iter().enumerate() {
                let store = Arc::clone(&stores[i % 2]);
                scope.spawn(move || {
                    for _ in 0..100 {
                        store.save(&SecretString::from(token.clone())).unwrap();
                    }
                });
            }
        });
        let last = stores[0].load().unwrap().unwrap();
        assert!(tokens.iter().any(|t| t == last.expose_secret()), "a mixed token was stored");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn two_stores_of_one_file_lock_each_other_out_until_the_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rt");
        let (a, b) = (
            FileRefreshTokenStore::new("p", path.clone()),
            FileRefreshTokenStore::new("p", path.clone()),
        );
        let held = a.try_lock().unwrap().expect("a free lock is taken");
        assert!(b.try_lock().unwrap().is_none(), "the lock is exclusive");
        assert!(a.try_lock().unwrap().is_none(), "even for the same store");
        drop(held);
        let held = b.try_lock().unwrap().expect("a dropped lock is free again");
        assert!(a.try_lock().unwrap().is_none());
        drop(held);
        // Beside the token file, which the lock does not create.
        assert!(dir.path().join("sub/rt.lock").exists());
        assert!(a.load().unwrap().is_none());
    }

    #[test]
    fn memory_store_round_trips() {
        let store = MemoryRefreshTokenStore::default();
        assert!(store.load().unwrap().is_none());
        store.save(&SecretString::from("x")).unwrap();
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "x");
    }
}
