//! [`RefreshTokenStore`]: where rotated refresh tokens persist across restarts.

use std::fmt::Debug;
use std::io::Write;
use std::path::PathBuf;
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
/// replaced atomically (write to a temporary file in the same directory, then
/// rename), so a crash never leaves half a token.
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
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| self.error("create the directory of", &e))?;
        let file_name = self
            .path
            .file_name()
            .map_or_else(|| "refresh-token".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
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
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.error("write", &e)
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

    #[test]
    fn memory_store_round_trips() {
        let store = MemoryRefreshTokenStore::default();
        assert!(store.load().unwrap().is_none());
        store.save(&SecretString::from("x")).unwrap();
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "x");
    }
}
