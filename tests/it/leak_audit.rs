//! The secret-leak audit (issue 15), library half: every error path of every
//! adapter (soti, configapi, oauth2 in five shapes, deyel, custom in two),
//! the file token store and `decode_token`, the reqwest middleware and the
//! tower layer are driven against real servers on 127.0.0.1 with every log
//! line captured at TRACE, and no secret may show in any log line, error
//! `Display`/`Debug`/`{:#?}`/`error_line`, source chain, error body or
//! detail, or panic message. The CLI and agent half is
//! `crates/tokensmith-cli/tests/it/leak_audit.rs`.
//!
//! Each secret is distinctive (`S3cr3t-<random>…`, with characters that form
//! encoding and JSON escaping change) and searched in every spelling it
//! travels in: raw, form-urlencoded, JSON-escaped, base64, and base64 of the
//! Basic `id:secret` pair (raw and form-encoded). The scanner's self-test
//! (`the_scanner_reports_a_planted_leak_in_every_spelling`) shows it fails
//! on a planted leak.

use std::collections::hash_map::RandomState;
use std::fmt::{self, Write as _};
use std::hash::BuildHasher as _;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{Registry, StoreConfig, TokenError, decode_token, error_line};
use tokensmith_testkit::{Emulator, Fault, ResourceServer, Vendor};

// ---------------------------------------------------------------------------
// The secrets

/// A value no test elsewhere uses: `prefix` and 64 random bits.
fn distinctive(prefix: &str) -> String {
    let random = RandomState::new().hash_one(prefix);
    // `+ / & = "` change under form encoding, JSON escaping or both.
    format!("{prefix}-{random:016x}+/&=\"")
}

/// The secrets the audited configs hold.
struct Secrets {
    client_secret: String,
    password: String,
    code: String,
    code_verifier: String,
    refresh_token: String,
    api_key: String,
    /// An access token a hostile server plants in a broken response.
    planted_access: String,
}

static SECRETS: LazyLock<Secrets> = LazyLock::new(|| Secrets {
    client_secret: distinctive("S3cr3t"),
    password: distinctive("Pa55w0rd"),
    code: distinctive("C0de"),
    // RFC 7636: 43 to 128 unreserved characters.
    code_verifier: {
        let random = RandomState::new().hash_one("verifier");
        format!("Ver1fier-{random:016x}-{random:016x}-{random:016x}")
    },
    refresh_token: distinctive("R3fresh"),
    api_key: distinctive("K3y"),
    planted_access: distinctive("Acc3ss"),
});

/// The `private_key_jwt` key (a test fixture of the oauth2 crate).
const PRIVATE_KEY_PEM: &str =
    include_str!("../../crates/tokensmith-oauth2/testdata/ec-p256-pkcs8.pem");

// ---------------------------------------------------------------------------
// The scanner

/// `value` form-urlencoded (`application/x-www-form-urlencoded`).
fn form(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `value` as it appears inside a JSON string.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::Value::from(value).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Every spelling of `value` the scanner searches for.
fn spellings(value: &str) -> Vec<String> {
    let mut all = vec![
        value.to_owned(),
        form(value),
        json_escaped(value),
        json_escaped(value).replace('/', "\\/"),
        STANDARD.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ];
    all.sort();
    all.dedup();
    all
}

/// The secrets to look for, each with a label, in every spelling.
#[derive(Default)]
pub(crate) struct Scanner {
    needles: Mutex<Vec<(String, String)>>,
}

impl Scanner {
    /// Looks for `value` in every spelling.
    pub(crate) fn secret(&self, label: &str, value: &str) {
        let mut needles = self.needles.lock().unwrap();
        for spelling in spellings(value) {
            needles.push((label.to_owned(), spelling));
        }
    }

    /// Looks for the Basic credentials of `id:secret` (raw and form-encoded
    /// halves, RFC 6749 §2.3.1) and for the secret itself.
    pub(crate) fn basic(&self, label: &str, id: &str, secret: &str) {
        self.secret(label, secret);
        let mut needles = self.needles.lock().unwrap();
        for pair in [format!("{id}:{secret}"), format!("{}:{}", form(id), form(secret))] {
            needles.push((format!("{label} (Basic)"), STANDARD.encode(pair)));
        }
    }

    /// Looks for exactly `value` (e.g. a PEM line), no other spelling.
    pub(crate) fn exact(&self, label: &str, value: &str) {
        self.needles.lock().unwrap().push((label.to_owned(), value.to_owned()));
    }

    /// One line per secret `text` shows.
    pub(crate) fn scan(&self, what: &str, text: &str) -> Vec<String> {
        self.needles
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, needle)| text.contains(needle.as_str()))
            .map(|(label, needle)| {
                let at = text.find(needle.as_str()).unwrap_or(0);
                let from = at.saturating_sub(60);
                let to = (at + needle.len() + 60).min(text.len());
                let around = String::from_utf8_lossy(&text.as_bytes()[from..to]);
                format!("{what}: shows the {label} as {needle:?} in …{around}…")
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The captured log

/// Every log line of this test binary, at TRACE.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide TRACE subscriber writing into [`LOG`] (once).
fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        .into_owned()
}

// ---------------------------------------------------------------------------
// The audit

/// What one audit test saw: the scanner, the findings, how much was checked.
pub(crate) struct Audit {
    pub(crate) scanner: Scanner,
    findings: Mutex<Vec<String>>,
    checked: AtomicUsize,
}

impl Audit {
    /// An audit of every secret in [`SECRETS`] and the private key, with
    /// logs captured.
    fn new() -> Arc<Self> {
        capture_logs();
        let audit =
            Self { scanner: Scanner::default(), findings: Mutex::default(), checked: 0.into() };
        let s = &*SECRETS;
        for (label, value) in [
            ("client secret", &s.client_secret),
            ("password", &s.password),
            ("code", &s.code),
            ("code verifier", &s.code_verifier),
            ("refresh token", &s.refresh_token),
            ("api key", &s.api_key),
            ("planted access token", &s.planted_access),
        ] {
            audit.scanner.secret(label, value);
        }
        for vendor in Vendor::ALL {
            let id = vendor.credentials().client_id();
            audit.scanner.basic("client secret", id, &s.client_secret);
        }
        audit.scanner.basic("client secret", "svc-audit", &s.client_secret);
        audit.scanner.basic("password", "audit-user", &s.password);
        audit.scanner.secret("private key", PRIVATE_KEY_PEM.trim());
        for line in PRIVATE_KEY_PEM.lines().filter(|l| !l.starts_with("-----") && l.len() > 16) {
            audit.scanner.exact("private key line", line);
        }
        Arc::new(audit)
    }

    /// Scans `text`, shown as `what`.
    pub(crate) fn text(&self, what: &str, text: &str) {
        self.checked.fetch_add(1, Ordering::Relaxed);
        let found = self.scanner.scan(what, text);
        self.findings.lock().unwrap().extend(found);
    }

    /// Scans `Display`, `{:?}`, `{:#?}`, `{:#}` and the source chain of `err`.
    pub(crate) fn error<E: std::error::Error>(&self, what: &str, err: &E) {
        self.text(what, &format!("{err} | {err:?} | {err:#?} | {err:#}"));
        let mut source = err.source();
        while let Some(s) = source {
            self.text(what, &format!("{s} | {s:?}"));
            source = s.source();
        }
    }

    /// Scans a `TokenError` everywhere it can show, and the panic message of
    /// unwrapping it.
    fn token_error(&self, what: &str, err: &TokenError) {
        self.error(what, err);
        self.text(what, &error_line(err));
        if let Some(body) = err.body() {
            self.text(what, &format!("{body} | {body:?}"));
        }
        if let Some(detail) = err.detail() {
            self.text(what, &format!("{detail} | {detail:?}"));
        }
        self.panic_of(what, Err::<(), _>(err.clone()));
    }

    /// Scans the panic message of `result.unwrap()`.
    fn panic_of<T, E: fmt::Debug>(&self, what: &str, result: Result<T, E>) {
        let payload = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _ = result.unwrap();
        }));
        if let Err(payload) = payload {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            assert!(message.contains("unwrap"), "{message}");
            self.text(&format!("{what} (panic)"), &message);
        }
    }

    /// Scans the whole captured log, then fails with every finding.
    #[track_caller]
    fn finish(&self, min_checks: usize) {
        let log = log_text();
        self.text("the TRACE log", &log);
        let checked = self.checked.load(Ordering::Relaxed);
        assert!(checked >= min_checks, "only {checked} texts checked");
        let findings = self.findings.lock().unwrap();
        assert!(findings.is_empty(), "{} leaks:\n{}", findings.len(), findings.join("\n"));
    }
}

// ---------------------------------------------------------------------------
// The scanner fails when it should

#[test]
fn the_scanner_reports_a_planted_leak_in_every_spelling() {
    let audit = Audit::new();
    let secret = &SECRETS.client_secret;
    let id = Vendor::Deyel.credentials().client_id();
    let planted = [
        format!("error: bad secret {secret}"),
        format!("body: client_secret={}&grant_type=x", form(secret)),
        format!(r#"{{"client_secret":"{}"}}"#, json_escaped(secret)),
        format!("Authorization: Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        format!("Authorization: Basic {}", STANDARD.encode(format!("{id}:{}", form(secret)))),
        format!("key line {}", PRIVATE_KEY_PEM.lines().nth(1).unwrap()),
    ];
    for text in &planted {
        assert!(!audit.scanner.scan("planted", text).is_empty(), "missed: {text}");
        audit.text("planted", text);
    }
    let clean = "provider \"api\": the token endpoint refused the client (401 invalid_client)";
    assert!(audit.scanner.scan("clean", clean).is_empty());
    // `finish` fails with a report naming every planted spelling.
    let report = std::panic::catch_unwind(AssertUnwindSafe(|| audit.finish(1))).unwrap_err();
    let report = report.downcast_ref::<String>().unwrap();
    let count: usize = report.split(' ').next().unwrap().parse().unwrap();
    assert!(count >= planted.len(), "{report}");
    assert!(report.contains("shows the client secret"), "{report}");
    assert!(report.contains("shows the private key line"), "{report}");
}

// ---------------------------------------------------------------------------
// Every adapter's error paths

/// One audited provider: its TOML table (for the token URL `{url}`), the
/// emulator it runs against, and what its request sends (echoed back).
struct Case {
    name: &'static str,
    vendor: Vendor,
    table: String,
    /// `(client id, secret)` pairs the request sends, echoed in every spelling.
    sent: Vec<(String, String)>,
}

fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[allow(clippy::too_many_lines)] // one table of cases
fn cases() -> Vec<Case> {
    let s = &*SECRETS;
    let cs = toml_str(&s.client_secret);
    let oauth2 = |name: &'static str, extra: &str, sent: Vec<(String, String)>| Case {
        name,
        vendor: Vendor::OAuth2,
        table: format!(
            "kind = \"oauth2\"\ntoken_url = \"{{url}}\"\nclient_id = \"tokensmith-app\"\n\
             scope = [\"read\", \"write\"]\n{extra}"
        ),
        sent,
    };
    let id = |v: Vendor| v.credentials().client_id().to_owned();
    let with_secret = |v: Vendor| vec![(id(v), s.client_secret.clone())];
    let mut both = with_secret(Vendor::SotiConnect);
    both.push(("Administrator".to_owned(), s.password.clone()));
    vec![
        Case {
            name: "soti",
            vendor: Vendor::SotiConnect,
            table: format!(
                "kind = \"soti-connect\"\ntoken_url = \"{{url}}\"\nclient_id = \"Application1\"\n\
                 client_secret = {cs}\ngrant = \"password\"\nusername = \"Administrator\"\n\
                 password = {}\n",
                toml_str(&s.password)
            ),
            sent: both,
        },
        Case {
            name: "configapi",
            vendor: Vendor::ConfigApi,
            table: format!(
                "kind = \"configapi\"\ntoken_url = \"{{url}}\"\nclient_id = \"sheila.thomas\"\n\
                 client_secret = {cs}\nscope = \"example.com\"\n"
            ),
            sent: with_secret(Vendor::ConfigApi),
        },
        oauth2(
            "oauth2-basic",
            &format!("grant = \"client_credentials\"\nclient_secret = {cs}\n"),
            with_secret(Vendor::OAuth2),
        ),
        oauth2(
            "oauth2-post",
            &format!(
                "grant = \"client_credentials\"\nclient_secret = {cs}\n\
                 auth_method = \"client_secret_post\"\n"
            ),
            with_secret(Vendor::OAuth2),
        ),
        oauth2(
            "oauth2-code",
            &format!(
                "grant = \"authorization_code\"\nclient_secret = {cs}\ncode = {}\n\
                 redirect_uri = \"https://app.example.com/callback\"\ncode_verifier = {}\n",
                toml_str(&s.code),
                toml_str(&s.code_verifier)
            ),
            vec![
                (id(Vendor::OAuth2), s.client_secret.clone()),
                ("code".to_owned(), s.code.clone()),
                ("code_verifier".to_owned(), s.code_verifier.clone()),
            ],
        ),
        oauth2(
            "oauth2-refresh",
            &format!(
                "grant = \"refresh_token\"\nclient_secret = {cs}\nrefresh_token = {}\n",
                toml_str(&s.refresh_token)
            ),
            vec![
                (id(Vendor::OAuth2), s.client_secret.clone()),
                ("refresh_token".to_owned(), s.refresh_token.clone()),
            ],
        ),
        oauth2(
            "oauth2-jwt",
            &format!(
                "grant = \"client_credentials\"\nprivate_key = {}\n",
                toml_str(PRIVATE_KEY_PEM)
            ),
            Vec::new(),
        ),
        Case {
            name: "deyel",
            vendor: Vendor::Deyel,
            table: format!(
                "kind = \"deyel\"\ntoken_url = \"{{url}}\"\nclient_id = \"APIUSER\"\n\
                 client_secret = {cs}\n"
            ),
            sent: with_secret(Vendor::Deyel),
        },
        // Custom vendors run against the OAuth2 emulator: its refusals and
        // its faults answer whatever the request looks like.
        Case {
            name: "custom-json",
            vendor: Vendor::OAuth2,
            table: format!(
                "kind = \"custom\"\ntoken_url = \"{{url}}\"\nclient_id = \"svc-audit\"\n\
                 client_secret = {cs}\nsecrets = {{ api_key = {} }}\n\
                 [providers.custom-json.request]\nbody = \"json\"\n\
                 auth = {{ type = \"body\", id_field = \"clientId\", secret_field = \"clientSecret\" }}\n\
                 fields = {{ key = \"{{api_key}}\" }}\n\
                 [providers.custom-json.response]\ntoken = \"/access_token\"\n\
                 expires_in = \"/expires_in\"\nerror_code = \"/error\"\n\
                 error_message = \"/error_description\"\n",
                toml_str(&s.api_key)
            ),
            sent: vec![
                ("svc-audit".to_owned(), s.client_secret.clone()),
                ("key".to_owned(), s.api_key.clone()),
            ],
        },
        Case {
            name: "custom-basic",
            vendor: Vendor::OAuth2,
            table: format!(
                "kind = \"custom\"\ntoken_url = \"{{url}}\"\nclient_id = \"svc-audit\"\n\
                 username = \"audit-user\"\npassword = {}\n\
                 [providers.custom-basic.request]\nmethod = \"GET\"\n\
                 auth = {{ type = \"basic\", user = \"username\", password = \"password\" }}\n\
                 [providers.custom-basic.response]\ntoken = \"/access_token\"\n\
                 default_lifetime = \"20m\"\n",
                toml_str(&s.password)
            ),
            sent: vec![("audit-user".to_owned(), s.password.clone())],
        },
    ]
}

/// Text echoing every spelling of what the request sent, as a hostile or
/// careless server does.
fn echo(sent: &[(String, String)]) -> String {
    let mut out = String::new();
    for (id, secret) in sent {
        let basic = STANDARD.encode(format!("{id}:{secret}"));
        let basic_form = STANDARD.encode(format!("{}:{}", form(id), form(secret)));
        let _ = write!(
            out,
            "raw {secret} form client_secret={} json \"{}\" Authorization: Basic {basic}, \
             Authorization: Basic {basic_form}; ",
            form(secret),
            json_escaped(secret),
        );
    }
    out
}

/// The faults every case meets, with a label.
fn faults(sent: &[(String, String)]) -> Vec<(&'static str, Option<Fault>)> {
    let echoed = echo(sent);
    let json_echo = json_escaped(&echoed);
    let planted = json_escaped(&SECRETS.planted_access);
    let refresh = json_escaped(&SECRETS.refresh_token);
    let big = format!("{echoed}{}{echoed}", "x".repeat(1536 * 1024));
    let custom = |status: u16, content_type: &str, body: String| {
        Some(Fault::Custom { status, content_type: content_type.to_owned(), body })
    };
    vec![
        ("refused (wrong credentials)", None),
        (
            "400 echoing the request",
            custom(
                400,
                "application/json",
                format!(r#"{{"error":"invalid_client","error_description":"{json_echo}"}}"#),
            ),
        ),
        ("401 plain text echo", custom(401, "text/plain", format!("denied: {echoed}"))),
        (
            "500 HTML echo",
            custom(500, "text/html", format!("<html><body><pre>{echoed}</pre></body></html>")),
        ),
        (
            "503 meta/errors echo",
            custom(
                503,
                "application/json",
                format!(
                    r#"{{"meta":{{"responseCode":503}},"errors":[{{"message":"{json_echo}"}}]}}"#
                ),
            ),
        ),
        (
            "200 truncated JSON with tokens",
            custom(
                200,
                "application/json",
                format!(
                    r#"{{"access_token":"{planted}","refresh_token":"{refresh}","echo":"{json_echo}","expires_in":"#
                ),
            ),
        ),
        (
            "200 JSON without a usable token",
            custom(
                200,
                "application/json",
                format!(r#"{{"access_token":["{planted}"],"echo":"{json_echo}"}}"#),
            ),
        ),
        ("500 oversized echo", custom(500, "text/plain", big.clone())),
        ("200 oversized echo", custom(200, "application/json", big)),
        ("HTML error page", Some(Fault::HtmlErrorPage)),
        ("malformed body", Some(Fault::MalformedBody)),
        ("empty body", Some(Fault::EmptyBody)),
        ("oversized token", Some(Fault::OversizedBody)),
        ("redirect", Some(Fault::Redirect)),
        ("dropped connection", Some(Fault::DropConnection)),
        ("5xx", Some(Fault::Status(500))),
        ("429", Some(Fault::TooManyRequests { retry_after_secs: 3 })),
        ("timeout", Some(Fault::NeverAnswer)),
    ]
}

fn registry() -> Registry {
    Registry::new()
        .with(tokensmith_soti::SotiConnect)
        .with(tokensmith_configapi::ConfigApi)
        .with(tokensmith_oauth2::OAuth2)
        .with(tokensmith_deyel::Deyel)
        .with(tokensmith_custom::Custom)
        .without_store()
}

/// Drives every fault of one case; returns how many errors it checked.
async fn audit_case(audit: Arc<Audit>, case: Case) -> usize {
    let emulator = Emulator::start(case.vendor).await.unwrap();
    let table = case.table.replace("{url}", &emulator.token_url());
    let config = format!("[providers.{}]\ntimeout = \"1s\"\n{table}", case.name);
    let mut errors = 0;
    for (what, fault) in faults(&case.sent) {
        let what = format!("{} / {what}", case.name);
        match fault {
            Some(fault) => emulator.set_fault(fault),
            None => emulator.clear_fault(),
        }
        let providers = match registry().load_str(&config) {
            Ok(p) => p,
            Err(e) => panic!("{what}: {e}\n{config}"),
        };
        audit.text(&what, &format!("{providers:?}"));
        let provider = providers.get(case.name).unwrap();
        audit.text(&what, &format!("{provider:?}"));
        let guard = Duration::from_secs(20);
        let result = tokio::time::timeout(guard, provider.token()).await.expect("bounded");
        match result {
            Err(err) => {
                errors += 1;
                audit.token_error(&what, &err);
            }
            Ok(token) => {
                // A success is allowed (a fault the vendor's parser tolerates);
                // its token must not show in the log either.
                audit.scanner.exact("issued access token", token.secret().expose_secret());
                audit.text(&what, &format!("{token:?}"));
            }
        }
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_adapter_error_path_shows_a_secret() {
    let audit = Audit::new();
    let cases = cases();
    let count = cases.len();
    let tasks: Vec<_> =
        cases.into_iter().map(|case| tokio::spawn(audit_case(audit.clone(), case))).collect();
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap();
    }
    let faults = faults(&[]).len();
    assert!(errors >= count * (faults - 2), "{errors} errors of {} runs", count * faults);
    assert!(log_text().contains("token fetch failed"), "the log was captured");
    audit.finish(count * faults);
}

// ---------------------------------------------------------------------------
// Config errors: a broken private key, a secret in the wrong place

#[test]
fn no_config_error_shows_a_secret() {
    let audit = Audit::new();
    let s = &*SECRETS;
    let broken_key = PRIVATE_KEY_PEM.replacen('M', "#", 1);
    let cs = toml_str(&s.client_secret);
    for (what, table) in [
        (
            "broken private key",
            format!(
                "kind = \"oauth2\"\nclient_id = \"a\"\nprivate_key = {}\n",
                toml_str(&broken_key)
            ),
        ),
        (
            "key and secret",
            format!(
                "kind = \"oauth2\"\nclient_id = \"a\"\nprivate_key = {}\nclient_secret = {cs}\n",
                toml_str(PRIVATE_KEY_PEM)
            ),
        ),
        (
            "secret in an unknown field",
            format!("kind = \"deyel\"\nclient_id = \"a\"\nclient_secrett = {cs}\n"),
        ),
        (
            "secret as the wrong type",
            format!("kind = \"deyel\"\nclient_id = \"a\"\nclient_secret = [{cs}]\n"),
        ),
        (
            "password on a kind without one",
            format!(
                "kind = \"deyel\"\nclient_id = \"a\"\nclient_secret = {cs}\npassword = {}\n",
                toml_str(&s.password)
            ),
        ),
        (
            "code without a redirect",
            format!(
                "kind = \"oauth2\"\nclient_id = \"a\"\nclient_secret = {cs}\ngrant = \"authorization_code\"\ncode = {}\n",
                toml_str(&s.code)
            ),
        ),
    ] {
        let config =
            format!("[providers.p]\ntoken_url = \"https://id.example.com/token\"\n{table}");
        let err = registry().load_str(&config).expect_err(what);
        audit.token_error(what, &err);
    }
    // A broken PEM in a file, too.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, &broken_key).unwrap();
    let config = format!(
        "[providers.p]\nkind = \"oauth2\"\ntoken_url = \"https://id.example.com/token\"\n\
         client_id = \"a\"\nprivate_key = {{ file = {} }}\n",
        toml_str(&key.display().to_string())
    );
    audit.token_error("broken key file", &registry().load_str(&config).unwrap_err());
    audit.finish(6);
}

// ---------------------------------------------------------------------------
// The file store: hostile files, `decode_token`

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_error_shows_a_token_or_the_store_key() {
    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let load = || {
        Registry::new()
            .with(tokensmith_deyel::Deyel)
            .with_default_store(StoreConfig::file(&store_dir))
            .load_str(&emulator.config_snippet("bpm"))
            .unwrap()
    };
    let first = load().get("bpm").unwrap().token().await.unwrap();
    let access = first.secret().expose_secret().to_owned();
    audit.scanner.exact("stored access token", &access);
    let key = std::fs::read(store_dir.join("key")).unwrap();
    assert_eq!(key.len(), 32);
    let hex = key.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    audit.scanner.exact("store key (hex)", &hex);
    audit.scanner.exact("store key (HEX)", &hex.to_uppercase());
    audit.scanner.exact("store key (base64)", &STANDARD.encode(&key));
    audit.scanner.exact("store key (base64url)", &URL_SAFE_NO_PAD.encode(&key));
    audit.scanner.exact("store key (debug bytes)", &format!("{:?}", &key[..8]));
    let entry = std::fs::read_dir(&store_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the stored entry");
    let good = std::fs::read_to_string(&entry).unwrap();
    assert!(good.contains(&access), "the entry holds the token");

    let planted = json_escaped(&SECRETS.planted_access);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("wrong types", good.replace("\"access_token\"", "\"access_token\":1,\"x\"").into_bytes()),
        (
            "planted token, broken",
            format!(r#"{{"access_token":"{planted}","expires_at":"soon"}}"#).into_bytes(),
        ),
        ("not UTF-8", [b"\xff\xfe".as_slice(), good.as_bytes()].concat()),
        ("huge", format!("{good}{}", " ".repeat(2 * 1024 * 1024)).into_bytes()),
        (
            "control characters",
            good.replace(&access, &format!("{access}\u{1b}[31m\n")).into_bytes(),
        ),
    ];
    for (what, bytes) in &hostile {
        let err = decode_token(bytes).expect_err(what);
        audit.error(&format!("decode_token / {what}"), &err);
        audit.panic_of(&format!("decode_token / {what}"), decode_token(bytes));
        // The same bytes as the stored entry: the cache refetches, logging why.
        std::fs::write(&entry, bytes).unwrap();
        let token = load().get("bpm").unwrap().token().await.unwrap();
        audit.scanner.exact("refetched access token", token.secret().expose_secret());
    }
    // The store's own refusals: a symlinked entry, a world-readable key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, &good).unwrap();
        std::fs::remove_file(&entry).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
        let token = load().get("bpm").unwrap().token().await.unwrap();
        audit.scanner.exact("refetched access token", token.secret().expose_secret());
        let key_file = store_dir.join("key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let token = load().get("bpm").unwrap().token().await.unwrap();
        audit.scanner.exact("refetched access token", token.secret().expose_secret());
    }
    let providers = load();
    audit.text("providers", &format!("{providers:?} {:?}", providers.cache("bpm")));
    assert!(emulator.tokens_issued() >= 2, "hostile entries were refetched");
    audit.finish(hostile.len() * 2);
}

// ---------------------------------------------------------------------------
// The reqwest middleware and the tower layer

fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A Deyel provider with the audit's client secret (refused) and one with
/// the emulator's (served).
fn deyel_providers(
    emulator: &Emulator,
) -> (tokensmith_core::Providers, tokensmith_core::Providers) {
    let good = emulator.config_snippet("api");
    let secret = emulator.credentials().client_secret().unwrap();
    let bad = good.replace(&toml_str(secret), &toml_str(&SECRETS.client_secret));
    let registry = || Registry::new().with(tokensmith_deyel::Deyel).without_store();
    (registry().load_str(&bad).unwrap(), registry().load_str(&good).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_middleware_shows_no_secret_on_a_refusal_or_a_401_retry() {
    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let api = ResourceServer::start().await.unwrap();
    let (bad, good) = deyel_providers(&emulator);
    let client = |providers: &tokensmith_core::Providers| {
        reqwest_middleware::ClientBuilder::new(reqwest_client())
            .with(tokensmith_reqwest::TokenMiddleware::new(providers.get("api").unwrap()))
            .build()
    };

    let err = client(&bad).get(api.url("/devices")).send().await.unwrap_err();
    assert!(tokensmith_reqwest::token_error(&err).is_some(), "{err}");
    audit.error("middleware / refused", &err);
    audit.token_error("middleware / refused", tokensmith_reqwest::token_error(&err).unwrap());
    audit.panic_of("middleware / refused", Err::<(), _>(err));
    emulator.set_fault(Fault::Custom {
        status: 500,
        content_type: "text/plain".to_owned(),
        body: echo(&[("APIUSER".to_owned(), SECRETS.client_secret.clone())]),
    });
    let err = client(&bad).get(api.url("/devices")).send().await.unwrap_err();
    audit.error("middleware / 500 echo", &err);
    emulator.clear_fault();

    let client = client(&good);
    assert_eq!(client.get(api.url("/devices")).send().await.unwrap().status(), 200);
    api.rotate();
    let response = client.post(api.url("/devices")).body("replayable").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(api.statuses(), [200, 401, 200], "one 401, one retry");
    audit.text("middleware / response", &format!("{response:?}"));
    for token in api.tokens().into_iter().flatten() {
        audit.scanner.exact("presented access token", &token);
    }
    assert!(log_text().contains("invalidat"), "the 401 was logged");
    audit.finish(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_layer_shows_no_secret_on_a_refusal_or_a_401_retry() {
    use tower::{Layer as _, ServiceExt as _};

    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let (bad, good) = deyel_providers(&emulator);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let upstream = {
        let seen = seen.clone();
        tower::service_fn(move |request: http::Request<String>| {
            let seen = seen.clone();
            async move {
                let header = request.headers()[http::header::AUTHORIZATION].to_str().unwrap();
                let mut seen = seen.lock().unwrap();
                seen.push(header.to_owned());
                let status = if seen.len() == 1 { 401 } else { 200 };
                let response = http::Response::builder()
                    .status(status)
                    .header("www-authenticate", "Bearer error=\"invalid_token\"")
                    .body(String::new())
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let request =
        || http::Request::post("http://api.test/devices").body("replayable".to_owned()).unwrap();

    let layer = tokensmith_tower::AuthLayer::new(bad.get("api").unwrap());
    let err = layer.layer(upstream.clone()).oneshot(request()).await.unwrap_err();
    assert!(matches!(err, tokensmith_tower::AuthError::Token(_)), "{err:?}");
    audit.error("tower / refused", &err);
    audit.panic_of("tower / refused", Err::<(), _>(err));

    let layer = tokensmith_tower::AuthLayer::new(good.get("api").unwrap());
    let response = layer.layer(upstream).oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one 401, one retry");
    assert_ne!(seen[0], seen[1], "the retry carries a new token");
    for header in &seen {
        audit.scanner.exact("presented access token", header.trim_start_matches("Bearer "));
    }
    audit.text("tower / response", &format!("{response:?}"));
    audit.finish(3);
}
