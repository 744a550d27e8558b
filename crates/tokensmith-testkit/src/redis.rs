//! A real `redis-server` on a loopback port, for tests of the Redis token
//! store: started on a free port (and a TLS port, when asked), no
//! persistence, killed on drop; and [`HostileRedis`], a loopback TCP server
//! that answers whatever it is sent with [`Garbage`] instead of Redis; and
//! [`QuotingRedis`], a broken one that quotes back what it is sent.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do when `redis-server` is missing.
pub const REDIS_INSTALL_HINT: &str = "redis-server is not installed: run `apt-get update && apt-get install -y redis-server` as root (Debian/Ubuntu), or put redis-server on PATH; `cargo xtask ci` installs it when run as root";

/// A `redis-server` process on `127.0.0.1`, started by [`start`](Self::start):
/// no RDB or AOF files, stopped (SIGKILL) on drop or [`kill`](Self::kill),
/// startable again on the same port ([`restart`](Self::restart)).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    tls: Option<Tls>,
    child: Option<Child>,
}

/// The TLS listener of a server started by [`RedisServer::start_tls`].
#[derive(Debug)]
struct Tls {
    port: u16,
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// A free loopback port, from the kernel (redis 7 has no `--port 0`).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it
    /// answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (with [`REDIS_INSTALL_HINT`]) or
    /// does not answer within 10 s.
    pub fn start() -> Self {
        let mut server = Self { port: free_port(), tls: None, child: None };
        server.restart();
        server
    }

    /// Starts `redis-server` as [`start`](Self::start) does, with a second,
    /// TLS listener ([`tls_url`](Self::tls_url)) presenting the PEM
    /// certificate chain `cert_file` with its private key `key_file`
    /// (clients need no certificate). The plain port stays open for
    /// [`command`](Self::command) and [`dump`](Self::dump).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when this `redis-server` was built
    /// without TLS (it exits at start).
    pub fn start_tls(cert_file: &Path, key_file: &Path) -> Self {
        let tls = Tls {
            port: free_port(),
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
        };
        let mut server = Self { port: free_port(), tls: Some(tls), child: None };
        server.restart();
        server
    }

    /// `rediss://HOST:PORT` for the TLS listener of a server started by
    /// [`start_tls`](Self::start_tls) (`host` is the name the certificate
    /// must be valid for; the listener is on 127.0.0.1); `None` otherwise.
    pub fn tls_url(&self, host: &str) -> Option<String> {
        self.tls.as_ref().map(|tls| format!("rediss://{host}:{}", tls.port))
    }

    /// Makes the server slow: every client's commands (those of new
    /// connections included) wait `pause` before they run, as `CLIENT PAUSE
    /// <ms> ALL` does (Redis ≥ 6.2). Returns at once.
    ///
    /// # Panics
    ///
    /// When the server does not accept the command.
    pub fn pause_clients(&self, pause: Duration) {
        let millis = pause.as_millis().to_string();
        let reply = self.command(&["CLIENT", "PAUSE", &millis, "ALL"]);
        assert!(reply.as_ref().is_ok_and(|r| r == "+OK"), "CLIENT PAUSE: {reply:?}");
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on its port, empty, and waits until it answers
    /// `PING`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .args(self.tls.as_ref().map(Tls::args).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                panic!("{REDIS_INSTALL_HINT}")
            }
            Err(err) => panic!("starting redis-server: {err}"),
        };
        self.child = Some(child);
        for _ in 0..1000 {
            if self.command(&["PING"]).is_ok_and(|r| r == "+PONG") {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server exited at start ({status}); is port {} taken?", self.port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server on port {} did not answer PING within 10 s", self.port);
    }

    /// Runs one command over a fresh connection and returns the first
    /// reply line (RESP, e.g. `+OK`, `:1`, `$-1`).
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(&encode(args))?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }

    /// Every key and its raw value (`SCAN` + `GET`; a key of another type
    /// has an empty value), for scans of what the store wrote.
    pub fn dump(&self) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut keys = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let cursor_text = String::from_utf8_lossy(&cursor).into_owned();
            stream.write_all(&encode(&["SCAN", &cursor_text, "COUNT", "1000"]))?;
            let reply = read_value(&mut reader)?;
            let Resp::Array(mut parts) = reply else { return Err(bad("SCAN reply")) };
            let (Some(Resp::Array(batch)), Some(Resp::Bulk(Some(next)))) =
                (parts.pop(), parts.pop())
            else {
                return Err(bad("SCAN reply"));
            };
            for key in batch {
                if let Resp::Bulk(Some(key)) = key {
                    keys.push(key);
                }
            }
            if next == b"0" {
                break;
            }
            cursor = next;
        }
        let mut out = Vec::new();
        for key in keys {
            let mut request = format!("*2\r\n$3\r\nGET\r\n${}\r\n", key.len()).into_bytes();
            request.extend_from_slice(&key);
            request.extend_from_slice(b"\r\n");
            stream.write_all(&request)?;
            let value = match read_value(&mut reader)? {
                Resp::Bulk(Some(value)) => value,
                _ => Vec::new(),
            };
            out.push((key, value));
        }
        Ok(out)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Tls {
    fn args(&self) -> Vec<String> {
        vec![
            "--tls-port".to_owned(),
            self.port.to_string(),
            "--tls-cert-file".to_owned(),
            self.cert_file.display().to_string(),
            "--tls-key-file".to_owned(),
            self.key_file.display().to_string(),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ]
    }
}

/// What a [`HostileRedis`] answers instead of Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Garbage {
    /// Bytes that are not RESP at all (an HTTP error page and binary junk),
    /// to whatever it is sent: another service on Redis' port.
    NotResp,
    /// Well-formed RESP of the wrong kind: `+OK` to every command (a `GET`
    /// answered with a status, a script with no integer, a `SET NX` that
    /// always "succeeds").
    WrongReplies,
    /// To the first command of a connection: a bulk string announcing 1 GiB,
    /// then one byte every 50 ms, forever (a client trusting the length
    /// allocates it or waits forever).
    EndlessBulk,
}

/// A TCP server on a free loopback port that speaks [`Garbage`] to every
/// connection; stopped on drop.
#[derive(Debug)]
pub struct HostileRedis {
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl HostileRedis {
    /// Starts answering `garbage` on a free loopback port.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start(garbage: Garbage) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (stop_flag, count) = (stop.clone(), connections.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let stop_flag = stop_flag.clone();
                std::thread::spawn(move || {
                    let _ = serve_garbage(stream, garbage, &stop_flag);
                });
            }
        });
        Self { port, stop, connections, accept: Some(accept) }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for HostileRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The bytes [`Garbage::NotResp`] sends.
const NOT_RESP: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n\x00\xff\xfe garbage \x01\x02\r\n";

/// Answers one connection until the peer closes it or the server stops.
fn serve_garbage(
    mut stream: TcpStream,
    garbage: Garbage,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut pending = Vec::new();
    let mut buf = [0_u8; 4096];
    let mut bulk_started = false;
    while !stop.load(Ordering::Acquire) {
        if bulk_started {
            stream.write_all(b"x")?;
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        // Bounded: a client sending more than 1 MiB without a complete
        // command is cut off.
        pending.extend_from_slice(&buf[..n]);
        if pending.len() > 1 << 20 {
            break;
        }
        match garbage {
            Garbage::NotResp => stream.write_all(NOT_RESP)?,
            Garbage::WrongReplies => {
                while let Some(used) = command_len(&pending) {
                    pending.drain(..used);
                    stream.write_all(b"+OK\r\n")?;
                }
            }
            Garbage::EndlessBulk => {
                if command_len(&pending).is_some() {
                    stream.write_all(b"$1073741824\r\n")?;
                    bulk_started = true;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// The length of the complete RESP command (`*N` then N bulk strings) at
/// the start of `bytes`, if there is one; an inline command ends at its
/// line's end.
fn command_len(bytes: &[u8]) -> Option<usize> {
    let line = |from: usize| -> Option<(&[u8], usize)> {
        let end = bytes.get(from..)?.windows(2).position(|w| w == b"\r\n")? + from;
        Some((&bytes[from..end], end + 2))
    };
    let (first, mut at) = line(0)?;
    let Some(count) = first.strip_prefix(b"*") else { return Some(at) };
    let count: usize = std::str::from_utf8(count).ok()?.parse().ok()?;
    for _ in 0..count {
        let (header, next) = line(at)?;
        let len: usize = std::str::from_utf8(header.strip_prefix(b"$")?).ok()?.parse().ok()?;
        at = next.checked_add(len)?.checked_add(2)?;
        if bytes.len() < at {
            return None;
        }
    }
    Some(at)
}

/// Not Redis: a server on `127.0.0.1` that answers commands with an error
/// quoting the whole command it was sent, as a proxy in front of Redis, a
/// misconfigured or a hostile server may. For tests that what a Redis
/// server writes never reaches an error or a log. Stops accepting when
/// dropped.
///
/// With `setup_ok`, only the command that stores a token's value is quoted
/// (a `SET` without `NX`): the connection set-up (`AUTH`, `HELLO`,
/// `CLIENT`, `SELECT`, `PING`), the lease (`SET … NX`, the Lua release) and
/// reading an unencrypted store's naming key succeed, and every other `GET`
/// is a miss, so a store reaches the point of writing a token. Without it, every command is quoted, `AUTH` with its
/// password first.
///
/// ```
/// use tokensmith_testkit::redis::QuotingRedis;
///
/// let quoting = QuotingRedis::start(true);
/// assert!(quoting.url().starts_with("redis://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct QuotingRedis {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl QuotingRedis {
    /// Starts it on a free loopback port.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start(setup_ok: bool) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free loopback port");
        let port = listener.local_addr().expect("a bound port").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || quote(stream, setup_ok));
                }
            }
        });
        Self { port, stop }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for QuotingRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Answers one connection of [`QuotingRedis`] until it closes.
fn quote(stream: TcpStream, setup_ok: bool) {
    const SETUP: [&str; 5] = ["AUTH", "HELLO", "CLIENT", "SELECT", "PING"];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while let Ok(command) = read_command(&mut reader) {
        let words: Vec<String> =
            command.iter().map(|arg| String::from_utf8_lossy(arg).to_ascii_uppercase()).collect();
        let name = words.first().map_or("", String::as_str);
        let reply = match name {
            _ if !setup_ok => None,
            _ if SETUP.contains(&name) => Some("+OK\r\n"),
            // An unencrypted store's naming key: any 64 hex digits.
            "GET" if words.get(1).is_some_and(|k| k.ends_with(":NAMING-KEY")) => {
                Some("$64\r\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n")
            }
            "GET" => Some("$-1\r\n"),
            "SET" if words.iter().any(|w| w == "NX") => Some("+OK\r\n"),
            "EVALSHA" | "EVAL" | "DEL" => Some(":1\r\n"),
            _ => None,
        };
        let reply = reply.map_or_else(
            || {
                let quoted: Vec<String> =
                    command.iter().map(|arg| String::from_utf8_lossy(arg).into_owned()).collect();
                let quoted = quoted.join(" ").replace(['\r', '\n'], " ");
                format!("-ERR unexpected command: {quoted}\r\n")
            },
            str::to_owned,
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
}

/// One command: a RESP array of bulk strings (an inline command is one
/// line of words).
fn read_command(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<Vec<u8>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end();
    let Some(count) = line.strip_prefix('*') else {
        return Ok(line.split(' ').map(|w| w.as_bytes().to_vec()).collect());
    };
    let count: usize = count.parse().map_err(|_| bad("array length"))?;
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let mut head = String::new();
        reader.read_line(&mut head)?;
        let len: usize = head
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("bulk"))?;
        let mut arg = vec![0; len + 2];
        reader.read_exact(&mut arg)?;
        arg.truncate(len);
        args.push(arg);
    }
    Ok(args)
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

enum Resp {
    Line,
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected {what}"))
}

fn read_value(reader: &mut BufReader<TcpStream>) -> std::io::Result<Resp> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1.min(line.len()));
    let n = || rest.parse::<i64>().map_err(|_| bad("length"));
    match kind {
        "+" | "-" | ":" => Ok(Resp::Line),
        "$" => {
            let len = n()?;
            if len < 0 {
                return Ok(Resp::Bulk(None));
            }
            let mut buf = vec![0; usize::try_from(len).map_err(|_| bad("length"))? + 2];
            reader.read_exact(&mut buf)?;
            buf.truncate(buf.len() - 2);
            Ok(Resp::Bulk(Some(buf)))
        }
        "*" => {
            let len = n()?;
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(read_value(reader)?);
            }
            Ok(Resp::Array(items))
        }
        _ => Err(bad("reply type")),
    }
}
