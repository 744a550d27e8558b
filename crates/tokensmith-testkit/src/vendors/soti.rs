//! SOTI Connect: `Authorization: Basic base64(id:secret)`; grants `password`
//! and `authorization_code` (single-use codes), and `refresh_token` when
//! refresh tokens are on; lowercase `bearer` and an integer `expires_in`.

use super::{Code, Problem, has_body_credentials, refuse, required};
use crate::emulator::Shared;
use crate::server::{Basic, BasicEncoding, Form, Request, basic, json_string};
use crate::vendor::Vendor;

pub(super) fn handle(shared: &Shared, request: &Request, form: &Form) -> Result<String, Problem> {
    let creds = Vendor::SotiConnect.credentials();
    if has_body_credentials(form) {
        return refuse(
            Code::InvalidRequest,
            "Client credentials belong in the Authorization: Basic header, not in the body",
        );
    }
    match basic(&request.headers, BasicEncoding::Raw) {
        Basic::Absent => return refuse(Code::InvalidClient, "Missing Authorization: Basic header"),
        Basic::Invalid(why) => return refuse(Code::InvalidClient, why),
        Basic::Credentials { id, secret } => {
            if id != creds.client_id() || Some(secret.as_str()) != creds.client_secret() {
                return refuse(Code::InvalidClient, "The client id or secret is incorrect");
            }
        }
    }
    let mut inner = shared.lock();
    let refresh_token = match required(form, "grant_type")? {
        "password" => {
            let username = required(form, "username")?;
            let password = required(form, "password")?;
            if Some(username) != creds.username() || Some(password) != creds.password() {
                return refuse(Code::InvalidGrant, "The user name or password is incorrect");
            }
            None
        }
        "authorization_code" => {
            let code = required(form, "code")?;
            match inner.codes.get_mut(code) {
                Some(issued) if !issued.used && issued.client_id == creds.client_id() => {
                    issued.used = true;
                }
                Some(issued) if issued.used => {
                    return refuse(
                        Code::InvalidGrant,
                        "The authorization code has already been used",
                    );
                }
                _ => return refuse(Code::InvalidGrant, "The authorization code is invalid"),
            }
            inner
                .issue_refresh_tokens
                .then(|| shared.new_refresh_token(&mut inner, creds.client_id(), None))
        }
        "refresh_token" if inner.issue_refresh_tokens => {
            let token = required(form, "refresh_token")?;
            if inner
                .refresh_tokens
                .get(token)
                .is_none_or(|grant| grant.client_id != creds.client_id())
            {
                return refuse(
                    Code::InvalidGrant,
                    "The refresh token is invalid or has already been used",
                );
            }
            if inner.rotate_refresh_tokens {
                inner.refresh_tokens.remove(token);
                Some(shared.new_refresh_token(&mut inner, creds.client_id(), None))
            } else {
                None
            }
        }
        other => {
            return refuse(Code::UnsupportedGrantType, format!("Unsupported grant_type `{other}`"));
        }
    };
    let access_token = shared.random_token("AAEAA", 192);
    let mut body = format!(
        r#"{{"access_token":{},"token_type":"bearer","expires_in":{}"#,
        json_string(&access_token),
        inner.expires_in()
    );
    if let Some(refresh_token) = refresh_token {
        body.push_str(r#","refresh_token":"#);
        body.push_str(&json_string(&refresh_token));
    }
    body.push('}');
    Ok(body)
}
