//! A real `redis-server` on a loopback port, for tests of the Redis token
//! store: started on a free port, no persistence, killed on drop.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What to do when `redis-server` is missing.
pub const REDIS_INSTALL_HINT: &str = "redis-server is not installed: run `apt-get update && apt-get install -y redis-server` as root (Debian/Ubuntu), or put redis-server on PATH; `cargo xtask ci` installs it when run as root";

/// A `redis-server` process on `127.0.0.1`, started by [`start`](Self::start):
/// no RDB or AOF files, stopped (SIGKILL) on drop or [`kill`](Self::kill),
/// startable again on the same port ([`restart`](Self::restart)).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
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
        // redis 7 has no `--port 0`: take a free port from the kernel.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = Self { port, child: None };
        server.restart();
        server
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
