//! The secret-leak audit (issue 15), CLI and agent half; the library half
//! (adapters, stores, middleware) is `tests/it/leak_audit/` of the
//! `tokensmith-tests` package. Both use the one scanner,
//! `tokensmith_testkit::leak::Scanner`.
//!
//! Every command runs as a real process with `-vvv` (every event of
//! tokensmith and of the libraries below it) and `RUST_BACKTRACE=1`, on its
//! error paths (each exit code: config errors, vendor refusals, endpoints
//! down or echoing the request, an unsaved rotated refresh token, Redis
//! down) and its successes, with and without `--json`; stdout and stderr are
//! scanned for every secret of the config in every spelling. An access
//! token may appear only on the stdout of `token` and `header`. No run may
//! panic (a panic's message and backtrace go to the scanned stderr).
//! `tokensmith serve` runs the same way over a real Unix socket: every
//! endpoint's error responses, `/metrics` and its log are scanned, an
//! access token allowed only in the bodies of `/v1/token` and `/v1/header`.
//!
//! Each channel is shown to be scanned: a planted leak on stdout, on
//! stderr, in a panic of a child process, in an agent response and in the
//! agent's log is reported.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use hyper::Method;
use tokensmith_testkit::leak::{Scanner, distinctive, json_escaped};
use tokensmith_testkit::redis::{QuotingRedis, RedisServer};
use tokensmith_testkit::{Emulator, Fault, Vendor};

use crate::agent_client::{Answer, Target};
use crate::serve::{Served, call, client_rt};
use crate::support::{Run, TestEnv, toml_str};

/// The label of access tokens: allowed only on the stdout of `token` and
/// `header`, and in the bodies of `/v1/token` and `/v1/header`.
const ACCESS: &str = "access token";

/// The variable the `env` provider reads its secret from.
const SECRET_VAR: &str = "TOKENSMITH_AUDIT_SECRET";

/// The `private_key_jwt` key (a test fixture of the oauth2 crate).
const PRIVATE_KEY_PEM: &str = include_str!("../../../tokensmith-oauth2/testdata/ec-p256-pkcs8.pem");

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// `n` random bytes (a test's, not for production).
fn random_bytes(n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| RandomState::new().hash_one(i).to_le_bytes()[0]).collect()
}

/// The secrets the audited configs hold, each distinctive.
struct Secrets {
    client_secret: String,
    password: String,
    code: String,
    code_verifier: String,
    refresh_token: String,
    api_key: String,
    env_secret: String,
    file_secret: String,
    /// URL-safe: written into the Redis URL as is.
    redis_password: String,
    encryption_key: String,
    /// An access token a hostile server plants in a broken response.
    planted_access: String,
}

impl Secrets {
    fn new() -> Self {
        let random = RandomState::new().hash_one("verifier");
        Self {
            client_secret: distinctive("S3cr3t"),
            password: distinctive("Pa55w0rd"),
            code: distinctive("C0de"),
            // RFC 7636: 43 to 128 unreserved characters.
            code_verifier: format!("Ver1fier-{random:016x}-{random:016x}-{random:016x}"),
            refresh_token: distinctive("R3fresh"),
            api_key: distinctive("K3y"),
            env_secret: distinctive("Env5ecret"),
            file_secret: distinctive("F1leSecret"),
            redis_password: format!("Red1sPw-{}", hex(&random_bytes(12))),
            encryption_key: {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(random_bytes(32))
            },
            planted_access: distinctive("Acc3ss"),
        }
    }
}

/// One audit: the secrets, the scanner looking for them, runners that
/// capture everything a process shows, and what was captured (scanned by
/// [`finish`](Audit::finish), so a needle learned late, a token or the
/// store's key, is looked for in every earlier output too).
struct Audit {
    s: Secrets,
    scanner: Scanner,
    /// `(what, text, labels allowed in it)`.
    outputs: Mutex<Vec<(String, String, &'static [&'static str])>>,
}

impl Audit {
    fn new() -> Self {
        let s = Secrets::new();
        let scanner = Scanner::new();
        for (label, value) in [
            ("client secret", &s.client_secret),
            ("password", &s.password),
            ("code", &s.code),
            ("code verifier", &s.code_verifier),
            ("refresh token", &s.refresh_token),
            ("api key", &s.api_key),
            ("client secret from the environment", &s.env_secret),
            ("client secret from a file", &s.file_secret),
            ("redis password", &s.redis_password),
            ("encryption key", &s.encryption_key),
            ("planted access token", &s.planted_access),
        ] {
            scanner.secret(label, value);
        }
        for vendor in Vendor::ALL {
            let creds = vendor.credentials();
            scanner.basic("client secret", creds.client_id(), &s.client_secret);
            // The emulators' own test credentials, in the working configs.
            if let Some(secret) = creds.client_secret() {
                scanner.basic("test client secret", creds.client_id(), secret);
            }
        }
        scanner.basic("client secret", "svc-audit", &s.client_secret);
        scanner.basic("password", "Administrator", &s.password);
        scanner.secret("private key", PRIVATE_KEY_PEM.trim());
        for line in PRIVATE_KEY_PEM.lines().filter(|l| !l.starts_with("-----") && l.len() > 16) {
            scanner.exact("private key line", line);
        }
        Self { s, scanner, outputs: Mutex::default() }
    }

    /// Keeps `text` (shown as `what`) for the scan; `allowed` labels may
    /// show in it.
    fn capture(&self, what: &str, text: &str, allowed: &'static [&'static str]) {
        self.outputs.lock().unwrap().push((what.to_owned(), text.to_owned(), allowed));
    }

    /// Looks for the file store's naming key in `dir` (hex, base64) and its
    /// entries' names, when there are any.
    fn learn_file_store(&self, dir: &Path) {
        use base64::Engine as _;
        let Ok(key) = std::fs::read(dir.join("key")) else { return };
        self.scanner.exact("file store key", &hex(&key));
        self.scanner
            .exact("file store key", &base64::engine::general_purpose::STANDARD.encode(&key));
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
                self.scanner.exact("file store entry name", &stem);
            }
        }
    }

    /// Scans everything captured, then fails with every finding, or when
    /// fewer than `min_outputs` outputs were captured.
    #[track_caller]
    fn finish(&self, min_outputs: usize) {
        let outputs = self.outputs.lock().unwrap();
        for (what, text, allowed) in outputs.iter() {
            self.scanner.check_except(what, text, allowed);
        }
        self.scanner.assert_clean(min_outputs);
    }

    /// `tokensmith -vvv --config <config> ARGS…` with `RUST_BACKTRACE=1`
    /// and [`SECRET_VAR`] set.
    fn command(&self, env: &TestEnv, verbose: bool, args: &[&str]) -> Command {
        let mut cmd = env.command();
        cmd.env("RUST_BACKTRACE", "1").env(SECRET_VAR, &self.s.env_secret);
        if verbose {
            cmd.arg("-vvv");
        }
        cmd.arg("--config").arg(env.config_path()).args(args);
        cmd
    }

    /// Runs `tokensmith -vvv ARGS…` (bounded: a run that does not end in
    /// 30 s is killed and fails the test) and scans what it shows.
    #[track_caller]
    fn run(&self, env: &TestEnv, what: &str, args: &[&str]) -> Run {
        self.run_with(env, what, true, args)
    }

    #[track_caller]
    fn run_with(&self, env: &TestEnv, what: &str, verbose: bool, args: &[&str]) -> Run {
        let run = bounded(self.command(env, verbose, args));
        self.scan_run(&format!("{what} ({})", args.join(" ")), args, &run);
        run
    }

    /// Scans a run of `tokensmith ARGS…`: an access token may show only on
    /// the stdout of `token` and `header` (learned from it, and looked for
    /// everywhere else from then on); stderr shows nothing, and no panic.
    #[track_caller]
    fn scan_run(&self, what: &str, args: &[&str], run: &Run) {
        let prints_tokens = matches!(args.first(), Some(&("token" | "header")));
        if prints_tokens && !run.stdout.trim().is_empty() {
            self.learn_token(args, &run.stdout);
        }
        assert!(!run.stderr.contains("panicked"), "{what}: a panic: {run:#?}");
        let allowed: &'static [&'static str] = if prints_tokens { &[ACCESS] } else { &[] };
        self.capture(&format!("{what}: stdout"), &run.stdout, allowed);
        self.capture(&format!("{what}: stderr"), &run.stderr, &[]);
    }

    /// Looks for the access token `token`/`header` printed from now on.
    fn learn_token(&self, args: &[&str], stdout: &str) {
        let stdout = stdout.trim();
        let token = if args.contains(&"--json") {
            let json: serde_json::Value = serde_json::from_str(stdout).unwrap();
            json["access_token"].as_str().unwrap().to_owned()
        } else if args[0] == "header" {
            stdout.rsplit([' ', '=']).next().unwrap().to_owned()
        } else {
            stdout.to_owned()
        };
        // The custom vendor emulator's tokens (`token-1`) are too short to
        // look for; every other emulator's are long and random.
        if token.len() >= 16 {
            self.scanner.exact(ACCESS, &token);
        }
    }
}

/// Runs `cmd` to its end, at most 30 s (then kills it and fails).
#[track_caller]
fn bounded(mut cmd: Command) -> Run {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let child = child.unwrap();
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let Ok(output) = waited.recv_timeout(Duration::from_secs(30)) else {
        if let Some(pid) = rustix::process::Pid::from_raw(pid.cast_signed()) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        panic!("{cmd:?} did not end within 30 s");
    };
    Run::from(output.unwrap())
}

// ---------------------------------------------------------------------------
// The configs

/// A Deyel table for `emulator` with `secret` (a TOML value) as its client
/// secret.
fn deyel_with(emulator: &Emulator, name: &str, secret: &str) -> String {
    let good = emulator.config_snippet(name);
    let theirs = toml_str(emulator.credentials().client_secret().unwrap());
    assert!(good.contains(&theirs), "{good}");
    good.replace(&theirs, secret)
}

/// A `refresh_token_store` line for a file in `dir`.
fn refresh_store(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.refresh"));
    format!("refresh_token_store = {{ file = {} }}\n", toml_str(&path.display().to_string()))
}

/// A custom vendor with the audit's client secret and api key: the
/// description the custom emulator serves (its `token_url` replaced later).
fn custom_table(s: &Secrets, name: &str, token_url: &str) -> String {
    format!(
        "[providers.{name}]\nkind = \"custom\"\ntoken_url = {}\nclient_id = \"svc-audit\"\n\
         client_secret = {}\nsecrets = {{ api_key = {} }}\n\
         [providers.{name}.request]\nbody = \"json\"\n\
         auth = {{ type = \"body\", id_field = \"clientId\", secret_field = \"clientSecret\" }}\n\
         fields = {{ key = \"{{api_key}}\" }}\n\
         [providers.{name}.response]\ntoken = \"/access_token\"\nexpires_in = \"/expires_in\"\n\
         error_code = \"/error\"\nerror_message = \"/error_description\"\n",
        toml_str(token_url),
        toml_str(&s.client_secret),
        toml_str(&s.api_key)
    )
}

/// Text echoing the audit's secrets in every spelling, as a careless
/// server's error page does.
fn echo(s: &Secrets) -> String {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("APIUSER:{}", s.client_secret));
    format!(
        "raw {} form client_secret={} json \"{}\" Authorization: Basic {basic}; password={} code={}",
        s.client_secret,
        tokensmith_testkit::leak::form_encoded(&s.client_secret),
        json_escaped(&s.client_secret),
        s.password,
        s.code,
    )
}

/// The main config: one provider per error path (each loads; each fails
/// when asked for a token, with the exit code given) and two that work.
struct World {
    config: String,
    /// `(provider, exit code of its first `token` run)`.
    providers: Vec<(&'static str, i32)>,
    _emulators: Vec<Emulator>,
    _custom: tokensmith_testkit::CustomEmulator,
}

#[allow(clippy::too_many_lines)] // one table of cases
fn world(env: &TestEnv, s: &Secrets) -> World {
    let good = env.emulator(Vendor::Deyel);
    let soti = env.emulator(Vendor::SotiConnect);
    let configapi = env.emulator(Vendor::ConfigApi);
    let oauth2 = env.emulator(Vendor::OAuth2);
    let echo400 = env.emulator(Vendor::Deyel);
    let html500 = env.emulator(Vendor::Deyel);
    let truncated = env.emulator(Vendor::Deyel);
    let slow = env.emulator(Vendor::SotiConnect);
    let json_echo = json_escaped(&echo(s));
    echo400.set_fault(Fault::Custom {
        status: 400,
        content_type: "application/json".to_owned(),
        body: format!(r#"{{"error":"invalid_client","error_description":"{json_echo}"}}"#),
    });
    html500.set_fault(Fault::Custom {
        status: 500,
        content_type: "text/html".to_owned(),
        body: format!("<html><body><pre>{}</pre></body></html>", echo(s)),
    });
    truncated.set_fault(Fault::Custom {
        status: 200,
        content_type: "application/json".to_owned(),
        body: format!(
            r#"{{"access_token":"{}","refresh_token":"{}","echo":"{json_echo}","expires_in":"#,
            json_escaped(&s.planted_access),
            json_escaped(&s.refresh_token)
        ),
    });
    slow.set_fault(Fault::NeverAnswer);
    let custom = env.custom_emulator(&custom_table(s, "custom", "http://127.0.0.1/token"));
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = env.dir();
    let secret_file = dir.join("client-secret.txt");
    std::fs::write(&secret_file, &s.file_secret).unwrap();
    let cs = toml_str(&s.client_secret);
    let client_credentials = "grant = \"client_credentials\"\n";
    let oauth2_with = |name: &str, grant: &str| {
        let table = oauth2.config_snippet(name).replace(client_credentials, grant);
        assert!(table.contains(grant), "{table}");
        table
    };
    let soti_password = format!("password = {}\n", toml_str(&s.password));
    // A rotated refresh token that cannot be saved: a store path whose
    // temporary file name is too long (root included).
    let real_refresh = oauth2.issue_refresh_token();
    let unsaved_store = dir.join("r".repeat(240));
    let tables = [
        deyel_with(&good, "good", &toml_str(good.credentials().client_secret().unwrap())),
        custom_table(s, "custom", &custom.token_url()),
        soti.config_snippet("refused-soti")
            .replace(&toml_str("Application1Password"), &cs)
            .replace("password = \"1\"\n", &soti_password),
        configapi
            .config_snippet("refused-configapi")
            .replace(&toml_str(configapi.credentials().client_secret().unwrap()), &cs),
        oauth2
            .config_snippet("refused-oauth2")
            .replace(&toml_str(oauth2.credentials().client_secret().unwrap()), &cs),
        deyel_with(&good, "env", &format!("{{ env = \"{SECRET_VAR}\" }}")),
        deyel_with(
            &good,
            "file",
            &format!("{{ file = {} }}", toml_str(&secret_file.display().to_string())),
        ),
        oauth2.config_snippet("jwt").replace(
            &format!(
                "client_secret = {}\n",
                toml_str(oauth2.credentials().client_secret().unwrap())
            ),
            &format!("private_key = {}\n", toml_str(PRIVATE_KEY_PEM)),
        ),
        oauth2_with(
            "code",
            &format!(
                "grant = \"authorization_code\"\ncode = {}\ncode_verifier = {}\n\
                 redirect_uri = \"https://app.example.com/callback\"\n{}",
                toml_str(&s.code),
                toml_str(&s.code_verifier),
                refresh_store(dir, "code")
            ),
        ),
        oauth2_with(
            "refresh",
            &format!(
                "grant = \"refresh_token\"\nrefresh_token = {}\n{}",
                toml_str(&s.refresh_token),
                refresh_store(dir, "refresh")
            ),
        ),
        oauth2_with(
            "unsaved",
            &format!(
                "grant = \"refresh_token\"\nrefresh_token = {}\n\
                 refresh_token_store = {{ file = {} }}\n",
                toml_str(&real_refresh),
                toml_str(&unsaved_store.display().to_string())
            ),
        ),
        deyel_with(&echo400, "echo400", &cs),
        deyel_with(&html500, "html500", &cs),
        deyel_with(&truncated, "truncated", &cs),
        deyel_with(&good, "down", &cs).replace(&good.token_url(), &format!("http://{down}/token")),
        format!(
            "{}timeout = \"1s\"\n",
            soti.config_snippet("timeout")
                .replace(&soti.token_url(), &slow.token_url())
                .replace(&toml_str("Application1Password"), &cs)
        ),
    ];
    let config = tables.join("\n");
    for needle in ["private_key", "{ env =", "{ file =", "code_verifier", &down.to_string()] {
        assert!(config.contains(needle), "{needle}");
    }
    World {
        config,
        providers: vec![
            ("good", 0),
            ("custom", 0),
            ("refused-soti", 3),
            ("refused-configapi", 3),
            ("refused-oauth2", 3),
            ("env", 3),
            ("file", 3),
            ("jwt", 3),
            ("code", 3),
            ("refresh", 3),
            ("unsaved", 4),
            ("echo400", 3),
            ("html500", 4),
            ("truncated", 4),
            ("down", 4),
            ("timeout", 4),
        ],
        _emulators: vec![good, soti, configapi, oauth2, echo400, html500, truncated, slow],
        _custom: custom,
    }
}

/// Configs that do not load, each holding the audit's secrets.
fn broken_configs(s: &Secrets, redis_url: &str) -> Vec<(&'static str, String)> {
    let cs = toml_str(&s.client_secret);
    let deyel = |extra: &str| {
        format!(
            "[providers.p]\nkind = \"deyel\"\ntoken_url = \"https://deyel.example.com/token\"\n\
             client_id = \"APIUSER\"\n{extra}"
        )
    };
    let secret_line = format!("client_secret = {cs}\n");
    let unterminated = format!("client_secret = {}\n", &cs[..cs.len() - 1]);
    let key = toml_str(&s.encryption_key);
    let url = toml_str(redis_url);
    vec![
        ("unknown kind", deyel(&secret_line).replace("\"deyel\"", "\"okta\"")),
        ("a secret in a misspelt field", deyel(&format!("client_secrett = {cs}\n"))),
        ("a secret of the wrong type", deyel(&format!("client_secret = [{cs}]\n"))),
        ("a secret on a line that is not TOML", deyel(&unterminated)),
        ("a secret without quotes", deyel(&format!("client_secret = {}\n", s.client_secret))),
        ("a secret given twice", deyel(&format!("{secret_line}client_secret = {cs}\n"))),
        (
            "a password on a kind without one",
            deyel(&format!("{secret_line}password = {}\n", toml_str(&s.password))),
        ),
        ("a secret at the top level", format!("client_secret = {cs}\n{}", deyel(&secret_line))),
        (
            "a missing secret file",
            deyel("client_secret = { file = \"/nonexistent/tokensmith-audit\" }\n"),
        ),
        (
            "a single-use code without a refresh token store",
            format!(
                "[providers.p]\nkind = \"oauth2\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
                 client_id = \"app\"\n{secret_line}grant = \"authorization_code\"\ncode = {}\n\
                 redirect_uri = \"https://app.example.com/cb\"\n",
                toml_str(&s.code)
            ),
        ),
        (
            "a broken private key",
            format!(
                "[providers.p]\nkind = \"oauth2\"\ntoken_url = \"https://id.example.com/token\"\n\
                 client_id = \"app\"\nprivate_key = {}\n",
                toml_str(&PRIVATE_KEY_PEM.replacen('M', "#", 1))
            ),
        ),
        (
            "a custom vendor with a bad pointer",
            custom_table(s, "p", "https://api.example.com/login")
                .replace("token = \"/access_token\"", "token = \"access_token\""),
        ),
        (
            "a redis store without an encryption key",
            format!("[store]\nkind = \"redis\"\nurl = {url}\n\n{}", deyel(&secret_line)),
        ),
        (
            "a redis store with a key that is not 32 bytes",
            format!(
                "[store]\nkind = \"redis\"\nurl = {url}\nencryption_key = {}\n\n{}",
                toml_str(&s.client_secret),
                deyel(&secret_line)
            ),
        ),
        (
            "a redis store with a URL of another scheme",
            format!(
                "[store]\nkind = \"redis\"\nurl = {}\nencryption_key = {key}\n\n{}",
                toml_str(&redis_url.replace("redis://", "https://")),
                deyel(&secret_line)
            ),
        ),
        (
            "a file store with redis fields",
            format!(
                "[store]\nkind = \"file\"\nurl = {url}\nencryption_key = {key}\n\n{}",
                deyel(&secret_line)
            ),
        ),
    ]
}

/// `[store]` of Redis at `url` under the audit's key.
fn redis_store(s: &Secrets, url: &str, key: Option<&str>) -> String {
    format!(
        "[store]\nkind = \"redis\"\nurl = {}\nencryption_key = {}\nprefix = \"audit\"\nlock_timeout = \"2s\"\n",
        toml_str(url),
        toml_str(key.unwrap_or(&s.encryption_key))
    )
}

/// A `redis-server` whose user `audit` has the audit's password; its URL.
fn redis_server(s: &Secrets) -> (RedisServer, String) {
    let server = RedisServer::start();
    let acl =
        ["ACL", "SETUSER", "audit", "on", &format!(">{}", s.redis_password), "~*", "&*", "+@all"];
    assert_eq!(server.command(&acl).unwrap(), "+OK");
    let url = format!("redis://audit:{}@127.0.0.1:{}", s.redis_password, server.port());
    (server, url)
}

// ---------------------------------------------------------------------------
// The CLI

/// The variants of a command that obtains a token.
const TOKEN_COMMANDS: [&[&str]; 5] = [
    &["token"],
    &["token", "--json"],
    &["header"],
    &["header", "--line"],
    &["token", "--no-cache"],
];

#[test]
fn no_cli_command_shows_a_secret_on_any_path_at_trace_level() {
    let audit = Audit::new();
    let env = TestEnv::new();
    let world = world(&env, &audit.s);
    env.write_config(&world.config);
    let mut runs = 0;
    for (name, code) in &world.providers {
        for (i, variant) in TOKEN_COMMANDS.iter().enumerate() {
            let mut args = variant.to_vec();
            args.insert(1, name);
            let run = audit.run(&env, name, &args);
            runs += 1;
            if *name == "unsaved" && i > 0 {
                // The first run's token is cached; its refresh token was
                // spent and not saved.
                assert!([0, 3, 4].contains(&run.code), "{name}: {run:#?}");
                continue;
            }
            assert_eq!(run.code, *code, "{name} {args:?}: {run:#?}");
            if *code == 0 {
                assert!(!run.stdout.is_empty(), "{run:#?}");
            } else if *name != "unsaved" {
                assert!(run.stdout.is_empty(), "{name}: {run:#?}");
                if args.contains(&"--json") {
                    let json: serde_json::Value =
                        serde_json::from_str(run.stderr.lines().last().unwrap()).unwrap();
                    assert_eq!(json["provider"], *name, "{json}");
                }
            }
        }
    }
    // The same without -v: the one stderr line (and the store's warnings).
    for (name, _) in &world.providers {
        audit.run_with(&env, name, false, &["token", name]);
        runs += 1;
    }
    audit.learn_file_store(&env.cache_dir());
    for args in [&["check"][..], &["list"], &["cache", "clear"], &["token", "nope"]] {
        let run = audit.run(&env, "the config", args);
        assert_eq!(run.code, if args[0] == "token" { 2 } else { 0 }, "{run:#?}");
        runs += 1;
    }
    assert!(env.cache_files().is_empty(), "cleared");

    // Configs that do not load: every command that reads one.
    let redis_url = format!("redis://audit:{}@127.0.0.1:9", audit.s.redis_password);
    for (what, config) in broken_configs(&audit.s, &redis_url) {
        env.write_config(&config);
        let socket = env.dir().join("broken.sock");
        let socket = socket.to_str().unwrap();
        for args in [
            &["token", "p"][..],
            &["token", "p", "--json"],
            &["header", "p"],
            &["check"],
            &["list"],
            &["cache", "clear"],
            &["serve", "--socket", socket],
        ] {
            let run = audit.run(&env, what, args);
            runs += 1;
            let expected: &[i32] = match args[0] {
                // A single-use grant is valid for the library (`check`, `list`).
                "check" | "list" | "cache" => &[0, 2],
                _ => &[2],
            };
            assert!(expected.contains(&run.code), "{what} {args:?}: {run:#?}");
        }
    }
    // `mock-server` with a described vendor holding the secrets, and a
    // description that does not load.
    let describe = env.dir().join("describe.toml");
    std::fs::write(&describe, custom_table(&audit.s, "vendor", "http://127.0.0.1/login")).unwrap();
    let describe = describe.to_str().unwrap();
    audit.mock_server(&env, describe);
    let broken = env.dir().join("broken-describe.toml");
    let broken_table = custom_table(&audit.s, "vendor", "http://127.0.0.1/login")
        .replace("token = \"/access_token\"", "token = \"access_token\"");
    std::fs::write(&broken, broken_table).unwrap();
    let run = audit.run(
        &env,
        "mock-server",
        &["mock-server", "--vendor", "custom", "--describe", broken.to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    let run = audit.run(&env, "demo", &["demo"]);
    assert_eq!(run.code, 0, "{run:#?}");
    runs += 3;
    audit.finish(2 * runs);
}

impl Audit {
    /// Runs `mock-server --vendor custom --describe FILE` until its banner
    /// is out, stops it with SIGINT and scans what it showed.
    fn mock_server(&self, env: &TestEnv, describe: &str) {
        let args = ["mock-server", "--vendor", "custom", "--describe", describe];
        let mut cmd = self.command(env, true, &args);
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        while !banner.contains("Press Ctrl-C") {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            assert!(n > 0, "mock-server ended early: {banner}");
            banner.push_str(&line);
        }
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let output = child.wait_with_output().unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: format!("{banner}{rest}"),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert_eq!(run.code, 0, "{run:#?}");
        self.scan_run("mock-server", &args, &run);
    }
}

#[test]
fn no_cli_run_over_a_redis_store_shows_a_secret_when_redis_works_breaks_or_is_down() {
    let audit = Audit::new();
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let (mut server, url) = redis_server(&audit.s);
    let good = deyel.config_snippet("good");
    let refused = deyel_with(&deyel, "refused", &toml_str(&audit.s.client_secret));
    let shared = format!("{}\n{good}\n{refused}", redis_store(&audit.s, &url, None));
    env.write_config(&shared);
    for verbose in [true, false] {
        let run = audit.run_with(&env, "redis", verbose, &["token", "good", "--json"]);
        assert_eq!(run.code, 0, "{run:#?}");
        let run = audit.run_with(&env, "redis", verbose, &["token", "refused"]);
        assert_eq!(run.code, 3, "{run:#?}");
    }
    let keys = server.dump().unwrap();
    assert!(!keys.is_empty());
    for (key, value) in &keys {
        audit.capture("a Redis key", &String::from_utf8_lossy(key), &[]);
        audit.capture("a Redis value", &String::from_utf8_lossy(value), &[]);
    }
    // A wrong password; another encryption key (the value does not open).
    let wrong_password = url.replace("Red1sPw-", "Wr0ngPw-");
    let other_key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(random_bytes(32))
    };
    audit.scanner.secret("the other encryption key", &other_key);
    for config in [
        format!("{}\n{good}", redis_store(&audit.s, &wrong_password, None)),
        format!("{}\n{good}", redis_store(&audit.s, &url, Some(&other_key))),
    ] {
        env.write_config(&config);
        for verbose in [true, false] {
            let run = audit.run_with(&env, "redis broken", verbose, &["token", "good"]);
            assert_eq!(run.code, 0, "{run:#?}");
        }
    }
    // A server that quotes back what it is sent, the value (a plaintext
    // token with `encrypt = false`) and the password: nothing of it shows.
    let quoting = QuotingRedis::start(true);
    let quoting_url =
        quoting.url().replace("redis://", &format!("redis://audit:{}@", audit.s.redis_password));
    for store in [
        redis_store(&audit.s, &quoting_url, None),
        format!("[store]\nkind = \"redis\"\nurl = {}\nencrypt = false\n", toml_str(&quoting_url)),
    ] {
        env.write_config(&format!("{store}\n{good}"));
        for verbose in [true, false] {
            let run = audit.run_with(&env, "redis quoting", verbose, &["token", "good", "--json"]);
            assert_eq!(run.code, 0, "{run:#?}");
            assert!(run.stderr.contains("redis store: response error (ERR"), "{run:#?}");
        }
    }
    // Tampered values.
    for (key, _) in server.dump().unwrap() {
        let key = String::from_utf8(key).unwrap();
        server.command(&["SETRANGE", &key, "20", "tampered"]).unwrap();
    }
    env.write_config(&shared);
    let run = audit.run(&env, "redis tampered", &["header", "good"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let run = audit.run(&env, "redis", &["cache", "clear"]);
    assert_eq!(run.code, 0, "{run:#?}");
    // Redis down: tokens still come, the warnings say why, `cache clear` fails.
    server.kill();
    for verbose in [true, false] {
        let run = audit.run_with(&env, "redis down", verbose, &["token", "good"]);
        assert_eq!(run.code, 0, "{run:#?}");
        assert!(run.stderr.contains("redis"), "{run:#?}");
        let run = audit.run_with(&env, "redis down", verbose, &["token", "refused", "--json"]);
        assert_eq!(run.code, 3, "{run:#?}");
        let run = audit.run_with(&env, "redis down", verbose, &["cache", "clear"]);
        assert_ne!(run.code, 0, "{run:#?}");
    }
    audit.finish(30);
}

/// The secrets of the exit-code cases (`exit_codes.rs`), looked for too.
fn exit_code_secrets(audit: &Audit) {
    use crate::exit_codes::CASE_SECRET;
    use crate::support::WRONG_SECRET;
    for secret in [WRONG_SECRET, CASE_SECRET, "pw-Kq2-secret"] {
        audit.scanner.secret("an exit-code case's secret", secret);
    }
}

#[test]
fn no_exit_code_case_shows_a_secret_at_trace_level() {
    let audit = Audit::new();
    exit_code_secrets(&audit);
    let env = TestEnv::new();
    let cases = crate::exit_codes::failing_cases(&env);
    for case in &cases {
        env.write_config(&case.config);
        let run = audit.run(&env, case.what, &case.args);
        assert_eq!(run.code, case.code, "{}: {run:#?}", case.what);
        assert!(run.stdout.is_empty(), "{}: {run:#?}", case.what);
    }
    audit.finish(2 * cases.len());
}

#[test]
fn a_success_at_trace_level_shows_neither_secrets_nor_the_token_nor_the_cache_names() {
    let audit = Audit::new();
    exit_code_secrets(&audit);
    let env = TestEnv::new();
    let emulators: Vec<_> = Vendor::ALL.iter().map(|v| env.emulator(*v)).collect();
    let config: Vec<String> =
        emulators.iter().map(|e| e.config_snippet(e.vendor().kind())).collect();
    env.write_config(&config.join("\n"));
    for vendor in Vendor::ALL {
        for round in ["fetch", "cache hit"] {
            let run = audit.run(&env, round, &["token", vendor.kind()]);
            assert_eq!(run.code, 0, "{run:#?}");
            assert!(!run.stderr.is_empty(), "-vvv logs something");
        }
    }
    assert_eq!(env.cache_files().len(), Vendor::ALL.len());
    // The cache's key and file names (HMACs keyed on the secrets): not for
    // logs people paste.
    audit.learn_file_store(&env.cache_dir());
    audit.finish(4 * Vendor::ALL.len());
}

// ---------------------------------------------------------------------------
// The agent

/// A request to the agent: the status expected, method, path, headers,
/// body.
type AgentRequest<'a> = (u16, Method, &'a str, &'a [(&'a str, &'a str)], &'a str);

/// What the agent answered, and whether its body may hold a token.
fn scan_answer(audit: &Audit, what: &str, answer: &Answer, may_hold_token: bool) {
    if may_hold_token && answer.status == 200 {
        let token = if answer.content_type == "application/json" {
            answer.json()["access_token"].as_str().unwrap().to_owned()
        } else {
            answer.body.rsplit([' ', '=']).next().unwrap().to_owned()
        };
        if token.len() >= 16 {
            audit.scanner.exact(ACCESS, &token);
        }
    }
    let allowed: &'static [&'static str] =
        if may_hold_token && answer.status == 200 { &[ACCESS] } else { &[] };
    audit.capture(&format!("agent: {what}: body"), &answer.body, allowed);
    audit.capture(&format!("agent: {what}: headers"), &format!("{:?}", answer.headers), &[]);
}

#[test]
fn no_agent_response_metric_or_log_shows_a_secret() {
    let audit = Audit::new();
    let env = TestEnv::new();
    let world = world(&env, &audit.s);
    let (mut redis, url) = redis_server(&audit.s);
    // `unsaved`: the agent keeps the rotated refresh token in memory (no
    // run ends), so it is not a failure here.
    env.write_config(&format!("{}\n{}", redis_store(&audit.s, &url, None), world.config));
    let socket = env.dir().join("agent.sock");
    let mut cmd = env.command();
    cmd.env("RUST_BACKTRACE", "1").env(SECRET_VAR, &audit.s.env_secret);
    let mut served = Served::start_with(&env, cmd, "-vvv", &["--socket", socket.to_str().unwrap()]);
    let rt = client_rt();
    let t = &served.target;
    let ok = [("Tokensmith-Request", "1")];
    let ask = |method: Method, path: &str, headers: &[(&str, &str)], body: &str| {
        call(&rt, t, method, path, headers, body)
    };
    let mut answers = 0;
    for (name, code) in &world.providers {
        for endpoint in ["token", "header"] {
            let path = format!("/v1/{endpoint}/{name}");
            let answer = ask(Method::GET, &path, &ok, "");
            let expected = match code {
                0 => 200,
                3 => 502,
                _ => 503,
            };
            if *name != "unsaved" {
                assert_eq!(answer.status, expected, "{path}: {answer:#?}");
            }
            scan_answer(&audit, &path, &answer, true);
            answers += 1;
        }
    }
    // The agent's own refusals, on the endpoints that would return a token.
    let good = ask(Method::GET, "/v1/token/good", &ok, "").json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let planted = audit.s.planted_access.clone();
    let oversized = format!("{good}{}", "x".repeat(17 * 1024));
    let origin = [ok[0], ("Origin", "https://evil.example")];
    let forwarded = [ok[0], ("X-Forwarded-For", "10.1.2.3")];
    let requests: [AgentRequest<'_>; 16] = [
        (404, Method::GET, "/v1/token/nope", &ok, ""),
        (404, Method::GET, "/v1/header/nope", &ok, ""),
        (404, Method::POST, "/v1/invalidate/nope", &ok, &good),
        (404, Method::GET, "/v2/token/good", &ok, ""),
        (403, Method::GET, "/v1/token/good", &[], ""),
        (403, Method::GET, "/v1/header/good", &origin, ""),
        (403, Method::GET, "/v1/token/good", &forwarded, ""),
        (403, Method::POST, "/v1/invalidate/good", &[], &good),
        (405, Method::GET, "/v1/invalidate/good", &ok, ""),
        (405, Method::POST, "/v1/token/good", &ok, &good),
        (400, Method::POST, "/v1/invalidate/good", &ok, ""),
        (413, Method::POST, "/v1/invalidate/good", &ok, &oversized),
        (204, Method::POST, "/v1/invalidate/good", &ok, &planted),
        (204, Method::POST, "/v1/invalidate/good", &ok, &good),
        (200, Method::GET, "/v1/providers", &ok, ""),
        (200, Method::GET, "/healthz", &[], ""),
    ];
    for (status, method, path, headers, body) in requests {
        let what = format!("{method} {path} ({status})");
        let answer = ask(method, path, headers, body);
        assert_eq!(answer.status, status, "{what}: {answer:#?}");
        scan_answer(&audit, &what, &answer, false);
        answers += 1;
    }
    // Redis down: the agent fetches for itself and logs why.
    redis.kill();
    let fresh = ask(Method::GET, "/v1/token/good", &ok, "");
    assert_eq!(fresh.status, 200, "{fresh:#?}");
    scan_answer(&audit, "/v1/token/good with Redis down", &fresh, true);
    let metrics = ask(Method::GET, "/metrics", &ok, "");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("tokensmith_agent_requests_total"), "{}", metrics.body);
    scan_answer(&audit, "/metrics", &metrics, false);
    served.signal(rustix::process::Signal::TERM);
    assert_eq!(served.wait_exit(), Some(0), "{}", served.stderr());
    let log = served.stderr();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("keeping the token warm failed"), "{log}");
    assert!(log.contains("redis"), "{log}");
    audit.capture("agent: the -vvv log", &log, &[]);
    audit.learn_file_store(&env.cache_dir());
    audit.finish(2 * answers);
}

// ---------------------------------------------------------------------------
// Every channel is really scanned

#[test]
fn a_token_on_stdout_a_secret_on_stderr_and_in_an_agent_answer_and_log_are_reported() {
    let audit = Audit::new();
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&deyel.config_snippet("good"));
    // stdout: the token `token` prints, scanned as if another command had.
    let printed = audit.run(&env, "planted", &["token", "good"]);
    assert_eq!(printed.code, 0);
    let found = audit.scanner.scan("stdout of a command that prints no token", &printed.stdout);
    assert!(found.iter().any(|f| f.contains("shows the access token")), "{found:#?}");
    // stderr: clap quotes an unexpected argument, here a secret.
    let run = bounded(audit.command(&env, true, &["token", "good", &audit.s.client_secret]));
    assert_eq!(run.code, 2, "{run:#?}");
    let found = audit.scanner.scan("stderr", &run.stderr);
    assert!(found.iter().any(|f| f.contains("shows the client secret")), "{found:#?}");
    // The agent: a token in an answer that may not hold one, and its log.
    let socket = env.dir().join("planted.sock");
    let mut served =
        Served::start_with(&env, env.command(), "-vvv", &["--socket", socket.to_str().unwrap()]);
    let rt = client_rt();
    let answer = call(
        &rt,
        &served.target,
        Method::GET,
        "/v1/header/good",
        &[("Tokensmith-Request", "1")],
        "",
    );
    assert_eq!(answer.status, 200);
    let found = audit.scanner.scan("an agent error answer", &answer.body);
    assert!(found.iter().any(|f| f.contains("shows the access token")), "{found:#?}");
    served.signal(rustix::process::Signal::TERM);
    served.wait_exit();
    let log = served.stderr();
    let Target::Unix(path) = &served.target else { unreachable!() };
    let logged = Scanner::new();
    logged.exact("socket path", path.to_str().unwrap());
    assert!(!logged.scan("the agent's log", &log).is_empty(), "{log}");
    // A scan of these fails the audit.
    audit.capture("stdout of a command that prints no token", &printed.stdout, &[]);
    audit.capture("stderr", &run.stderr, &[]);
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| audit.finish(1)));
    let report = report.unwrap_err();
    let report = report.downcast_ref::<String>().unwrap();
    assert!(
        report.contains("stdout of a command that prints no token: shows the access token"),
        "{report}"
    );
    assert!(report.contains("stderr: shows the client secret"), "{report}");
}

/// Set in the child process of
/// [`a_panic_with_a_secret_in_a_child_process_is_reported_from_its_stderr`]:
/// the secret it panics with.
const PANIC_VAR: &str = "TOKENSMITH_AUDIT_PANIC_WITH";

#[test]
fn a_panic_with_a_secret_in_a_child_process_is_reported_from_its_stderr() {
    if let Ok(secret) = std::env::var(PANIC_VAR) {
        // The child (this test run again by itself): panics as a bug would,
        // unwrapping an error that holds a secret.
        refuse(&secret).unwrap();
    }
    let audit = Audit::new();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "leak_audit::a_panic_with_a_secret_in_a_child_process_is_reported_from_its_stderr",
        "--exact",
        "--nocapture",
    ])
    .env("RUST_BACKTRACE", "1")
    .env(PANIC_VAR, &audit.s.refresh_token);
    let run = bounded(cmd);
    assert_ne!(run.code, 0, "{run:#?}");
    assert!(run.stderr.contains("panicked"), "{run:#?}");
    assert!(run.stderr.contains("stack backtrace"), "RUST_BACKTRACE=1: {run:#?}");
    let found = audit.scanner.scan("a panic on stderr", &run.stderr);
    assert!(found.iter().any(|f| f.contains("shows the refresh token")), "{found:#?}");
}

/// An error holding `secret`, as a careless error type would.
fn refuse(secret: &str) -> Result<(), String> {
    Err(format!("the server refused refresh token {secret}"))
}
