//! The bodies of tokensmith's fuzz targets, one function per target, each
//! taking the fuzzer's bytes and panicking when an invariant breaks.
//!
//! Shared by the cargo-fuzz binaries (`fuzz_targets/*.rs`, nightly features
//! through `RUSTC_BOOTSTRAP=1`) and by the regression replay on stable
//! (`tests/it/fuzz_corpus.rs` includes this file by path and runs every file
//! of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through
//! [`run`]). Plain `std` and the workspace's crates only: no `libfuzzer-sys`
//! here, so the replay builds wherever the tests build.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokensmith_core::{
    AccessToken, BodySnippet, MAX_EXPIRES_IN, RawResponse, Registry, ResponseShape, TimeFormat,
    TokenError, decode_token, encode_token, parse_response,
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
