//! The bodies of tokensmith's fuzz targets, one function per target, each
//! taking the fuzzer's bytes and panicking when an invariant breaks.
//!
//! Shared by the cargo-fuzz binaries (`fuzz_targets/*.rs`, nightly features
//! through `RUSTC_BOOTSTRAP=1`) and by the regression replay on stable
//! (`tests/it/fuzz_corpus.rs` includes this file by path and runs every file
//! of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through
//! [`run`]). Plain `std` and the workspace's crates only: no `libfuzzer-sys`
//! here, so the replay builds wherever the tests build.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokensmith_core::{
    AccessToken, BodySnippet, MAX_EXPIRES_IN, RawResponse, Registry, ResponseShape, TimeFormat,
    TokenError, TokenType, decode_token, encode_token, parse_response,
};

/// The agent's reading of client input, the very file the CLI compiles.
#[path = "../../crates/tokensmith-cli/src/serve/request.rs"]
#[allow(dead_code, reason = "the CLI uses all of it; the targets only some")]
mod request;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/`) and body.
pub const TARGETS: &[(&str, Target)] = &[
    ("token_response", token_response),
    ("error_body", error_body),
    ("jwt_exp", jwt_exp),
    ("config", config),
    ("response_shape", response_shape),
    ("store_decode", store_decode),
    ("agent_request", agent_request),
    ("custom_request", custom_request),
];

/// Runs target `name` on `data`; `false` when no target has that name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => {
            body(data);
            true
        }
        None => false,
    }
}

/// The receipt time every target parses at.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The `Content-Type` a selector byte picks (`None`: no header).
fn content_type(selector: u8) -> Option<&'static str> {
    const TYPES: [Option<&str>; 7] = [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("text/html"),
        Some("application/problem+json"),
    ];
    TYPES[usize::from(selector) % TYPES.len()]
}

/// The secret values of a (strict) JSON body: strings under any of
/// [`BodySnippet::SECRET_FIELDS`] at any depth that cannot be mistaken for
/// the fixed words of an error message (eight characters or more, a letter
/// and a digit, no space) and occur nowhere else in the body.
fn body_secrets(body: &[u8]) -> Vec<String> {
    /// `in_error`: `value` is the member `error` (whose `code` is the
    /// vendor's error code, shown as such, not an authorization code).
    fn walk(
        value: &Value,
        secret: bool,
        in_error: bool,
        found: &mut Vec<String>,
        others: &mut Vec<String>,
    ) {
        match value {
            Value::String(s) if secret => found.push(s.clone()),
            Value::String(s) => others.push(s.clone()),
            Value::Array(items) => {
                for v in items {
                    walk(v, secret, in_error, found, others);
                }
            }
            Value::Object(map) => {
                for (key, v) in map {
                    others.push(key.clone());
                    let secret = BodySnippet::is_secret_field(key) && !(in_error && key == "code");
                    walk(v, secret, key == "error", found, others);
                }
            }
            _ => {}
        }
    }
    let Ok(doc) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let (mut found, mut others) = (Vec::new(), Vec::new());
    walk(&doc, false, false, &mut found, &mut others);
    found.retain(|s| {
        s.len() >= 8
            && s.bytes().any(|b| b.is_ascii_alphabetic())
            && s.bytes().any(|b| b.is_ascii_digit())
            && !s.chars().any(char::is_whitespace)
            && !others.iter().any(|o| o.contains(s.as_str()))
    });
    found
}

/// Panics when a secret of `secrets` shows in `err`'s `Display` or `Debug`.
fn assert_hidden(err: &TokenError, secrets: &[String], input: &[u8]) {
    let shown = format!("{err} {err:?}");
    for secret in secrets {
        assert!(
            !shown.contains(secret.as_str()),
            "secret {secret:?} leaked into the error {shown:?} (input {:?})",
            String::from_utf8_lossy(input)
        );
    }
}

/// What every accepted token satisfies: a non-empty secret without control
/// characters, a lifetime of at least a second and at most
/// [`MAX_EXPIRES_IN`], a printable token type.
fn assert_sane(token: &AccessToken) {
    let secret = token.secret().expose_secret();
    assert!(!secret.is_empty(), "an empty token was accepted");
    assert!(!secret.chars().any(char::is_control), "a token with a control character: {secret:?}");
    assert!(!token.token_type().as_str().chars().any(char::is_control));
    if let Some(at) = token.expires_at() {
        let left = at.duration_since(token.received_at()).expect("expiry after receipt");
        assert!(left >= Duration::from_secs(1), "a token expired on arrival: {left:?}");
        assert!(left <= MAX_EXPIRES_IN, "a lifetime beyond the clamp: {left:?}");
    }
}

/// `parse_response` with an arbitrary status, `Content-Type` and body:
/// byte 0–1 the status, byte 2 the content type, the rest the body.
pub fn token_response(data: &[u8]) {
    let [hi, lo, ct, body @ ..] = data else { return };
    let status = u16::from_be_bytes([*hi, *lo]) % 1000;
    let raw = RawResponse::new(status, content_type(*ct), body);
    match parse_response("fuzz", &raw, now()) {
        Ok(token) => {
            assert!((200..300).contains(&status), "a token from a {status}");
            assert_sane(&token);
        }
        Err(err) => assert_hidden(&err, &body_secrets(body), data),
    }
}

/// Error bodies: a 4xx or 5xx (byte 0), a content type (byte 1), a
/// `Retry-After` (byte 2), the rest the body. Always an error of the class
/// the status says, never showing a secret of the body.
pub fn error_body(data: &[u8]) {
    let [code, ct, retry, body @ ..] = data else { return };
    let status = 400 + u16::from(*code) % 200;
    let retry_after = (*retry != 0).then(|| Duration::from_secs(u64::from(*retry)));
    let raw = RawResponse::new(status, content_type(*ct), body).with_retry_after(retry_after);
    let err = parse_response("fuzz", &raw, now()).expect_err("a 4xx or 5xx is an error");
    match (&err, status) {
        (TokenError::Server { .. }, 500..)
        | (TokenError::Rejected { .. } | TokenError::Endpoint { .. }, ..500) => {}
        _ => panic!("HTTP {status} read as {err:?}"),
    }
    assert_hidden(&err, &body_secrets(body), data);
    let _ = (err.oauth_error_code(), err.is_retryable());
}

/// The JWT `exp` reader: a 200 without `expires_in` whose token is a JWT
/// with `data` as its (base64url-encoded) payload. The expiry is the
/// payload's `exp` when that is a number a second or more ahead (clamped to
/// [`MAX_EXPIRES_IN`]), else none; a past `exp` is an invalid response.
pub fn jwt_exp(data: &[u8]) {
    let jwt = format!("eyJhbGciOiJub25lIn0.{}.c2ln", URL_SAFE_NO_PAD.encode(data));
    let body = serde_json::json!({ "access_token": jwt, "token_type": "Bearer" }).to_string();
    let raw = RawResponse::new(200, Some("application/json"), body.as_bytes());
    match parse_response("fuzz", &raw, now()) {
        Ok(token) => {
            assert_eq!(token.secret().expose_secret(), jwt);
            assert_sane(&token);
        }
        Err(err) => {
            assert!(matches!(err, TokenError::InvalidResponse { .. }), "{err:?}");
            assert!(!format!("{err} {err:?}").contains(&jwt), "the JWT leaked: {err}");
            let exp =
                serde_json::from_slice::<Value>(data).ok().and_then(|c| c.get("exp").cloned());
            assert!(exp.is_some(), "refused a JWT without exp: {err}");
        }
    }
}

/// Whether `text` could make the loader read a file or follow an escape
/// that spells one (`{ file = … }`, `ca_file`, `\u0066ile`): such inputs are
/// skipped, the fuzzer must not read arbitrary files.
fn reads_files(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("file") || lower.contains("\\u") || lower.contains("path")
}

/// The string values a TOML config writes as secrets: a provider's
/// secret-named fields (`client_secret`, `password`, `private_key`, …, by
/// [`BodySnippet::is_secret_field`]) and everything under its `secrets`,
/// and the store's `url` and `encryption_key`. Not the `request` table of a
/// custom vendor: its `auth.password` is the *name* of a value.
fn toml_secrets(text: &str) -> Vec<String> {
    /// The strings in `value` and the keys of its tables.
    fn strings(value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::String(s) => out.push(s.clone()),
            toml::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            toml::Value::Table(table) => {
                for (key, v) in table {
                    out.push(key.clone());
                    strings(v, out);
                }
            }
            _ => {}
        }
    }
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    let (mut found, mut all) = (Vec::new(), Vec::new());
    strings(&toml::Value::Table(table.clone()), &mut all);
    let providers = table.get("providers").and_then(toml::Value::as_table);
    for provider in providers.into_iter().flat_map(|p| p.values()) {
        let Some(provider) = provider.as_table() else { continue };
        // Literals only: `{ env = "VAR" }` names a variable, not a secret.
        for (key, value) in provider {
            if key == "secrets" {
                let literals = value.as_table().into_iter().flat_map(|t| t.values());
                found.extend(literals.filter_map(|v| v.as_str().map(str::to_owned)));
            } else if BodySnippet::is_secret_field(key) || key.contains("secret") {
                found.extend(value.as_str().map(str::to_owned));
            }
        }
    }
    if let Some(store) = table.get("store").and_then(toml::Value::as_table) {
        for key in ["url", "encryption_key"] {
            found.extend(store.get(key).and_then(toml::Value::as_str).map(str::to_owned));
        }
    }
    found.retain(|s| {
        s.len() >= 8
            && s.bytes().any(|b| b.is_ascii_alphabetic())
            && s.bytes().any(|b| b.is_ascii_digit())
            && !s.chars().any(char::is_whitespace)
            && all.iter().filter(|o| o.contains(s.as_str())).count() == 1
    });
    found
}

/// The config loader with every adapter (custom included), on `data` as a
/// whole config and as the rest of a custom provider's table. No error
/// shows a secret the text wrote as a literal.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if reads_files(text) {
        return;
    }
    let registry = Registry::new()
        .without_store()
        .with(tokensmith_soti::SotiConnect)
        .with(tokensmith_configapi::ConfigApi)
        .with(tokensmith_oauth2::OAuth2)
        .with(tokensmith_deyel::Deyel)
        .with(tokensmith_custom::Custom);
    let custom = format!(
        "[providers.c]\nkind = \"custom\"\ntoken_url = \"https://127.0.0.1/token\"\nclient_id = \"id\"\n{text}"
    );
    for text in [text, custom.as_str()] {
        let secrets = toml_secrets(text);
        match registry.load_str_lenient(text) {
            Ok(report) => {
                for (_, err) in report.errors() {
                    assert_hidden(err, &secrets, text.as_bytes());
                }
            }
            Err(err) => assert_hidden(&err, &secrets, text.as_bytes()),
        }
    }
}

/// A described response: the first four lines are the pointers of the
/// token, the lifetime (`expires_in`, or `expires_at` when it starts with
/// `@`), the error code and message; then a status byte, a content-type
/// byte and the body. A token read from a strict JSON body is the string
/// its pointer names.
pub fn response_shape(data: &[u8]) {
    let mut parts = data.splitn(5, |b| *b == b'\n');
    let (Some(token), Some(life), Some(code), Some(message), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let [status, ct, body @ ..] = rest else { return };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (token_ptr, life, code, message) = (text(token), text(life), text(code), text(message));
    let Ok(mut shape) = ResponseShape::new(&token_ptr) else {
        assert!(ResponseShape::check_pointer(&token_ptr).is_err());
        return;
    };
    if let Some(at) = life.strip_prefix('@') {
        if let Ok(s) = shape.clone().expires_at(at, TimeFormat::Auto) {
            shape = s;
        }
    } else if let Ok(s) = shape.clone().expires_in(&life) {
        shape = s;
    }
    if let Ok(s) = shape.clone().error_code(&code) {
        shape = s;
    }
    if let Ok(s) = shape.clone().error_message(&message) {
        shape = s;
    }
    let status = match status % 4 {
        0 | 1 => 200,
        2 => 400 + u16::from(*status) % 100,
        _ => 500 + u16::from(*status) % 100,
    };
    let raw = RawResponse::new(status, content_type(*ct), body);
    // The parser reads JSON when the body starts with `{` or `[`, or the
    // content type says JSON: only then is the strict document its reading.
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    let json =
        matches!(start, Some(b'{' | b'[')) || content_type(*ct).is_some_and(|t| t.contains("json"));
    let doc = serde_json::from_slice::<Value>(body).ok().filter(|_| json);
    match shape.parse("fuzz", &raw, now()) {
        Ok(token) => {
            assert_sane(&token);
            if let Some(doc) = &doc
                && let Some(Value::String(at)) = doc.pointer(&token_ptr)
            {
                assert_eq!(token.secret().expose_secret(), at.trim(), "pointer {token_ptr:?}");
            }
        }
        Err(err) => {
            let mut secrets = body_secrets(body);
            if let Some(doc) = &doc
                && let Some(Value::String(at)) = doc.pointer(&token_ptr)
                && at.len() >= 8
                && at.bytes().any(|b| b.is_ascii_digit())
                && at.bytes().any(|b| b.is_ascii_alphabetic())
                && body.windows(at.len()).filter(|w| *w == at.as_bytes()).count() == 1
            {
                secrets.push(at.clone());
            }
            assert_hidden(&err, &secrets, data);
        }
    }
}

/// The store's value decoding: hostile bytes are refused or decode to a
/// token that encodes and decodes back to itself.
pub fn store_decode(data: &[u8]) {
    let Ok(token) = decode_token(data) else { return };
    assert_sane_stored(&token);
    let encoded = encode_token(&token);
    let back = decode_token(encoded.expose_secret().as_bytes()).expect("an encoded token decodes");
    assert_eq!(back.secret().expose_secret(), token.secret().expose_secret());
    assert_eq!(back.token_type(), token.token_type());
    assert_eq!(back.received_at(), token.received_at());
    assert_eq!(back.expires_at(), token.expires_at());
    assert_eq!(back.scope(), token.scope());
    assert_eq!(back.presentation(), token.presentation());
    assert_eq!(encode_token(&back).expose_secret(), encoded.expose_secret());
}

/// What a decoded token satisfies (its times may be in the past).
fn assert_sane_stored(token: &AccessToken) {
    let secret = token.secret().expose_secret();
    assert!(!secret.is_empty());
    assert!(!secret.chars().any(char::is_control), "a stored token with a control character");
    if let Some(at) = token.expires_at() {
        let left = at.duration_since(token.received_at()).unwrap_or_default();
        assert!(left <= MAX_EXPIRES_IN, "a stored lifetime beyond the clamp: {left:?}");
    }
}

/// The agent's request reading: the first line is the path, each further
/// line a `name: value` header. A provider name comes only from a segment
/// whose every `%` starts two hex digits; the header rule refuses exactly
/// an `Origin`, an `X-Forwarded-For`, or (unless exempt) a first
/// `Tokensmith-Request` other than `1`.
pub fn agent_request(data: &[u8]) {
    use request::{Endpoint, refusal, route};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or_default();
    let (endpoint, name) = route(path);
    if let Some(name) = &name {
        let segment = path.rsplit_once('/').map_or("", |(_, s)| s);
        assert!(matches!(endpoint, Endpoint::Token | Endpoint::Header | Endpoint::Invalidate));
        let bytes = segment.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%' {
                let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
                assert!(
                    hex.len() == 2 && hex.iter().all(u8::is_ascii_hexdigit),
                    "{path:?} decoded to {name:?}"
                );
            }
        }
        let again = name.bytes().fold(String::new(), |mut out, b| {
            let _ = write!(out, "%{b:02X}");
            out
        });
        assert_eq!(route(&format!("/v1/token/{again}")).1.as_deref(), Some(&**name));
    }
    let headers: Vec<(&str, &[u8])> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim().as_bytes()))
        .collect();
    for exempt in [false, true] {
        let refused = refusal(headers.iter().copied(), exempt).is_some();
        let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
        let marked = headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case("tokensmith-request"))
            .is_some_and(|(_, v)| *v == b"1");
        let expected = has("origin") || has("x-forwarded-for") || (!exempt && !marked);
        assert_eq!(refused, expected, "{headers:?} exempt {exempt}");
    }
}

/// A custom vendor's description and values, read from the fuzzer's lines
/// by [`custom_request`].
#[derive(Default)]
struct Described {
    url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    secrets: BTreeMap<String, String>,
    method: Option<String>,
    body: Option<String>,
    auth: Option<String>,
    auth_table: BTreeMap<String, String>,
    fields: toml::Table,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    present_header: Option<String>,
    present_value: Option<String>,
    token: Option<String>,
    token_type: Option<String>,
    typed: bool,
}

/// `\n`, `\r` and `\\` as the characters they name (a line cannot hold a
/// line feed otherwise); any other backslash stays.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') | None => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// Puts `value` into `table` at the dotted `path` (tables made on the
/// way), or appends it to the array there (`append`). A path through a
/// value that is not a table is skipped.
fn put_path(table: &mut toml::Table, path: &str, value: toml::Value, append: bool) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().unwrap_or_default();
    let mut at = table;
    for segment in segments {
        let entry =
            at.entry(segment.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else { return };
        at = inner;
    }
    if append {
        let entry = at.entry(last.to_owned()).or_insert_with(|| toml::Value::Array(Vec::new()));
        if let toml::Value::Array(items) = entry {
            items.push(value);
        }
    } else {
        at.insert(last.to_owned(), value);
    }
}

impl Described {
    /// Reads the lines `KEY VALUE` (`KEY NAME=VALUE` for the keyed ones):
    /// `url`, `client_id`, `client_secret`, `username`, `password`,
    /// `secret NAME=V`, `method`, `body`, `auth` (the type), `auth.user`,
    /// `auth.password`, `auth.header`, `auth.value`, `auth.id_field`,
    /// `auth.secret_field`, `field NAME=T` (a dotted name nests), `int`,
    /// `float`, `bool`, `item NAME=T` (an array element), `query NAME=T`,
    /// `header NAME=T`, `present.header`, `present.value`, `token`,
    /// `token_type`, `typed` (built by `CustomConfig` in code, not from a
    /// table). Other lines are ignored; values take `\n`, `\r`, `\\`.
    fn read(text: &str) -> Self {
        let mut d = Self::default();
        for line in text.split('\n') {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
            let (name, keyed) = (unescape(name), unescape(value));
            let value = unescape(rest);
            let field = |v| toml::Value::String(v);
            match key {
                "url" => d.url = Some(value),
                "client_id" => d.client_id = Some(value),
                "client_secret" => d.client_secret = Some(value),
                "username" => d.username = Some(value),
                "password" => d.password = Some(value),
                "secret" => {
                    d.secrets.insert(name, keyed);
                }
                "method" => d.method = Some(value),
                "body" => d.body = Some(value),
                "auth" => d.auth = Some(value),
                "present.header" => d.present_header = Some(value),
                "present.value" => d.present_value = Some(value),
                "token" => d.token = Some(value),
                "token_type" => d.token_type = Some(value),
                "typed" => d.typed = true,
                "field" => put_path(&mut d.fields, &name, field(keyed), false),
                "item" => put_path(&mut d.fields, &name, field(keyed), true),
                "int" => {
                    if let Ok(i) = keyed.parse::<i64>() {
                        put_path(&mut d.fields, &name, toml::Value::Integer(i), false);
                    }
                }
                "float" => {
                    if let Ok(f) = keyed.parse::<f64>() {
                        put_path(&mut d.fields, &name, toml::Value::Float(f), false);
                    }
                }
                "bool" => {
                    if let Ok(b) = keyed.parse::<bool>() {
                        put_path(&mut d.fields, &name, toml::Value::Boolean(b), false);
                    }
                }
                "query" => {
                    d.query.insert(name, keyed);
                }
                "header" => {
                    d.headers.insert(name, keyed);
                }
                _ => {
                    if let Some(auth_key) = key.strip_prefix("auth.") {
                        d.auth_table.insert(auth_key.to_owned(), value);
                    }
                }
            }
        }
        d
    }

    /// The `request`, `response` and `present` tables.
    fn description(&self) -> toml::Table {
        let s = |v: &str| toml::Value::String(v.to_owned());
        let mut request = toml::Table::new();
        if let Some(m) = &self.method {
            request.insert("method".into(), s(m));
        }
        if let Some(b) = &self.body {
            request.insert("body".into(), s(b));
        }
        if !self.fields.is_empty() {
            request.insert("fields".into(), toml::Value::Table(self.fields.clone()));
        }
        let strings = |map: &BTreeMap<String, String>| {
            toml::Value::Table(map.iter().map(|(k, v)| (k.clone(), s(v))).collect())
        };
        if !self.query.is_empty() {
            request.insert("query".into(), strings(&self.query));
        }
        if !self.headers.is_empty() {
            request.insert("headers".into(), strings(&self.headers));
        }
        if !self.auth_table.is_empty() {
            let toml::Value::Table(mut auth) = strings(&self.auth_table) else { unreachable!() };
            if let Some(kind) = &self.auth {
                auth.insert("type".into(), s(kind));
            }
            request.insert("auth".into(), toml::Value::Table(auth));
        } else if let Some(kind) = &self.auth {
            request.insert("auth".into(), s(kind));
        }
        let mut response = toml::Table::new();
        response.insert("token".into(), s("/access_token"));
        let mut present = toml::Table::new();
        if let Some(h) = &self.present_header {
            present.insert("header".into(), s(h));
        }
        if let Some(v) = &self.present_value {
            present.insert("value".into(), s(v));
        }
        let mut table = toml::Table::new();
        table.insert("request".into(), toml::Value::Table(request));
        table.insert("response".into(), toml::Value::Table(response));
        table.insert("present".into(), toml::Value::Table(present));
        table
    }

    fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or("client-1")
    }

    fn token_url(&self) -> tokensmith_core::Url {
        let default = || tokensmith_core::Url::parse("https://127.0.0.1/token").expect("a URL");
        self.url
            .as_deref()
            .and_then(|u| tokensmith_core::Url::parse(u).ok())
            .unwrap_or_else(default)
    }

    /// The whole `[providers.p]` table.
    fn table(&self) -> toml::Table {
        let s = |v: &str| toml::Value::String(v.to_owned());
        let mut table = self.description();
        table.insert("kind".into(), s("custom"));
        table.insert("token_url".into(), s(self.token_url().as_str()));
        table.insert("client_id".into(), s(self.client_id()));
        for (key, value) in [
            ("client_secret", &self.client_secret),
            ("username", &self.username),
            ("password", &self.password),
        ] {
            if let Some(v) = value {
                table.insert(key.into(), s(v));
            }
        }
        if !self.secrets.is_empty() {
            let secrets = self.secrets.iter().map(|(k, v)| (k.clone(), s(v))).collect();
            table.insert("secrets".into(), toml::Value::Table(secrets));
        }
        table
    }

    /// The provider, through a table (as the registry's factory builds it)
    /// or through [`tokensmith_custom::CustomConfig`].
    fn build(&self) -> Result<tokensmith_custom::CustomProvider, TokenError> {
        use tokensmith_core::{AdapterConfig as _, ConfigSecret, ProviderContext, SystemClock};
        let clock = std::sync::Arc::new(SystemClock);
        let ctx = if self.typed {
            let text = toml_text(&self.description());
            let mut config =
                tokensmith_custom::CustomConfig::new(self.token_url(), self.client_id(), &text)?;
            if let Some(v) = &self.client_secret {
                config = config.with_client_secret(ConfigSecret::literal(v.as_str()));
            }
            if let Some(v) = &self.username {
                config = config.with_username(v.as_str());
            }
            if let Some(v) = &self.password {
                config = config.with_password(ConfigSecret::literal(v.as_str()));
            }
            for (name, v) in &self.secrets {
                config = config.with_secret(name.as_str(), ConfigSecret::literal(v.as_str()));
            }
            let (common, fields) = config.into_parts();
            ProviderContext::from_parts("p", common, fields, clock)?
        } else {
            ProviderContext::new("p", self.table(), clock)?
        };
        tokensmith_custom::CustomProvider::from_context(&ctx)
    }

    /// Every named value: its name, value and whether it is a secret.
    fn values(&self) -> Vec<(&str, &str, bool)> {
        let mut values = vec![("client_id", self.client_id(), false)];
        values.extend(self.client_secret.as_deref().map(|v| ("client_secret", v, true)));
        values.extend(self.username.as_deref().map(|v| ("username", v, false)));
        values.extend(self.password.as_deref().map(|v| ("password", v, true)));
        values.extend(self.secrets.iter().map(|(n, v)| (n.as_str(), v.as_str(), true)));
        values
    }

    /// The value `name` stands for in a request template.
    fn value(&self, name: &str) -> Option<&str> {
        self.values().into_iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| v)
    }
}

/// A TOML string (basic, escaped): the harness writes its own TOML (the
/// `toml` crate is built without its writer).
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML value on one line (inline tables and arrays).
fn toml_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => toml_string(s),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_nan() => "nan".to_owned(),
        toml::Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "inf" } else { "-inf" }.to_owned()
        }
        toml::Value::Float(f) => format!("{f:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(table) => {
            let members: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_string(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", members.join(", "))
        }
    }
}

/// A table as TOML text: one `key = value` line per member.
fn toml_text(table: &toml::Table) -> String {
    let mut out = String::new();
    for (key, value) in table {
        let _ = writeln!(out, "{} = {}", toml_string(key), toml_value(value));
    }
    out
}

/// A request template rendered by the harness's own reading of the
/// template language (`{name}` a value, `{{` and `}}` braces): the text,
/// and the literal runs between its placeholders; `None` when it is
/// malformed or names an unknown value.
struct Rendered {
    text: String,
    literals: Vec<String>,
}

fn render_template<'v>(
    template: &str,
    value: impl Fn(&str) -> Option<&'v str>,
) -> Option<Rendered> {
    let mut r = Rendered { text: String::new(), literals: vec![String::new()] };
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        let brace = &rest[at..=at];
        let literal = r.literals.last_mut().expect("a literal run");
        r.text.push_str(&rest[..at]);
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix(brace) {
            r.text.push_str(brace);
            literal.push_str(brace);
            rest = after;
            continue;
        }
        if brace == "}" {
            return None;
        }
        let close = after.find('}')?;
        let name = &after[..close];
        let mut chars = name.chars();
        let first = chars.next()?;
        if !(first.is_ascii_alphabetic() || first == '_')
            || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return None;
        }
        r.text.push_str(value(name)?);
        r.literals.push(String::new());
        rest = &after[close + 1..];
    }
    r.text.push_str(rest);
    r.literals.last_mut().expect("a literal run").push_str(rest);
    Some(r)
}

/// A header value HTTP can carry: no control character but tab.
fn valid_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// The headers tokensmith sets itself (a description may not).
const OWN_HEADERS: [&str; 4] = ["content-type", "content-length", "host", "user-agent"];

/// A custom vendor's request templates evaluated: the fuzzer's lines (see
/// `Described::read`) describe a provider (query, headers, form or JSON
/// fields, client authentication, presentation) and its values; the
/// provider is built as the registry builds it (or from a `CustomConfig`)
/// and the request it would send rendered, unsent
/// ([`tokensmith_custom::CustomProvider::render`]). Invariants:
///
/// - a described provider builds only when every template is well formed
///   and names known values, and no literal text writes out a secret (four
///   characters or more);
/// - every rendered value (query parameter, header, form field, JSON
///   member, Basic credentials, body fields of `auth = "body"`) is the
///   harness's own rendering of its template, and nothing else is sent;
/// - every header value is one HTTP can carry (no CR, LF or other control
///   character), none is one tokensmith sets (`Content-Type`, `Host`, …);
/// - the presentation renders `present.value` with the token, and core's
///   rendering of the same presentation agrees;
/// - the request's size is bounded by the input's (no expansion);
/// - no secret shows in an error's `Display` or `Debug`, nor in the
///   provider's or the rendered request's `Debug`.
pub fn custom_request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let d = Described::read(text);
    let templates = d.templates();
    let secrets: Vec<&str> = d.values().iter().filter(|v| v.2).map(|v| v.1).collect();
    let mut well_formed = true;
    let mut writes_secret = false;
    for template in &templates {
        match render_template(template, |name| d.value(name)) {
            Some(r) => {
                writes_secret |= r
                    .literals
                    .iter()
                    .any(|l| secrets.iter().any(|s| s.chars().count() >= 4 && l.contains(s)));
            }
            None => well_formed = false,
        }
    }
    let distinctive = d.distinctive_secrets(&templates);
    let provider = match d.build() {
        Ok(provider) => provider,
        Err(err) => {
            let shown = format!("{err} {err:?}");
            for secret in &distinctive {
                assert!(!shown.contains(secret), "secret {secret:?} shown in the error {shown:?}");
            }
            return;
        }
    };
    assert!(well_formed, "a malformed template or an unknown name was accepted");
    assert!(!writes_secret, "a template writing out a secret's value was accepted");
    let sent = provider.render();
    let shown = format!("{provider:?} {sent:?}");
    for secret in &distinctive {
        assert!(!shown.contains(secret), "secret {secret:?} in a Debug: {shown}");
    }
    let get = d.method.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("get"));
    assert_eq!(sent.method, if get { "GET" } else { "POST" });
    check_query(&d, &sent);
    let headers = check_headers(&d, &sent);
    let body = sent.body.expose_secret();
    check_body(&d, sent.content_type, body);

    // No expansion: the whole request is within a small factor of the
    // input's square (each placeholder stands for at most the input).
    let size = sent.url.as_str().len()
        + body.len()
        + headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>();
    assert!(size <= 6 * (data.len() + 1).pow(2) + 4096, "{size} bytes from {} bytes", data.len());

    check_presentation(&d, &provider);
}

/// The strings of a TOML value, at any depth.
fn toml_strings<'a>(value: &'a toml::Value, out: &mut Vec<&'a str>) {
    match value {
        toml::Value::String(s) => out.push(s),
        toml::Value::Array(items) => items.iter().for_each(|v| toml_strings(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| toml_strings(v, out)),
        _ => {}
    }
}

/// The keys of a TOML table, at any depth.
fn toml_keys<'a>(table: &'a toml::Table, out: &mut Vec<&'a str>) {
    for (key, value) in table {
        out.push(key);
        if let toml::Value::Table(inner) = value {
            toml_keys(inner, out);
        }
    }
}

impl Described {
    /// Every request template: query, headers, `auth.value`, body fields.
    fn templates(&self) -> Vec<&str> {
        let mut templates: Vec<&str> =
            self.query.values().chain(self.headers.values()).map(String::as_str).collect();
        templates.extend(self.auth_table.get("value").map(String::as_str));
        self.fields.values().for_each(|v| toml_strings(v, &mut templates));
        templates
    }

    /// The secrets an error must never show: eight characters or more, a
    /// letter and a digit, none that `Debug` escapes (an error quoting
    /// other text must not spell one by accident), and written nowhere
    /// public (a name, a public value: a secret equal to a header name, say,
    /// is not distinctive).
    fn distinctive_secrets(&self, templates: &[&str]) -> Vec<&str> {
        let mut public: Vec<&str> = vec![self.client_id()];
        public.extend(self.username.as_deref());
        public.extend(self.secrets.keys().map(String::as_str));
        public.extend(self.query.keys().chain(self.headers.keys()).map(String::as_str));
        public
            .extend(self.auth_table.iter().filter(|(k, _)| *k != "value").map(|(_, v)| v.as_str()));
        public.extend(self.auth_table.keys().map(String::as_str));
        public.extend(
            [
                &self.method,
                &self.body,
                &self.auth,
                &self.present_header,
                &self.present_value,
                &self.url,
            ]
            .into_iter()
            .filter_map(|v| v.as_deref()),
        );
        // Names written in braces, known or not (an unknown one is quoted).
        for template in templates {
            public.extend(template.split('{').skip(1).filter_map(|rest| {
                let name = rest.split('}').next()?;
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_').then_some(name)
            }));
        }
        toml_keys(&self.fields, &mut public);
        self.values()
            .into_iter()
            .filter(|(_, s, secret)| {
                *secret
                    && s.len() >= 8
                    && s.bytes().any(|b| b.is_ascii_alphabetic())
                    && s.bytes().any(|b| b.is_ascii_digit())
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~+/=:@".contains(c))
                    && !public.iter().any(|p| p.contains(s))
            })
            .map(|(_, s, _)| s)
            .collect()
    }

    /// `template` rendered by the harness (the product took it).
    fn render(&self, template: &str) -> String {
        render_template(template, |name| self.value(name))
            .expect("a template the product took")
            .text
    }

    /// The client authentication's kind (`none` when not given).
    fn auth_kind(&self) -> &str {
        self.auth.as_deref().unwrap_or("none")
    }
}

/// The query: the token URL's own parameters, then each described one.
fn check_query(d: &Described, sent: &tokensmith_custom::RenderedRequest) {
    let base = d.token_url();
    let mut sent_bare = sent.url.clone();
    sent_bare.set_query(None);
    let mut base_bare = base.clone();
    base_bare.set_query(None);
    assert_eq!(sent_bare, base_bare, "the token URL changed");
    let mut query: Vec<(String, String)> = sent.url.query_pairs().into_owned().collect();
    let mut expected: Vec<(String, String)> = base.query_pairs().into_owned().collect();
    expected.extend(d.query.iter().map(|(n, t)| (n.clone(), d.render(t))));
    query.sort();
    expected.sort();
    assert_eq!(query, expected, "the query");
}

/// The headers: described, the auth header, Basic credentials; each one
/// HTTP can carry and none of tokensmith's own. Returns them.
fn check_headers(
    d: &Described,
    sent: &tokensmith_custom::RenderedRequest,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> =
        sent.headers.iter().map(|(n, v)| (n.clone(), v.expose_secret().to_owned())).collect();
    let mut expected: Vec<(String, String)> =
        d.headers.iter().map(|(n, t)| (n.clone(), d.render(t))).collect();
    match d.auth_kind() {
        "header" => expected.push((
            d.auth_table.get("header").cloned().expect("an auth header"),
            d.render(d.auth_table.get("value").expect("an auth value")),
        )),
        "basic" => {
            let named = |key: &str, default: &str| {
                let name = d.auth_table.get(key).map_or(default, String::as_str);
                let name = name.trim_start_matches('{').trim_end_matches('}');
                d.value(name).expect("a known Basic value")
            };
            let pair =
                format!("{}:{}", named("user", "client_id"), named("password", "client_secret"));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            expected.push(("Authorization".into(), format!("Basic {basic}")));
        }
        _ => {}
    }
    headers.sort();
    expected.sort();
    assert_eq!(headers, expected, "the headers");
    for (name, value) in &headers {
        assert!(valid_header_value(value), "header {name} sent with a control character");
        let lower = name.to_ascii_lowercase();
        assert!(!OWN_HEADERS.contains(&lower.as_str()), "header {name} is tokensmith's own");
    }
    headers
}

/// A described JSON body value as the harness renders it.
fn json_value(d: &Described, value: &toml::Value) -> Value {
    match value {
        toml::Value::String(t) => Value::String(d.render(t)),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(t) => Value::String(t.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(|v| json_value(d, v)).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), json_value(d, v))).collect())
        }
    }
}

/// The body: the fields, then those of `auth = "body"`.
fn check_body(d: &Described, content_type: Option<&str>, body: &str) {
    let mut auth_fields = Vec::new();
    if d.auth_kind() == "body" {
        let id = d.auth_table.get("id_field").map_or("client_id", String::as_str);
        auth_fields.push((id.to_owned(), d.client_id().to_owned()));
        if let Some(secret) = &d.client_secret {
            let field = d.auth_table.get("secret_field").map_or("client_secret", String::as_str);
            auth_fields.push((field.to_owned(), secret.clone()));
        }
    }
    match content_type {
        None => {
            assert!(body.is_empty(), "a body without a content type");
            assert!(d.fields.is_empty() && auth_fields.is_empty(), "fields dropped");
        }
        Some("application/x-www-form-urlencoded") => {
            let mut form = tokensmith_core::Url::parse("http://form/").expect("a URL");
            form.set_query(Some(body));
            let mut pairs: Vec<(String, String)> = form.query_pairs().into_owned().collect();
            let mut expected: Vec<(String, String)> = d
                .fields
                .iter()
                .map(|(name, value)| {
                    let text = match value {
                        toml::Value::String(t) => d.render(t),
                        toml::Value::Integer(i) => i.to_string(),
                        toml::Value::Float(f) => f.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        other => panic!("a form took {other:?}"),
                    };
                    (name.clone(), text)
                })
                .collect();
            expected.extend(auth_fields);
            pairs.sort();
            expected.sort();
            assert_eq!(pairs, expected, "the form");
        }
        Some("application/json") => {
            let mut expected = json_value(d, &toml::Value::Table(d.fields.clone()));
            let members = expected.as_object_mut().expect("an object");
            for (name, value) in auth_fields {
                assert!(members.insert(name, Value::String(value)).is_none(), "a field sent twice");
            }
            let got: Value = serde_json::from_str(body).expect("a JSON body");
            // Through the same reading: serde_json's float parsing (without
            // `float_roundtrip`) may be one unit off, for both alike.
            let expected: Value = serde_json::from_str(&expected.to_string()).expect("JSON");
            assert_eq!(got, expected, "the JSON body");
        }
        Some(other) => panic!("content type {other}"),
    }
}

/// The presentation, by the provider and by core: `present.value` with the
/// token (a sane one: what the parser accepts).
fn check_presentation(d: &Described, provider: &tokensmith_custom::CustomProvider) {
    let token = d.token.as_deref().unwrap_or("tok-1");
    if token.is_empty() || token.trim() != token || token.chars().any(char::is_control) {
        return;
    }
    let token_type = TokenType::parse(d.token_type.as_deref());
    if token_type.as_str().chars().any(char::is_control) {
        return;
    }
    let token = AccessToken::builder(token, now()).token_type(token_type).build();
    let (name, value) = provider.present(&token);
    let template = d.present_value.as_deref().unwrap_or("Bearer {token}");
    let type_name = token.token_type().as_str().to_owned();
    let secret = token.secret().expose_secret().to_owned();
    let presented = render_template(template, |n| match n {
        "token" => Some(secret.as_str()),
        "token_type" => Some(type_name.as_str()),
        _ => None,
    })
    .expect("a presentation the product took");
    assert_eq!(name, d.present_header.as_deref().unwrap_or("Authorization"));
    assert_eq!(value.expose_secret(), presented.text, "the presentation");
    let core = token.with_presentation(provider.presentation().to_core());
    match core.header() {
        Ok((core_name, core_value)) => {
            assert_eq!(core_name.as_str(), name.to_ascii_lowercase());
            assert_eq!(core_value.as_bytes(), value.expose_secret().as_bytes(), "core differs");
        }
        Err(_) => assert!(!valid_header_value(value.expose_secret()), "core refused {name}"),
    }
}
