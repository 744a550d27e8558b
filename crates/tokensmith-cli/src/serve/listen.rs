//! Where the agent listens: a Unix socket only its user can use (created
//! with mode 0600 from the start, a stale one replaced, a live one or a
//! file that is no socket left alone), or a loopback TCP address.
//!
//! One agent per socket path: each holds an exclusive `flock` on
//! `PATH.lock` (created 0600 beside the socket, kept on exit) for its whole
//! life, so two agents starting at once on a stale socket cannot both
//! replace it (the second would unlink the first one's live socket).

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::exit::{self, Exit};

/// The socket's file name under `$XDG_RUNTIME_DIR`.
pub(crate) const SOCKET_NAME: &str = "tokensmith.sock";

/// Where to listen, as asked on the command line.
#[derive(Debug)]
pub(crate) enum Address {
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// A loopback TCP address.
    Tcp(SocketAddr),
}

impl Address {
    /// `--socket PATH`, `--listen ADDR` (loopback only), else
    /// `$XDG_RUNTIME_DIR/tokensmith.sock`.
    pub(crate) fn choose(
        socket: Option<PathBuf>,
        listen: Option<SocketAddr>,
        runtime_dir: Option<OsString>,
    ) -> Result<Address, Exit> {
        match (socket, listen) {
            (_, Some(addr)) if !addr.ip().is_loopback() => Err(usage(format!(
                "--listen {addr}: the agent hands out tokens without authentication, so it listens on loopback addresses only (127.0.0.1, ::1)"
            ))),
            (_, Some(addr)) => Ok(Address::Tcp(addr)),
            (Some(path), None) => Ok(Address::Unix(path)),
            (None, None) => match runtime_dir {
                Some(dir) if !dir.is_empty() => Ok(Address::Unix(PathBuf::from(dir).join(SOCKET_NAME))),
                _ => Err(usage(
                    "no socket path: XDG_RUNTIME_DIR is not set; pass --socket PATH or --listen 127.0.0.1:PORT"
                        .to_owned(),
                )),
            },
        }
    }
}

fn usage(message: String) -> Exit {
    Exit { code: exit::USAGE, message }
}

/// A bound listener.
#[derive(Debug)]
pub(crate) enum Listener {
    /// On a Unix socket; the file is removed when this is dropped.
    Unix(UnixListener, SocketFile),
    /// On loopback TCP.
    Tcp(TcpListener),
}

/// An accepted connection.
pub(crate) enum Connection {
    /// From the Unix socket.
    Unix(UnixStream),
    /// From loopback TCP.
    Tcp(TcpStream),
}

impl Listener {
    /// Binds `address`.
    pub(crate) fn bind(address: &Address) -> Result<Listener, Exit> {
        match address {
            Address::Tcp(addr) => {
                let std = std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| usage(format!("cannot listen on {addr}: {e}")))?;
                let listener = TcpListener::from_std(std)
                    .map_err(|e| usage(format!("cannot listen on {addr}: {e}")))?;
                Ok(Listener::Tcp(listener))
            }
            Address::Unix(path) => {
                let (listener, file) = bind_unix(path)?;
                Ok(Listener::Unix(listener, file))
            }
        }
    }

    /// Where it listens, for the log line: `unix:PATH` or `tcp:ADDR`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Listener::Unix(_, file) => format!("unix:{}", file.path.display()),
            Listener::Tcp(l) => {
                l.local_addr().map_or_else(|_| "tcp:?".to_owned(), |a| format!("tcp:{a}"))
            }
        }
    }

    /// The next connection.
    pub(crate) async fn accept(&self) -> io::Result<Connection> {
        match self {
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Connection::Unix(s)),
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(stream))
            }
        }
    }
}

/// The socket file this agent created: removed on drop, if it is still
/// the same file (another agent may have replaced it). The lock on
/// `PATH.lock` is released with it (or when the process dies).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
    _lock: std::fs::File,
}

/// `PATH.lock`, beside the socket `path`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock on `PATH.lock` without waiting: held, another
/// agent owns the socket path. The file is opened without following a
/// symbolic link, created 0600.
fn lock_socket_path(path: &Path) -> Result<std::fs::File, Exit> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown = path.display();
    let lock = lock_path(path);
    let nofollow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or_default();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nofollow)
        .open(&lock)
        .map_err(|e| usage(format!("cannot open the lock file {}: {e}", lock.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            Err(usage(format!("another tokensmith serve is running on {shown}")))
        }
        Err(e) => Err(usage(format!("cannot lock {}: {e}", lock.display()))),
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn bind_unix(path: &Path) -> Result<(UnixListener, SocketFile), Exit> {
    let shown = path.display();
    let lock = lock_socket_path(path)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(usage(format!("cannot use socket path {shown}: {e}"))),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(usage(format!(
                "{shown} exists and is not a socket; not touching it (remove it or pass another --socket)"
            )));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(usage(format!("another tokensmith serve is running on {shown}")));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %shown, "removing a stale socket (nothing answers on it)");
                std::fs::remove_file(path)
                    .map_err(|e| usage(format!("cannot remove the stale socket {shown}: {e}")))?;
            }
            Err(e) => return Err(usage(format!("cannot use socket path {shown}: {e}"))),
        },
    }
    // The socket is created 0600 (umask 0177 for the one bind), so there is
    // no moment in which another user could connect; the chmod only
    // restates it.
    let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    rustix::process::umask(previous);
    let std = bound.map_err(|e| usage(format!("cannot listen on {shown}: {e}")))?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| usage(format!("cannot listen on {shown}: {e}")))?;
    let file = SocketFile { path: path.to_path_buf(), id: (meta.dev(), meta.ino()), _lock: lock };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| usage(format!("cannot set the mode of {shown}: {e}")))?;
    std.set_nonblocking(true).map_err(|e| usage(format!("cannot listen on {shown}: {e}")))?;
    let listener =
        UnixListener::from_std(std).map_err(|e| usage(format!("cannot listen on {shown}: {e}")))?;
    Ok((listener, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_beside_the_socket_keeps_a_second_agent_from_replacing_a_stale_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // stale: nobody listens
        // Another agent holds the lock (it is about to replace the stale
        // socket): this one refuses, and leaves the socket alone.
        let other = lock_socket_path(&path).unwrap();
        let err = bind_unix(&path).unwrap_err();
        assert!(err.message.contains("another tokensmith serve is running"), "{}", err.message);
        assert!(path.exists(), "the stale socket is the lock holder's to replace");
        drop(other);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (_listener, file) = bind_unix(&path).unwrap();
            // The lock file is private, and a symbolic link is never followed.
            let mode = std::fs::metadata(lock_path(&path)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            drop(file);
        });
        std::fs::remove_file(lock_path(&path)).unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, lock_path(&path)).unwrap();
        let err = lock_socket_path(&path).unwrap_err();
        assert!(err.message.contains("cannot open the lock file"), "{}", err.message);
        assert!(!target.exists(), "nothing created through the link");
    }

    #[test]
    fn the_address_is_chosen_and_only_loopback_tcp_is_accepted() {
        let run = Some(OsString::from("/run/user/1000"));
        assert!(matches!(
            Address::choose(None, None, run.clone()),
            Ok(Address::Unix(p)) if p == Path::new("/run/user/1000/tokensmith.sock")
        ));
        assert!(matches!(
            Address::choose(Some("/tmp/x.sock".into()), None, run.clone()),
            Ok(Address::Unix(p)) if p == Path::new("/tmp/x.sock")
        ));
        assert!(Address::choose(None, None, None).is_err());
        assert!(Address::choose(None, None, Some(OsString::new())).is_err());
        assert!(matches!(
            Address::choose(None, Some("127.0.0.1:7000".parse().unwrap()), None),
            Ok(Address::Tcp(_))
        ));
        assert!(matches!(
            Address::choose(None, Some("[::1]:7000".parse().unwrap()), None),
            Ok(Address::Tcp(_))
        ));
        let err = Address::choose(None, Some("0.0.0.0:7000".parse().unwrap()), None).unwrap_err();
        assert!(err.message.contains("loopback"), "{}", err.message);
    }

    #[test]
    fn a_file_that_is_no_socket_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokensmith.sock");
        std::fs::write(&path, "precious").unwrap();
        let err = bind_unix(&path).unwrap_err();
        assert!(err.message.contains("not a socket"), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn a_stale_socket_is_replaced_and_the_new_one_is_0600_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokensmith.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // stale: nobody listens
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (listener, file) = bind_unix(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let err = bind_unix(&path).unwrap_err();
            assert!(err.message.contains("another tokensmith serve is running"), "{}", err.message);
            drop((listener, file));
        });
        assert!(!path.exists());
    }
}
