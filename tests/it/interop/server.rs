//! Starts the oidc-provider harness (`tests/interop/server.mjs`) on loopback
//! and stops it on drop.
//!
//! Node.js and the npm packages are prerequisites: a missing `node` or
//! `tests/interop/node_modules` fails the test with the command to run, it
//! never skips.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use url::Url;

/// The prefix of the one line the server prints on stdout when it listens.
const READY: &str = "TOKENSMITH_INTEROP_READY ";

/// How long the server may take to start (generous: a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_mins(1);

/// Client ids and secrets configured in `server.mjs`.
pub(crate) mod clients {
    /// `client_credentials`, `client_secret_basic`.
    pub(crate) const CC_BASIC: (&str, &str) = ("cc-basic", "cc-basic-secret");
    /// `client_credentials`, `client_secret_post`.
    pub(crate) const CC_POST: (&str, &str) = ("cc-post", "cc-post-secret");
    /// Public client: `authorization_code` with PKCE S256, `refresh_token`.
    pub(crate) const APP_PUBLIC: &str = "app-public";
    /// Confidential client: `authorization_code` with `client_secret_basic`.
    pub(crate) const APP_BASIC: (&str, &str) = ("app-basic", "app-basic-secret");
    /// The redirect URI registered for [`APP_PUBLIC`] and [`APP_BASIC`].
    pub(crate) const APP_REDIRECT_URI: &str = "http://127.0.0.1/callback";
    /// `private_key_jwt` with RS256 (`tests/interop/keys/rs256.pem`).
    pub(crate) const PKJWT_RS256: &str = "pkjwt-rs256";
    /// `private_key_jwt` with ES256 (`tests/interop/keys/es256.pem`).
    pub(crate) const PKJWT_ES256: &str = "pkjwt-es256";
    /// The resource server allowed to introspect.
    pub(crate) const INTROSPECTOR: (&str, &str) = ("introspector", "introspector-secret");
    /// The RFC 8707 resource indicator the server knows.
    pub(crate) const RESOURCE: &str = "urn:tokensmith:api";
}

/// `tests/interop/`.
pub(crate) fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// A running oidc-provider on `127.0.0.1`, killed when dropped.
pub(crate) struct InteropServer {
    child: Child,
    // Held open: the server exits by itself when its stdin closes, so it
    // never outlives this test process even if `Drop` never runs.
    _stdin: ChildStdin,
    issuer: Url,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl InteropServer {
    /// Starts the server and waits (bounded) for its ready line.
    pub(crate) fn start() -> Self {
        let dir = interop_dir();
        assert!(
            dir.join("node_modules/oidc-provider/package.json").is_file(),
            "the interop tests need oidc-provider's npm packages in {}: run `npm ci --prefix tests/interop` \
             (from the repository root; `cargo xtask ci` does it for you)",
            dir.join("node_modules").display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .arg("--jwks-dir")
            .arg(dir.join("keys"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the interop tests need Node.js 20+ (`node` on PATH) to run oidc-provider, \
                     and cannot start it: {e}. Install Node.js and npm (Debian: `apt-get install nodejs npm`), \
                     then run `npm ci --prefix tests/interop`"
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");

        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0_u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            // Keep draining stdout after the ready line so the server never blocks on it.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(json) = line.strip_prefix(READY) {
                    let _ = tx.send(json.to_owned());
                }
            }
        });

        // reqwest 0.13 with `rustls-no-provider` (as tokensmith-core enables
        // it) needs a process-wide rustls provider before `build()`.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let mut server = Self {
            child,
            _stdin: stdin,
            issuer: Url::parse("http://127.0.0.1/").expect("placeholder URL"),
            stderr,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("test HTTP client"),
        };
        let Ok(ready) = rx.recv_timeout(START_TIMEOUT) else {
            let status = server.child.try_wait().ok().flatten();
            panic!(
                "oidc-provider did not print its ready line within {START_TIMEOUT:?} (exit status: {status:?}); stderr:\n{}",
                server.stderr()
            );
        };
        let ready: Value = serde_json::from_str(&ready).expect("ready line is JSON");
        let issuer = ready["issuer"].as_str().expect("ready line names the issuer");
        server.issuer = Url::parse(issuer).expect("issuer is a URL");
        assert!(
            server.issuer.host_str() == Some("127.0.0.1"),
            "the interop server must listen on loopback, got {issuer}"
        );
        server
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash).
    pub(crate) fn issuer(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// `issuer` joined with `path` (e.g. `/token`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// The token endpoint.
    pub(crate) fn token_url(&self) -> String {
        self.url("/token")
    }

    /// What the server wrote on stderr so far (for failure messages).
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A plain HTTP client for the test's own calls (no redirects followed).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// RFC 7662 introspection of `token`, as the resource server.
    pub(crate) async fn introspect(&self, token: &str) -> Value {
        let (id, secret) = clients::INTROSPECTOR;
        let resp = self
            .http
            .post(self.url("/token/introspection"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection request");
        let status = resp.status();
        let body = resp.text().await.expect("introspection body");
        assert!(status.is_success(), "introspection: HTTP {status}: {body}\n{}", self.stderr());
        serde_json::from_str(&body).expect("introspection response is JSON")
    }

    /// Asserts `token` is active and returns the introspection response.
    pub(crate) async fn assert_active(&self, token: &str) -> Value {
        let info = self.introspect(token).await;
        assert_eq!(info["active"], true, "token not active: {info}\n{}", self.stderr());
        assert_eq!(info["iss"], self.issuer(), "{info}");
        info
    }

    /// Asserts `token` is not active.
    pub(crate) async fn assert_inactive(&self, token: &str) {
        let info = self.introspect(token).await;
        assert_eq!(info["active"], false, "token still active: {info}");
    }
}

impl Drop for InteropServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
