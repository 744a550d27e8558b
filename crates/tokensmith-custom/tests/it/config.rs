//! Load-time validation: each error names the provider and the field.

use crate::{build, clock};

const BASE: &str = r#"
kind = "custom"
token_url = "https://api.example.com/login"
client_id = "svc"
client_secret = "the-client-secret"
password = "the-password"
secrets = { api_key = "the-api-key" }
"#;

/// `extra` appended to [`BASE`] must fail to load, the error naming
/// `field` and containing `needle`.
#[track_caller]
fn check(extra: &str, field: &str, needle: &str) {
    check_text(&format!("{BASE}{extra}"), field, needle);
}

/// `text` must fail to load, the error naming `field` and containing
/// `needle`, and no secret.
#[track_caller]
fn check_text(text: &str, field: &str, needle: &str) {
    let Err(err) = build(text, &clock()) else { panic!("expected a config error for {text:?}") };
    assert!(err.is_config(), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("provider \"acme\""), "{shown}");
    assert!(shown.contains(&format!("field \"{field}\"")), "{field}: {shown}");
    assert!(shown.contains(needle), "{needle}: {shown}");
    for secret in ["the-client-secret", "the-password", "the-api-key"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn a_valid_description_loads() {
    let text = format!("{BASE}[response]\ntoken = \"/t\"\n");
    build(&text, &clock()).unwrap();
}

#[test]
fn unknown_fields_are_named() {
    check("[response]\ntoken = \"/t\"\nexpires = \"/e\"\n", "response.expires", "unknown field");
    check(
        "[request]\nverb = \"GET\"\n[response]\ntoken = \"/t\"\n",
        "request.verb",
        "unknown field",
    );
    check(
        "[present]\nheader_name = \"X\"\n[response]\ntoken = \"/t\"\n",
        "present.header_name",
        "unknown field",
    );
    check(
        "[request]\nauth = { type = \"basic\", usr = \"username\" }\n[response]\ntoken = \"/t\"\n",
        "request.auth.usr",
        "did you mean `user`?",
    );
    check("colour = 1\n[response]\ntoken = \"/t\"\n", "colour", "unknown field");
}

#[test]
fn malformed_pointers_and_templates_are_refused() {
    check("[response]\ntoken = \"data/t\"\n", "response.token", "not a JSON Pointer");
    check("[response]\ntoken = \"/t~2\"\n", "response.token", "`~` must be followed");
    check(
        "[response]\ntoken = \"/t\"\nexpires_at = \"x\"\n",
        "response.expires_at",
        "JSON Pointer",
    );
    check(
        "[response]\ntoken = \"/t\"\nerror_code = \"e\"\n",
        "response.error_code",
        "JSON Pointer",
    );
    check(
        "[request.headers]\nX-Key = \"Key {api_key\"\n[response]\ntoken = \"/t\"\n",
        "request.headers.X-Key",
        "never closed",
    );
    check(
        "[present]\nvalue = \"Bearer token}\"\n[response]\ntoken = \"/t\"\n",
        "present.value",
        "lone",
    );
    check(
        "[present]\nvalue = \"Bearer\"\n[response]\ntoken = \"/t\"\n",
        "present.value",
        "never uses",
    );
    check(
        "[present]\nheader = \"X Auth\"\n[response]\ntoken = \"/t\"\n",
        "present.header",
        "not a valid header",
    );
}

#[test]
fn a_template_or_field_naming_an_unknown_secret_is_refused() {
    check(
        "[request.fields]\nkey = \"{apikey}\"\n[response]\ntoken = \"/t\"\n",
        "request.fields.key",
        "unknown value `apikey`",
    );
    check(
        "[request]\nauth = { type = \"basic\", user = \"username\" }\n[response]\ntoken = \"/t\"\n",
        "request.auth.user",
        "this provider sets no `username`",
    );
    check(
        "[request.query]\nsig = \"{token}\"\n[response]\ntoken = \"/t\"\n",
        "request.query.sig",
        "unknown value `token`",
    );
    check(
        "[present]\nvalue = \"{client_secret} {token}\"\n[response]\ntoken = \"/t\"\n",
        "present.value",
        "unknown value",
    );
    check_text(
        "kind = \"custom\"\nclient_id = \"svc\"\nsecrets = { client_secret = \"x-x-x-x\" }\n[response]\ntoken = \"/t\"\n",
        "secrets.client_secret",
        "built-in",
    );
}

#[test]
fn a_secret_value_written_in_a_literal_field_is_refused() {
    check(
        "[request.headers]\nX-Key = \"the-api-key\"\n[response]\ntoken = \"/t\"\n",
        "request.headers.X-Key",
        "write \"{api_key}\" instead",
    );
    check(
        "[request]\nbody = \"json\"\nfields = { auth = { pw = \"the-password\" } }\n[response]\ntoken = \"/t\"\n",
        "request.fields.auth.pw",
        "`password`",
    );
    check(
        "[request.query]\ns = \"x-the-client-secret\"\n[response]\ntoken = \"/t\"\n",
        "request.query.s",
        "`client_secret`",
    );
}

#[test]
fn a_lifetime_given_both_ways_is_refused() {
    check(
        "[response]\ntoken = \"/t\"\nexpires_in = \"/ttl\"\nexpires_at = \"/exp\"\n",
        "response.expires_at",
        "both as relative seconds",
    );
}

#[test]
fn request_shapes_that_cannot_work_are_refused() {
    check(
        "[request]\nmethod = \"PUT\"\n[response]\ntoken = \"/t\"\n",
        "request.method",
        "unsupported",
    );
    check(
        "[request]\nmethod = \"GET\"\nbody = \"json\"\n[response]\ntoken = \"/t\"\n",
        "request.body",
        "GET",
    );
    check(
        "[request]\nbody = \"xml\"\n[response]\ntoken = \"/t\"\n",
        "request.body",
        "unknown body format",
    );
    check(
        "[request]\nbody = \"none\"\nfields = { a = \"b\" }\n[response]\ntoken = \"/t\"\n",
        "request.fields",
        "body = \"none\"",
    );
    check(
        "[request]\nauth = \"kerberos\"\n[response]\ntoken = \"/t\"\n",
        "request.auth",
        "unknown client authentication",
    );
    check(
        "[request]\nauth = { type = \"header\", value = \"{api_key}\" }\n[response]\ntoken = \"/t\"\n",
        "request.auth.header",
        "required",
    );
    check(
        "[request]\nauth = { type = \"basic\", header = \"X\" }\n[response]\ntoken = \"/t\"\n",
        "request.auth.header",
        "only used with",
    );
    check(
        "[request]\nauth = \"basic\"\nheaders = { Authorization = \"x\" }\n[response]\ntoken = \"/t\"\n",
        "request.headers.Authorization",
        "already sends",
    );
    check(
        "[response]\ntoken = \"/t\"\nexpires_at_format = \"unix\"\n",
        "response.expires_at_format",
        "only used with",
    );
    check(
        "[response]\ntoken = \"/t\"\nexpires_at = \"/e\"\nexpires_at_format = \"iso\"\n",
        "response.expires_at_format",
        "unknown time format",
    );
    check(
        "[response]\ntoken = \"/t\"\ndefault_lifetime = \"soon\"\n",
        "response.default_lifetime",
        "",
    );
    check(
        "[request]\nfields = { a = [1] }\n[response]\ntoken = \"/t\"\n",
        "request.fields.a",
        "body = \"json\"",
    );
}

#[test]
fn a_missing_response_table_is_named() {
    let err = build(BASE, &clock()).unwrap_err();
    assert!(err.to_string().contains("response"), "{err}");
}

/// A header value HTTP cannot carry (CR, LF or another control character,
/// from the literal text or from a value the template names) is refused at
/// load, naming the field and where the character is, never the value:
/// before, the provider loaded and every request failed (or, had core not
/// refused it, a CR LF would have split the header). Found by the fuzz
/// target `custom_request`.
#[test]
fn a_header_value_with_a_control_character_is_refused_at_load() {
    check(
        "[request.headers]\nX-Key = \"Key\\r\\nX-Injected: 1 {api_key}\"\n[response]\ntoken = \"/t\"\n",
        "request.headers.X-Key",
        "its literal text holds one",
    );
    check(
        "[request]\nauth = { type = \"header\", header = \"X-Api-Key\", value = \"{password}\\u0000\" }\n[response]\ntoken = \"/t\"\n",
        "request.auth.value",
        "control character",
    );
    check_text(
        "kind = \"custom\"\ntoken_url = \"https://api.example.com/login\"\nclient_id = \"svc\"\nsecrets = { api_key = \"the-api-key\\r\\nX-Injected: 1\" }\n[request.headers]\nX-Key = \"Key {api_key}\"\n[response]\ntoken = \"/t\"\n",
        "request.headers.X-Key",
        "the value of `{api_key}` holds one",
    );
    // A tab is a header value's own character; in a query, a CR LF is
    // percent-encoded like any other byte.
    let text = format!(
        "{BASE}[request]\nheaders = {{ X-Key = \"a\\tb {{api_key}}\" }}\nquery = {{ q = \"a\\r\\nb\" }}\n[response]\ntoken = \"/t\"\n"
    );
    build(&text, &clock()).unwrap();
}

/// `request.auth.header` may not name a header tokensmith sets itself, as
/// `request.headers` may not: `Host`, `Content-Length` or `Content-Type`
/// sent twice break the request.
#[test]
fn the_auth_header_may_not_be_one_tokensmith_sets() {
    for name in ["Content-Type", "content-length", "HOST", "User-Agent"] {
        check(
            &format!(
                "[request]\nauth = {{ type = \"header\", header = \"{name}\", value = \"{{api_key}}\" }}\n[response]\ntoken = \"/t\"\n"
            ),
            "request.auth.header",
            "set by tokensmith",
        );
    }
}

/// A malformed template is quoted in its error, unless it writes out a
/// secret's value: then the error says so without quoting it.
#[test]
fn a_malformed_template_that_writes_out_a_secret_is_not_quoted() {
    check(
        "[request.headers]\nX-Key = \"Key the-api-key {\"\n[response]\ntoken = \"/t\"\n",
        "request.headers.X-Key",
        "write \"{api_key}\" instead",
    );
    check(
        "[request.query]\nk = \"{the-password}\"\n[response]\ntoken = \"/t\"\n",
        "request.query.k",
        "`password` written out",
    );
    check(
        "[request.query]\nk = \"{api_key\"\n[response]\ntoken = \"/t\"\n",
        "request.query.k",
        "malformed template \"{api_key\"",
    );
}

/// A JSON body nested more than 32 deep (tables or arrays, the body
/// included) is refused at load: before, it was sent, and `serde_json`, as
/// most JSON parsers, refuses a document nested more than 128 deep. Found
/// by the fuzz target `custom_request` (input
/// `fuzz/artifacts/custom_request/crash-350f6859…`).
#[test]
fn a_json_body_nested_too_deep_is_refused() {
    let nested = |levels: usize| {
        let key = vec!["a"; levels].join(".");
        format!(
            "{BASE}[request]\nbody = \"json\"\nfields = {{ {key} = \"{{password}}\" }}\n[response]\ntoken = \"/t\"\n"
        )
    };
    build(&nested(32), &clock()).unwrap();
    let field = format!("request.fields{}", ".a".repeat(32));
    check_text(&nested(33), &field, "more than 32 deep");
    let arrays = format!(
        "{BASE}[request]\nbody = \"json\"\nfields = {{ a = {}1{} }}\n[response]\ntoken = \"/t\"\n",
        "[".repeat(32),
        "]".repeat(32)
    );
    let field = format!("request.fields.a{}", ".0".repeat(31));
    check_text(&arrays, &field, "more than 32 deep");
}

/// Hop-by-hop headers belong to the HTTP client (a `Transfer-Encoding` or
/// `Connection` written in a description would fight its framing), and a
/// header written twice in two cases would be sent twice.
#[test]
fn hop_by_hop_and_twice_written_headers_are_refused() {
    for name in ["Transfer-Encoding", "connection", "Keep-Alive", "TE", "Upgrade"] {
        check(
            &format!("[request.headers]\n{name} = \"x\"\n[response]\ntoken = \"/t\"\n"),
            &format!("request.headers.{name}"),
            "hop-by-hop",
        );
        check(
            &format!(
                "[request]\nauth = {{ type = \"header\", header = \"{name}\", value = \"{{api_key}}\" }}\n[response]\ntoken = \"/t\"\n"
            ),
            "request.auth.header",
            "hop-by-hop",
        );
    }
    // Nor can a token be presented in a header the HTTP client frames the
    // API request with.
    for name in ["Content-Length", "host", "Transfer-Encoding", "Connection", "User-Agent"] {
        check(
            &format!("[present]\nheader = \"{name}\"\n[response]\ntoken = \"/t\"\n"),
            "present.header",
            "the HTTP client sets it",
        );
    }
    let err = build(
        &format!(
            "{BASE}[request.headers]\nX-Tenant = \"a\"\nx-tenant = \"b\"\n[response]\ntoken = \"/t\"\n"
        ),
        &clock(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("written twice"), "{err}");
    // One of each case is fine.
    build(
        &format!("{BASE}[request.headers]\nX-Tenant = \"a\"\nX-Other = \"b\"\n[response]\ntoken = \"/t\"\n"),
        &clock(),
    )
    .unwrap();
}
