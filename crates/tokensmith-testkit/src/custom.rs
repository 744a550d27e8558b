//! [`CustomEmulator`]: the token endpoint of a vendor described in config
//! (`kind = "custom"`), on 127.0.0.1. It reads the same description as the
//! `tokensmith-custom` adapter, is strict about the request it describes and
//! answers in the shape it describes, so a description can be tried offline.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokensmith_core::ConfigSecret;
use tokensmith_core::secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::form_urlencoded;

use crate::recorded::RecordedRequest;
use crate::server::{Form, Request, is_form};

/// The largest request body read.
const MAX_REQUEST_BODY: usize = 64 * 1024;

/// How the emulator writes an absolute expiry (`response.expires_at`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum TimeStyle {
    /// What the description's `expires_at_format` says (`auto` and
    /// `rfc3339`: RFC 3339 in whole seconds, `Z`).
    #[default]
    Described,
    /// RFC 3339 with a fraction of a second (`…T10:00:00.250Z`).
    Rfc3339Fraction,
    /// RFC 3339 with an offset (`…T12:00:00+02:00`).
    Rfc3339Offset,
    /// Unix seconds, a number.
    UnixSeconds,
    /// Unix milliseconds, a number.
    UnixMillis,
}

/// A running emulator of a described vendor's token endpoint on `127.0.0.1`.
///
/// It serves the path of the description's `token_url` (`/token` when there
/// is none); point the provider's `token_url` at
/// [`token_url`](Self::token_url). The request must be exactly the described
/// one: method, body format, each body field, query parameter and header
/// with its value, the client authentication; a value made from a secret
/// that differs is a 401, anything else a 400, both answered in the
/// described error shape (`error_code`, `error_message`). A good request
/// gets a token at the described pointers (`token-1`, `token-2`, …), with a
/// refresh token, scope (`"read write"`), token type (`"Bearer"`) and
/// lifetime where the description has pointers for them.
///
/// ```
/// use tokensmith_testkit::CustomEmulator;
///
/// # async fn demo() -> std::io::Result<()> {
/// let emulator = CustomEmulator::start(r#"
///     kind = "custom"
///     token_url = "https://api.example.com/v1/login"
///     client_id = "svc"
///     client_secret = "s3cr3t-value"
///     request = { body = "json", fields = { id = "{client_id}", key = "{client_secret}" } }
///     response = { token = "/data/jwt", expires_in = "/data/ttl" }
/// "#).await?;
/// assert!(emulator.token_url().ends_with("/v1/login"));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct CustomEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for CustomEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomEmulator")
            .field("addr", &self.addr)
            .field("path", &self.shared.description.path)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl CustomEmulator {
    /// Starts an emulator of the vendor `description` describes (one
    /// provider's table, or a config file whose first `kind = "custom"`
    /// provider is used) on an ephemeral port. A description the emulator
    /// cannot read is an [`io::ErrorKind::InvalidInput`] error.
    pub async fn start(description: &str) -> io::Result<Self> {
        Self::start_on(description, 0).await
    }

    /// [`start`](Self::start) on `127.0.0.1:port` (`0` picks a free port).
    pub async fn start_on(description: &str, port: u16) -> io::Result<Self> {
        let description = Description::parse(description)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            description,
            base_url: format!("http://{addr}"),
            requests: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            state: Mutex::new(State {
                lifetime: Duration::from_hours(1),
                send_lifetime: true,
                lifetime_as_string: false,
                time_style: TimeStyle::Described,
                clock: None,
                log: Vec::new(),
            }),
        });
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), stopped));
        Ok(Self { shared, addr, stop, task })
    }

    /// Stops accepting connections and waits until the port is released.
    pub async fn shutdown(self) {
        let Self { stop, task, .. } = self;
        drop(stop);
        let _ = task.await;
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token endpoint: the base URL and the described path (and query).
    pub fn token_url(&self) -> String {
        format!("{}{}", self.shared.base_url, self.shared.description.path_and_query())
    }

    /// Requests received at the token path.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Tokens issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.issued.load(Ordering::Relaxed)
    }

    /// Every request received at the token path (the last 1000).
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// The last request received at the token path.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().log.last().cloned()
    }

    /// The lifetime of the tokens issued from now on (default one hour).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().lifetime = lifetime;
    }

    /// Whether answers carry a lifetime at all (default yes), to try a
    /// description's `default_lifetime`.
    pub fn set_send_lifetime(&self, send: bool) {
        self.shared.lock().send_lifetime = send;
    }

    /// Writes a relative lifetime as a string (`"3600"`) instead of a
    /// number.
    pub fn set_lifetime_as_string(&self, as_string: bool) {
        self.shared.lock().lifetime_as_string = as_string;
    }

    /// How an absolute expiry is written.
    pub fn set_time_style(&self, style: TimeStyle) {
        self.shared.lock().time_style = style;
    }

    /// Replaces the emulator's clock (for absolute expiry times).
    pub fn set_clock<F>(&self, now: F)
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.shared.lock().clock = Some(Arc::new(now));
    }
}

struct Shared {
    description: Description,
    base_url: String,
    requests: AtomicU64,
    issued: AtomicU64,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct State {
    lifetime: Duration,
    send_lifetime: bool,
    lifetime_as_string: bool,
    time_style: TimeStyle,
    clock: Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>,
    log: Vec<RecordedRequest>,
}

/// An expected value: its text, and whether a secret went into it.
#[derive(Clone)]
struct Expected {
    text: String,
    secret: bool,
}

/// What the emulator reads of a description.
struct Description {
    path: String,
    query: Option<String>,
    method: Method,
    body: BodyFormat,
    form: Vec<(String, Expected)>,
    json: Value,
    /// JSON pointers whose expected value holds a secret.
    json_secrets: Vec<String>,
    params: Vec<(String, Expected)>,
    headers: Vec<(String, Expected)>,
    basic: Option<String>,
    token: String,
    refresh_token: Option<String>,
    scope: Option<String>,
    token_type: Option<String>,
    expires_in: Option<String>,
    expires_at: Option<(String, String)>,
    error_code: Option<String>,
    error_message: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Form,
    Json,
    None,
}

fn str_at<'t>(table: &'t toml::Table, key: &str) -> Option<&'t str> {
    table.get(key).and_then(toml::Value::as_str)
}

impl Description {
    fn parse(text: &str) -> Result<Self, String> {
        let table = provider_table(text)?;
        let empty = toml::Table::new();
        let sub = |key: &str| table.get(key).and_then(toml::Value::as_table).unwrap_or(&empty);
        let values = named_values(&table, sub("secrets"))?;
        let render = |text: &str| -> Result<Expected, String> { render(text, &values) };

        let url = str_at(&table, "token_url").map(url::Url::parse).transpose();
        let url = url.map_err(|e| format!("token_url: {e}"))?;
        let path = url.as_ref().map_or_else(|| "/token".to_owned(), |u| u.path().to_owned());
        let query = url.as_ref().and_then(|u| u.query().map(str::to_owned));

        let request = sub("request");
        let method = match str_at(request, "method").map(str::to_ascii_uppercase).as_deref() {
            Some("GET") => Method::GET,
            _ => Method::POST,
        };
        let body = match (str_at(request, "body"), &method) {
            (Some("json"), _) => BodyFormat::Json,
            (Some("none"), _) | (None, &Method::GET) => BodyFormat::None,
            _ => BodyFormat::Form,
        };
        let fields = request.get("fields").and_then(toml::Value::as_table).unwrap_or(&empty);
        let (mut form, mut json, mut json_secrets) = expected_body(body, fields, &render)?;
        let table_at = |key: &str| request.get(key).and_then(toml::Value::as_table);
        let rendered = |key: &str, lower: bool| -> Result<Vec<(String, Expected)>, String> {
            let pairs = table_at(key).unwrap_or(&empty).iter();
            pairs
                .map(|(n, v)| {
                    let name = if lower { n.to_ascii_lowercase() } else { n.clone() };
                    Ok((name, render(v.as_str().unwrap_or_default())?))
                })
                .collect()
        };
        let params = rendered("query", false)?;
        let mut headers = rendered("headers", true)?;
        let auth = auth_table(request.get("auth"));
        let mut basic = None;
        match str_at(&auth, "type").unwrap_or("none") {
            "basic" => {
                let user = str_at(&auth, "user").unwrap_or("client_id");
                let password = str_at(&auth, "password").unwrap_or("client_secret");
                let get = |n: &str| values.get(n).map(|v| v.0.clone()).unwrap_or_default();
                basic = Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{}", get(user), get(password)))
                ));
            }
            "header" => {
                let name = str_at(&auth, "header").unwrap_or_default().to_ascii_lowercase();
                headers.push((name, render(str_at(&auth, "value").unwrap_or_default())?));
            }
            "body" => {
                let id = str_at(&auth, "id_field").unwrap_or("client_id");
                let secret_field = str_at(&auth, "secret_field").unwrap_or("client_secret");
                let mut pairs = vec![(id.to_owned(), render("{client_id}")?)];
                if values.contains_key("client_secret") {
                    pairs.push((secret_field.to_owned(), render("{client_secret}")?));
                }
                for (name, expected) in pairs {
                    if body == BodyFormat::Json {
                        if expected.secret {
                            json_secrets.push(format!("/{name}"));
                        }
                        if let Value::Object(members) = &mut json {
                            members.insert(name, Value::String(expected.text));
                        }
                    } else {
                        form.push((name, expected));
                    }
                }
            }
            _ => {}
        }
        let response = sub("response");
        let pointer = |key: &str| str_at(response, key).map(str::to_owned);
        Ok(Self {
            path,
            query,
            method,
            body,
            form,
            json,
            json_secrets,
            params,
            headers,
            basic,
            token: pointer("token").ok_or("response.token is required")?,
            refresh_token: pointer("refresh_token"),
            scope: pointer("scope"),
            token_type: pointer("token_type"),
            expires_in: pointer("expires_in"),
            expires_at: pointer("expires_at")
                .map(|p| (p, str_at(response, "expires_at_format").unwrap_or("auto").to_owned())),
            error_code: pointer("error_code"),
            error_message: pointer("error_message"),
        })
    }

    fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// What is wrong with `request`: the status and the message.
    fn check(&self, request: &Request) -> Result<(), (StatusCode, String)> {
        let bad = |m: String| Err((StatusCode::BAD_REQUEST, m));
        let denied = |m: String| Err((StatusCode::UNAUTHORIZED, m));
        if request.method != self.method {
            return Err((StatusCode::METHOD_NOT_ALLOWED, format!("expected {}", self.method)));
        }
        self.check_body(request)?;
        let query: Vec<(String, String)> = request
            .query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let own: Vec<(String, String)> = self
            .query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        for (name, _) in &query {
            if !self.params.iter().any(|(n, _)| n == name) && !own.iter().any(|(n, _)| n == name) {
                return bad(format!("unexpected query parameter {name}"));
            }
        }
        for (name, expected) in &self.params {
            match query.iter().find(|(n, _)| n == name) {
                None => return bad(format!("missing query parameter {name}")),
                Some((_, v)) if *v != expected.text && expected.secret => {
                    return denied(format!("wrong credentials in query parameter {name}"));
                }
                Some((_, v)) if *v != expected.text => {
                    return bad(format!("unexpected value of query parameter {name}"));
                }
                Some(_) => {}
            }
        }
        for (name, expected) in &self.headers {
            let got = request.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            match got {
                None => return bad(format!("missing header {name}")),
                Some(v) if v != expected.text && expected.secret => {
                    return denied(format!("wrong credentials in header {name}"));
                }
                Some(v) if v != expected.text => {
                    return bad(format!("unexpected value of header {name}"));
                }
                Some(_) => {}
            }
        }
        let authorization = request.headers.get("authorization").and_then(|v| v.to_str().ok());
        match (&self.basic, authorization) {
            (Some(_), None) => return denied("missing Basic credentials".into()),
            (Some(want), Some(got)) if want != got => {
                return denied("wrong Basic credentials".into());
            }
            (None, Some(_)) if !self.headers.iter().any(|(n, _)| n == "authorization") => {
                return bad("unexpected Authorization header".into());
            }
            _ => {}
        }
        Ok(())
    }

    /// What is wrong with the request's body.
    fn check_body(&self, request: &Request) -> Result<(), (StatusCode, String)> {
        let bad = |m: String| Err((StatusCode::BAD_REQUEST, m));
        let denied = |m: String| Err((StatusCode::UNAUTHORIZED, m));
        match self.body {
            BodyFormat::None => {
                if !request.body.is_empty() {
                    return bad("expected no body".into());
                }
            }
            BodyFormat::Form => {
                if !is_form(&request.headers) {
                    return bad("expected a form body".into());
                }
                let form = Form::parse(&request.body)
                    .map_err(|name| (StatusCode::BAD_REQUEST, format!("repeated field {name}")))?;
                for (name, _) in form.pairs() {
                    if !self.form.iter().any(|(n, _)| n == name) {
                        return bad(format!("unexpected field {name}"));
                    }
                }
                for (name, expected) in &self.form {
                    match form.get(name) {
                        None => return bad(format!("missing field {name}")),
                        Some(v) if v != expected.text && expected.secret => {
                            return denied(format!("wrong credentials in field {name}"));
                        }
                        Some(v) if v != expected.text => {
                            return bad(format!("unexpected value of field {name}"));
                        }
                        Some(_) => {}
                    }
                }
            }
            BodyFormat::Json => {
                let media = request.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
                if !media.is_some_and(|m| m.starts_with("application/json")) {
                    return bad("expected Content-Type: application/json".into());
                }
                let Ok(got) = serde_json::from_slice::<Value>(&request.body) else {
                    return bad("the body is not JSON".into());
                };
                if got != self.json {
                    let mut masked_got = got.clone();
                    let mut masked_want = self.json.clone();
                    for p in &self.json_secrets {
                        for v in [&mut masked_got, &mut masked_want] {
                            if let Some(slot) = v.pointer_mut(p) {
                                *slot = Value::Null;
                            }
                        }
                    }
                    return if masked_got == masked_want {
                        denied("wrong credentials in the JSON body".into())
                    } else {
                        bad("the JSON body is not the described one".into())
                    };
                }
            }
        }
        Ok(())
    }

    /// The error body in the described shape.
    fn error_body(&self, code: &str, message: &str) -> Value {
        let mut body = Value::Object(serde_json::Map::new());
        match (&self.error_code, &self.error_message) {
            (None, None) => body = json!({ "error": code, "error_description": message }),
            (c, m) => {
                if let Some(p) = c {
                    put(&mut body, p, json!(code));
                }
                if let Some(p) = m {
                    put(&mut body, p, json!(message));
                }
            }
        }
        body
    }

    /// The token body in the described shape.
    fn token_body(&self, n: u64, state: &State, now: SystemTime) -> Value {
        let mut body = Value::Object(serde_json::Map::new());
        put(&mut body, &self.token, json!(format!("token-{n}")));
        if let Some(p) = &self.refresh_token {
            put(&mut body, p, json!(format!("refresh-{n}")));
        }
        if let Some(p) = &self.scope {
            put(&mut body, p, json!("read write"));
        }
        if let Some(p) = &self.token_type {
            put(&mut body, p, json!("Bearer"));
        }
        if !state.send_lifetime {
            return body;
        }
        let secs = state.lifetime.as_secs();
        if let Some(p) = &self.expires_in {
            let value =
                if state.lifetime_as_string { json!(secs.to_string()) } else { json!(secs) };
            put(&mut body, p, value);
        }
        if let Some((p, format)) = &self.expires_at {
            let at = now + state.lifetime;
            let unix = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            let value = match (state.time_style, format.as_str()) {
                (TimeStyle::UnixSeconds, _) | (TimeStyle::Described, "unix") => {
                    json!(unix.as_secs())
                }
                (TimeStyle::UnixMillis, _) | (TimeStyle::Described, "unix_ms") => {
                    json!(u64::try_from(unix.as_millis()).unwrap_or(u64::MAX))
                }
                (TimeStyle::Rfc3339Fraction, _) => {
                    json!(humantime::format_rfc3339_millis(at).to_string())
                }
                (TimeStyle::Rfc3339Offset, _) => {
                    // Two hours east: the same instant, written as local time.
                    let local =
                        humantime::format_rfc3339_seconds(at + Duration::from_hours(2)).to_string();
                    json!(format!("{}+02:00", local.trim_end_matches('Z')))
                }
                _ => json!(humantime::format_rfc3339_seconds(at).to_string()),
            };
            put(&mut body, p, value);
        }
        body
    }
}

/// The provider table of a description: the text itself, or the first
/// `kind = "custom"` provider of a config file.
fn provider_table(text: &str) -> Result<toml::Table, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("invalid TOML: {e}"))?;
    Ok(match doc.get("providers").and_then(toml::Value::as_table) {
        Some(providers) => providers
            .values()
            .filter_map(toml::Value::as_table)
            .find(|t| str_at(t, "kind") == Some("custom"))
            .ok_or("no provider with kind = \"custom\" under [providers]")?
            .clone(),
        None => doc,
    })
}

/// `request.auth` as a table (`"basic"` is `{ type = "basic" }`).
fn auth_table(auth: Option<&toml::Value>) -> toml::Table {
    match auth {
        Some(toml::Value::String(kind)) => {
            let mut t = toml::Table::new();
            t.insert("type".into(), toml::Value::String(kind.clone()));
            t
        }
        Some(toml::Value::Table(t)) => t.clone(),
        _ => toml::Table::new(),
    }
}

/// The named values a description's templates use, each with whether it
/// is a secret (resolved as the adapter resolves them: literal, env, file).
fn named_values(
    table: &toml::Table,
    secrets: &toml::Table,
) -> Result<BTreeMap<String, (String, bool)>, String> {
    let secret = |value: &toml::Value| -> Result<String, String> {
        let secret: ConfigSecret = value.clone().try_into().map_err(|e| format!("{e}"))?;
        Ok(secret.as_secret().expose_secret().to_owned())
    };
    let mut values: BTreeMap<String, (String, bool)> = BTreeMap::new();
    if let Some(id) = str_at(table, "client_id") {
        values.insert("client_id".into(), (id.to_owned(), false));
    }
    if let Some(user) = str_at(table, "username") {
        values.insert("username".into(), (user.to_owned(), false));
    }
    for key in ["client_secret", "password"] {
        if let Some(v) = table.get(key) {
            values.insert(key.into(), (secret(v)?, true));
        }
    }
    for (name, v) in secrets {
        values.insert(name.clone(), (secret(v)?, true));
    }
    Ok(values)
}

/// The form fields, or the JSON body and its secret pointers, a
/// description's `request.fields` make.
type ExpectedBody = (Vec<(String, Expected)>, Value, Vec<String>);

fn expected_body(
    body: BodyFormat,
    fields: &toml::Table,
    render: &dyn Fn(&str) -> Result<Expected, String>,
) -> Result<ExpectedBody, String> {
    let mut form = Vec::new();
    let mut json_secrets = Vec::new();
    let mut json = Value::Object(serde_json::Map::new());
    match body {
        BodyFormat::Form => {
            for (name, value) in fields {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => return Err(format!("request.fields.{name}: not a form value")),
                };
                form.push((name.clone(), render(&text)?));
            }
        }
        BodyFormat::Json => {
            json = to_json(&toml::Value::Table(fields.clone()), "", &render, &mut json_secrets)?;
        }
        BodyFormat::None => {}
    }
    Ok((form, json, json_secrets))
}

/// Renders a template against the named values.
fn render(text: &str, values: &BTreeMap<String, (String, bool)>) -> Result<Expected, String> {
    let mut out = String::new();
    let mut secret = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let (value, is_secret) = values
                    .get(&name)
                    .ok_or_else(|| format!("unknown value `{name}` in {text:?}"))?;
                out.push_str(value);
                secret |= is_secret;
            }
            c => out.push(c),
        }
    }
    Ok(Expected { text: out, secret })
}

/// A TOML value as the JSON the described request sends.
fn to_json(
    value: &toml::Value,
    pointer: &str,
    render: &dyn Fn(&str) -> Result<Expected, String>,
    secrets: &mut Vec<String>,
) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => {
            let expected = render(s)?;
            if expected.secret {
                secrets.push(pointer.to_owned());
            }
            Value::String(expected.text)
        }
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{pointer}/{i}"), render, secrets))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| {
                    let p = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                    Ok((k.clone(), to_json(v, &p, render, secrets)?))
                })
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Puts `value` at the JSON Pointer `pointer`, creating objects on the way.
fn put(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !at.is_object() {
            *at = Value::Object(serde_json::Map::new());
        }
        let Value::Object(members) = at else { return };
        at = members.entry(token).or_insert(Value::Null);
    }
    *at = value;
}

/// Accepts connections until `stop` is dropped, then closes every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<()>) {
    crate::server::accept_loop(listener, stop, move |req| answer(Arc::clone(&shared), req)).await;
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn answer(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let description = &shared.description;
    if parts.uri.path() != description.path {
        let body = description.error_body("not_found", "no such path");
        return Ok(reply(StatusCode::NOT_FOUND, &body));
    }
    let Ok(collected) = Limited::new(body, MAX_REQUEST_BODY).collect().await else {
        let body = description.error_body("invalid_request", "request body too large");
        return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, &body));
    };
    let request = Request {
        method: parts.method,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: collected.to_bytes(),
    };
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mut state = shared.lock();
    if state.log.len() == 1000 {
        state.log.remove(0);
    }
    state.log.push(RecordedRequest::new(&request, parts.uri.to_string()));
    if let Err((status, message)) = description.check(&request) {
        let code =
            if status == StatusCode::UNAUTHORIZED { "invalid_client" } else { "invalid_request" };
        return Ok(reply(status, &description.error_body(code, &message)));
    }
    let n = shared.issued.fetch_add(1, Ordering::Relaxed) + 1;
    let now = match &state.clock {
        Some(clock) => clock(),
        #[allow(
            clippy::disallowed_methods,
            reason = "an emulated server has its own wall clock; tests pin it with set_clock"
        )]
        None => SystemTime::now(),
    };
    Ok(reply(StatusCode::OK, &description.token_body(n, &state, now)))
}
