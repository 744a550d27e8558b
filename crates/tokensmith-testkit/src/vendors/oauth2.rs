//! The scoped OAuth 2.0 server: grants `client_credentials`,
//! `authorization_code` (with `redirect_uri`, PKCE `S256`, and `client_id` in
//! the body whatever the client authentication, as the page requires) and
//! `refresh_token` (rotating); client auth `client_secret_basic`,
//! `client_secret_post` or none (public client); space-delimited scopes;
//! errors as `{"meta":{"pagination":…},"errors":[{"httpcode":…,"message":…}]}`
//! with 400 or 403.

use std::fmt::Write as _;

use hyper::StatusCode;

use super::{Code, Problem, refuse, required};
use crate::emulator::{Inner, Shared, pkce_challenge_s256};
use crate::server::{Basic, Form, Request, basic, json_string};
use crate::vendor::Vendor;

/// The scopes the emulated server knows; `openid` adds an `id_token`.
const KNOWN_SCOPES: [&str; 3] = ["read", "write", "openid"];

/// Who authenticated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Confidential,
    Public,
}

impl Client {
    fn id(self) -> &'static str {
        let creds = Vendor::OAuth2.credentials();
        match self {
            Client::Confidential => creds.client_id(),
            Client::Public => creds.public_client_id().unwrap_or_default(),
        }
    }
}

pub(super) fn handle(shared: &Shared, request: &Request, form: &Form) -> Result<String, Problem> {
    let mut inner = shared.lock();
    let client = authenticate(&inner, request, form)?;
    let grant = required(form, "grant_type")?;
    let (scope, refresh_token) = match grant {
        "client_credentials" => {
            if client == Client::Public {
                return refuse(
                    Code::UnauthorizedClient,
                    "A public client cannot use the client_credentials grant",
                );
            }
            (granted_scope(form.get("scope"), None)?, None)
        }
        "authorization_code" => exchange_code(shared, &mut inner, client, form)?,
        "refresh_token" => refresh(shared, &mut inner, client, form)?,
        other => {
            return refuse(Code::UnsupportedGrantType, format!("Unsupported grant_type `{other}`"));
        }
    };
    let expires_in = inner.expires_in();
    let id_token =
        (grant != "client_credentials" && scope.split(' ').any(|s| s == "openid")).then(|| {
            let iat = inner.unix_now();
            let payload = format!(
                r#"{{"iss":{},"sub":"emulated-user","aud":{},"iat":{iat},"exp":{}}}"#,
                json_string(&shared.base_url),
                json_string(client.id()),
                iat.saturating_add(expires_in)
            );
            shared.jwt(r#"{"alg":"RS256","typ":"JWT","kid":"emulator"}"#, &payload)
        });
    drop(inner);
    let mut body =
        format!("{{\n  \"access_token\": {}", json_string(&shared.random_token("at_", 32)));
    for (name, value) in [("refresh_token", refresh_token), ("id_token", id_token)] {
        if let Some(value) = value {
            let _ = write!(body, ",\n  \"{name}\": {}", json_string(&value));
        }
    }
    let _ = write!(
        body,
        ",\n  \"expires_in\": {expires_in},\n  \"scope\": {},\n  \"token_type\": \"bearer\"\n}}",
        json_string(&scope)
    );
    Ok(body)
}

/// Client authentication: exactly one of Basic, body secret, or a public
/// client's bare `client_id`.
fn authenticate(inner: &Inner, request: &Request, form: &Form) -> Result<Client, Problem> {
    let creds = Vendor::OAuth2.credentials();
    let body_id = form.get("client_id");
    let check = |id: &str, secret: &str| {
        if id == creds.client_id() && Some(secret) == creds.client_secret() {
            Ok(Client::Confidential)
        } else {
            refuse(Code::InvalidClient, "Invalid client credentials")
        }
    };
    match (basic(&request.headers, inner.basic_encoding), form.get("client_secret")) {
        (Basic::Invalid(why), _) => refuse(Code::InvalidRequest, why),
        (Basic::Credentials { .. }, Some(_)) => refuse(
            Code::InvalidRequest,
            "Use one client authentication method, not both Basic and client_secret",
        ),
        (Basic::Credentials { id, secret }, None) => {
            if body_id.is_some_and(|body_id| body_id != id) {
                return refuse(
                    Code::InvalidRequest,
                    "client_id in the body differs from the Basic credentials",
                );
            }
            check(&id, &secret)
        }
        (Basic::Absent, Some(secret)) => check(required(form, "client_id")?, secret),
        (Basic::Absent, None) => match body_id {
            None | Some("") => refuse(Code::InvalidClient, "Client authentication required"),
            Some(id) if Some(id) == creds.public_client_id() => Ok(Client::Public),
            Some(id) if id == creds.client_id() => refuse(
                Code::InvalidClient,
                "Client authentication required for a confidential client",
            ),
            Some(_) => refuse(Code::InvalidClient, "Unknown client"),
        },
    }
}

/// The `authorization_code` grant: a single-use code, its `redirect_uri`
/// and PKCE verifier.
fn exchange_code(
    shared: &Shared,
    inner: &mut Inner,
    client: Client,
    form: &Form,
) -> Result<(String, Option<String>), Problem> {
    // The page's second request model: `client_id` is required in the body
    // whatever the client authentication (`authenticate` checked that it
    // names the authenticated client).
    required(form, "client_id")?;
    let code = required(form, "code")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let Some(issued) = inner.codes.get_mut(code).filter(|c| !c.used && c.client_id == client.id())
    else {
        return refuse(
            Code::InvalidGrant,
            "The authorization code is invalid, expired or already used",
        );
    };
    if issued.redirect_uri.as_deref() != Some(redirect_uri) {
        return refuse(Code::InvalidGrant, "redirect_uri does not match the authorization request");
    }
    match (&issued.code_challenge, form.get("code_verifier")) {
        (None, None) => {}
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed {
                return refuse(
                    Code::InvalidRequest,
                    "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
                );
            }
            if pkce_challenge_s256(verifier) != *challenge {
                return refuse(
                    Code::InvalidGrant,
                    "code_verifier does not match the code_challenge",
                );
            }
        }
        (Some(_), None) => {
            return refuse(
                Code::InvalidGrant,
                "Missing code_verifier: the code was issued with PKCE",
            );
        }
        (None, Some(_)) => {
            return refuse(
                Code::InvalidRequest,
                "code_verifier sent, but the code was issued without a code_challenge",
            );
        }
    }
    let scope = granted_scope(issued.scope.as_deref(), None)?;
    issued.used = true;
    let refresh_token = inner
        .issue_refresh_tokens
        .then(|| shared.new_refresh_token(inner, client.id(), Some(&scope)));
    Ok((scope, refresh_token))
}

/// The `refresh_token` grant, rotating the token unless rotation is off.
fn refresh(
    shared: &Shared,
    inner: &mut Inner,
    client: Client,
    form: &Form,
) -> Result<(String, Option<String>), Problem> {
    if !inner.issue_refresh_tokens {
        return refuse(Code::UnsupportedGrantType, "Unsupported grant_type `refresh_token`");
    }
    let token = required(form, "refresh_token")?;
    let Some(grant) = inner.refresh_tokens.get(token).filter(|g| g.client_id == client.id()) else {
        return refuse(
            Code::InvalidGrant,
            "The refresh token is invalid, revoked or already rotated",
        );
    };
    let scope = granted_scope(form.get("scope"), grant.scope.as_deref())?;
    let original = grant.scope.clone();
    let new_token = inner.rotate_refresh_tokens.then(|| {
        inner.refresh_tokens.remove(token);
        shared.new_refresh_token(inner, client.id(), original.as_deref())
    });
    Ok((scope, new_token))
}

/// The scope granted for `requested` (space-delimited), within `ceiling`
/// when the grant has one; the client's default scope when none is asked.
fn granted_scope(requested: Option<&str>, ceiling: Option<&str>) -> Result<String, Problem> {
    let default = Vendor::OAuth2.credentials().scope().unwrap_or_default();
    let Some(requested) = requested.filter(|s| !s.is_empty()) else {
        return Ok(ceiling.unwrap_or(default).to_owned());
    };
    for scope in requested.split(' ') {
        if !KNOWN_SCOPES.contains(&scope) {
            return refuse(
                Code::InvalidScope,
                format!("Invalid scope `{scope}` (scopes are space-delimited)"),
            );
        }
        if ceiling.is_some_and(|ceiling| !ceiling.split(' ').any(|s| s == scope)) {
            return refuse(
                Code::InvalidScope,
                format!("Scope `{scope}` exceeds the scope originally granted"),
            );
        }
    }
    Ok(requested.to_owned())
}

/// The vendor's error body, pretty-printed like its documentation.
pub(super) fn error_body(status: StatusCode, message: &str) -> String {
    format!(
        "{{\n  \"meta\": {{\n    \"pagination\": {{\n      \"limit\": 0,\n      \"offset\": 0,\n      \"total_count\": 0\n    }}\n  }},\n  \"errors\": [\n    {{\n      \"httpcode\": {},\n      \"message\": {}\n    }}\n  ]\n}}",
        status.as_u16(),
        json_string(message)
    )
}
