//! The secret-leak audit (issue 15), library half: every error path of every
//! adapter (soti, configapi, oauth2 in five shapes, deyel, custom in two)
//! and config errors (here), the token stores (`stores`: the file store's
//! names and contents, `decode_token`, every Redis key and value and the
//! Redis store's failures) and the integrations (`middleware`: the reqwest
//! middleware, the tower layer, the tonic interceptor) are driven against
//! real servers on 127.0.0.1 with every log line captured at TRACE, and no
//! secret may show in any log line, error `Display`/`Debug`/`{:#?}`/
//! `error_line`, source chain, error body or detail, panic message, file or
//! Redis key or value. The CLI and agent half is
//! `crates/tokensmith-cli/tests/it/leak_audit.rs`; both use the testkit's
//! `leak::Scanner`.
//!
//! Each secret is distinctive (`S3cr3t-<random>…`, with characters that form
//! encoding and JSON escaping change) and searched in every spelling it
//! travels in: raw, form-urlencoded, JSON-escaped, base64, and base64 of the
//! Basic `id:secret` pair (raw and form-encoded). The scanner's self-test
//! (`the_scanner_reports_a_planted_leak_in_every_spelling`) shows it fails
//! on a planted leak; each channel has its own planted leak (see
//! `docs/robustness.md`).

use std::fmt::{self, Write as _};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{Registry, TokenError, error_line};
use tokensmith_testkit::leak::{Scanner, distinctive, form_encoded as form, json_escaped};
use tokensmith_testkit::{Emulator, Fault, Vendor};

mod middleware;
mod stores;

// ---------------------------------------------------------------------------
// The secrets

/// The secrets the audited configs hold.
pub(crate) struct Secrets {
    pub(crate) client_secret: String,
    pub(crate) password: String,
    pub(crate) code: String,
    pub(crate) code_verifier: String,
    pub(crate) refresh_token: String,
    pub(crate) api_key: String,
    /// An access token a hostile server plants in a broken response.
    pub(crate) planted_access: String,
}

pub(crate) static SECRETS: LazyLock<Secrets> = LazyLock::new(|| Secrets {
    client_secret: distinctive("S3cr3t"),
    password: distinctive("Pa55w0rd"),
    code: distinctive("C0de"),
    // RFC 7636: 43 to 128 unreserved characters.
    code_verifier: {
        use std::hash::BuildHasher as _;
        let random = std::collections::hash_map::RandomState::new().hash_one("verifier");
        format!("Ver1fier-{random:016x}-{random:016x}-{random:016x}")
    },
    refresh_token: distinctive("R3fresh"),
    api_key: distinctive("K3y"),
    planted_access: distinctive("Acc3ss"),
});

/// The `private_key_jwt` key (a test fixture of the oauth2 crate).
const PRIVATE_KEY_PEM: &str =
    include_str!("../../../crates/tokensmith-oauth2/testdata/ec-p256-pkcs8.pem");

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

pub(crate) fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        .into_owned()
}

// ---------------------------------------------------------------------------
// The audit

/// What one audit test saw: the testkit's scanner (findings, how much was
/// checked), with every log line captured.
pub(crate) struct Audit {
    pub(crate) scanner: Scanner,
}

impl Audit {
    /// An audit of every secret in [`SECRETS`] and the private key, with
    /// logs captured.
    pub(crate) fn new() -> Arc<Self> {
        capture_logs();
        let audit = Self { scanner: Scanner::new() };
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
        self.scanner.check(what, text);
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
    pub(crate) fn token_error(&self, what: &str, err: &TokenError) {
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
    pub(crate) fn panic_of<T, E: fmt::Debug>(&self, what: &str, result: Result<T, E>) {
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
    pub(crate) fn finish(&self, min_checks: usize) {
        self.text("the TRACE log", &log_text());
        self.scanner.assert_clean(min_checks);
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

pub(crate) fn toml_str(s: &str) -> String {
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
pub(crate) fn echo(sent: &[(String, String)]) -> String {
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

/// A registry of every adapter.
pub(crate) fn adapters() -> Registry {
    Registry::new()
        .with(tokensmith_soti::SotiConnect)
        .with(tokensmith_configapi::ConfigApi)
        .with(tokensmith_oauth2::OAuth2)
        .with(tokensmith_deyel::Deyel)
        .with(tokensmith_custom::Custom)
}

/// [`adapters`] without a token store.
fn registry() -> Registry {
    adapters().without_store()
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
