//! Redaction in one place: what an error may show of what a server answered.
//!
//! Every text an error keeps from a response (the body snippet, the vendor's
//! error, the reason) is made safe here, through one entry point,
//! [`redact`], and the [`Redacted::seal`] of the error built from it:
//!
//! 1. what the request sent ([`Secrets`]: each secret raw, form-encoded and
//!    JSON-escaped, and the `Authorization` header's credentials) is scrubbed
//!    from the raw body *before* it is decoded or cut, so not even a prefix
//!    of a secret survives a cut; a body cut at the size limit also loses a
//!    trailing part of a secret;
//! 2. a token response ([`Shape::Response`]) is decoded, re-decoded only when
//!    step 1 changed it; the values of its token fields ([`TOKEN_KEYS`], at
//!    any depth) are scrubbed from every string of it, and a body with more
//!    than [`MAX_TOKEN_VALUES`] of them is withheld whole ([`WITHHELD`]),
//!    which keeps the work linear in the body;
//! 3. a JSON body is re-serialised, and a form body with a secret key
//!    re-encoded, with the values of [`SECRET_KEYS`] replaced;
//! 4. any text then has the values of [`SECRET_KEYS`] replaced where they
//!    look like a JSON member (also escaped inside a JSON string), a form pair
//!    or `key: value` text (`Authorization: Basic …` with its credentials);
//! 5. the snippet is made one line (control characters and whitespace runs
//!    become one space) and cut at [`BodySnippet::MAX_CHARS`];
//! 6. [`Redacted::seal`] scrubs what was sent once more from every text of
//!    the finished error (made one line, a secret can show a spelling again).
//!
//! Only errors pay for this: the success path never calls it.

use std::borrow::Cow;

use serde_json::{Map, Value};
use url::form_urlencoded;

use crate::TokenError;
use crate::error::BodySnippet;
use crate::parse::Body;

/// Keys whose values never appear in an error (matched in any case): the
/// one list, also public as [`BodySnippet::SECRET_FIELDS`].
pub(crate) const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "code",
    "code_verifier",
    "assertion",
    "client_assertion",
    "authorization",
];

/// The token fields whose values found in a body are scrubbed wherever else
/// the body repeats them (an echo in `error_description`).
const TOKEN_KEYS: [&str; 3] = ["access_token", "refresh_token", "id_token"];

/// The marker that replaces a secret value.
const REDACTED: &str = "[REDACTED]";

/// The most token values scrubbed from a body. Scrubbing costs values ×
/// body; no token response carries more than a few, so a body with more is
/// withheld from the error instead (snippet [`WITHHELD`], no fields).
const MAX_TOKEN_VALUES: usize = 16;

/// The snippet of a withheld body (see [`MAX_TOKEN_VALUES`]).
pub(crate) const WITHHELD: &str = "[REDACTED: too many token values to scrub]";

/// How much of a body cut at the size limit ([`Shape::Cut`]) the snippet is
/// made from.
const CUT_SOURCE_BYTES: usize = 4096;

/// Whether `key` (any case) is one of [`SECRET_KEYS`].
pub(crate) fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// The secrets a request sent, in every spelling a server echoing the request
/// (or a JSON error built from it) shows them in. Built only on the error
/// path; deliberately neither `Debug` nor `Clone`.
#[derive(Default)]
pub(crate) struct Secrets {
    /// Every spelling of every secret value.
    spellings: Vec<String>,
    /// Keys, lowercase, whose values are redacted like those of
    /// [`SECRET_KEYS`]: the names a vendor described in config gives its
    /// secret fields (`clientKey`, the key of a token at `/data/jwt`).
    keys: Vec<String>,
}

impl Secrets {
    /// Nothing sent (a discovery document, a response parsed on its own).
    pub(crate) const NONE: Self = Self { spellings: Vec::new(), keys: Vec::new() };

    /// These secrets, and the values of `keys` (any case) redacted wherever
    /// a body shows them, as those of [`SECRET_KEYS`] are.
    pub(crate) fn with_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Self {
        for key in keys {
            let key = key.to_ascii_lowercase();
            if !key.is_empty() && !is_secret_key(&key) && !self.keys.contains(&key) {
                self.keys.push(key);
            }
        }
        self
    }

    /// These secrets and `values` (raw and JSON-escaped): values a response
    /// holds at a described token field, scrubbed wherever else the body
    /// repeats them.
    pub(crate) fn with_values<'a>(mut self, values: impl IntoIterator<Item = &'a str>) -> Self {
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            self.spellings.push(value.to_owned());
            let quoted = Value::from(value).to_string();
            if let Some(escaped) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                self.spellings.push(escaped.to_owned());
            }
        }
        self.spellings.sort_unstable();
        self.spellings.dedup();
        self
    }

    /// Whether `key` (any case) holds a secret: one of [`SECRET_KEYS`] or
    /// of these secrets' own keys.
    fn is_secret_key(&self, key: &str) -> bool {
        is_secret_key(key) || self.keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Each of `values` as sent (form-urlencoded), raw, and escaped as inside
    /// a JSON string; of the `authorization` header value, its credentials
    /// (what follows `Basic `).
    pub(crate) fn sent<'a>(
        values: impl IntoIterator<Item = &'a str>,
        authorization: Option<&str>,
    ) -> Self {
        let mut spellings = Vec::new();
        for value in values {
            spellings.push(value.to_owned());
            spellings.push(form_urlencoded::byte_serialize(value.as_bytes()).collect());
            let quoted = Value::from(value).to_string();
            if let Some(escaped) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                spellings.push(escaped.to_owned());
            }
        }
        if let Some(header) = authorization {
            spellings.push(header.strip_prefix("Basic ").unwrap_or(header).to_owned());
        }
        spellings.retain(|s| !s.is_empty());
        spellings.sort_unstable();
        spellings.dedup();
        Self { spellings, keys: Vec::new() }
    }

    /// `text` with every spelling scrubbed.
    fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        scrub(text, &self.spellings)
    }
}

/// What a body is known to be.
#[derive(Clone, Copy)]
pub(crate) enum Shape<'a> {
    /// Text of any shape: only keys are looked for.
    Text,
    /// A whole token response, as the parser decoded it.
    Response {
        /// The `Content-Type` it came with.
        content_type: Option<&'a str>,
        /// The parser's reading of the body.
        decoded: &'a Body,
    },
    /// The start of a body refused at the size limit (never decoded).
    Cut,
}

/// A body made safe to keep in an error; see the [module docs](self).
pub(crate) struct Redacted<'s> {
    sent: &'s Secrets,
    /// A token response's fields with every secret value scrubbed (keys
    /// kept, so the vendor's error reads as sent); `None` when the body has
    /// no fields or was withheld.
    fields: Option<Map<String, Value>>,
    snippet: BodySnippet,
}

impl Redacted<'_> {
    /// The fields to read the vendor's error from.
    pub(crate) fn fields(&self) -> Option<&Map<String, Value>> {
        self.fields.as_ref()
    }

    /// The snippet for the error.
    pub(crate) fn snippet(&self) -> BodySnippet {
        self.snippet.clone()
    }

    /// `error`, built from this body, with what was sent scrubbed once more
    /// from every text it took from the response (the snippet, the vendor's
    /// error, the reason), and the values of secret keys redacted there too
    /// (an `error_description` echoing `Authorization: Basic …` in another
    /// encoding than the one sent).
    pub(crate) fn seal(&self, error: TokenError) -> TokenError {
        error.map_response_text(|text| {
            redact_keys(&self.sent.scrub(text), &self.sent.keys).into_owned()
        })
    }
}

/// Redacts `body` (of `shape`) for an error, `sent` being what the request
/// sent: the one entry point; see the [module docs](self) for the steps.
pub(crate) fn redact<'s>(body: &[u8], shape: Shape<'_>, sent: &'s Secrets) -> Redacted<'s> {
    let text = String::from_utf8_lossy(body);
    let scrubbed = sent.scrub(&text);
    let (fields, text) = match shape {
        Shape::Text => (None, scrubbed),
        Shape::Cut => {
            let mut cut = scrubbed.into_owned();
            drop_partial_secret(&mut cut, sent);
            let mut end = cut.len().min(CUT_SOURCE_BYTES);
            while !cut.is_char_boundary(end) {
                end -= 1;
            }
            cut.truncate(end);
            (None, Cow::Owned(cut))
        }
        Shape::Response { content_type, decoded } => {
            let redecoded;
            let decoded = if matches!(scrubbed, Cow::Borrowed(_)) {
                decoded
            } else {
                redecoded = Body::decode(content_type, scrubbed.as_bytes());
                &redecoded
            };
            let fields = decoded.fields();
            let mut secrets = fields.as_deref().map(token_values).unwrap_or_default();
            if secrets.len() > MAX_TOKEN_VALUES {
                let snippet = BodySnippet(WITHHELD.to_owned());
                return Redacted { sent, fields: None, snippet };
            }
            secrets.extend(sent.spellings.iter().cloned());
            let fields = fields.map(|f| scrub_fields(&f, &secrets));
            let text = match decoded {
                Body::Json(value) => Cow::Owned(
                    serde_json::to_string(&redact_value(value, &secrets, Some(sent)))
                        .unwrap_or_default(),
                ),
                Body::Form(pairs) if pairs.iter().any(|(k, _)| sent.is_secret_key(k)) => {
                    Cow::Owned(redact_form(pairs, &secrets, sent))
                }
                _ => scrubbed,
            };
            (fields, text)
        }
    };
    let snippet = BodySnippet(one_line(&redact_keys(&text, &sent.keys), BodySnippet::MAX_CHARS));
    Redacted { sent, fields, snippet }
}

/// `text` on one line: control characters and whitespace runs become one
/// space, trimmed, cut after `max` characters (marked `…`).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for ch in text.chars() {
        if ch.is_control() || ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if count >= max {
            out.push('…');
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(ch);
        count += 1;
    }
    out
}

/// `text` with every occurrence of each non-empty secret replaced, in one
/// pass: where occurrences overlap, the earliest (then the longest) wins, and
/// the markers put in are never searched again.
fn scrub<'t>(text: &'t str, secrets: &[String]) -> Cow<'t, str> {
    let mut hits: Vec<(usize, usize)> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        hits.extend(text.match_indices(secret.as_str()).map(|(at, s)| (at, at + s.len())));
    }
    if hits.is_empty() {
        return Cow::Borrowed(text);
    }
    hits.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in hits {
        if start < copied {
            // Overlaps a replaced occurrence: cover the rest of it too.
            copied = copied.max(end);
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Drops a trailing part of a sent secret from `text` (a body cut at the
/// limit may end inside one, already past the scrubbing of whole ones).
fn drop_partial_secret(text: &mut String, sent: &Secrets) {
    for secret in &sent.spellings {
        let partial = (1..secret.len())
            .rev()
            .filter(|&n| secret.is_char_boundary(n))
            .find(|&n| text.ends_with(&secret[..n]));
        if let Some(n) = partial {
            text.truncate(text.len() - n);
        }
    }
}

/// Every string value of a token field, at any depth, longest first (so a
/// secret containing another is scrubbed whole).
fn token_values(fields: &Map<String, Value>) -> Vec<String> {
    fn strings(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::String(s) if !s.is_empty() => found.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, found)),
            Value::Object(map) => map.values().for_each(|v| strings(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    let mut stack: Vec<&Map<String, Value>> = vec![fields];
    let mut arrays: Vec<&Value> = Vec::new();
    while let Some(map) = stack.pop() {
        for (key, value) in map {
            if TOKEN_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                strings(value, &mut found);
            }
            arrays.push(value);
        }
        while let Some(value) = arrays.pop() {
            match value {
                Value::Object(inner) => stack.push(inner),
                Value::Array(items) => arrays.extend(items),
                _ => {}
            }
        }
    }
    found.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    found.dedup();
    found
}

/// `fields` with `secrets` scrubbed from every key and string, at any depth.
fn scrub_fields(fields: &Map<String, Value>, secrets: &[String]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(k, v)| (scrub(k, secrets).into_owned(), redact_value(v, secrets, None)))
        .collect()
}

/// A copy of `value` with `secrets` scrubbed from every string and, when
/// `keys` are given, the values of their secret keys replaced, at any depth.
fn redact_value(value: &Value, secrets: &[String], keys: Option<&Secrets>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if keys.is_some_and(|keys| keys.is_secret_key(k)) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact_value(v, secrets, keys)
                    };
                    (scrub(k, secrets).into_owned(), v)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| redact_value(v, secrets, keys)).collect())
        }
        Value::String(s) => Value::String(scrub(s, secrets).into_owned()),
        other => other.clone(),
    }
}

/// Form pairs re-encoded with the values of [`SECRET_KEYS`] replaced and
/// `secrets` scrubbed from the rest.
fn redact_form(pairs: &[(String, String)], secrets: &[String], keys: &Secrets) -> String {
    let encode = |s: &str| -> String {
        form_urlencoded::byte_serialize(scrub(s, secrets).as_bytes()).collect()
    };
    pairs
        .iter()
        .map(|(k, v)| {
            if keys.is_secret_key(k) {
                format!("{}={REDACTED}", encode(k))
            } else {
                format!("{}={}", encode(k), encode(v))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Replaces the values of [`SECRET_KEYS`] in JSON, form and `key: value`
/// text, and those of `extra` keys (lowercase).
fn redact_keys<'t>(text: &'t str, extra: &[String]) -> Cow<'t, str> {
    // ASCII lowercasing keeps byte offsets, so positions found in `lower`
    // index `text` too.
    let lower = text.to_ascii_lowercase();
    // Byte ranges of values to replace.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for key in SECRET_KEYS.iter().copied().chain(extra.iter().map(String::as_str)) {
        let mut from = 0;
        while let Some(at) = find_key(&lower, key, from) {
            let key_end = at + key.len();
            let span = value_span(text.as_bytes(), key_end);
            // `Authorization: <scheme> <credentials>`: the credentials too.
            let span = match span {
                Some((start, end)) if key == "authorization" => {
                    Some((start, credentials_end(text.as_bytes(), start, end)))
                }
                other => other,
            };
            match span {
                Some((start, end)) => {
                    spans.push((start, end));
                    from = end.max(key_end);
                }
                None => from = key_end,
            }
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans {
        if end <= copied {
            continue;
        }
        let start = start.max(copied);
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Finds `key` from byte `from` on as a whole key (not part of a longer name).
fn find_key(lower: &str, key: &str, mut from: usize) -> Option<usize> {
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = lower.as_bytes();
    while let Some(i) = lower.get(from..)?.find(key) {
        let at = from + i;
        let end = at + key.len();
        let prev_ok = at == 0 || !is_name(bytes[at - 1]);
        let next_ok = end == bytes.len() || !is_name(bytes[end]);
        if prev_ok && next_ok {
            return Some(at);
        }
        from = end;
    }
    None
}

/// Whether `b` ends a bare (unquoted) value.
fn ends_bare_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(b, b'&' | b',' | b';' | b'}' | b']' | b'"' | b'\'' | b'<' | b'>' | b'\\')
}

/// The byte range of the value that follows a key ending at `key_end`: after
/// closing quotes (plain or escaped) and spaces, a `:`, `=` or `=>`, then a
/// string (the range is its content, so the quotes stay), an array or object
/// (the whole of it), or a bare word. `None` when no value follows.
fn value_span(b: &[u8], key_end: usize) -> Option<(usize, usize)> {
    let mut i = key_end;
    // Closing quote(s) of the key and spaces, at most a few characters.
    while i < b.len()
        && i - key_end < 8
        && matches!(b[i], b'"' | b'\'' | b'\\' | b' ' | b'\t' | b'\r' | b'\n')
    {
        i += 1;
    }
    match b.get(i) {
        Some(b':') => i += 1,
        Some(b'=') => {
            i += 1;
            if b.get(i) == Some(&b'>') {
                i += 1;
            }
        }
        _ => return None,
    }
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    let end = match b.get(i)? {
        b'"' => return Some((start + 1, string_end(b, start + 1, b'"'))),
        b'\'' => return Some((start + 1, string_end(b, start + 1, b'\''))),
        b'\\' if b.get(i + 1) == Some(&b'"') => {
            return Some((start + 2, escaped_string_end(b, start + 2)));
        }
        b'[' | b'{' => bracket_end(b, start),
        _ => bare_end(b, start),
    };
    (end > start).then_some((start, end))
}

/// The index just past a bare value starting at `from`.
fn bare_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|&c| ends_bare_value(c)).map_or(b.len(), |n| from + n)
}

/// Where an `authorization` value spanning `start..end` really ends: when it
/// is a bare auth scheme (`Basic`, `Bearer`: letters, digits, `-`) followed
/// by one space, the credentials after the space belong to it too.
fn credentials_end(b: &[u8], start: usize, end: usize) -> usize {
    let scheme = &b[start..end];
    let bare_scheme = !scheme.is_empty()
        && scheme.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && (start == 0 || !matches!(b[start - 1], b'"' | b'\''));
    if !bare_scheme || b.get(end) != Some(&b' ') {
        return end;
    }
    bare_end(b, end + 1)
}

/// The index of the closing `quote` of a string whose content starts at
/// `from` (backslash escapes honoured), or the end of the text.
fn string_end(b: &[u8], from: usize, quote: u8) -> usize {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// Like [`string_end`] for a JSON string embedded in another JSON string
/// (`\"…\"`): one level of escapes is undone before scanning. Returns the
/// index of the backslash of the closing `\"`.
fn escaped_string_end(b: &[u8], from: usize) -> usize {
    let mut i = from;
    let mut inner_escape = false;
    while i < b.len() {
        // One outer token: `\x` stands for `x`, anything else for itself.
        let (ch, len) = if b[i] == b'\\' && i + 1 < b.len() { (b[i + 1], 2) } else { (b[i], 1) };
        if inner_escape {
            inner_escape = false;
        } else if ch == b'\\' {
            inner_escape = true;
        } else if ch == b'"' {
            return i;
        }
        i += len;
    }
    b.len()
}

/// The index just past the bracket matching the one at `open` (strings
/// skipped), or the end of the text.
fn bracket_end(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' => i = string_end(b, i + 1, b'"'),
            _ => {}
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::parse::{RawResponse, parse_sent};

    /// How a body reaches [`redact`].
    #[derive(Clone, Copy)]
    enum As {
        /// [`Shape::Text`], as [`BodySnippet::new`] hands it over.
        Text,
        /// [`Shape::Response`], decoded with this `Content-Type`.
        Response(Option<&'static str>),
        /// [`Shape::Cut`]: the start of a body over the size limit.
        Cut,
    }
    use As::{Cut, Response, Text};

    const JSON: As = Response(Some("application/json"));
    const NONE: &[&str] = &[];

    /// What a request sent: secret values, and an `Authorization` header.
    fn sent(values: &[&str], authorization: Option<&str>) -> Secrets {
        Secrets::sent(values.iter().copied(), authorization)
    }

    /// A JSON body with `n` access token values.
    fn tokens(n: usize) -> String {
        let values: Vec<String> = (0..n).map(|i| format!("\"v{i}\"")).collect();
        format!(r#"{{"access_token":[{}]}}"#, values.join(","))
    }

    #[track_caller]
    fn check(shape: As, body: &str, secrets: &[&str], expected: &str) {
        check_sent(shape, body, &sent(secrets, None), expected);
    }

    #[track_caller]
    fn check_sent(shape: As, body: &str, sent: &Secrets, expected: &str) {
        let decoded;
        let shape = match shape {
            Text => Shape::Text,
            Cut => Shape::Cut,
            Response(content_type) => {
                decoded = Body::decode(content_type, body.as_bytes());
                Shape::Response { content_type, decoded: &decoded }
            }
        };
        assert_eq!(redact(body.as_bytes(), shape, sent).snippet().as_str(), expected, "{body:?}");
    }

    // One line per case: a table, kept as one.
    #[rustfmt::skip]
    #[test]
    fn redaction() {
        // keys: any case, spaces and newlines around `:`, arrays, objects,
        // bare values, escaped JSON inside a string, `=>`, form pairs
        check(Text, r#"{"access_token":"abc","x":1}"#, NONE, r#"{"access_token":"[REDACTED]","x":1}"#);
        check(Text, r#"{"access_token" : "a\"bc", "x":1}"#, NONE, r#"{"access_token" : "[REDACTED]", "x":1}"#);
        check(Text, "access_token=abc&token_type=bearer", NONE, "access_token=[REDACTED]&token_type=bearer");
        check(Text, r#"{"error_code":"x","code":"c0de"}"#, NONE, r#"{"error_code":"x","code":"[REDACTED]"}"#);
        check(Text, "{\n  \"Access_Token\"\n  :\n  \"abc\" }", NONE, r#"{ "Access_Token" : "[REDACTED]" }"#);
        check(Text, r#"{"access_token":["a","b"],"x":1}"#, NONE, r#"{"access_token":[REDACTED],"x":1}"#);
        check(Text, r#"{"refresh_token":{"v":"a,b}"},"x":1}"#, NONE, r#"{"refresh_token":[REDACTED],"x":1}"#);
        check(Text, r#"{"password":12345,"x":1}"#, NONE, r#"{"password":[REDACTED],"x":1}"#);
        check(Text, r#"{"echo":"{\"access_token\":\"a\\\"b\",\"x\":1}"}"#, NONE, r#"{"echo":"{\"access_token\":\"[REDACTED]\",\"x\":1}"}"#);
        check(Text, "access_token => 'abc', x", NONE, "access_token => '[REDACTED]', x");
        check(Text, "id_token: abc def", NONE, "id_token: [REDACTED] def");
        check(Text, "CLIENT_SECRET=abc&x=1", NONE, "CLIENT_SECRET=[REDACTED]&x=1");
        check(Text, r#"{"access_token":"abc"#, NONE, r#"{"access_token":"[REDACTED]"#);
        check(Text, r#"{"access_token":["abc"#, NONE, r#"{"access_token":[REDACTED]"#);
        check(Text, r#"{"access_token":"é\"ü","x":"ö"}"#, NONE, r#"{"access_token":"[REDACTED]","x":"ö"}"#);
        // not keys: longer names, a key with no value
        check(Text, r#"{"my_access_token":"abc"}"#, NONE, r#"{"my_access_token":"abc"}"#);
        check(Text, r#"{"error":"missing access_token"}"#, NONE, r#"{"error":"missing access_token"}"#);
        // an echoed Authorization header: the scheme and its credentials
        check(Text, "Authorization: Basic QWxhZGRpbjpvcGVu\r\nHost: x", NONE, "Authorization: [REDACTED] Host: x");
        check(Text, "authorization=Bearer abc&x=1", NONE, "authorization=[REDACTED]&x=1");
        check(Text, "Proxy-Authorization: Basic QWxh, x", NONE, "Proxy-Authorization: [REDACTED], x");
        check(Text, r#"{"headers":{"Authorization":"Basic QWxh"},"x":1}"#, NONE, r#"{"headers":{"Authorization":"[REDACTED]"},"x":1}"#);
        check(Text, "authorization: QWxhZGRp", NONE, "authorization: [REDACTED]");
        // the SOTI seed request, verbatim, echoed by a server
        check(Text, "POST https://server.domain.tld/Connect/api/token HTTP/1.1 Host: server.domain.tld Authorization: Basic QXBwbGljYXRpb24xOkFwcGxpY2F0aW9uMVBhc3N3b3Jk Content-Type: application/x-www-form-urlencoded Content-Length: 53 grant_type=password&username=Administrator&password=1", NONE, "POST https://server.domain.tld/Connect/api/token HTTP/1.1 Host: server.domain.tld Authorization: [REDACTED] Content-Type: application/x-www-form-urlencoded Content-Length: 53 grant_type=password&usern…");
        // one line: control characters and whitespace runs, bounded
        check(Text, "<html>\n\n  <b>oops</b>\n</html>", NONE, "<html> <b>oops</b> </html>");
        check(Text, "a\u{1b}[2Jb\r\n\u{9b}31mc\u{0}", NONE, "a [2Jb 31mc");
        check(Text, "", NONE, "");
        check(Text, " \r\n ", NONE, "");
        check(Text, &"x".repeat(1000), NONE, &format!("{}…", "x".repeat(BodySnippet::MAX_CHARS)));
        // whitespace runs before a secret do not push the cut past it
        check(Text, &format!("{}access_token=abc", " \n".repeat(10_000)), NONE, "access_token=[REDACTED]");
        // what was sent: in one pass, overlaps covered, markers never searched again
        check(Text, "got abc", &["abc"], "got [REDACTED]");
        check(Text, "got abc", &[""], "got abc");
        check(Text, "got abc and R", &["abc", "R"], "got [REDACTED] and [REDACTED]");
        check(Text, "abcd", &["abc", "bcd"], "[REDACTED]");
        check(Text, "abcd", &["bc", "abcd"], "[REDACTED]");
        check(Text, "aaaa", &["aa"], "[REDACTED][REDACTED]");
        check(Text, "[REDACTED]", &["RED"], "[[REDACTED]ACTED]");
        // ... in every spelling: raw, form-encoded, JSON-escaped; Basic credentials
        check(Text, "echo=p%40ss+w%26&x=1", &["p@ss w&"], "echo=[REDACTED]&x=1");
        check(Text, r#"{"echo":"p\"w\\d","x":1}"#, &["p\"w\\d"], r#"{"echo":"[REDACTED]","x":1}"#);
        check_sent(Text, "got QXBwOnM= back", &sent(NONE, Some("Basic QXBwOnM=")), "got [REDACTED] back");
        // ... before the cut, so not even a prefix survives it
        check(Text, &format!("{}p@ss", "x".repeat(198)), &["p@ss"], &format!("{}[R…", "x".repeat(198)));
        // token responses: re-serialised (seed bodies verbatim), tokens scrubbed wherever repeated
        check(JSON, "{\n\n    \"error_description\": \"Invalid client_id\",\n\n    \"error\": \"Invalid_request\"\n\n}", NONE, r#"{"error":"Invalid_request","error_description":"Invalid client_id"}"#);
        check(JSON, "{\n\"access_token\":\"eyJhbGciOiJSUzI1NiI5q9Jgt...6HznsvPWy7UP3MINA\",\n\"token_type\":\"Bearer\",\n\"expires_in\":\"3599\",\n}", NONE, r#"{"access_token":"[REDACTED]","expires_in":"3599","token_type":"Bearer"}"#);
        check(JSON, r#"{"access\u005ftoken":"T0K","error":"x","note":{"n":"got T0K"}}"#, NONE, r#"{"access_token":"[REDACTED]","error":"x","note":{"n":"got [REDACTED]"}}"#);
        check(JSON, r#"{"error":"x","error_description":"p\"w"}"#, &["p\"w"], r#"{"error":"x","error_description":"[REDACTED]"}"#);
        check(Response(None), "access_token=T0K&error=got+T0K", NONE, "access_token=[REDACTED]&error=got+%5BREDACTED%5D");
        check(Response(None), "ACCESS%5FTOKEN=T0K&error=x", NONE, "ACCESS_TOKEN=[REDACTED]&error=x");
        check(Response(Some("text/html")), "<pre>access_token => \"T0K\"</pre>", NONE, "<pre>access_token => \"[REDACTED]\"</pre>");
        check(Response(None), r#"{"access_token":"T0K",,"#, NONE, r#"{"access_token":"[REDACTED]",,"#);
        // bounded work: a body with too many token values is withheld
        check(JSON, &tokens(MAX_TOKEN_VALUES), NONE, r#"{"access_token":"[REDACTED]"}"#);
        check(JSON, &tokens(MAX_TOKEN_VALUES + 1), NONE, WITHHELD);
        // the start of an oversized body: cut at 4 KiB, after scrubbing, a trailing part of a secret dropped
        check(Cut, &format!("{}access_token=abc", " ".repeat(CUT_SOURCE_BYTES)), NONE, "");
        check(Cut, &format!("{}Zq9-secret", " ".repeat(CUT_SOURCE_BYTES - 6)), &["Zq9-secret"], "[REDAC");
        check(Cut, "got Zq9-se", &["Zq9-secret"], "got");
        check(Cut, "Authorization: Basic QWxh", NONE, "Authorization: [REDACTED]");
    }

    /// A vendor's `error_description` echoing credentials in an encoding
    /// the request did not send (here Basic of the raw pair, when nothing
    /// was sent) loses them in the error's text too, as in its body.
    #[test]
    fn sealed_errors_redact_secret_keys_in_the_vendor_text() {
        let body = br#"{"error":"x","error_description":"got Authorization: Basic YXBwOnMzY3JldA== and password=hunter2"}"#;
        let raw = RawResponse::new(400, None, body);
        let err = parse_sent("p", &raw, SystemTime::UNIX_EPOCH, &|| Secrets::NONE).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("YXBwOnMzY3JldA"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Authorization: [REDACTED]"), "{shown}");
    }

    /// What was sent is scrubbed again from the finished error: text made
    /// one line can spell a secret that the body did not.
    #[test]
    fn sealed_errors_show_nothing_sent() {
        let body = br#"{"error":"x","error_description":"got my\npass","p":"my pass"}"#;
        let raw = RawResponse::new(400, None, body);
        let sent = || Secrets::sent(["my pass"], None);
        let err = parse_sent("p", &raw, SystemTime::UNIX_EPOCH, &sent).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"provider "p": token endpoint refused the request (HTTP 400): x: got [REDACTED]"#
        );
        assert_eq!(
            err.body().map(BodySnippet::as_str),
            Some(r#"{"error":"x","error_description":"got my\npass","p":"[REDACTED]"}"#)
        );
    }
}
