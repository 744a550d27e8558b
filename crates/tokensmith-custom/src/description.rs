//! The description of a vendor, as written in a `[providers.NAME]` table,
//! and its load-time validation into what a request needs ([`Plan`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::{
    ConfigSecret, ProviderContext, RequestMethod, ResponseShape, TimeFormat, TokenError,
    parse_duration,
};

use crate::template::Template;

/// The kind-specific fields of a `kind = "custom"` table: the description
/// and the named values it uses. Read from a table by the factory, or made
/// by [`CustomConfig`](crate::CustomConfig) in code.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFields {
    /// A user name, for `{username}`.
    #[serde(default)]
    pub(crate) username: Option<String>,
    /// A password (secret), for `{password}`.
    #[serde(default)]
    pub(crate) password: Option<ConfigSecret>,
    /// Named extra secrets, for `{name}`.
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, ConfigSecret>,
    /// How the request is sent.
    #[serde(default)]
    request: RequestFields,
    /// Where the token is in the response.
    response: ResponseFields,
    /// How the token is presented to resource servers.
    #[serde(default)]
    present: PresentFields,
}

impl fmt::Debug for CustomFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names only: the values are secrets or parts of the description.
        let secrets: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
        f.debug_struct("CustomFields")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("secrets", &secrets)
            .finish_non_exhaustive()
    }
}

/// `[providers.NAME.request]`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFields {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    fields: toml::Table,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    auth: Auth,
}

/// `request.auth`: a string (`"basic"`) or a table with `type`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthTable {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    id_field: Option<String>,
    #[serde(default)]
    secret_field: Option<String>,
}

#[derive(Clone, Default)]
struct Auth(Option<AuthTable>);

impl<'de> Deserialize<'de> for Auth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AuthVisitor;
        impl<'de> Visitor<'de> for AuthVisitor {
            type Value = Auth;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\", \"basic\", \"body\" or a table with `type`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Auth, E> {
                Ok(Auth(Some(AuthTable { kind: v.to_owned(), ..AuthTable::default() })))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Auth, A::Error> {
                AuthTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| Auth(Some(t)))
            }
        }
        deserializer.deserialize_any(AuthVisitor)
    }
}

/// `[providers.NAME.response]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseFields {
    token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    expires_at_format: Option<String>,
    #[serde(default)]
    default_lifetime: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// `[providers.NAME.present]`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresentFields {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// A value sent: plain, or holding a secret.
#[derive(Clone)]
pub(crate) enum Sent {
    Plain(String),
    Secret(SecretString),
}

impl Sent {
    /// The value as sent.
    pub(crate) fn expose(&self) -> &str {
        match self {
            Self::Plain(v) => v,
            Self::Secret(v) => v.expose_secret(),
        }
    }
}

/// What the request body is.
#[derive(Clone)]
pub(crate) enum PlanBody {
    Form(Vec<(String, Sent)>),
    Json { value: serde_json::Value, secrets: Vec<(String, SecretString)> },
    Empty,
}

/// Everything a request needs, validated at load.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(crate) method: RequestMethod,
    pub(crate) body: PlanBody,
    pub(crate) query: Vec<(String, Sent)>,
    pub(crate) headers: Vec<(String, Sent)>,
    pub(crate) basic: Option<(SecretString, SecretString)>,
    /// Every secret the description can send (scrubbed from errors on
    /// their own, also when sent inside a longer value).
    pub(crate) secrets: Vec<SecretString>,
    pub(crate) shape: ResponseShape,
    pub(crate) present: Presentation,
    /// `POST form`, `GET`: for `check`.
    pub(crate) summary: String,
}

/// How a token is presented to a resource server: a header name and a value
/// template (`{token}`, `{token_type}`).
#[derive(Clone, Debug)]
pub struct Presentation {
    header: String,
    value: Template,
    /// The same presentation as core knows it: every token this provider
    /// fetches carries it (`AccessToken::header()`), so the CLI, the
    /// middleware, the tower layer and the agent present it alike.
    core: tokensmith_core::Presentation,
}

impl Presentation {
    /// This presentation as core's [`Presentation`](tokensmith_core::Presentation),
    /// which every fetched token carries.
    pub fn to_core(&self) -> tokensmith_core::Presentation {
        self.core.clone()
    }

    /// The header name (`Authorization` unless described otherwise).
    pub fn header_name(&self) -> &str {
        &self.header
    }

    /// The header name and value presenting `token`: the value template
    /// with `{token}` and `{token_type}` filled in; the value is a secret.
    pub fn present(&self, token: &tokensmith_core::AccessToken) -> (String, SecretString) {
        let value = self.value.render(|name| match name {
            "token_type" => token.token_type().as_str(),
            _ => token.secret().expose_secret(),
        });
        (self.header.clone(), SecretString::from(value))
    }
}

/// The names a request template may use, and whether each is a secret.
struct Credentials {
    values: Vec<(String, SecretString, bool)>,
}

impl Credentials {
    fn get(&self, name: &str) -> Option<&(String, SecretString, bool)> {
        self.values.iter().find(|(n, _, _)| n == name)
    }

    fn names(&self) -> String {
        self.values.iter().map(|(n, _, _)| format!("`{{{n}}}`")).collect::<Vec<_>>().join(", ")
    }
}

/// The headers tokensmith sets itself, which a description may not.
const OWN_HEADERS: [&str; 4] = ["content-type", "content-length", "host", "user-agent"];

/// Why a description may not send the header `name` (any case), if it may not.
fn reserved_header(name: &str) -> Option<&'static str> {
    let among = |list: &[&str]| list.iter().any(|h| name.eq_ignore_ascii_case(h));
    if among(&OWN_HEADERS) {
        Some("this header is set by tokensmith")
    } else if among(tokensmith_core::HOP_BY_HOP_HEADERS) {
        Some("a hop-by-hop header, managed by the HTTP client")
    } else {
        None
    }
}

/// How deep the tables and arrays of a JSON body may nest (the body itself
/// counts): far below the 128 levels at which JSON parsers, `serde_json`'s
/// included, refuse a document.
const MAX_JSON_DEPTH: usize = 32;

/// The names no extra secret may take.
const BUILT_IN: [&str; 4] = ["client_id", "client_secret", "username", "password"];

/// Secrets shorter than this are not looked for in literal text (a
/// one-letter secret would be found everywhere).
const MIN_SECRET_SEARCH: usize = 4;

/// Validates the description of `ctx`'s provider into a [`Plan`], every
/// error naming the field.
/// The provider's named values: `client_id`, `client_secret`, `username`,
/// `password` and the extra secrets, each with whether it is a secret.
fn credentials(ctx: &ProviderContext, fields: &CustomFields) -> Result<Credentials, TokenError> {
    let common = ctx.common();
    let mut values =
        vec![("client_id".to_owned(), SecretString::from(common.client_id.clone()), false)];
    if let Some(secret) = &common.client_secret {
        values.push(("client_secret".to_owned(), secret.as_secret().clone(), true));
    }
    if let Some(username) = &fields.username {
        if username.is_empty() {
            return Err(ctx.error("username", "is empty"));
        }
        values.push(("username".to_owned(), SecretString::from(username.clone()), false));
    }
    if let Some(password) = &fields.password {
        if password.is_empty() {
            return Err(ctx.error("password", "the secret is empty"));
        }
        values.push(("password".to_owned(), password.as_secret().clone(), true));
    }
    for (name, secret) in &fields.secrets {
        let field = format!("secrets.{name}");
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ctx.error(&field, "a secret's name is letters, digits and `_`"));
        }
        if BUILT_IN.contains(&name.as_str()) || name == "token" || name == "token_type" {
            return Err(ctx.error(
                &field,
                format!("`{name}` is a built-in name; give the extra secret another name"),
            ));
        }
        if secret.is_empty() {
            return Err(ctx.error(&field, "the secret is empty"));
        }
        values.push((name.clone(), secret.as_secret().clone(), true));
    }
    Ok(Credentials { values })
}

pub(crate) fn plan(ctx: &ProviderContext) -> Result<Plan, TokenError> {
    let fields: CustomFields = ctx.parse()?;
    let credentials = credentials(ctx, &fields)?;
    let secrets: Vec<SecretString> =
        credentials.values.iter().filter(|(_, _, s)| *s).map(|(_, v, _)| v.clone()).collect();
    let checker = Checker { ctx, credentials: &credentials };

    let request = &fields.request;
    let method = match request.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("POST") => RequestMethod::Post,
        Some("GET") => RequestMethod::Get,
        Some(other) => {
            return Err(ctx.error(
                "request.method",
                format!("unsupported method {other:?}; use \"POST\" or \"GET\""),
            ));
        }
    };
    let body_format = match (request.body.as_deref(), method) {
        (None, RequestMethod::Get) | (Some("none"), _) => "none",
        (Some("form" | "json"), RequestMethod::Get) => {
            return Err(ctx.error("request.body", "a GET request has no body; use body = \"none\""));
        }
        (None | Some("form"), _) => "form",
        (Some("json"), _) => "json",
        (Some(other), _) => {
            return Err(ctx.error(
                "request.body",
                format!("unknown body format {other:?}; use \"form\", \"json\" or \"none\""),
            ));
        }
    };

    let auth = client_auth(ctx, &checker, &request.auth, body_format)?;
    let (basic, auth_header, auth_fields) = (auth.basic, auth.header, auth.fields);

    // Headers.
    let mut headers = Vec::new();
    for (name, value) in &request.headers {
        let field = format!("request.headers.{name}");
        checker.header_name(&field, name)?;
        let taken = |other: &str| name.eq_ignore_ascii_case(other);
        if basic.is_some() && taken("authorization") {
            return Err(ctx.error(&field, "auth type \"basic\" already sends Authorization"));
        }
        if auth_header.as_ref().is_some_and(|(h, _)| taken(h)) {
            return Err(ctx.error(&field, "request.auth already sends this header"));
        }
        if let Some(why) = reserved_header(name) {
            return Err(ctx.error(&field, why));
        }
        if headers.iter().any(|(other, _): &(String, _)| taken(other)) {
            return Err(ctx.error(&field, "written twice (names are case-insensitive): keep one"));
        }
        headers.push((name.clone(), checker.header_template(&field, value)?));
    }
    if let Some((name, value)) = auth_header {
        headers.push((name, value));
    }

    // Query.
    let mut query = Vec::new();
    for (name, value) in &request.query {
        let field = format!("request.query.{name}");
        query.push((name.clone(), checker.template(&field, value)?));
    }

    let body = body(ctx, &checker, &request.fields, body_format, &auth_fields)?;

    let shape = response_shape(ctx, &fields.response)?;
    let present = presentation(ctx, &fields.present)?;
    let summary = format!("{} {body_format}, auth {}", method.as_str(), auth.kind);
    Ok(Plan { method, body, query, headers, basic, secrets, shape, present, summary })
}

/// What client authentication sends.
struct AuthPlan {
    kind: String,
    basic: Option<(SecretString, SecretString)>,
    header: Option<(String, Sent)>,
    fields: Vec<(String, String)>,
}

/// `request.auth`, checked.
fn client_auth(
    ctx: &ProviderContext,
    checker: &Checker<'_>,
    auth: &Auth,
    body_format: &str,
) -> Result<AuthPlan, TokenError> {
    let common = ctx.common();
    let auth = auth
        .0
        .clone()
        .unwrap_or_else(|| AuthTable { kind: "none".to_owned(), ..AuthTable::default() });
    let only = |field: &str, value: &Option<String>, kinds: &str| {
        if value.is_some() {
            Err(ctx
                .error(&format!("request.auth.{field}"), format!("only used with type = {kinds}")))
        } else {
            Ok(())
        }
    };
    let mut basic = None;
    let mut auth_header = None;
    let mut auth_fields: Vec<(String, String)> = Vec::new();
    match auth.kind.as_str() {
        "none" => {
            for (field, value) in [
                ("user", &auth.user),
                ("password", &auth.password),
                ("header", &auth.header),
                ("value", &auth.value),
                ("id_field", &auth.id_field),
                ("secret_field", &auth.secret_field),
            ] {
                only(field, value, "\"basic\", \"header\" or \"body\"")?;
            }
        }
        "basic" => {
            only("header", &auth.header, "\"header\"")?;
            only("value", &auth.value, "\"header\"")?;
            only("id_field", &auth.id_field, "\"body\"")?;
            only("secret_field", &auth.secret_field, "\"body\"")?;
            let user = auth.user.as_deref().unwrap_or("client_id");
            let password = auth.password.as_deref().unwrap_or("client_secret");
            let user = checker.credential("request.auth.user", user)?;
            let password = checker.credential("request.auth.password", password)?;
            if user.expose_secret().contains(':') {
                return Err(ctx.error(
                    "request.auth.user",
                    "the Basic user must not contain ':' (Basic credentials split at the first ':')",
                ));
            }
            basic = Some((user, password));
        }
        "header" => {
            only("user", &auth.user, "\"basic\"")?;
            only("password", &auth.password, "\"basic\"")?;
            only("id_field", &auth.id_field, "\"body\"")?;
            only("secret_field", &auth.secret_field, "\"body\"")?;
            let name = auth.header.clone().ok_or_else(|| {
                ctx.error("request.auth.header", "required with type = \"header\"")
            })?;
            checker.header_name("request.auth.header", &name)?;
            if let Some(why) = reserved_header(&name) {
                return Err(ctx.error("request.auth.header", why));
            }
            let value = auth.value.as_deref().ok_or_else(|| {
                ctx.error("request.auth.value", "required with type = \"header\"")
            })?;
            auth_header = Some((name, checker.header_template("request.auth.value", value)?));
        }
        "body" => {
            only("user", &auth.user, "\"basic\"")?;
            only("password", &auth.password, "\"basic\"")?;
            only("header", &auth.header, "\"header\"")?;
            only("value", &auth.value, "\"header\"")?;
            if body_format == "none" {
                return Err(ctx.error(
                    "request.auth",
                    "type = \"body\" needs a body; use body = \"form\" or \"json\"",
                ));
            }
            auth_fields.push((
                auth.id_field.clone().unwrap_or_else(|| "client_id".to_owned()),
                "{client_id}".to_owned(),
            ));
            if common.client_secret.is_some() {
                auth_fields.push((
                    auth.secret_field.clone().unwrap_or_else(|| "client_secret".to_owned()),
                    "{client_secret}".to_owned(),
                ));
            } else if auth.secret_field.is_some() {
                return Err(ctx.error("request.auth.secret_field", "there is no client_secret"));
            }
        }
        other => {
            return Err(ctx.error(
                "request.auth",
                format!(
                    "unknown client authentication {other:?}; use \"none\", \"basic\", \"header\" or \"body\""
                ),
            ));
        }
    }

    Ok(AuthPlan { kind: auth.kind, basic, header: auth_header, fields: auth_fields })
}

/// The body, checked: `request.fields` and the client authentication's.
fn body(
    ctx: &ProviderContext,
    checker: &Checker<'_>,
    fields: &toml::Table,
    body_format: &str,
    auth_fields: &[(String, String)],
) -> Result<PlanBody, TokenError> {
    if body_format == "none" && !fields.is_empty() {
        return Err(ctx.error("request.fields", "body fields given with body = \"none\""));
    }
    Ok(match body_format {
        "json" => {
            let mut secrets = Vec::new();
            let mut value = checker.json(
                "request.fields",
                "",
                &toml::Value::Table(fields.clone()),
                &mut secrets,
                0,
            )?;
            for (name, template) in auth_fields {
                if fields.contains_key(name) {
                    return Err(ctx.error(
                        &format!("request.fields.{name}"),
                        "request.auth (type = \"body\") already sends this field",
                    ));
                }
                let pointer = format!("/{}", escape_pointer(name));
                let sent = checker.template("request.auth", template)?;
                put_json(&mut value, name, &pointer, sent, &mut secrets);
            }
            PlanBody::Json { value, secrets }
        }
        "form" => {
            let mut form = Vec::new();
            for (name, value) in fields {
                let field = format!("request.fields.{name}");
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(ctx.error(
                            &field,
                            "a form field is a string, number or boolean (tables and arrays need body = \"json\")",
                        ));
                    }
                };
                form.push((name.clone(), checker.template(&field, &text)?));
            }
            for (name, template) in auth_fields {
                if fields.contains_key(name) {
                    return Err(ctx.error(
                        &format!("request.fields.{name}"),
                        "request.auth (type = \"body\") already sends this field",
                    ));
                }
                form.push((name.clone(), checker.template("request.auth", template)?));
            }
            PlanBody::Form(form)
        }
        _ => PlanBody::Empty,
    })
}

/// Escapes a key for a JSON Pointer segment.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Puts a sent value into a JSON object at `name` (plain) or records it as
/// a secret at `pointer`.
fn put_json(
    value: &mut serde_json::Value,
    name: &str,
    pointer: &str,
    sent: Sent,
    secrets: &mut Vec<(String, SecretString)>,
) {
    if let serde_json::Value::Object(members) = value {
        match sent {
            Sent::Plain(text) => {
                members.insert(name.to_owned(), serde_json::Value::String(text));
            }
            Sent::Secret(secret) => {
                members.insert(name.to_owned(), serde_json::Value::Null);
                secrets.push((pointer.to_owned(), secret));
            }
        }
    }
}

/// Validation helpers over the provider's named values.
struct Checker<'a> {
    ctx: &'a ProviderContext,
    credentials: &'a Credentials,
}

impl Checker<'_> {
    /// The value named `name` (for Basic credentials).
    fn credential(&self, field: &str, name: &str) -> Result<SecretString, TokenError> {
        let name = name.trim_start_matches('{').trim_end_matches('}');
        self.credentials
            .get(name)
            .map(|(_, v, _)| v.clone())
            .ok_or_else(|| self.ctx.error(field, self.unknown(name)))
    }

    fn unknown(&self, name: &str) -> String {
        let hint = if BUILT_IN.contains(&name) {
            format!(" (this provider sets no `{name}`)")
        } else {
            " (add it under `secrets`)".to_owned()
        };
        format!("names an unknown value `{name}`{hint}; known: {}", self.credentials.names())
    }

    /// A request template: parsed, its names known, no secret written out in
    /// its literal text; evaluated.
    fn template(&self, field: &str, text: &str) -> Result<Sent, TokenError> {
        let template = match Template::parse(text) {
            Ok(template) => template,
            Err(malformed) => {
                // The message quotes the text: never one that writes out a
                // secret (said without quoting it).
                self.no_secret_written(field, text)?;
                return Err(self.ctx.error(field, malformed));
            }
        };
        let mut secret = false;
        for name in template.names() {
            match self.credentials.get(name) {
                Some((_, _, is_secret)) => secret |= is_secret,
                None => return Err(self.ctx.error(field, self.unknown(name))),
            }
        }
        for literal in template.literals() {
            self.no_secret_written(field, literal)?;
        }
        let value = template
            .render(|name| self.credentials.get(name).map_or("", |(_, v, _)| v.expose_secret()));
        Ok(if secret { Sent::Secret(SecretString::from(value)) } else { Sent::Plain(value) })
    }

    /// A header's value template ([`template`](Self::template)) whose
    /// value HTTP can carry: a control character (CR, LF, NUL, …; tab
    /// aside), in its literal text or in a value it names, is refused
    /// naming where it is, never showing it.
    fn header_template(&self, field: &str, text: &str) -> Result<Sent, TokenError> {
        let control = |s: &str| s.chars().any(|c| c.is_ascii_control() && c != '\t');
        let sent = self.template(field, text)?;
        if !control(sent.expose()) {
            return Ok(sent);
        }
        let template = Template::parse(text).map_err(|e| self.ctx.error(field, e))?;
        let culprit = template
            .names()
            .find(|name| {
                self.credentials.get(name).is_some_and(|(_, v, _)| control(v.expose_secret()))
            })
            .map_or_else(
                || "its literal text".to_owned(),
                |name| format!("the value of `{{{name}}}`"),
            );
        Err(self.ctx.error(
            field,
            format!(
                "a header value cannot hold a control character (CR, LF, …), and {culprit} holds one"
            ),
        ))
    }

    /// Refuses literal text that contains a secret's value.
    fn no_secret_written(&self, field: &str, literal: &str) -> Result<(), TokenError> {
        for (name, value, is_secret) in &self.credentials.values {
            let value = value.expose_secret();
            if *is_secret && value.len() >= MIN_SECRET_SEARCH && literal.contains(value) {
                return Err(self.ctx.error(
                    field,
                    format!(
                        "contains the value of the secret `{name}` written out; write \"{{{name}}}\" instead, so it is handled as a secret"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An HTTP header name (RFC 9110 token characters).
    fn header_name(&self, field: &str, name: &str) -> Result<(), TokenError> {
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(tchar) {
            return Err(self.ctx.error(field, format!("{name:?} is not a valid header name")));
        }
        Ok(())
    }

    /// A TOML value as a JSON body value: strings are templates (a secret
    /// one recorded at its pointer, `null` in its place), tables objects.
    ///
    /// Tables and arrays nest at most [`MAX_JSON_DEPTH`] deep (`depth`
    /// counts the ones around `value`).
    fn json(
        &self,
        field: &str,
        pointer: &str,
        value: &toml::Value,
        secrets: &mut Vec<(String, SecretString)>,
        depth: usize,
    ) -> Result<serde_json::Value, TokenError> {
        use serde_json::Value as J;
        if matches!(value, toml::Value::Array(_) | toml::Value::Table(_)) && depth >= MAX_JSON_DEPTH
        {
            return Err(self.ctx.error(
                field,
                format!(
                    "nests tables or arrays more than {MAX_JSON_DEPTH} deep; JSON parsers refuse bodies that deep"
                ),
            ));
        }
        Ok(match value {
            toml::Value::String(text) => match self.template(field, text)? {
                Sent::Plain(text) => J::String(text),
                Sent::Secret(secret) => {
                    secrets.push((pointer.to_owned(), secret));
                    J::Null
                }
            },
            toml::Value::Integer(i) => J::from(*i),
            toml::Value::Float(f) => J::from(*f),
            toml::Value::Boolean(b) => J::Bool(*b),
            toml::Value::Datetime(d) => J::String(d.to_string()),
            toml::Value::Array(items) => J::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.json(
                            &format!("{field}.{i}"),
                            &format!("{pointer}/{i}"),
                            item,
                            secrets,
                            depth + 1,
                        )
                    })
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(table) => J::Object(
                table
                    .iter()
                    .map(|(k, v)| {
                        let inner = self.json(
                            &format!("{field}.{k}"),
                            &format!("{pointer}/{}", escape_pointer(k)),
                            v,
                            secrets,
                            depth + 1,
                        )?;
                        Ok((k.clone(), inner))
                    })
                    .collect::<Result<_, TokenError>>()?,
            ),
        })
    }
}

/// The response description as a [`ResponseShape`].
fn response_shape(
    ctx: &ProviderContext,
    fields: &ResponseFields,
) -> Result<ResponseShape, TokenError> {
    let at = |field: &'static str| move |e: String| ctx.error(&format!("response.{field}"), e);
    let mut shape = ResponseShape::new(&fields.token).map_err(at("token"))?;
    if let Some(p) = &fields.refresh_token {
        shape = shape.refresh_token(p).map_err(at("refresh_token"))?;
    }
    if let Some(p) = &fields.scope {
        shape = shape.scope(p).map_err(at("scope"))?;
    }
    if let Some(p) = &fields.token_type {
        shape = shape.token_type(p).map_err(at("token_type"))?;
    }
    let format = match fields.expires_at_format.as_deref() {
        None | Some("auto") => TimeFormat::Auto,
        Some("rfc3339") => TimeFormat::Rfc3339,
        Some("unix") => TimeFormat::UnixSeconds,
        Some("unix_ms") => TimeFormat::UnixMillis,
        Some(other) => {
            return Err(ctx.error(
                "response.expires_at_format",
                format!(
                    "unknown time format {other:?}; use \"auto\", \"rfc3339\", \"unix\" or \"unix_ms\""
                ),
            ));
        }
    };
    match (&fields.expires_in, &fields.expires_at) {
        (Some(_), Some(_)) => {
            return Err(ctx.error(
                "response.expires_at",
                "the lifetime is given both as relative seconds (`expires_in`) and as an absolute time (`expires_at`); keep one",
            ));
        }
        (Some(p), None) => shape = shape.expires_in(p).map_err(at("expires_in"))?,
        (None, Some(p)) => shape = shape.expires_at(p, format).map_err(at("expires_at"))?,
        (None, None) => {}
    }
    if fields.expires_at_format.is_some() && fields.expires_at.is_none() {
        return Err(ctx.error("response.expires_at_format", "only used with `expires_at`"));
    }
    if let Some(text) = &fields.default_lifetime {
        let lifetime: Duration = parse_duration(text).map_err(at("default_lifetime"))?;
        if lifetime < Duration::from_secs(1) {
            return Err(ctx.error("response.default_lifetime", "must be at least 1s"));
        }
        shape = shape.default_lifetime(lifetime);
    }
    if let Some(p) = &fields.error_code {
        shape = shape.error_code(p).map_err(at("error_code"))?;
    }
    if let Some(p) = &fields.error_message {
        shape = shape.error_message(p).map_err(at("error_message"))?;
    }
    Ok(shape)
}

/// The presentation description, checked.
fn presentation(ctx: &ProviderContext, fields: &PresentFields) -> Result<Presentation, TokenError> {
    let header = fields.header.clone().unwrap_or_else(|| "Authorization".to_owned());
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if header.is_empty() || !header.chars().all(tchar) {
        return Err(ctx.error("present.header", format!("{header:?} is not a valid header name")));
    }
    // The API requests it goes on are framed by their HTTP client: a token
    // in `Content-Length`, `Host` or `Transfer-Encoding` would break them.
    if reserved_header(&header).is_some() {
        return Err(ctx.error(
            "present.header",
            format!("{header:?} cannot carry the token: the HTTP client sets it for each request; resource servers read a token from a header of its own, such as Authorization or X-Auth-Token"),
        ));
    }
    let text = fields.value.as_deref().unwrap_or("Bearer {token}");
    let value = Template::parse(text).map_err(|e| ctx.error("present.value", e))?;
    for name in value.names() {
        if name != "token" && name != "token_type" {
            return Err(ctx.error(
                "present.value",
                format!("names an unknown value `{name}`; a presentation uses `{{token}}` and `{{token_type}}`"),
            ));
        }
    }
    if !value.names().any(|n| n == "token") {
        return Err(ctx.error("present.value", "the template never uses `{token}`"));
    }
    if value.literals().any(|l| l.chars().any(char::is_control)) {
        return Err(ctx.error("present.value", "contains control characters"));
    }
    let core = tokensmith_core::Presentation::new(&header, text)
        .map_err(|e| ctx.error("present.value", e.to_string()))?;
    Ok(Presentation { header, value, core })
}
