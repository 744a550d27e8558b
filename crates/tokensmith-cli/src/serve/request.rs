//! The agent's reading of what a client sends (contract §10): which endpoint
//! a path names, the provider name in it (percent-decoded), and the header
//! rule. Plain `std` on purpose: the fuzz targets (`fuzz/src/lib.rs`) include
//! this file by path, so the code fuzzed is the code served.

use std::borrow::Cow;

/// The endpoints, as the `endpoint` label of the request counter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Endpoint {
    Token,
    Header,
    Invalidate,
    Providers,
    Healthz,
    Metrics,
    Other,
}

/// The header every request but `/healthz` must carry, with the value `1`:
/// a browser cannot add it to a cross-site request without a preflight the
/// agent never answers, and an SSRF that only controls a URL cannot add it.
pub(crate) const REQUEST_HEADER: &str = "tokensmith-request";

/// Which endpoint `path` names, and the provider name in it (borrowed from
/// `path` when it has no percent escape).
pub(crate) fn route(path: &str) -> (Endpoint, Option<Cow<'_, str>>) {
    let named = |prefix: &str| path.strip_prefix(prefix).and_then(decode_name);
    if path == "/healthz" {
        (Endpoint::Healthz, None)
    } else if path == "/metrics" {
        (Endpoint::Metrics, None)
    } else if path == "/v1/providers" {
        (Endpoint::Providers, None)
    } else if path.starts_with("/v1/token/") {
        (Endpoint::Token, named("/v1/token/"))
    } else if path.starts_with("/v1/header/") {
        (Endpoint::Header, named("/v1/header/"))
    } else if path.starts_with("/v1/invalidate/") {
        (Endpoint::Invalidate, named("/v1/invalidate/"))
    } else {
        (Endpoint::Other, None)
    }
}

/// A provider name from its path segment: percent-decoded, one segment,
/// UTF-8; `None` otherwise (answered 404).
fn decode_name(segment: &str) -> Option<Cow<'_, str>> {
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    if !segment.contains('%') {
        return Some(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits: `u8::from_str_radix` would also take a sign.
            let &[hi, lo] = bytes.get(i + 1..i + 3)? else { return None };
            out.push(hex_digit(hi)? << 4 | hex_digit(lo)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The value of one hex digit.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Why a request with `headers` (name, value) is refused, or `None`: one
/// that may come from a browser or be forwarded by another server (an
/// `Origin` or `X-Forwarded-For` header), or (unless `exempt`) one whose
/// first `Tokensmith-Request` header is not `1`. Names compare ignoring
/// ASCII case.
pub(crate) fn refusal<'h>(
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    exempt: bool,
) -> Option<&'static str> {
    let (mut origin, mut forwarded, mut marked) = (false, false, None);
    // hyper's header names are lowercase: an exact comparison first.
    let is = |name: &str, known: &str| name == known || name.eq_ignore_ascii_case(known);
    for (name, value) in headers {
        if is(name, "origin") {
            origin = true;
        } else if is(name, "x-forwarded-for") {
            forwarded = true;
        } else if is(name, REQUEST_HEADER) && marked.is_none() {
            marked = Some(value == b"1");
        }
    }
    if origin {
        Some("requests with an Origin header are refused (no browser use)")
    } else if forwarded {
        Some("forwarded requests (X-Forwarded-For) are refused")
    } else if !exempt && marked != Some(true) {
        Some("every request must carry the header `Tokensmith-Request: 1`")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_an_endpoint_and_a_provider() {
        assert!(matches!(route("/v1/token/mdm"), (Endpoint::Token, Some(n)) if n == "mdm"));
        assert!(matches!(route("/v1/header/a%20b"), (Endpoint::Header, Some(n)) if n == "a b"));
        assert!(matches!(route("/v1/invalidate/x"), (Endpoint::Invalidate, Some(n)) if n == "x"));
        assert!(matches!(route("/v1/token/"), (Endpoint::Token, None)));
        assert!(matches!(route("/v1/token/a/b"), (Endpoint::Token, None)));
        assert!(matches!(route("/v1/token/%zz"), (Endpoint::Token, None)));
        assert!(matches!(route("/v1/token/%ff"), (Endpoint::Token, None)));
        assert!(matches!(route("/"), (Endpoint::Other, None)));
    }

    #[test]
    fn a_percent_escape_is_two_hex_digits() {
        // Found by the `agent_request` fuzz target (fuzz/artifacts/agent_request/):
        // `u8::from_str_radix` takes a sign, so `%+3` decoded to a control
        // character.
        assert_eq!(route("/v1/token/%+1"), (Endpoint::Token, None));
        assert_eq!(route("/v1/token/a%-0"), (Endpoint::Token, None));
        assert_eq!(route("/v1/token/%4A"), (Endpoint::Token, Some("J".into())));
        assert!(matches!(route("/v1/token/plain"), (_, Some(Cow::Borrowed("plain")))));
    }

    #[test]
    fn the_header_rule() {
        let rule = |headers: &[(&str, &str)], exempt| {
            refusal(headers.iter().map(|(k, v)| (*k, v.as_bytes())), exempt)
        };
        assert!(rule(&[("tokensmith-request", "1")], false).is_none());
        assert!(rule(&[("Tokensmith-Request", "1")], false).is_none());
        assert!(rule(&[], false).is_some());
        assert!(rule(&[], true).is_none());
        assert!(rule(&[("tokensmith-request", "true")], false).is_some());
        assert!(rule(&[("tokensmith-request", "2"), ("tokensmith-request", "1")], false).is_some());
        let origin = [("tokensmith-request", "1"), ("origin", "https://evil.example")];
        assert!(rule(&origin, false).is_some());
        assert!(rule(&origin[1..], true).is_some());
        let xff = [("tokensmith-request", "1"), ("x-forwarded-for", "10.0.0.1")];
        assert!(rule(&xff, false).is_some());
    }
}
